"""Commands that screen records without a database: classify and evaluate."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
from rich.table import Table

from cartatlas.classify import classify_trial, knowledge
from cartatlas.classify.evaluate import (
    class_f1,
    class_scores,
    current_versions,
    evaluate,
    interval_text,
    load_labels,
    write_disagreements,
)
from cartatlas.cli.common import CliError, err_console, literal, out_console, progress, styled
from cartatlas.model import RawRecord, Reject, Trial
from cartatlas.normalise import format_spec
from cartatlas.sources.files import read_paths
from cartatlas.sources.limits import check_limits

MAX_REJECTS_SHOWN = 20


def iter_trials(paths: list[Path], rejects: list[Reject]) -> Iterator[Trial]:
    """Normalised trials of every record in the files, as ``cartatlas import`` reads them."""
    for item in read_paths(paths):
        if isinstance(item, Reject):
            rejects.append(item)
        elif isinstance(item, RawRecord):
            try:
                yield format_spec(item.format).to_trial(item.payload)
            except Exception as exc:  # a record that cannot be normalised is reported, not fatal
                rejects.append(Reject(item.source, item.locator, f"cannot normalise: {exc}", item.record_id))


def _report_rejects(rejects: list[Reject], seen: int) -> None:
    err_console.print(f"classify: {seen:,} trials classified; {len(rejects):,} rejected")
    for reject in rejects[:MAX_REJECTS_SHOWN]:
        err_console.print(styled("  [yellow]rejected[/] {}", reject))
    if len(rejects) > MAX_REJECTS_SHOWN:
        err_console.print(f"  ... and {len(rejects) - MAX_REJECTS_SHOWN:,} more")


def classify_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders that `cartatlas import` reads.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write JSON lines here (default: stdout).")] = None,
) -> None:
    """Classify registry records straight from files: one JSON object per trial, with evidence.

    Exit status 1 when any record was rejected (the others are classified).
    """
    rejects: list[Reject] = []
    try:
        check_limits()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    knowledge()
    seen = 0
    with contextlib.ExitStack() as stack:
        sink: IO[bytes] = stack.enter_context(out.open("wb")) if out is not None else sys.stdout.buffer
        bar = stack.enter_context(progress(total_known=False))
        task = bar.add_task("classifying", total=None)
        for trial in iter_trials(paths, rejects):
            sink.write(orjson.dumps(classify_trial(trial)) + b"\n")
            seen += 1
            if seen % 500 == 0:
                bar.update(task, completed=seen)
        bar.update(task, completed=seen)
        sink.flush()
    _report_rejects(rejects, seen)
    if rejects:
        raise typer.Exit(1)


def evaluate_cmd(
    labels: Annotated[
        Path, typer.Option("--labels", help="Labels: cartatlas CSV, a peer monitor CSV, or llm_overrides.json.")
    ],
    paths: Annotated[list[Path] | None, typer.Argument(help="Records to classify (files or folders).")] = None,
    disagreements: Annotated[
        Path | None, typer.Option("--disagreements", help="Write every disagreement to this CSV.")
    ] = None,
    show: Annotated[int, typer.Option("--show", help="Disagreements to print per field.")] = 10,
) -> None:
    """Compare classifications with labels: per-field precision, recall, F1, and the disagreements."""
    if not labels.exists():
        raise CliError(f"no such labels file: {labels}")
    if not paths:
        raise CliError("give the records to classify (files or folders)")
    label_rows = load_labels(labels)
    wanted = {lab["trial_id"] for lab in label_rows}
    rejects: list[Reject] = []
    with progress(total_known=False) as bar:
        task = bar.add_task("classifying", total=None)
        # A trial read twice (an old CSV row and the current record) is scored on its current version.
        current = current_versions(iter_trials(paths, rejects), wanted)
        classified = {}
        for trial_id, trial in current.items():
            classified[trial_id] = classify_trial(trial)
            bar.advance(task)
    report = evaluate(label_rows, classified)
    out_console.print(
        styled(
            "[bold]{}[/]: {} labelled trials, {} classified, {} without a record in the inputs",
            labels.name,
            f"{report.n_labels:,}",
            f"{len(classified):,}",
            f"{len(report.missing):,}",
        )
    )
    table = Table("field", "n", "exact", "95% CI", "precision", "recall", "F1", "per class (P/R/F1, n)")
    for fld, s in report.scores.items():
        if not s.n:
            continue
        classes = ", ".join(
            f"{cls} {p:.2f}/{r:.2f}/{f:.2f} ({c[0] + c[2]})"
            for cls, c in sorted(s.per_class.items(), key=lambda kv: -(kv[1][0] + kv[1][2]))[:5]
            for p, r, f in [class_f1(c)]
        )
        table.add_row(
            fld,
            str(s.n),
            f"{s.accuracy:.3f}",
            interval_text(s.accuracy_interval),
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            f"{s.f1:.3f}",
            literal(classes),
        )
    out_console.print(table)
    columns = ("field", "label", "n", "precision", "95% CI", "recall", "95% CI")
    per_class = Table(*columns, title="per label (Wilson 95% CI)")
    for c in class_scores(report):
        per_class.add_row(
            c.field,
            literal(c.label),
            str(c.support),
            f"{c.precision:.3f}",
            interval_text(c.precision_interval),
            f"{c.recall:.3f}",
            interval_text(c.recall_interval),
        )
    if per_class.row_count:
        out_console.print(per_class)
    by_field: dict[str, int] = {}
    for d in report.disagreements:
        by_field[d.field] = by_field.get(d.field, 0) + 1
        if by_field[d.field] <= show:
            out_console.print(
                styled(
                    "  [yellow]{}[/] {}: cartatlas={} labels={}  [dim]{}[/]",
                    d.field,
                    d.trial_id,
                    repr(d.ours),
                    repr(d.theirs),
                    d.evidence[:160],
                )
            )
    if disagreements is not None:
        write_disagreements(report, disagreements)
        err_console.print(literal(f"wrote {len(report.disagreements):,} disagreements to {disagreements}"))


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_cmd)
    app.command("evaluate")(evaluate_cmd)
