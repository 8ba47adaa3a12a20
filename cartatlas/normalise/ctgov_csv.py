"""ClinicalTrials.gov website CSV downloads (the 2018 layout and the current one) in the API v2 layout."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
import pycountry

from cartatlas.model import Trial
from cartatlas.normalise.countries import country_code
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.normalise.ctgov_v2_values import (
    V2,
    date_struct,
    design_from_text,
    prune,
    split_intervention,
    v2_bool,
    v2_enum,
    v2_int,
    v2_phases,
    v2_sex,
    v2_sponsor_class,
    v2_status,
    v2_study_type,
)
from cartatlas.normalise.formats import FormatSpec, register_format
from cartatlas.sources.ctgov.identity import (
    _text,
    clean,
)


def _split(value: Any, sep: str = "|") -> list[str]:
    text = clean(value)
    if text is None:
        return []
    return [p for p in (clean(x) for x in text.split(sep)) if p]


def _fold(text: str) -> str:
    if text.isascii():
        return text.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


_SUBDIVISION_SUFFIX = re.compile(
    r"\s+(?:sheng|shi|zizhiqu|huizu zizhiqu|uygur zizhiqu|zhuangzu zizhiqu|sar|province|state|region|prefecture)$"
    r"|-(?:do|si|gwangyeoksi|teukbyeolsi|teukbyeoljachisi|teukbyeoljachido|ken|to|fu)$"
)


@lru_cache(maxsize=512)
def _subdivision_names(code: str) -> frozenset[str]:
    names: set[str] = set()
    for sub in pycountry.subdivisions.get(country_code=code) or ():
        name = _fold(str(sub.name))
        names.add(name)
        names.add(_SUBDIVISION_SUFFIX.sub("", name))
    return frozenset(names)


#: Words that mark a part as an institution or a department rather than a city.
_INSTITUTION = re.compile(
    r"hospital|h[ôo]pital|ospedal|universit|clinic|klinik|krankenhaus|praxis|center|centre|centro|"
    r"[ie]n?stitut|medical|medicine|school|college|dept|department|division|foundation|fondazione|"
    r"research|laborator|onkolog|oncolog|h[äa]matolog|hematolog|ematolog|disease|studien|unit|"
    r"service|servizio|abteilung|team|\bchu\b|\bchru\b|\bap-hp\b|\bgbr\b|site|[/&]",
    re.I,
)


def _looks_like_place(text: str) -> bool:
    return len(text.split()) <= 4 and not _INSTITUTION.search(text) and not any(c.isdigit() for c in text)


_POSTCODE = re.compile(r"^(?=[^,]*\d)[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")


def parse_location(text: str) -> dict[str, str | None]:
    """A website CSV location ("Facility, City, State, Zip, Country") split as far as the text allows.

    The parts are joined with ", " and facility names contain commas too, so
    the string is read from the end: the country is the last part (or the last
    two, for "Korea, Republic of", whose last part alone is no country), checked
    against the country table; a
    postcode is recognised by its digits; a state only where the part is a
    known subdivision of that country and what precedes it reads like a city.
    Whatever is left before the city is the facility.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out: dict[str, str | None] = {"facility": None, "city": None, "state": None, "zip": None, "country": None}
    code = None
    if parts and (code := country_code(parts[-1])):
        out["country"] = parts[-1]
        parts = parts[:-1]
    elif len(parts) >= 2 and (code := country_code(", ".join(parts[-2:]))):
        out["country"] = ", ".join(parts[-2:])
        parts = parts[:-2]
    else:
        out["facility"] = _text(text)
        return out
    if len(parts) >= 2 and _POSTCODE.match(parts[-1]):
        out["zip"] = parts.pop()
    if len(parts) >= 2 and _fold(parts[-1]) in _subdivision_names(code):
        city = parts[-2]
        is_state = _looks_like_place(city) and (len(parts) >= 3 or code == "US" or _fold(city) == _fold(parts[-1]))
        if is_state:
            out["state"] = parts.pop()
    if parts:
        out["city"] = parts.pop()
    if parts:
        out["facility"] = ", ".join(parts)
    return out


_AGE_RANGE = re.compile(
    r"^\s*(?:(?P<min>\d+\s+\w+?)\s+(?:to\s+(?P<max>\d+\s+\w+)|and older)|up to\s+(?P<upto>\d+\s+\w+))"
    r"\s*(?:\((?P<std>[^)]*)\))?\s*$",
    re.I,
)


def parse_age(text: Any) -> tuple[str | None, str | None, list[str]]:
    """(minimum, maximum, std ages) from "18 Years to 70 Years   (Adult, Older Adult)"
    (2018 site), "up to 18 Years (Child)", or a bare "Child, Adult, Older Adult"
    / "ADULT, OLDER_ADULT" (the current site)."""
    s = clean(text)
    if s is None:
        return None, None, []
    s = re.sub(r"\s+", " ", s)
    m = _AGE_RANGE.match(s)
    if m:
        std = [a for a in (v2_enum(x) for x in (m["std"] or "").split(",")) if a]
        return m["min"], m["max"] or m["upto"], std
    return None, None, [a for a in (v2_enum(x) for x in s.split(",")) if a]


