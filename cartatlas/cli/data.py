"""Commands that load, inspect and export data: import, build, summary, export, versions, sql, rebuild."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cartatlas.cli.common import CliError, DbOption, err_console, literal, open_atlas, out_console, progress, styled
from cartatlas.cli.output import MACHINE_FORMATS, stdout_bytes, text_value, write_json, write_payload, write_rows
from cartatlas.model import ImportStats
from cartatlas.sources.limits import check_limits
from cartatlas.store.export import FORMATS

MAX_REJECTS_SHOWN = 20


def _report_stats(stats: ImportStats, *, label: str) -> None:
    err_console.print(
        f"{label}: {stats.seen:,} records read; {stats.new:,} new, {stats.changed:,} changed, "
        f"{stats.unchanged:,} unchanged; {stats.rejected:,} rejected"
        + (f"; {len(stats.skipped)} non-record files skipped" if stats.skipped else "")
    )
    for skip in stats.skipped[:MAX_REJECTS_SHOWN]:
        err_console.print(styled("  [dim]skipped {}: {}[/]", skip.source, skip.reason))
    for reject in stats.rejects[:MAX_REJECTS_SHOWN]:
        err_console.print(styled("  [yellow]rejected[/] {}", reject))
    if stats.rejected > MAX_REJECTS_SHOWN:
        err_console.print(f"  ... and {stats.rejected - MAX_REJECTS_SHOWN:,} more (table 'rejects')")


def _import(db: Path | None, paths: list[Path]) -> ImportStats:
    try:
        check_limits()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    with open_atlas(db) as atlas, progress(total_known=False) as bar:
        task = bar.add_task("importing", total=None)

        def on_file(path: Path) -> None:
            bar.update(task, description=f"importing {path.name}")

        def on_batch(stats: ImportStats) -> None:
            bar.advance(task, stats.seen)

        stats = atlas.import_files(paths, on_batch=on_batch, on_file=on_file)
        for line in atlas.derived.describe() if atlas.derived is not None else []:
            err_console.print(styled("  [dim]{}[/]", line))
        return stats


def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders; formats are detected by content.")],
    db: DbOption = None,
) -> None:
    """Import registry records from downloaded files into the database.

    Reads ClinicalTrials.gov API v2 JSON (list, study, page, JSON lines, gzipped or
    zipped), the classic API JSON, legacy XML, and the website's CSV downloads.
    Exit status 1 when any record was rejected (the others are imported).
    """
    stats = _import(db, paths)
    _report_stats(stats, label="import")
    if stats.rejected:
        raise typer.Exit(1)


def summary_cmd(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Print what the database holds: records, versions, trials by status, phase and country."""
    with open_atlas(db, read_only=True) as atlas:
        _print_summary(atlas.summary(), as_json=as_json)


def _print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        write_json(summary)
    else:
        _print_summary_text(summary)
    unclassified = summary.get("unclassified_trials", 0)
    if unclassified:
        total = sum(t["trials"] for t in summary["trials"])
        err_console.print(
            styled(
                "[yellow]warning:[/] {} of {} trials are not classified yet (their import stopped before screening "
                "them); the screening counts leave them out. `cartatlas rebuild` classifies them.",
                f"{unclassified:,}",
                f"{total:,}",
            )
        )


