"""Rendering a landscape diff (``cartatlas.analysis.diff``): text, CSV, and the report's "What changed".

The diff is computed once, as a JSON-ready dict; this module only lays it
out.  Registry text (titles, sponsors) is untrusted: the HTML template
escapes it, and CSV cells that a spreadsheet would read as a formula are
prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cartatlas.spreadsheet import neutralise

#: Rows shown per section in text and HTML (all rows are in JSON and CSV).
TOP_ROWS = 10

CSV_COLUMNS = [
    "section", "key", "label", "before", "after", "change", "rank_before", "rank_after",
    "trial_id", "title", "sponsor", "targets", "registered", "detail",
]  # fmt: skip


def _movers(rows: list[dict[str, Any]], k: int = TOP_ROWS) -> list[dict[str, Any]]:
    """The rows that changed most (absolute change), largest first; ties by the later count."""
    changed = [r for r in rows if r.get("change")]
    return sorted(changed, key=lambda r: (-abs(r["change"]), -(r["after"] or 0), r["key"]))[:k]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _signed(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:+,}" if value else "0"


def _rank(before: Any, after: Any) -> str:
    if before is None and after is None:
        return ""
    return f"{before if before is not None else '-'} -> {after if after is not None else '-'}"


# -- text ---------------------------------------------------------------------------------------


def render_text(diff: Mapping[str, Any], *, limit: int = 20, width: int = 100) -> str:
    """A diff for a terminal: the paragraph, then the largest changes of each table and the trials."""
    out: list[str] = []
    f, t = diff["from"], diff["to"]
    out.append(f"What changed: {f.get('label')} ({f.get('source')}) -> {t.get('label')} ({t.get('source')})")
    out.append("")
    out.extend(textwrap.wrap(diff.get("paragraph", ""), width=width))
    for warning in diff.get("warnings") or []:
        out.append(f"warning: {warning}")
    out.append("")
    out.append("Headline counts")
    for r in diff["headline"]:
        out.append(f"  {r['label']:<48} {_num(r['before']):>8} {_num(r['after']):>8} {_signed(r['change']):>8}")
    for section in (diff.get("sections") or {}).values():
        movers = _movers(section["rows"])
        if not movers:
            continue
        out.append("")
        note = "" if section.get("complete", True) else " (the earlier report listed only its top rows)"
        out.append(f"{section['title']}: largest changes{note}")
        out.append(f"  {'':<40} {'before':>8} {'after':>8} {'change':>8}  rank")
        for r in movers:
            out.append(
                f"  {r['key'][:40]:<40} {_num(r['before']):>8} {_num(r['after']):>8} {_signed(r['change']):>8}  "
                f"{_rank(r['rank_before'], r['rank_after'])}"
            )
    for key, title in (("new_trials", "New trials"), ("dropped_trials", "No longer counted")):
        trials = diff.get(key) or []
        out.append("")
        shown = trials if limit <= 0 else trials[:limit]
        more = f", the first {len(shown)} by registration date" if len(shown) < len(trials) else ""
        out.append(f"{title} ({len(trials):,}{more})")
        for trial in shown:
            targets = "+".join(trial["targets"]) or "target not stated"
            out.append(f"  {trial['trial_id']}  {trial['registered'] or '-'}  {targets}  {trial['sponsor']}")
            out.append(f"      {trial['title'][: width - 6]}")
            if trial.get("reason"):
                out.append(f"      why: {trial['reason']}")
    info = diff.get("status_assessment") or {}
    for key, title in (("status_changes", "Status changes"), ("phase_changes", "Phase changes")):
        changes = diff.get(key) or []
        out.append("")
        if not info.get("assessed"):
            out.append(f"{title}: not assessed ({info.get('why_not', 'no stored versions to compare')})")
            continue
        out.append(f"{title} between two stored versions ({len(changes):,})")
        for c in changes if limit <= 0 else changes[:limit]:
            out.append(
                f"  {c['trial_id']}  {c['from']} -> {c['to']}  "
                f"(versions updated {c['from_version']['updated']} and {c['to_version']['updated']})"
            )
    return "\n".join(out) + "\n"


# -- CSV ----------------------------------------------------------------------------------------


def csv_rows(diff: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Every part of a diff as rows of one long table (``CSV_COLUMNS``)."""
    yield {"section": "paragraph", "detail": diff.get("paragraph", "")}
    for r in diff["headline"]:
        yield {
            "section": "headline",
            "key": r["key"],
            "label": r["label"],
            "before": r["before"],
            "after": r["after"],
            "change": r["change"],
        }
    for name, section in (diff.get("sections") or {}).items():
        for r in section["rows"]:
            yield {
                "section": name,
                "key": r["key"],
                "label": section["title"],
                "before": r["before"],
                "after": r["after"],
                "change": r["change"],
                "rank_before": r["rank_before"],
                "rank_after": r["rank_after"],
            }
    for key, section in (("new_trials", "new_trial"), ("dropped_trials", "dropped_trial")):
        for trial in diff.get(key) or []:
            yield {
                "section": section,
                "trial_id": trial["trial_id"],
                "title": trial["title"],
                "sponsor": trial["sponsor"],
                "targets": "; ".join(trial["targets"]),
                "registered": trial["registered"],
                "detail": trial.get("reason", ""),
            }
    for key, section in (("status_changes", "status_change"), ("phase_changes", "phase_change")):
        for c in diff.get(key) or []:
            yield {
                "section": section,
                "trial_id": c["trial_id"],
                "title": c["title"],
                "before": c["from"],
                "after": c["to"],
                "detail": f"{c['registration']}: version {c['from_version']['version_id']} "
                f"(updated {c['from_version']['updated']}) -> version {c['to_version']['version_id']} "
                f"(updated {c['to_version']['updated']})",
            }