def _csv_interventions(value: Any) -> list[dict[str, Any]]:
    return [split_intervention(entry) for entry in _split(value)]


def _csv_ids(value: Any) -> tuple[str | None, list[dict[str, Any]]]:
    ids = _split(value)
    return (ids[0] if ids else None), [{"id": i} for i in ids[1:]]


def _csv_outcomes(value: Any) -> list[dict[str, Any]]:
    """Current-site outcome cells: "measure, time frame" items joined by "|"; the measure is kept whole."""
    return [{"measure": m} for m in _split(value)]


def _csv_sponsors(row: Mapping[str, Any]) -> tuple[list[str], list[str | None]]:
    """Sponsor names, lead first, and the class of each where the row allows knowing it.

    The current site gives the lead sponsor's class ("Funder Type").  The 2018
    site's "Funded Bys" lists the distinct classes of all sponsors in order of
    first appearance, lead first (checked against API records of the same
    trials): a single class is everyone's, and as many classes as sponsors
    means one each, in order; otherwise only the lead's is known.
    """
    if "Sponsor" in row:
        sponsors = _split(row.get("Sponsor"))[:1] + _split(row.get("Collaborators"))
        known = [v2_sponsor_class(c) for c in _split(row.get("Funder Type"))][:1]
    else:
        sponsors = _split(row.get("Sponsor/Collaborators"))
        classes = [v2_sponsor_class(c) for c in _split(row.get("Funded Bys"))]
        if len(classes) == len(sponsors):
            known = classes
        elif len(set(classes)) == 1:
            known = classes[:1] * len(sponsors)
        else:
            known = classes[:1]
    return sponsors, (known + [None] * len(sponsors))[: len(sponsors)]


def csv_row_to_v2(row: Mapping[str, Any]) -> V2:
    """A website CSV row, old (2018: "Title", "Status", "Funded Bys") or current layout
    ("Study Title", "Study Status", "Funder Type"), as a v2 study.

    What a row does not say stays out: the 2018 layout gives enrollment without
    its type, and lists primary and secondary outcomes in one undivided cell, so
    it has no primary outcomes of its own here (the raw row keeps them).
    """

    def col(*names: str) -> Any:
        for name in names:
            if name in row:
                return row[name]
        return None

    sponsors, classes = _csv_sponsors(row)
    min_age, max_age, std_ages = parse_age(col("Age"))
    org_id, secondary = _csv_ids(col("Other IDs"))
    design = col("Study Designs", "Study Design")
    primary = col("Primary Outcome Measures")
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {
                "nctId": clean(col("NCT Number")),
                "orgStudyIdInfo": {"id": org_id},
                "secondaryIdInfos": secondary,
                "briefTitle": _text(col("Study Title", "Title")),
                "acronym": clean(col("Acronym")),
            },
            "statusModule": {
                "overallStatus": v2_status(col("Study Status", "Status")),
                "startDateStruct": date_struct(col("Start Date")),
                "primaryCompletionDateStruct": date_struct(col("Primary Completion Date")),
                "completionDateStruct": date_struct(col("Completion Date")),
                "studyFirstPostDateStruct": date_struct(col("First Posted")),
                "resultsFirstPostDateStruct": date_struct(col("Results First Posted")),
                "lastUpdatePostDateStruct": date_struct(col("Last Update Posted")),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {"name": sponsors[0], "class": classes[0]} if sponsors else None,
                "collaborators": [{"name": s, "class": c} for s, c in zip(sponsors[1:], classes[1:], strict=True)],
            },
            "descriptionModule": {"briefSummary": _text(col("Brief Summary"))},
            "conditionsModule": {"conditions": _split(col("Conditions"))},
            "designModule": {
                "studyType": v2_study_type(col("Study Type")),
                "phases": v2_phases(_split(col("Phases"))),
                "designInfo": design_from_text(design, "|"),
                "enrollmentInfo": {"count": v2_int(col("Enrollment"))},
            },
            "armsInterventionsModule": {"interventions": _csv_interventions(col("Interventions"))},
            "outcomesModule": {
                "primaryOutcomes": _csv_outcomes(primary),
                "secondaryOutcomes": _csv_outcomes(col("Secondary Outcome Measures")),
                "otherOutcomes": _csv_outcomes(col("Other Outcome Measures")),
            },
            "eligibilityModule": {
                "sex": v2_sex(col("Sex", "Gender")),
                "minimumAge": min_age,
                "maximumAge": max_age,
                "stdAges": std_ages,
            },
            "contactsLocationsModule": {"locations": [parse_location(x) for x in _split(col("Locations"))]},
        },
        "hasResults": v2_bool(col("Study Results")),
    }
    return prune(v2)


_VOLATILE_CSV_COLUMNS = ("Rank",)


def csv_hash_view(text: str) -> str:
    """A row's rank is its place in one search's results, not part of the study."""
    row = orjson.loads(text)
    if isinstance(row, dict):
        for name in _VOLATILE_CSV_COLUMNS:
            row.pop(name, None)
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


def _csv_trial(payload: Any) -> Trial:
    return normalise_ctgov(csv_row_to_v2(payload), "ctgov_csv")


register_format(FormatSpec("ctgov_csv", "ctgov", 10, True, _csv_trial, csv_hash_view))