def _print_summary_text(summary: dict[str, Any]) -> None:
    out_console.print(styled("[bold]{}[/] (schema {})", summary["database"], summary["schema_version"]))
    table = Table("registry", "records", "versions", "trials", "first posted", "last update")
    trials = {t["registry"]: t for t in summary["trials"]}
    for reg in summary["registries"]:
        t = trials.get(reg["registry"], {})
        table.add_row(
            literal(reg["registry"]),
            f"{reg['records']:,}",
            f"{reg['versions']:,}",
            f"{t.get('trials', 0):,}",
            f"{t.get('first_posted_min') or '-'} .. {t.get('first_posted_max') or '-'}",
            str(t.get("last_update_max") or "-"),
        )
    out_console.print(table)
    for title, key in (
        ("status", "by_status"),
        ("phase", "by_phase"),
        ("top countries (trials with a site there)", "top_countries"),
        ("source format", "by_format"),
        ("screening (relation to a CAR product)", "by_relation"),
        ("platforms of CAR trials", "by_platform"),
    ):
        counts = summary[key]
        if counts:
            out_console.print(styled("[bold]{}[/]: {}", title, ", ".join(f"{k} {v:,}" for k, v in counts.items())))
    if summary["rejects_logged"]:
        out_console.print(f"rejected inputs logged: {summary['rejects_logged']:,} (table 'rejects')")
    if summary.get("runs"):
        last = summary["last_runs"][0]
        out_console.print(
            styled(
                "[bold]runs[/]: {}; last: {} started {}, {}",
                ", ".join(f"{status} {n:,}" for status, n in summary["runs"].items()),
                last["kind"],
                f"{last['started_at']:%Y-%m-%d %H:%M}",
                last["status"],
            )
        )
    print_derived_health(summary)


def print_derived_health(summary: dict[str, Any]) -> None:
    """Stale derived data (with the command that refreshes it) and registrations that disagree on CAR."""
    for stale in summary.get("stale", []):
        err_console.print(styled("[yellow]stale[/] {}: {}; run `{}`", stale["product"], stale["reason"], stale["fix"]))
    if summary.get("cluster_disagreements"):
        out_console.print(
            f"linked trials whose registrations disagree on being a CAR trial: {summary['cluster_disagreements']:,} "
            "(counted as CAR trials; SELECT * FROM cluster_disagreements)"
        )


#: The sample data the main job reads when given no paths (see ../shared/data/README.md).
SAMPLE_FOLDERS = ("ctgov", "ictrp", "chictr", "pubmed")


def build_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to import (default: the sample registries and PubMed)."),
    ] = None,
    db: DbOption = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Where to write the report (default ./cartatlas-report).")
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Import and classify only.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Report as of this date (default today).")] = None,
    focus: Annotated[str, typer.Option("--focus", help="Focus country of the report.")] = "CN",
    strict: Annotated[bool, typer.Option(help="Exit 1 when any input was rejected.")] = False,
) -> None:
    """The main job: import the inputs, screen every trial, print the summary and write the report.

    Rejected records are listed and logged but do not stop the job unless --strict.
    """
    targets = paths or [Path("../shared/data") / name for name in SAMPLE_FOLDERS]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(map(str, missing))}")
    stats = _import(db, targets)
    _report_stats(stats, label="import")
    with open_atlas(db) as atlas:
        # The import ended with a refresh: trials screened, registrations and articles linked; a database
        # too large to re-link inline is linked here, since the report counts trials, not registrations.
        if any(s.product == "trial_links" for s in atlas.staleness()):
            atlas.link()
        _print_summary(atlas.summary(), as_json=False)
        if not no_report:
            out = report or Path("cartatlas-report")
            try:
                result = atlas.report(
                    out,
                    as_of=as_of,
                    focus=focus,
                    on_step=lambda step: err_console.print(styled("[dim]report: {}[/]", step)),
                    on_note=lambda note: err_console.print(styled("[yellow]note:[/] {}", note)),
                )
            except ValueError as exc:
                raise CliError(str(exc)) from exc
            totals = result.summary["facts"]["totals"]
            groups = ", ".join(f"{k} {v:,}" for k, v in totals["by_group"].items() if v)
            out_console.print(
                literal(f"report: {result.out / 'index.html'} ({totals['units']:,} CAR trials: {groups})")
            )
    if strict and stats.rejected:
        raise typer.Exit(1)


