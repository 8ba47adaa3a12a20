"""The self-contained HTML report: one file, no CDN, every count opens its trials.

Registry text is untrusted: the template autoescapes everything, the trial
data travels as JSON inside a ``<script type="application/json">`` block
(with ``<`` escaped so no registry string can close the block), and the
small script that shows trial lists (``templates/report.js``) only ever
assigns ``textContent``.  Should anything still get a script into the page,
it would not run: the Content-Security-Policy allows exactly one script, by
the SHA-256 of its text, and nothing inline otherwise.  Links to registries
and PubMed are made only from ids that match the registry's id format
(``knowledge/registries.csv``); any other id is shown without a link.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from functools import cache
from importlib import resources
from itertools import count
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pandas as pd

from cartatlas.analysis.landscape import (
    AS_OF_TABLES,
    NO_LOCATION,
    PHASE_ORDER,
    TARGET_BRANCHES,
    Landscape,
)
from cartatlas.knowledge.registries import display_name as registry_name
from cartatlas.knowledge.registries import id_matches, url_template
from cartatlas.normalise.countries import country_name
from cartatlas.report.caveats import as_of_caveat, dates_caveat
from cartatlas.report.changes import html_context
from cartatlas.report.labels import Kind, rank_key
from cartatlas.report.labels import label as token_label
from cartatlas.report.tables import trial_table

DATE_SOURCE_TEXT = {
    "first_posted": "first-posted (registration) date",
    "other_version": "first-posted date of another stored version of the same record",
    "first_submitted": "first-submitted date (record lacks a first-posted date)",
    "estimated_from_id": "estimated from the NCT number, between records whose dates are known "
    "(NCT numbers are issued in registration order)",
    "extrapolated_from_id": "extrapolated from the NCT number beyond the newest dated record, never after the "
    "record's own last update or that of any later number (marked as extrapolated)",
    "year_from_id": "the registration year in a ChiCTR id (mid-year)",
    "start_date": "study start date (no registration date and no id-based estimate possible)",
    "last_update_posted": "last-update date (nothing earlier available)",
}


def registry_url(registry: str, trial_id: str) -> str | None:
    """The registry page of a trial, or None when the id is not a well-formed id of that registry.

    The address is the registry's ``url_template`` in ``knowledge/registries.csv``
    (ClinicalTrials.gov's own pages; the WHO ICTRP search portal for the other
    registries).  The id goes into the address only after
    it matched the registry's pattern in ``knowledge/registries.csv`` (any
    registry's, for a register with no pattern there): those patterns allow
    only letters, digits, '-' and '/', so no id can add a parameter, leave the
    address or become a ``javascript:`` link.
    """
    if not id_matches(registry, trial_id):
        return None
    return url_template(registry).format(id=trial_id)


_PMID = re.compile(r"[1-9][0-9]{0,8}")


def pubmed_url(pmid: object) -> str | None:
    """The PubMed page of an article, or None when ``pmid`` is not a PubMed id (digits)."""
    text = str(pmid)
    return url_template("pubmed").format(id=text) if _PMID.fullmatch(text) else None


class _Lists:
    """Numbers in the page refer to lists of trial ids by a short key, stored once."""

    def __init__(self, prefix: str = "l") -> None:
        self.prefix = prefix
        self.lists: dict[str, list[str]] = {}
        self._keys: dict[tuple[str, ...], str] = {}
        self._counter = count()

    def key(self, ids: list[str] | tuple[str, ...]) -> str:
        t = tuple(ids)
        if t not in self._keys:
            k = f"{self.prefix}{next(self._counter)}"
            self._keys[t] = k
            self.lists[k] = list(t)
        return self._keys[t]

    def count(self, ids: Any, ref: str) -> dict[str, Any]:
        """A number the page shows: how many ids, the list it opens, and its address (``#n=ref`` in the URL).

        ``ref`` names the number by its table, row and column in the
        classification's tokens ("focus_targets_heme:CD19:alone"), so an
        address stays valid from one report to the next.  No ids, no list:
        a zero is not a button.
        """
        found = [str(i) for i in _lst(ids)]
        return {"n": len(found), "key": self.key(found) if found else None, "ref": ref}


def _status_words(status: Any) -> str:
    """A registry status in words ("ACTIVE_NOT_RECRUITING" -> "Active, not recruiting")."""
    if not isinstance(status, str) or not status:
        return "not stated"
    text = status.replace("_", " ").lower().capitalize()
    return text.replace("Active not", "Active, not")


def _status_text(r: Any, as_of: str) -> str:
    """A trial's status as of the date, or why it is not known then."""
    if r["status_known"]:
        return f"{_status_words(r['status_as_of'])} ({r['as_of_version']})"
    prefix = "" if r["status_as_of"] else f"not known at {as_of}; latest known: "
    return f"{prefix}{_status_words(r['status_latest'])} ({r['as_of_version']})"


#: How a trial's registration date was obtained, in the few words of a trial card (Methods says more).
DATE_SOURCE_WORDS = {
    "first_posted": "first posted",
    "other_version": "first posted, from another stored version",
    "first_submitted": "first submitted",
    "estimated_from_id": "estimated from the NCT number",
    "extrapolated_from_id": "extrapolated from the NCT number",
    "year_from_id": "the year in the ChiCTR id",
    "start_date": "the study's start date",
    "last_update_posted": "the last-update date",
}


MAX_CARD_ITEMS = 12


def _some(items: list[str], most: int = MAX_CARD_ITEMS) -> list[str]:
    """At most ``most`` items, and how many more there are."""
    return items if len(items) <= most else [*items[:most], f"and {len(items) - most} more"]


def _enrolment_text(count: Any, kind: Any) -> str:
    if count is None or (isinstance(count, float) and pd.isna(count)):
        return "not stated"
    text = f"{int(count):,}"
    return f"{text} ({str(kind).lower()})" if isinstance(kind, str) and kind else text


def _cities(sites: Any) -> list[str]:
    """The trial's site cities in one spelling (normalised, else as registered), each once, in site order."""
    out: list[str] = []
    for site in _lst(sites):
        city = site.get("city_normalised") or site.get("city")
        if city and city not in out:
            out.append(str(city))
    return out


def _trial_payload(landscape: Landscape) -> dict[str, Any]:
    """What the trial panel shows: title, registrations with links, size, dates, places, labels and evidence."""
    units = landscape.units
    as_of = landscape.facts["as_of"]["date"]
    out: dict[str, Any] = {}
    for _, r in units.iterrows():
        registrations = list(r.get("registrations") or [f"{r['registry']}:{r['trial_id']}"])
        evidence = orjson.loads(r["evidence"]) if isinstance(r.get("evidence"), str) else []
        start = r.get("start_date")
        out[str(r["unit_id"])] = {
            "title": r.get("brief_title") or "",
            "sponsor": r.get("lead_sponsor") or "not stated",
            "registered": f"{r['registration_date']} "
            f"({DATE_SOURCE_WORDS.get(r['registration_date_source'], r['registration_date_source'])})",
            "start": start.isoformat() if isinstance(start, dt.date) else "not stated",
            "enrolment": _enrolment_text(r.get("enrollment"), r.get("enrollment_type")),
            "conditions": _some([str(c) for c in _lst(r.get("conditions")) if c]) or ["not stated"],
            "cities": _some(_cities(r.get("sites"))) or ["none listed"],
            "status": _status_text(r, as_of),
            "phase": r["phase_category"],
            "links": [[reg, registry_url(*reg.split(":", 1))] for reg in registrations],
            "labels": {
                "relation": token_label("relation", r.get("relation")),
                "platforms": [token_label("platform", p) for p in _lst(r.get("platforms"))],
                "targets": ["not disclosed" if t == "unknown" else t for t in _lst(r.get("targets"))],
                "strategy": token_label("strategy", r.get("target_strategy")),
                "branch": token_label("branch", r.get("branch")),
                "disease": _lst(r.get("disease_entity")),
                "source": token_label("product_source", r.get("product_source")),
                "combinations": [token_label("combination", c) for c in _lst(r.get("combinations"))],
                "confidence": token_label("confidence", r.get("confidence")),
                "curated": _lst(r.get("curated_fields")),
                "countries": [country_name(c) or c for c in _lst(r.get("country_codes"))],
            },
            "evidence": [
                [e.get("decision", ""), e.get("value", ""), e.get("field", ""), e.get("text", ""), e.get("rule", "")]
                for e in evidence[:40]
                if isinstance(e, dict)
            ],
        }
    return out


def _lst(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return list(value)


def _by_n(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as every table of the page orders them: most trials first, then by label."""
    return sorted(rows, key=lambda r: rank_key(r["c"]["n"], str(r["label"])))


def _ranked(
    frame: pd.DataFrame,
    table: str,
    column: str,
    lists: _Lists,
    *,
    kind: Kind | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """A count table's rows with their labels (``labels.label``), counts that open their trials, sorted by n.

    ``extra`` names further id columns and the suffix of their reference
    (``("alone_ids", "alone")``).  Other plain columns are kept as they are.
    """
    rows = []
    for r in frame.to_dict("records"):
        token = r[column]
        row: dict[str, Any] = {str(k): v for k, v in r.items() if not isinstance(v, list | dict)}
        row["label"] = token_label(kind, token) if kind else str(token)
        row["c"] = lists.count(r.get("trial_ids"), f"{table}:{token}")
        for id_column, suffix in extra:
            row[suffix] = lists.count(r.get(id_column), f"{table}:{token}:{suffix}")
        rows.append(row)
    return _by_n(rows)


def _group_rows(landscape: Landscape, lists: _Lists) -> list[dict[str, Any]]:
    units = landscape.units
    rows = []
    names = [*landscape.options.groups.names, NO_LOCATION]
    for g in names:
        ids = sorted(units.loc[units["groups"].map(lambda gs, g=g: g in gs), "unit_id"])
        if ids or g != NO_LOCATION:
            rows.append({"group": g, "c": lists.count(ids, f"overview:{g}")})
    return rows


def _pivot(
    frame: pd.DataFrame, table: str, row: str, col: str, order: list[str], lists: _Lists, rows: list[str] | None = None
) -> dict[str, Any]:
    """A group x category table whose cells open their trials; rows in ``rows``' order (the scheme's groups)."""
    cats = [c for c in order if c in set(frame[col])] + sorted(set(frame[col]) - set(order))
    present = list(dict.fromkeys(frame[row]))
    labels = [g for g in rows or [] if g in present] + sorted(set(present) - set(rows or []))
    cells = {(r[row], r[col]): r["trial_ids"] for _, r in frame.iterrows()}
    return {
        "columns": cats,
        "rows": [
            {"label": g, "cells": [lists.count(cells.get((g, c), []), f"{table}:{g}:{c}") for c in cats]}
            for g in labels
        ],
    }


def _targets_context(landscape: Landscape, lists: _Lists) -> dict[str, Any]:
    """Per branch: the focus group's targets (alone, in combination, each partner), and the branch over time."""
    tables = landscape.tables
    pairs = tables["focus_target_pairs"]
    out: dict[str, Any] = {}
    for kind, branch in TARGET_BRANCHES.items():
        name = f"focus_targets_{kind}"
        rows = _ranked(
            tables[name], name, "target", lists, extra=(("alone_ids", "alone"), ("combination_ids", "combined"))
        )
        mine = pairs[pairs["branch"] == branch]
        for row in rows:
            partners = mine[mine["target"] == row["target"]]
            chips = [
                {"label": p, "c": lists.count(ids, f"{name}:{row['target']}:with:{p}")}
                for p, ids in zip(partners["partner"], partners["trial_ids"], strict=True)
            ]
            row["partners"] = _by_n(chips)
        out[kind] = {
            "label": token_label("branch", branch),
            "targets": rows,
            "over_time": _over_time(landscape, branch, lists),
        }
    return out


def _over_time(landscape: Landscape, branch: str, lists: _Lists) -> dict[str, Any]:
    """A branch's trials per year and country group: registered that year, and all registered by its end."""
    table = landscape.tables["branch_by_year"]
    rows = table[table["branch"] == branch]
    started = rows.loc[rows["new"] > 0, "year"]
    if started.empty:
        return {"groups": [], "rows": []}
    rows = rows[rows["year"] >= int(started.min())]
    groups = [
        g for g in [*landscape.options.groups.names, NO_LOCATION] if (rows.loc[rows["group"] == g, "n"] > 0).any()
    ]
    by_key = {(r["group"], r["year"]): r for r in rows.to_dict("records")}
    out = []
    for year in sorted(set(rows["year"])):
        cells = []
        up_to = ""
        for g in groups:
            r = by_key[(g, year)]
            up_to = str(r["up_to"])
            ref = f"branch_by_year:{branch}:{g}:{year}"
            cells.append({"new": lists.count(r["new_ids"], f"{ref}:new"), "total": lists.count(r["trial_ids"], ref)})
        label = str(year) if up_to.endswith("-12-31") else f"{year} (to {up_to})"
        out.append({"label": label, "cells": cells})
    return {"groups": groups, "rows": out}


def _timelines_context(landscape: Landscape, lists: _Lists) -> dict[str, Any]:
    """The focus group's most frequent targets: new trials per year (the table beside the small multiples)."""
    table = landscape.tables["focus_target_years"]
    if table.empty:
        return {"years": [], "rows": []}
    years = sorted(int(y) for y in set(table["year"]))
    rows = []
    for _rank, part in table.sort_values(["rank", "year"]).groupby("rank", sort=True):
        name = str(part["target"].iloc[0])
        per_year = dict(zip(part["year"], part["trial_ids"], strict=True))
        every = sorted({i for ids in part["trial_ids"] for i in ids})
        rows.append(
            {
                "label": name,
                "c": lists.count(every, f"focus_target_years:{name}"),
                "cells": [lists.count(per_year.get(y, []), f"focus_target_years:{name}:{y}") for y in years],
            }
        )
    return {"years": years, "rows": rows}


def _target_facts_context(landscape: Landscape, lists: _Lists) -> list[dict[str, Any]]:
    """Per target: trials worldwide and in the focus group (alone, with HSCT), and the first of each."""
    rows = []
    for target, f in landscape.facts["targets"].items():
        if f["focus_trials"] == 0 and f["trials"] < 3:
            continue
        ref = f"target_facts:{target}"
        rows.append(
            {
                "label": target,
                "world": lists.count(f.get("trial_ids"), f"{ref}:world"),
                "c": lists.count(f.get("focus_ids"), f"{ref}:focus"),
                "alone": lists.count(f.get("focus_alone_ids"), f"{ref}:focus_alone"),
                "hsct": lists.count(f.get("focus_with_hsct"), f"{ref}:focus_hsct"),
                "first_worldwide": f["first_worldwide"],
                "first_in_focus": f["first_in_focus"],
            }
        )
    return _by_n(rows)  # by the focus group's trials, as the other tables


def _publication_context(landscape: Landscape, pub_lists: _Lists) -> dict[str, Any]:
    """Fig. 2 counts and Table 1 rows, each count opening its articles."""
    per_year = landscape.tables.get("pub_fig2a", pd.DataFrame())
    if per_year.empty:
        return {"any": False}
    groups = []
    for group, rows in per_year.groupby("group", sort=False):
        pmids = sorted({p for ps in rows["pmids"] for p in ps})
        groups.append({"group": group, "c": pub_lists.count(pmids, f"pub_fig2a:{group}")})
    targets = _by_n(
        [
            {"label": r["target"], "branch": r["branch"], "c": pub_lists.count(r["pmids"], f"pub_fig2b:{r['target']}")}
            for _, r in landscape.tables["pub_fig2b"].iterrows()
        ]
    )
    regions = _by_n(
        [
            {"label": r["region"], "c": pub_lists.count(r["pmids"], f"pub_fig2c:{r['region']}")}
            for _, r in landscape.tables["pub_fig2c"].iterrows()
        ]
    )
    table1 = []
    for r in landscape.tables["pub_table1"].to_dict("records"):
        trials = [t.strip() for t in str(r.get("linked_trials") or "").split(";") if t.strip()]
        table1.append({**{str(k): v for k, v in r.items()}, "url": pubmed_url(r["pmid"]), "trials": trials})
    return {"any": True, "groups": groups, "targets": targets, "regions": regions, "table1": table1}


def _publication_payload(landscape: Landscape) -> dict[str, Any]:
    table = landscape.tables.get("pub_table1", pd.DataFrame())
    per_year = landscape.tables.get("pub_fig2a", pd.DataFrame())
    out: dict[str, Any] = {}
    for r in table.to_dict("records"):
        out[str(r["pmid"])] = {
            "author": r.get("first_author") or "",
            "year": r.get("year"),
            "journal": r.get("journal") or "",
            "target": r.get("target") or "",
            "disease": r.get("disease") or "",
            "trials": r.get("linked_trials") or "",
            "url": pubmed_url(r["pmid"]),
        }
    # Reports from outside the focus group: at least a link each.
    for pmids in per_year.get("pmids", []):
        for pmid in pmids:
            out.setdefault(str(pmid), {"url": pubmed_url(pmid)})
    return out


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


class _FigurePlaces:
    """The page's figures by their place (a figure record's ``section``), noting each place the template shows.

    The template asks for a place's figures by its name; a figure whose place
    the template never asked for would be drawn but not shown, which
    :meth:`check` refuses.
    """

    def __init__(self, figures: list[dict[str, Any]]) -> None:
        self.figures = [{**f, "uri": _svg_uri(f["svg"])} for f in figures]
        self.shown: set[str] = set()

    def __call__(self, section: str) -> list[dict[str, Any]]:
        self.shown.add(section)
        return [f for f in self.figures if f["section"] == section]

    def check(self) -> None:
        missing = [f"{f['name']} ({f['section']})" for f in self.figures if f["section"] not in self.shown]
        if missing:
            raise RuntimeError(f"the report page has no place for figures {', '.join(missing)}")


def render_html(landscape: Landscape, summary: dict[str, Any], figures: list[dict[str, Any]], out: Path) -> str:
    lists = _Lists()
    places = _FigurePlaces(figures)
    pub_lists = _Lists("p")
    tables = landscape.tables
    opts = landscape.options
    focus_name = country_name(opts.focus) or opts.focus
    facts = landscape.facts
    group_names = [*opts.groups.names, NO_LOCATION]
    date_sources = summary["notes"].get("date_sources", {})
    registries = _ranked(tables["registries"], "registries", "registry", lists)
    focus_registry_ids = facts.get("registry_focus_ids", {})
    for row in registries:
        row["focus"] = lists.count(focus_registry_ids.get(row["registry"], []), f"registries:{row['registry']}:focus")
    strategy_ids = facts.get("focus_target_strategy_ids", {})
    context = {
        "title": f"CAR cell-therapy trials: {focus_name} in the world landscape",
        "opts": opts.describe(),
        "focus_name": focus_name,
        "totals": facts["totals"],
        "groups": _group_rows(landscape, lists),
        "subregions": [
            {
                "name": country_name(c) or c,
                "c": lists.count(facts.get("focus_subregion_ids", {}).get(c, []), f"overview:{c}"),
            }
            for c, n in facts["totals"]["focus_subregions"].items()
            if n
        ],
        "branch_counts": {
            kind: lists.count(ids, f"overview:{kind}") for kind, ids in facts.get("focus_branch_ids", {}).items()
        },
        "phase_pivot": _pivot(
            tables["phase_by_group"], "phase_by_group", "group", "phase_category", list(PHASE_ORDER), lists, group_names
        ),
        "phase_active_pivot": _pivot(
            tables["phase_by_group_active"],
            "phase_by_group_active",
            "group",
            "phase_category",
            list(PHASE_ORDER),
            lists,
            group_names,
        ),
        "sponsor_pivot": _pivot(
            tables["sponsor_type_by_group"], "sponsor_type_by_group", "group", "sponsor_type", [], lists, group_names
        ),
        "status_pivot": _pivot(
            tables["status_by_group"],
            "status_by_group",
            "group",
            "status_group",
            ["Active", "Not active", facts["as_of"]["not_known_label"]],
            lists,
            group_names,
        ),
        "as_of": facts["as_of"]["date"],
        "as_of_facts": facts["as_of"],
        "caveat": {name: as_of_caveat(landscape, name) for name in AS_OF_TABLES},
        "dates_caveat": dates_caveat(landscape),
        "later": lists.count(facts["as_of"]["later_version_ids"], "as_of:later_version"),
        "unknown": lists.count(facts["as_of"]["status_not_known_ids"], "as_of:status_not_known"),
        "pub_facts": facts["publications"],
        "branches_ctx": _targets_context(landscape, lists),
        "timelines": _timelines_context(landscape, lists),
        "target_facts": _target_facts_context(landscape, lists),
        "multi": lists.count(facts["focus_multi_target_ids"], "target_facts:multi"),
        "hsct": lists.count(facts["focus_hsct_ids"], "target_facts:hsct"),
        "strategy": _by_n(
            [
                {
                    "label": token_label("strategy", k),
                    "c": lists.count(strategy_ids.get(k, []), f"target_facts:strategy:{k}"),
                }
                for k in facts["focus_target_strategy"]
            ]
        ),
        "regions": _ranked(tables["focus_regions"], "focus_regions", "region", lists),
        "cities": _ranked(
            tables["focus_cities"].assign(
                place=tables["focus_cities"]["city"] + ", " + tables["focus_cities"]["region"]
            ),
            "focus_cities",
            "place",
            lists,
        ),
        "registries": registries,
        "registry_overlap": _ranked(tables["focus_registry_overlap"], "focus_registry_overlap", "registered_in", lists),
        "registry_phase_pivot": _pivot(
            tables["focus_registry_phases"].rename(columns={"phase": "phase_category"}),
            "focus_registry_phases",
            "registry",
            "phase_category",
            ["Phase 0", *PHASE_ORDER],
            lists,
        ),
        "platforms": _ranked(tables["platforms"], "platforms", "platform", lists, kind="platform"),
        "product_source": _ranked(
            tables["product_source"], "product_source", "product_source", lists, kind="product_source"
        ),
        "branches": _ranked(tables["branch"], "branch", "branch", lists, kind="branch"),
        "top_sponsors": _ranked(tables["top_focus_sponsors"], "top_focus_sponsors", "lead_sponsor", lists),
        "top_sponsors_world": _ranked(tables["top_sponsors"], "top_sponsors", "lead_sponsor", lists),
        "top_sites": _ranked(
            tables["top_focus_sites"].assign(
                place=tables["top_focus_sites"]["facility"] + ", " + tables["top_focus_sites"]["city"]
            ),
            "top_focus_sites",
            "place",
            lists,
        ),
        "figures_in": places,
        "date_sources": sorted(
            ({"source": DATE_SOURCE_TEXT.get(k, k), "n": v} for k, v in date_sources.items()),
            key=lambda d: (-d["n"], d["source"]),
        ),
        "notes": summary["notes"],
        "provenance": summary["provenance"],
        "changes": html_context(summary.get("changes"), lists.key, set(map(str, landscape.units["unit_id"]))),
        "health": {
            "stale": summary["provenance"].get("stale", []),
            "disagreements": summary["provenance"].get("cluster_disagreements", 0),
        },
        "all": lists.count(sorted(landscape.units["unit_id"]), "overview:all"),
        "trial_rows": len(trial_table(landscape)),
    }
    context["pubs"] = _publication_context(landscape, pub_lists)
    data = {
        "trials": _trial_payload(landscape),
        "lists": lists.lists,
        "pubs": _publication_payload(landscape),
        "publists": pub_lists.lists,
    }
    # "<" escaped so that no registry text can end the script element early.
    context["data_json"] = orjson.dumps(data).decode().replace("<", "\\u003c")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        finalize=_shown,
    )
    env.filters["registry"] = registry_name
    env.filters["moment"] = _moment
    script = _template("report.js")
    context["script"] = script
    context["script_hash"] = script_source_hash(script)
    page = env.get_template("report.html.j2").render(**context)
    places.check()
    return page


def _moment(stamp: Any) -> str:
    """An ISO timestamp to the minute, in UTC ("2026-12-02 17:51 UTC"); "not known" when there is none."""
    if not stamp:
        return "not known"
    try:
        moment = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _shown(value: Any) -> Any:
    """What the page prints for a value: never the word "None" or "nan" for a missing one."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return value


def script_source_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script: ``'sha256-<base64 of its UTF-8 digest>'``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def _template(name: str) -> str:
    return resources.files("cartatlas.report").joinpath("templates", name).read_text(encoding="utf-8")
