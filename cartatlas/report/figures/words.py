"""The words figures share in their titles and captions: what is counted, by when, in which groups.

One place for them, so that every figure names its subject and its cut-off
date alike ("CAR-T trials registered by 30 Jun 2020; ClinicalTrials.gov").
"""

from __future__ import annotations

import datetime as dt

from cartatlas.analysis.landscape import TARGET_BRANCHES, Landscape
from cartatlas.knowledge.registries import display_name
from cartatlas.normalise.countries import country_name
from cartatlas.report.labels import BRANCH_LABELS

#: How each registration date was obtained, as Fig. 1a's caption says it.
DATE_SOURCE_WORDS = {
    "first_posted": "first-posted date",
    "other_version": "first-posted date of another stored version",
    "first_submitted": "first-submitted date",
    "estimated_from_id": "estimated from the registry number (marked as estimated)",
    "extrapolated_from_id": "extrapolated from the registry number beyond the newest dated record, within the "
    "record's own bounds (marked as extrapolated)",
    "year_from_id": "the year in the registry id",
    "start_date": "study start date (fallback)",
    "last_update_posted": "last-update date (last resort)",
}


def as_of(landscape: Landscape) -> dt.date:
    return landscape.options.as_of or dt.date.today()


def date_text(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def as_of_text(landscape: Landscape) -> str:
    """The cut-off date as figures print it ('30 Jun 2020')."""
    return date_text(as_of(landscape))


def focus_name(landscape: Landscape) -> str:
    return country_name(landscape.options.focus) or landscape.options.focus


def cap(text: str) -> str:
    """First letter upper case, the rest untouched ('CAR trials', not 'Car trials')."""
    return text[:1].upper() + text[1:]


def subject(landscape: Landscape) -> str:
    """What is counted, in the figure's words: 'CAR-T trials', 'CAR trials', 'CAR-T and CAR-NK registrations'."""
    platforms = sorted(landscape.options.platforms or ())
    noun = "registrations" if landscape.options.per == "registration" else "trials"
    if not platforms:
        return f"CAR {noun}"
    if len(platforms) <= 2:
        return f"{' and '.join(platforms)} {noun}"
    return f"CAR {noun} ({', '.join(platforms)})"


def as_of_line(landscape: Landscape, verb: str = "registered") -> str:
    """'registered by 30 Jun 2020; ClinicalTrials.gov' (the registries only when the count is limited to some)."""
    parts = [f"{verb} by {as_of_text(landscape)}"]
    if landscape.options.registries:
        parts.append(", ".join(display_name(r) for r in landscape.options.registries))
    return "; ".join(parts)


def no_trials(landscape: Landscape) -> str:
    return f"No {subject(landscape)} {as_of_line(landscape)}"


def branch_words(branch: str) -> str:
    """'haematological malignancies', 'solid tumours', 'autoimmune diseases' (the labels, in a sentence)."""
    return BRANCH_LABELS[TARGET_BRANCHES[branch]].lower()


def units_total(landscape: Landscape) -> int:
    """All trials counted (the denominator of the shares in the platform and product-source figures)."""
    totals = landscape.facts.get("totals", {}) if isinstance(landscape.facts, dict) else {}
    if isinstance(totals, dict) and isinstance(totals.get("units"), int):
        return int(totals["units"])
    return len(landscape.units)


def groups_text(landscape: Landscape) -> str:
    """'China (China, Taiwan, ...); United States; Other countries (all others)' for captions."""
    groups = landscape.options.groups
    parts = []
    for name, members in groups.groups.items():
        countries = sorted(country_name(c) or c for c in members)
        parts.append(name if countries == [name] else f"{name} ({', '.join(countries)})")
    parts.append(f"{groups.other} (all others)")
    return "; ".join(parts)


def date_sources_text(landscape: Landscape) -> str:
    """' Registration date: first-posted date for 2,000, ...' (how many trials each source dated), or ''."""
    sources = landscape.notes.get("date_sources") if isinstance(landscape.notes, dict) else None
    if not isinstance(sources, dict) or not sources:
        return ""
    items = sorted(sources.items(), key=lambda kv: -int(kv[1]))
    words = ", ".join(f"{DATE_SOURCE_WORDS.get(str(k), str(k))} for {int(v)}" for k, v in items)
    return f" Registration date: {words}."
