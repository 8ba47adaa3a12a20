"""What changed between two landscapes: counts, ranks, trials in and out, real status changes.

A diff compares two *comparable* landscapes: two dates computed from one
database (``Atlas.diff``), or the ``summary.json`` files of two reports, or a
report and the database now (``report --compare``).  It never counts trials
itself: every number is a row of a table that ``compute_landscape`` made
(``cartatlas.analysis.landscape``), and a summary.json holds those same
tables, so a diff of two reports equals the diff of the two landscapes they
were written from.

What it reports:

- **headline counts**: trials counted, per country group, the focus group's
  haematological and solid-tumour trials;
- **per target, region, sponsor, branch and platform**: before, after,
  change, rank before and after (competition ranking: tied counts share a
  rank), and the trials that entered or left each row;
- **new and no-longer-counted trials**, with title, sponsor, targets and
  registration date (and, with the database at hand, why a trial left);
- **status and phase changes that really happened**: only when the trial's
  registration has a stored version that was current on the earlier date and
  a *different* stored version current on the later one.  A record stored in
  one version only (a 2026 download compared with 2020) shows its one status
  on both dates; the landscape then shows the latest status for the earlier
  date, which is an artefact, not a change, and is never reported as one;
- a **paragraph in words** built from the largest changes.

A diff is a plain dict (JSON-ready); ``cartatlas.report.changes`` renders it
as text, CSV and the report's "What changed" section.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

if TYPE_CHECKING:
    from cartatlas.analysis.landscape import Landscape
    from cartatlas.store.db import Store

#: Rows with fewer trials than this on both dates are never named in the paragraph.
MIN_NAMED = 10


@dataclass(frozen=True)
class Section:
    """A table of the landscape compared row by row."""

    name: str
    title: str  # "{focus}" is replaced by the focus group's name
    tables: tuple[str, ...]  # the first one a landscape has is used
    key: str


SECTIONS = (
    Section("targets_heme", "Targets in {focus}: haematological malignancies", ("focus_targets_heme",), "target"),
    Section("targets_solid", "Targets in {focus}: solid tumours", ("focus_targets_solid",), "target"),
    Section("regions", "Regions of {focus}", ("focus_regions",), "region"),
    Section("sponsors", "Lead sponsors in {focus}", ("focus_sponsors", "top_focus_sponsors"), "lead_sponsor"),
    Section("branches", "Disease branches (all countries)", ("branch",), "branch"),
    Section("platforms", "Platforms (all countries)", ("platforms",), "platform"),
)
#: Tables that list only the top rows: a row missing from them is unknown, not zero.
TRUNCATED = frozenset({"top_focus_sponsors", "top_sponsors", "top_sites", "top_focus_sites"})

BRANCH_WORDS = {
    "heme-malignancy": "haematological malignancies",
    "solid-tumor": "solid tumours",
    "autoimmune": "autoimmune diseases",
    "infection": "infections",
    "mixed": "both haematological malignancies and solid tumours",
}


# -- the comparable state of a landscape -------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return list(value)


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def as_of_versions(store: Store, units: pd.DataFrame, as_of: dt.date) -> dict[str, dict[str, Any] | None]:
    """Per unit: the stored version of its registration that was current on ``as_of``, or None.

    Current on a date = the version with the latest registry update date on or
    before it (then the latest stored), the rule the landscape uses for status
    and phase as of a date.  None when every stored version was updated
    after the date (or carries no update date): the status shown for that
    date is then the latest one, which says nothing about that date.
    """
    if units.empty:
        return {}
    keys = list(zip(units["registry"], units["trial_id"], strict=True))
    rows = store.con.execute(
        "SELECT registry, record_id, version_id, record_updated FROM raw_records "
        "WHERE (registry, record_id) IN (SELECT (UNNEST(?), UNNEST(?)))",
        [[k[0] for k in keys], [k[1] for k in keys]],
    ).fetchall()
    versions: dict[tuple[str, str], dict[int, dt.date | None]] = {}
    for registry, record_id, version_id, updated in rows:
        versions.setdefault((registry, record_id), {})[int(version_id)] = updated
    out: dict[str, dict[str, Any] | None] = {}
    for uid, key, current in zip(units["unit_id"], keys, units["version_id"], strict=True):
        stored = versions.get(key, {})
        current_updated = stored.get(int(current))
        chosen: tuple[dt.date, int] | None = None
        if current_updated is not None and current_updated <= as_of:
            chosen = (current_updated, int(current))
        else:
            older = [(u, v) for v, u in stored.items() if u is not None and u <= as_of]
            chosen = max(older) if older else None
        out[str(uid)] = (
            None
            if chosen is None
            else {"registration": f"{key[0]}:{key[1]}", "version_id": chosen[1], "updated": chosen[0].isoformat()}
        )
    return out


def unit_state(landscape: Landscape, store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Per counted trial: what a later diff compares (labels, status, phase) and shows (title, sponsor).

    ``version`` (with a store) is the stored version the status and phase of
    the as-of date were read from, or None when no stored version was current
    then (see ``as_of_versions``).
    """
    units = landscape.units
    as_of = landscape.options.as_of or dt.date.today()
    versions = as_of_versions(store, units, as_of) if store is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for r in units.to_dict("records"):
        uid = str(r["unit_id"])
        state: dict[str, Any] = {
            "status": r.get("status_as_of"),
            "status_source": r.get("as_of_source"),
            "phase": r.get("phase_category"),
            "registered": _iso(r.get("registration_date")),
            "targets": [str(t) for t in _as_list(r.get("targets"))],
            "groups": [str(g) for g in _as_list(r.get("groups"))],
            "title": r.get("brief_title") or "",
            "sponsor": r.get("lead_sponsor") or "",
            "branch": r.get("branch"),
            "in_focus": bool(r.get("in_focus")),
            "registrations": [str(x) for x in _as_list(r.get("registrations"))]
            or [f"{r.get('registry')}:{r.get('trial_id')}"],
        }
        if store is not None:
            state["version"] = versions.get(uid)
        out[uid] = state
    return out