def export_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced atomically).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")] = "csv",
    what: Annotated[
        str, typer.Option("--what", help="trials (the default) or publications (PubMed articles with links).")
    ] = "trials",
    db: DbOption = None,
) -> None:
    """Export the normalised trials, one row (or JSON object) per trial, trial_id and registry first."""
    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if what not in ("trials", "publications"):
        raise CliError(f"--what {what!r}: choose trials or publications")
    with open_atlas(db, read_only=True) as atlas:
        rows = atlas.export(
            fmt, out, what=what, on_note=lambda note: err_console.print(styled("[yellow]note:[/] {}", note))
        )
    err_console.print(literal(f"wrote {rows:,} {what} to {out}"))


def versions_cmd(
    record_id: Annotated[str, typer.Argument(help="A registry record id, e.g. NCT03290430.")],
    db: DbOption = None,
    show: Annotated[
        int | None, typer.Option(help="Print the stored payload of this version id of the record, exactly as kept.")
    ] = None,
) -> None:
    """List every stored version of a record (the history the registry showed cartatlas)."""
    with open_atlas(db, read_only=True) as atlas:
        df = atlas.versions(record_id)
        if show is not None:
            if show not in set(df["version_id"].tolist()):
                mine = ", ".join(map(str, df["version_id"].tolist())) or "none stored"
                raise CliError(f"version {show} is not a version of {record_id} (its versions: {mine})")
            payload = atlas.raw(show)
            if payload is None:
                raise CliError(f"no version {show}")
            write_payload(payload)
            return
    if df.empty:
        raise CliError(f"no stored record {record_id}")
    table = Table("#", "version id", "registry updated", "fetched", "format", "from", "hash")
    for row in df.to_dict("records"):
        table.add_row(
            str(row["version_no"]),
            str(row["version_id"]),
            str(row["record_updated"] or "-"),
            f"{row['fetched_at']:%Y-%m-%d %H:%M}",
            str(row["format"]),
            literal(f"{row['source_kind']}: {Path(str(row['source'])).name} {row['locator'] or ''}".strip()),
            str(row["content_hash"])[:12],
        )
    out_console.print(table)


def sql_cmd(
    query: Annotated[str, typer.Argument(help="A SQL query; see docs/schema.md for tables and views.")],
    db: DbOption = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="table (for people), or csv, json, jsonl: exact bytes for programs, never wrapped."
        ),
    ] = "table",
) -> None:
    """Run a read-only SQL query against the database and print the result."""
    import duckdb

    from cartatlas.store.sandbox import QueryRefused

    if fmt not in ("table", *MACHINE_FORMATS):
        raise CliError(f"unknown format {fmt!r}; choose from table, {', '.join(MACHINE_FORMATS)}")
    with open_atlas(db, read_only=True) as atlas:
        try:
            columns, types, rows = atlas.sql_rows(query)
        except QueryRefused as exc:
            raise CliError(f"query refused: {exc}") from exc
        except duckdb.Error as exc:
            raise CliError(f"query failed: {exc}") from exc
    _print_result(columns, types, rows, fmt)


def _print_result(columns: list[str], types: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """A query's result: machine formats straight to stdout's bytes, the table through the console."""
    if fmt in MACHINE_FORMATS:
        write_rows(columns, rows, fmt, stdout_bytes(), types)
        return
    table = Table()
    for c in columns:
        table.add_column(literal(c))
    for row in rows:
        table.add_row(*[literal(text_value(v, t)) for v, t in zip(row, types, strict=True)])
    out_console.print(table)


def rebuild_cmd(db: DbOption = None) -> None:
    """Re-derive the normalised tables from the stored raw versions (after upgrading cartatlas)."""
    with open_atlas(db) as atlas:
        n = atlas.rebuild()
    err_console.print(f"rebuilt {n:,} trials")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("build")(build_cmd)
    app.command("summary")(summary_cmd)
    app.command("export")(export_cmd)
    app.command("versions")(versions_cmd)
    app.command("sql")(sql_cmd)
    app.command("rebuild")(rebuild_cmd)
