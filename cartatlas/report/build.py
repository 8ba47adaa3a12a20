"""Writing a report directory: index.html, figures/, tables/, summary.json.

Everything is computed once by ``compute_landscape``; this module only
renders it.  The directory is written under a temporary name and renamed
into place at the end, so a failed run never leaves a half-written report
where the previous one was.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from cartatlas.analysis.landscape import Landscape, compute_landscape
from cartatlas.knowledge import knowledge_version
from cartatlas.report.tables import trial_table
from cartatlas.spreadsheet import frame_sheet, write_csv, write_xlsx
from cartatlas.store.db import Store
from cartatlas.version import __version__

log = logging.getLogger(__name__)


@dataclass
class ReportResult:
    out: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    #: What the tables had to change to fit a spreadsheet (also given to ``on_note``).
    notes: list[str] = field(default_factory=list)


def provenance(store: Store) -> dict[str, Any]:
    """Data snapshot, software and knowledge versions, curation applied: stamped on every output."""
    con = store.con
    snapshot = [
        {
            "registry": r[0],
            "records": r[1],
            "versions": r[2],
            "first_fetched": r[3].isoformat() if r[3] else None,
            "last_fetched": r[4].isoformat() if r[4] else None,
            "latest_registry_update": r[5].isoformat() if r[5] else None,
        }
        for r in con.execute(
            "SELECT registry, count(DISTINCT record_id), count(*), min(fetched_at), max(fetched_at), "
            "max(record_updated) FROM raw_records GROUP BY registry ORDER BY registry"
        ).fetchall()
    ]
    classifier = con.execute(
        "SELECT any_value(classifier_version), any_value(kb_version), count(*), "
        "count(*) FILTER (WHERE len(curated_fields) > 0) FROM classifications"
    ).fetchone()
    curation_file = con.execute("SELECT value FROM settings WHERE key = 'curation_file'").fetchone()
    overrides = con.execute(
        """
        SELECT status, count(*) FROM curation_log
        WHERE run_id = (SELECT max(run_id) FROM curation_log) GROUP BY status ORDER BY status
        """
    ).fetchall()
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cartatlas_version": __version__,
        "knowledge_base_version": knowledge_version(),
        "classifier_version": classifier[0] if classifier else None,
        "classified_with_kb": classifier[1] if classifier else None,
        "classified_trials": classifier[2] if classifier else 0,
        "curated_trials": classifier[3] if classifier else 0,
        "curation_file": curation_file[0] if curation_file else None,
        "curation_overrides": dict(overrides),
        "database": store.path,
        "snapshot": snapshot,
        **_derived_health(store),
    }


def _derived_health(store: Store) -> dict[str, Any]:
    """Stale derived data and disagreeing registrations, so a report never hides them (issue 12)."""
    from cartatlas.pipeline import cluster_disagreements, staleness

    return {
        "stale": [s.to_dict() for s in staleness(store)],
        "cluster_disagreements": cluster_disagreements(store),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and pd.isna(value):
        return None
    return value


def table_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in frame.to_dict("records")]


def build_summary(
    landscape: Landscape,
    prov: dict[str, Any],
    previous: dict[str, Any] | None,
    store: Store | None = None,
) -> dict[str, Any]:
    """summary.json: options, provenance, every table, each counted trial's state, and what changed.

    ``units`` holds, per trial, what a later report compares against
    (``cartatlas.analysis.diff.unit_state``); ``changes`` is the diff with a
    previous report's summary (``report --compare``).
    """
    from cartatlas.analysis.diff import diff_summaries, unit_state

    summary: dict[str, Any] = {
        "options": landscape.options.describe(),
        "provenance": prov,
        "notes": _jsonable(landscape.notes),
        "facts": _jsonable(landscape.facts),
        "tables": {name: table_records(frame) for name, frame in landscape.tables.items()},
        "units": unit_state(landscape, store),
    }
    if previous is not None:
        label = summary["options"]["as_of"] or prov["generated_at"][:10]
        current = {**summary, "label": label, "source": "this report"}
        summary["changes"] = diff_summaries(previous, current, store=store)
    return summary


def write_tables(landscape: Landscape, out: Path) -> tuple[list[Path], list[str]]:
    """Every table as CSV and all of them in one Excel workbook (lists joined with '; ').

    Returns the files and the notes on what the workbook had to change
    (``cartatlas.spreadsheet``: text cells are neutralised against formulas in
    both, and the workbook replaces characters it cannot hold).
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    flat: dict[str, pd.DataFrame] = {}
    for name, frame in {**landscape.tables, "trials": trial_table(landscape)}.items():
        f = frame.copy()
        for col in f.columns:
            if f[col].map(lambda v: isinstance(v, list | tuple | dict)).any():
                f[col] = f[col].map(
                    lambda v: (
                        "; ".join(map(str, v))
                        if isinstance(v, list | tuple)
                        else json.dumps(v, ensure_ascii=False)
                        if isinstance(v, dict)
                        else v
                    )
                )
        flat[name] = f
        path = out / f"{name}.csv"
        write_csv(f, path)
        written.append(path)
    workbook = out / "cartatlas_tables.xlsx"
    changes = write_xlsx({name[:31]: frame_sheet(f) for name, f in flat.items()}, workbook)
    written.append(workbook)
    return written, changes.notes(f"tables/{workbook.name}")