def table_rows(frame: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    """A landscape table as (key, n, trial_ids) records, the part of it a diff reads."""
    if frame is None or frame.empty or key not in frame.columns:
        return []
    ids: Iterable[Any] = frame["trial_ids"] if "trial_ids" in frame.columns else [[] for _ in range(len(frame))]
    return [
        {key: str(k), "n": int(n), "trial_ids": [str(i) for i in _as_list(t)]}
        for k, n, t in zip(frame[key], frame["n"], ids, strict=True)
    ]


def comparable(landscape: Landscape, store: Store | None = None, *, label: str | None = None) -> dict[str, Any]:
    """The part of a report's summary.json that a diff reads, straight from a landscape."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for section in SECTIONS:
        for name in section.tables:
            if name in landscape.tables:
                tables[name] = table_rows(landscape.tables[name], section.key)
    options = landscape.options.describe()
    return {
        "label": label or options.get("as_of") or dt.date.today().isoformat(),
        "source": "database",
        "options": options,
        "provenance": {"generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
        "facts": {"totals": landscape.facts.get("totals", {})},
        "tables": tables,
        "units": unit_state(landscape, store),
    }


def load_summary(path: str | Path) -> dict[str, Any]:
    """A report's summary.json (or the report directory holding it), ready to diff."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    try:
        summary: dict[str, Any] = orjson.loads(p.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{p}: cannot read a report's summary.json: {exc}") from exc
    if not isinstance(summary, dict) or "units" not in summary or "options" not in summary:
        raise ValueError(f"{p}: not a cartatlas report summary (no 'units' or 'options')")
    generated = str((summary.get("provenance") or {}).get("generated_at") or "")[:10]
    summary.setdefault("label", (summary.get("options") or {}).get("as_of") or generated or str(p))
    summary.setdefault("source", str(p))
    return summary


# -- the diff ----------------------------------------------------------------------------------


def _ranks(rows: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    """Competition ranking by count: 1 + the number of rows with more trials (ties share a rank)."""
    counts = {str(r[key]): int(r["n"]) for r in rows}
    ordered = sorted(counts.values(), reverse=True)
    first: dict[int, int] = {}
    for i, n in enumerate(ordered, start=1):
        first.setdefault(n, i)
    return {k: first[n] for k, n in counts.items()}


def _section_table(summary: Mapping[str, Any], section: Section) -> tuple[str | None, list[dict[str, Any]]]:
    tables = summary.get("tables") or {}
    for name in section.tables:
        if name in tables:
            return name, list(tables[name])
    return None, []


def _compare_rows(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    key: str,
    *,
    before_complete: bool = True,
    after_complete: bool = True,
) -> list[dict[str, Any]]:
    old = {str(r[key]): r for r in before}
    new = {str(r[key]): r for r in after}
    rank_old, rank_new = _ranks(before, key), _ranks(after, key)
    rows: list[dict[str, Any]] = []
    for k in dict.fromkeys([*new, *old]):
        a = old.get(k)
        b = new.get(k)
        n_old = int(a["n"]) if a is not None else (0 if before_complete else None)
        n_new = int(b["n"]) if b is not None else (0 if after_complete else None)
        ids_old = set(_as_list(a.get("trial_ids"))) if a is not None else set()
        ids_new = set(_as_list(b.get("trial_ids"))) if b is not None else set()
        rows.append(
            {
                "key": k,
                "before": n_old,
                "after": n_new,
                "change": None if n_old is None or n_new is None else n_new - n_old,
                "rank_before": rank_old.get(k),
                "rank_after": rank_new.get(k),
                "added": sorted(ids_new - ids_old) if b is not None and (a is not None or before_complete) else [],
                "removed": sorted(ids_old - ids_new) if a is not None and (b is not None or after_complete) else [],
            }
        )
    rows.sort(key=lambda r: (-(r["after"] or 0), -(r["before"] or 0), r["key"]))
    return rows


def _headline(before: Mapping[str, Any], after: Mapping[str, Any], focus_name: str) -> list[dict[str, Any]]:
    tb = (before.get("facts") or {}).get("totals") or {}
    ta = (after.get("facts") or {}).get("totals") or {}
    ub, ua = before.get("units") or {}, after.get("units") or {}

    def members(units: Mapping[str, Any], test: Any) -> set[str]:
        return {u for u, s in units.items() if test(s)}

    rows: list[tuple[str, str, Any, Any, set[str], set[str]]] = [
        ("units", "CAR trials counted (all countries)", tb.get("units"), ta.get("units"), set(ub), set(ua))
    ]
    # Largest group first, "No location given" last (summary.json sorts its keys, so key order means nothing).
    counts_now = ta.get("by_group") or {}
    groups = sorted(
        {*counts_now, *(tb.get("by_group") or {})},
        key=lambda g: (g == "No location given", -(counts_now.get(g) or 0), g),
    )
    for g in groups:
        rows.append(
            (
                f"group:{g}",
                g,
                (tb.get("by_group") or {}).get(g, 0),
                (ta.get("by_group") or {}).get(g, 0),
                members(ub, lambda s, g=g: g in (s.get("groups") or [])),
                members(ua, lambda s, g=g: g in (s.get("groups") or [])),
            )
        )
    for key, label in (("focus_heme", "haematological malignancies"), ("focus_solid", "solid tumours")):
        if key in ta or key in tb:
            rows.append((key, f"{focus_name}: {label}", tb.get(key), ta.get(key), set(), set()))
    out = []
    for key, label, n_old, n_new, ids_old, ids_new in rows:
        out.append(
            {
                "key": key,
                "label": label,
                "before": n_old,
                "after": n_new,
                "change": None if n_old is None or n_new is None else n_new - n_old,
                "added": sorted(ids_new - ids_old),
                "removed": sorted(ids_old - ids_new),
            }
        )
    return out


def _trial(uid: str, state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "trial_id": uid,
        "title": state.get("title") or "",
        "sponsor": state.get("sponsor") or "",
        "targets": [t for t in state.get("targets") or [] if t != "unknown"],
        "registered": state.get("registered"),
        "groups": list(state.get("groups") or []),
        "registrations": list(state.get("registrations") or []),
    }


def _real_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Status and phase changes between two stored versions; and how many trials could not be assessed."""
    ub, ua = before.get("units") or {}, after.get("units") or {}
    common = sorted(set(ub) & set(ua))
    status: list[dict[str, Any]] = []
    phase: list[dict[str, Any]] = []
    recorded = all("version" in ub[u] for u in common) and all("version" in ua[u] for u in common)
    info: dict[str, Any] = {"assessed": recorded, "compared": 0, "same_version": 0}
    if not recorded:
        info["why_not"] = (
            "a summary.json written before cartatlas recorded which stored version a status came from; "
            "no status or phase change is reported rather than artefacts"
        )
        info["not_assessed"] = len(common)
        return status, phase, info
    no_old = no_new = other_registration = 0
    for uid in common:
        b, a = ub[uid], ua[uid]
        vb, va = b.get("version"), a.get("version")
        if vb is None:
            no_old += 1
            continue
        if va is None:
            no_new += 1
            continue
        if vb.get("registration") != va.get("registration"):
            other_registration += 1
            continue
        if vb.get("version_id") == va.get("version_id"):
            info["same_version"] += 1
            continue
        if str(vb.get("updated")) > str(va.get("updated")):
            no_new += 1  # the later landscape reads an older version: nothing to say about change
            continue
        info["compared"] += 1
        base = {"trial_id": uid, "title": a.get("title") or b.get("title") or "", "registration": va["registration"]}
        versions = {"from_version": vb, "to_version": va}
        if b.get("status") != a.get("status"):
            status.append({**base, "from": b.get("status"), "to": a.get("status"), **versions})
        if b.get("phase") != a.get("phase"):
            phase.append({**base, "from": b.get("phase"), "to": a.get("phase"), **versions})
    info.update(
        {
            "assessed": True,
            "no_version_then": no_old,
            "no_version_later": no_new,
            "registration_changed": other_registration,
        }
    )
    return status, phase, info


def _option_warnings(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    ob, oa = before.get("options") or {}, after.get("options") or {}
    warnings = []
    for key, what in (
        ("focus", "focus country"),
        ("groups", "country groups"),
        ("relations", "relations counted"),
        ("platforms", "platforms"),
        ("registries", "registries"),
        ("per", "counting unit"),
    ):
        if key in ob and key in oa and ob[key] != oa[key]:
            warnings.append(f"the two landscapes differ in {what} ({ob[key]} vs {oa[key]}): changes mix both")
    return warnings


def diff_summaries(before: Mapping[str, Any], after: Mapping[str, Any], store: Store | None = None) -> dict[str, Any]:
    """The diff of two comparable landscapes (``comparable`` or a summary.json), as a JSON-ready dict."""
    options = after.get("options") or {}
    focus_name = str(options.get("focus_name") or options.get("focus") or "the focus country")
    groups = options.get("groups") or {}
    focus_group = next((g for g, codes in groups.items() if options.get("focus") in codes), focus_name)
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        name_b, rows_b = _section_table(before, section)
        name_a, rows_a = _section_table(after, section)
        if name_a is None and name_b is None:
            continue
        sections[section.name] = {
            "title": section.title.format(focus=focus_group),
            "key": section.key,
            "complete": name_b not in TRUNCATED and name_a not in TRUNCATED,
            "rows": _compare_rows(
                rows_b,
                rows_a,
                section.key,
                before_complete=name_b not in TRUNCATED,
                after_complete=name_a not in TRUNCATED,
            ),
        }
    ub, ua = before.get("units") or {}, after.get("units") or {}
    new = [_trial(u, ua[u]) for u in ua if u not in ub]
    dropped = [_trial(u, ub[u]) for u in ub if u not in ua]
    for rows in (new, dropped):
        rows.sort(key=lambda t: (t["registered"] or "", t["trial_id"]))
    if store is not None and dropped:
        _why_dropped(store, dropped, after)
    status, phase, info = _real_changes(before, after)
    out: dict[str, Any] = {
        "from": _side(before),
        "to": _side(after),
        "focus": focus_group,
        "warnings": _option_warnings(before, after),
        "headline": _headline(before, after, focus_group),
        "sections": sections,
        "new_trials": new,
        "dropped_trials": dropped,
        "status_changes": status,
        "phase_changes": phase,
        "status_assessment": info,
    }
    out["paragraph"] = paragraph(out)
    return out


def _side(summary: Mapping[str, Any]) -> dict[str, Any]:
    options = summary.get("options") or {}
    return {
        "label": summary.get("label") or options.get("as_of"),
        "as_of": options.get("as_of"),
        "source": summary.get("source", "report"),
        "generated_at": (summary.get("provenance") or {}).get("generated_at"),
    }


def _why_dropped(store: Store, dropped: list[dict[str, Any]], after: Mapping[str, Any]) -> None:
    """Why each trial left the count, from the database as it is now."""
    relations = set((after.get("options") or {}).get("relations") or ("therapy", "follow_up"))
    counted = set(after.get("units") or {})
    for trial in dropped:
        registrations = [r.split(":", 1) for r in trial["registrations"] if ":" in r] or [["", trial["trial_id"]]]
        reasons = []
        for registry, trial_id in registrations:
            row = store.con.execute(
                "SELECT k.cluster_id, c.relation, t.brief_title, t.lead_sponsor FROM trials t "
                "LEFT JOIN trial_clusters k USING (registry, trial_id) "
                "LEFT JOIN classifications c USING (registry, trial_id) "
                "WHERE t.trial_id = ? AND (? = '' OR t.registry = ?)",
                [trial_id, registry, registry],
            ).fetchone()
            if row is not None:  # an older summary.json does not name the trial: the database does
                trial["title"] = trial["title"] or row[2] or ""
                trial["sponsor"] = trial["sponsor"] or row[3] or ""
            if row is None:
                reasons.append(f"{trial_id} is not in the database")
            elif row[0] and row[0] != trial["trial_id"] and row[0] in counted:
                reasons.append(f"{trial_id} is now counted as {row[0]} (registrations linked)")
            elif row[1] not in relations:
                reasons.append(f"{trial_id} is now screened as {row[1] or 'not screened'}")
        trial["reason"] = "; ".join(reasons) or "its registration date or location no longer meets the count"


# -- the paragraph -----------------------------------------------------------------------------


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _n(value: int | None) -> str:
    return "none" if not value else f"{value:,}"


def _from_to(before: int | None, after: int | None) -> str:
    return f"from {_n(before)} to {_n(after)}"


def _moved(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return f"numbered {_n(after)}"
    if after > before:
        return f"grew {_from_to(before, after)} (+{after - before:,})"
    if after < before:
        return f"fell {_from_to(before, after)} (-{before - after:,})"
    return f"stayed at {after:,}"


def _score(row: Mapping[str, Any]) -> float:
    """How much a row's rise stands out: the change weighted by how many times larger the row became."""
    before, after = row.get("before"), row.get("after")
    if before is None or after is None or after <= before:
        return 0.0
    return (after - before) * math.log2((after + 1) / (before + 1))


def _risers(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    named = [r for r in rows if _score(r) > 0 and max(r["after"] or 0, r["before"] or 0) >= MIN_NAMED]
    return sorted(named, key=lambda r: (-_score(r), r["key"]))[:k]


def _item(row: Mapping[str, Any], *, with_rank: bool = False) -> str:
    text = f"{row['key']} ({_from_to(row['before'], row['after'])}"
    rb, ra = row.get("rank_before"), row.get("rank_after")
    if with_rank and ra is not None and (rb is None or rb - ra >= 3):
        text += f"; {ordinal(rb)} to {ordinal(ra)}" if rb is not None else f"; now {ordinal(ra)}"
    return text + ")"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _leader_sentence(rows: list[dict[str, Any]], what: str, date_before: str) -> list[str]:
    """Who leads now, and who climbed furthest into the top five."""
    if not rows:
        return []
    out = []
    leader = min((r for r in rows if r.get("rank_after") is not None), key=lambda r: (r["rank_after"], r["key"]))
    first_before = [r for r in rows if r.get("rank_before") == 1]
    if leader.get("rank_before") == 1:
        out.append(f"{leader['key']} stayed first among {what} ({_from_to(leader['before'], leader['after'])} trials)")
    else:
        was = (
            f"{ordinal(leader['rank_before'])} with {_n(leader['before'])} on {date_before}"
            if leader.get("rank_before")
            else f"{_n(leader['before'])} on {date_before}"
        )
        ahead = f", ahead of {first_before[0]['key']}" if first_before else ""
        out.append(f"{leader['key']} now leads {what} with {leader['after']:,} trials ({was}){ahead}")
    climbers = [
        r
        for r in rows
        if r is not leader
        and r.get("rank_after") is not None
        and r["rank_after"] <= 5
        and r.get("rank_before") is not None
        and r["rank_before"] - r["rank_after"] >= 2
    ]
    if climbers:
        best = max(climbers, key=lambda r: (r["rank_before"] - r["rank_after"], r["after"] or 0))
        out.append(
            f"{best['key']} rose from {ordinal(best['rank_before'])} to {ordinal(best['rank_after'])} "
            f"({_from_to(best['before'], best['after'])} trials)"
        )
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def paragraph(d: Mapping[str, Any]) -> str:
    """The story of a diff in words, from its largest changes (one paragraph, plain text)."""
    date_before = str(d["from"].get("label") or d["from"].get("as_of") or "the earlier date")
    date_after = str(d["to"].get("label") or d["to"].get("as_of") or "the later date")
    focus = str(d.get("focus") or "the focus country")
    sentences: list[str] = []
    total = next((r for r in d["headline"] if r["key"] == "units"), None)
    if total is not None:
        groups = [
            f"{r['label']} {_from_to(r['before'], r['after'])}"
            for r in d["headline"]
            if r["key"].startswith("group:") and r["key"] != "group:No location given" and (r["before"] or r["after"])
        ]
        moved = _moved(total["before"], total["after"])
        text = f"between {date_before} and {date_after}, the CAR trials counted {moved}"
        sentences.append(_sentence(text + (f": {_join(groups)}" if groups else "")))
    sections = d.get("sections") or {}
    target_bits = []
    for name, label in (("targets_heme", "haematological"), ("targets_solid", "solid-tumour")):
        risers = _risers((sections.get(name) or {}).get("rows") or [], 4 if name == "targets_heme" else 3)
        if risers:
            target_bits.append(
                f"the {label} targets that grew most were {_join([_item(r, with_rank=True) for r in risers])}"
            )
    if target_bits:
        sentences.append(_sentence(f"in {focus}, " + "; ".join(target_bits)))
    regions = (sections.get("regions") or {}).get("rows") or []
    region_bits = _leader_sentence(regions, f"the regions of {focus}", date_before)
    if region_bits:
        sentences.append(_sentence("; ".join(region_bits)))
    sponsors = sections.get("sponsors") or {}
    sponsor_bits = _leader_sentence(sponsors.get("rows") or [], f"the sponsors in {focus}", date_before)
    if sponsor_bits and sponsors.get("complete", True):
        sentences.append(_sentence(sponsor_bits[0]))
    branch_rows = (sections.get("branches") or {}).get("rows") or []
    for r in _risers([r for r in branch_rows if r["key"] not in ("heme-malignancy", "solid-tumor", "unknown")], 1):
        what = BRANCH_WORDS.get(r["key"], r["key"])
        sentences.append(_sentence(f"{r['after']:,} trials now treat {what} ({_n(r['before'])} on {date_before})"))
    platform_rows = (sections.get("platforms") or {}).get("rows") or []
    platform_risers = _risers([r for r in platform_rows if r["key"] != "CAR-T"], 2)
    platforms = [f"{r['key']} {_from_to(r['before'], r['after'])}" for r in platform_risers]
    if platforms:
        sentences.append(_sentence(f"among platforms other than CAR-T, trials grew most for {_join(platforms)}"))
    new, dropped = len(d.get("new_trials") or []), len(d.get("dropped_trials") or [])
    counts = f"{new:,} trials are new to the count" + (f" and {dropped:,} are no longer counted" if dropped else "")
    sentences.append(_sentence(counts))
    info = d.get("status_assessment") or {}
    if info.get("assessed"):
        tallies = ("compared", "same_version", "no_version_then", "no_version_later", "registration_changed")
        both = sum(info.get(k, 0) for k in tallies)
        n_status = len(d.get("status_changes") or [])
        n_phase = len(d.get("phase_changes") or [])
        sentences.append(
            _sentence(
                f"of the {both:,} trials counted on both dates, {info.get('compared', 0):,} have a different stored "
                f"version current on each date, and between those versions {_n(n_status)} changed status and "
                f"{_n(n_phase)} changed phase (for the others the same version, or none stored as old as "
                f"{date_before}, was current: no change can be told)"
            )
        )
    else:
        sentences.append(_sentence("status and phase changes were not assessed (see status_assessment)"))
    return " ".join(sentences)


# -- sides given by a user ---------------------------------------------------------------------


def is_summary(spec: Any) -> bool:
    """Whether a ``--from``/``--to`` value names a report (its summary.json or its directory), not a date."""
    if spec is None or isinstance(spec, dt.date):
        return False
    p = Path(str(spec))
    return p.is_file() or (p.is_dir() and (p / "summary.json").is_file())


def landscape_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """``Atlas.landscape`` options that reproduce a report's (so a date is counted as that report counted)."""
    kwargs: dict[str, Any] = {}
    if options.get("focus"):
        kwargs["focus"] = options["focus"]
    scheme = options.get("group_scheme")
    groups = options.get("groups") or {}
    if scheme and scheme != "custom":
        kwargs["groups"] = scheme
    elif groups:
        kwargs["groups"] = [f"{name}={','.join(codes)}" for name, codes in groups.items()]
    for key in ("registries", "platforms"):
        value = options.get(key)
        if value and value != "all":
            kwargs[key] = list(value)
    if options.get("relations"):
        kwargs["relations"] = list(options["relations"])
    if options.get("per"):
        kwargs["per"] = options["per"]
    return kwargs