def render_csv(diff: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(diff):
        writer.writerow({k: _cell(row.get(k)) for k in CSV_COLUMNS})
    return buffer.getvalue()


# -- the report's section -------------------------------------------------------------------------


def html_context(
    diff: Mapping[str, Any] | None, key: Callable[[list[str]], str], counted: set[str]
) -> dict[str, Any] | None:
    """What the report's "What changed" section shows; ``key`` turns trial ids into a list the page opens.

    Only trials counted in this report can be opened (the others are not in
    the page's data); trials that left the count are listed as text.
    """
    if not diff:
        return None

    def opener(ids: list[str]) -> str | None:
        shown = [i for i in ids if i in counted]
        return key(shown) if shown else None

    headline = [{**r, "added_key": opener(r.get("added") or [])} for r in diff["headline"]]
    sections = []
    for section in (diff.get("sections") or {}).values():
        movers = [{**r, "added_key": opener(r.get("added") or [])} for r in _movers(section["rows"], 8)]
        if movers:
            sections.append({"title": section["title"], "complete": section.get("complete", True), "rows": movers})
    new = [t["trial_id"] for t in diff.get("new_trials") or []]
    info = diff.get("status_assessment") or {}
    return {
        "from": diff["from"],
        "to": diff["to"],
        "paragraph": diff.get("paragraph", ""),
        "warnings": diff.get("warnings") or [],
        "headline": headline,
        "sections": sections,
        "new_n": len(new),
        "new_key": opener(new),
        "dropped": (diff.get("dropped_trials") or [])[:50],
        "dropped_n": len(diff.get("dropped_trials") or []),
        "assessed": bool(info.get("assessed")),
        "why_not": info.get("why_not", ""),
        "compared": info.get("compared", 0),
        "status_changes": (diff.get("status_changes") or [])[:50],
        "status_n": len(diff.get("status_changes") or []),
        "phase_changes": (diff.get("phase_changes") or [])[:50],
        "phase_n": len(diff.get("phase_changes") or []),
    }


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate ("=HYPERLINK(...)") is kept as text (``spreadsheet.neutralise``)."""
    return neutralise(value) if isinstance(value, str) else value
