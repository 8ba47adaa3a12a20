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

from cartatlas.analysis.landscape import AS_OF_TABLES, NO_LOCATION, PHASE_ORDER, Landscape
from cartatlas.knowledge.registries import url_template
from cartatlas.normalise.countries import country_name
from cartatlas.normalise.ids import id_matches
from cartatlas.report.caveats import as_of_caveat, dates_caveat
from cartatlas.report.changes import html_context
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


def _status_text(r: Any, as_of: str) -> str:
    """A trial's status as of the date, or why it is not known then."""
    if r["status_known"]:
        return f"{r['status_as_of'] or 'not stated'} ({r['as_of_version']})"
    prefix = "" if r["status_as_of"] else f"not known at {as_of}; latest known: "
    return f"{prefix}{r['status_latest'] or 'not stated'} ({r['as_of_version']})"


def _trial_payload(landscape: Landscape) -> dict[str, Any]:
    """What the trial panel shows: title, registrations with links, labels and evidence."""
    units = landscape.units
    as_of = landscape.facts["as_of"]["date"]
    out: dict[str, Any] = {}
    for _, r in units.iterrows():
        registrations = list(r.get("registrations") or [f"{r['registry']}:{r['trial_id']}"])
        evidence = orjson.loads(r["evidence"]) if isinstance(r.get("evidence"), str) else []
        out[str(r["unit_id"])] = {
            "title": r.get("brief_title") or "",
            "sponsor": r.get("lead_sponsor") or "",
            "registered": f"{r['registration_date']} ({r['registration_date_source']})",
            "status": _status_text(r, as_of),
            "phase": r["phase_category"],
            "links": [[reg, registry_url(*reg.split(":", 1))] for reg in registrations],
            "labels": {
                "relation": r.get("relation"),
                "platforms": _lst(r.get("platforms")),
                "targets": _lst(r.get("targets")),
                "strategy": r.get("target_strategy"),
                "branch": r.get("branch"),
                "disease": _lst(r.get("disease_entity")),
                "source": r.get("product_source"),
                "combinations": _lst(r.get("combinations")),
                "confidence": r.get("confidence"),
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


def _group_rows(landscape: Landscape, lists: _Lists) -> list[dict[str, Any]]:
    units = landscape.units
    rows = []
    names = [*landscape.options.groups.names, NO_LOCATION]
    for g in names:
        ids = sorted(units.loc[units["groups"].map(lambda gs, g=g: g in gs), "unit_id"])
        if ids or g != NO_LOCATION:
            rows.append({"group": g, "n": len(ids), "key": lists.key(ids)})
    return rows


def _pivot(frame: pd.DataFrame, row: str, col: str, order: list[str], lists: _Lists) -> dict[str, Any]:
    """A group x category table whose cells open their trials."""
    cats = [c for c in order if c in set(frame[col])] + sorted(set(frame[col]) - set(order))
    groups = list(dict.fromkeys(frame[row]))
    cells = {(r[row], r[col]): (r["n"], lists.key(r["trial_ids"])) for _, r in frame.iterrows()}
    return {
        "columns": cats,
        "rows": [{"label": g, "cells": [cells.get((g, c), (0, None)) for c in cats]} for g in groups],
    }


def _publication_context(landscape: Landscape, pub_lists: _Lists) -> dict[str, Any]:
    """Fig. 2 counts and Table 1 rows, each count opening its articles."""
    per_year = landscape.tables.get("pub_fig2a", pd.DataFrame())
    if per_year.empty:
        return {"any": False}
    groups = []
    for group, rows in per_year.groupby("group", sort=False):
        pmids = sorted({p for ps in rows["pmids"] for p in ps})
        groups.append({"group": group, "n": len(pmids), "key": pub_lists.key(pmids)})
    targets = [
        {"target": r["target"], "n": r["reports"], "branch": r["branch"], "key": pub_lists.key(list(r["pmids"]))}
        for _, r in landscape.tables["pub_fig2b"].iterrows()
    ]
    regions = [
        {"region": r["region"], "n": r["reports"], "key": pub_lists.key(list(r["pmids"]))}
        for _, r in landscape.tables["pub_fig2c"].iterrows()
    ]
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


def render_html(landscape: Landscape, summary: dict[str, Any], figures: list[dict[str, Any]], out: Path) -> str:
    lists = _Lists()
    pub_lists = _Lists("p")
    tables = landscape.tables
    opts = landscape.options
    focus_name = country_name(opts.focus) or opts.focus

    def with_keys(frame: pd.DataFrame, *id_columns: str) -> list[dict[str, Any]]:
        rows = []
        for _, r in frame.iterrows():
            row = {str(k): v for k, v in r.items() if not isinstance(v, list)}
            for col in id_columns:
                row[f"{col}_key"] = lists.key(r[col]) if col in r and isinstance(r[col], list) else None
            rows.append(row)
        return rows

    targets = {
        kind: with_keys(tables[f"focus_targets_{kind}"], "trial_ids", "alone_ids", "combination_ids")
        for kind in ("heme", "solid")
    }
    facts = landscape.facts
    target_facts = []
    for target, f in sorted(facts["targets"].items(), key=lambda kv: -kv[1]["focus_trials"]):
        if f["focus_trials"] == 0 and f["trials"] < 3:
            continue
        target_facts.append({"target": target, **f, "hsct_key": lists.key(f["focus_with_hsct"])})
    date_sources = summary["notes"].get("date_sources", {})
    context = {
        "title": f"CAR cell-therapy trials: {focus_name} in the world landscape",
        "opts": opts.describe(),
        "focus_name": focus_name,
        "totals": facts["totals"],
        "groups": _group_rows(landscape, lists),
        "subregions": [
            {"name": country_name(c) or c, "n": n} for c, n in facts["totals"]["focus_subregions"].items() if n
        ],
        "phase_pivot": _pivot(tables["phase_by_group"], "group", "phase_category", list(PHASE_ORDER), lists),
        "phase_active_pivot": _pivot(
            tables["phase_by_group_active"], "group", "phase_category", list(PHASE_ORDER), lists
        ),
        "sponsor_pivot": _pivot(tables["sponsor_type_by_group"], "group", "sponsor_type", [], lists),
        "status_pivot": _pivot(
            tables["status_by_group"],
            "group",
            "status_group",
            ["Active", "Not active", landscape.facts["as_of"]["not_known_label"]],
            lists,
        ),
        "as_of": facts["as_of"]["date"],
        "as_of_facts": facts["as_of"],
        "caveat": {name: as_of_caveat(landscape, name) for name in AS_OF_TABLES},
        "dates_caveat": dates_caveat(landscape),
        "later_key": lists.key(facts["as_of"]["later_version_ids"]),
        "unknown_key": lists.key(facts["as_of"]["status_not_known_ids"]),
        "pub_facts": facts["publications"],
        "targets": targets,
        "target_facts": target_facts,
        "multi_key": lists.key(facts["focus_multi_target_ids"]),
        "multi_n": len(facts["focus_multi_target_ids"]),
        "hsct_key": lists.key(facts["focus_hsct_ids"]),
        "hsct_n": len(facts["focus_hsct_ids"]),
        "strategy": facts["focus_target_strategy"],
        "regions": with_keys(tables["focus_regions"], "trial_ids"),
        "registries": with_keys(tables["registries"], "trial_ids"),
        "registry_overlap": with_keys(tables["focus_registry_overlap"], "trial_ids"),
        "registry_phase_pivot": _pivot(
            tables["focus_registry_phases"].rename(columns={"phase": "phase_category"}),
            "registry",
            "phase_category",
            ["Phase 0", *PHASE_ORDER],
            lists,
        ),
        "platforms": with_keys(tables["platforms"], "trial_ids"),
        "product_source": with_keys(tables["product_source"], "trial_ids"),
        "branches": with_keys(tables["branch"], "trial_ids"),
        "top_sponsors": with_keys(tables["top_focus_sponsors"], "trial_ids"),
        "top_sponsors_world": with_keys(tables["top_sponsors"], "trial_ids"),
        "top_sites": with_keys(tables["top_focus_sites"], "trial_ids"),
        "figures": [{**f, "uri": _svg_uri(f["svg"])} for f in figures],
        "date_sources": [
            {"source": DATE_SOURCE_TEXT.get(k, k), "n": v} for k, v in sorted(date_sources.items(), key=lambda x: -x[1])
        ],
        "notes": summary["notes"],
        "provenance": summary["provenance"],
        "changes": html_context(summary.get("changes"), lists.key, set(map(str, landscape.units["unit_id"]))),
        "health": {
            "stale": summary["provenance"].get("stale", []),
            "disagreements": summary["provenance"].get("cluster_disagreements", 0),
        },
        "all_key": lists.key(sorted(landscape.units["unit_id"])),
        "n_trials": len(landscape.units),
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
    )
    script = _template("report.js")
    context["script"] = script
    context["script_hash"] = script_source_hash(script)
    return env.get_template("report.html.j2").render(**context)


def script_source_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script: ``'sha256-<base64 of its UTF-8 digest>'``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def _template(name: str) -> str:
    return resources.files("cartatlas.report").joinpath("templates", name).read_text(encoding="utf-8")