def write_report(
    store: Store,
    landscape_options: Any,
    out: Path,
    *,
    compare_with: Path | None = None,
    figures: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> ReportResult:
    """Compute the landscape and write the whole report directory atomically.

    ``on_note`` hears what the tables had to change to fit a spreadsheet
    (default: a logged warning); the notes are also kept in the result.
    """
    step = on_step or (lambda _msg: None)
    previous = None
    if compare_with is not None:
        from cartatlas.analysis.diff import load_summary

        previous = load_summary(compare_with)
    step("counting")
    landscape = compute_landscape(store, landscape_options)
    prov = provenance(store)
    summary = build_summary(landscape, prov, previous, store)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a report is meant to be shared
    try:
        result = ReportResult(out)
        step("tables")
        result.tables, result.notes = write_tables(landscape, staging / "tables")
        figure_info: list[dict[str, Any]] = []
        if figures:
            step("figures")
            figure_info, figure_notes = _write_figures(landscape, staging / "figures")
            result.notes += figure_notes
        step("html")
        from cartatlas.report.html import render_html

        (staging / "index.html").write_text(render_html(landscape, summary, figure_info, staging), encoding="utf-8")
        (staging / "summary.json").write_bytes(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)
        )
        from cartatlas.report.feed import write_feed

        write_feed(store, staging)  # the new and changed CAR trials of the latest import or sync
        if out.exists():
            backup = out.with_name(f".{out.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(out, backup)
            os.replace(staging, out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for note in result.notes:
        (on_note or log.warning)(note)
    result.figures = sorted((out / "figures").glob("*")) if figures else []
    result.tables = sorted((out / "tables").glob("*"))
    result.summary = summary
    return result


def _write_figures(landscape: Landscape, out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Render every declared figure to PNG and SVG; returns (name, section, caption, files) for the HTML, and notes."""
    from cartatlas.report import figures

    out.mkdir(parents=True, exist_ok=True)
    info = []
    replaced: dict[str, int] = {}
    for name, figure in figures.FIGURES.items():
        if not figure.drawn_for(landscape):
            continue
        chart = figure.draw(landscape)
        paths = figures.save_figure(chart, out, name, on_replaced=functools.partial(replaced.__setitem__, name))
        svg = next((p for p in paths if p.suffix == ".svg"), None)
        info.append(
            {
                "name": name,
                "section": figure.section,
                "caption": figure.caption(landscape),
                "wide": figure.wide,
                "files": [p.name for p in paths],
                "svg": svg.read_text(encoding="utf-8") if svg else "",
            }
        )
    notes = []
    if replaced:
        total = sum(replaced.values())
        notes.append(
            f"figures: {total:,} label{'s' if total != 1 else ''} held characters an image cannot show "
            f"(control characters; replaced with U+FFFD) in {', '.join(sorted(replaced))}"
        )
    return info, notes
