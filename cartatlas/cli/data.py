"""Commands that load, inspect and export data: import, build, summary, export, versions, sql, rebuild."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cartatlas.cli.common import CliError, DbOption, err_console, open_atlas, out_console, progress
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
        err_console.print(f"  [dim]skipped {skip.source}: {skip.reason}[/]", highlight=False)
    for reject in stats.rejects[:MAX_REJECTS_SHOWN]:
        err_console.print(f"  [yellow]rejected[/] {reject}", highlight=False)
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

        return atlas.import_files(paths, on_batch=on_batch, on_file=on_file)


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
        out_console.print_json(json.dumps(summary, default=str))
        return
    out_console.print(f"[bold]{summary['database']}[/] (schema {summary['schema_version']})")
    table = Table("registry", "records", "versions", "trials", "first posted", "last update")
    trials = {t["registry"]: t for t in summary["trials"]}
    for reg in summary["registries"]:
        t = trials.get(reg["registry"], {})
        table.add_row(
            reg["registry"],
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
            out_console.print(f"[bold]{title}[/]: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if summary["rejects_logged"]:
        out_console.print(f"rejected inputs logged: {summary['rejects_logged']:,} (table 'rejects')")


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
        atlas.link()  # registrations of one trial across registries
        atlas.link_publications()  # articles to the trials they report
        _print_summary(atlas.summary(), as_json=False)
        if not no_report:
            out = report or Path("cartatlas-report")
            try:
                result = atlas.report(
                    out, as_of=as_of, focus=focus, on_step=lambda step: err_console.print(f"[dim]report: {step}[/]")
                )
            except ValueError as exc:
                raise CliError(str(exc)) from exc
            totals = result.summary["facts"]["totals"]
            groups = ", ".join(f"{k} {v:,}" for k, v in totals["by_group"].items() if v)
            out_console.print(f"report: {result.out / 'index.html'} ({totals['units']:,} CAR trials: {groups})")
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
        rows = atlas.export(fmt, out, what=what)
    err_console.print(f"wrote {rows:,} {what} to {out}")


def versions_cmd(
    record_id: Annotated[str, typer.Argument(help="A registry record id, e.g. NCT03290430.")],
    db: DbOption = None,
    show: Annotated[int | None, typer.Option(help="Print the stored payload of this version id.")] = None,
) -> None:
    """List every stored version of a record (the history the registry showed cartatlas)."""
    with open_atlas(db, read_only=True) as atlas:
        if show is not None:
            payload = atlas.raw(show)
            if payload is None:
                raise CliError(f"no version {show}")
            out_console.print(payload, highlight=False, markup=False)
            return
        df = atlas.versions(record_id)
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
            f"{row['source_kind']}: {Path(str(row['source'])).name} {row['locator'] or ''}".strip(),
            str(row["content_hash"])[:12],
        )
    out_console.print(table)


def sql_cmd(
    query: Annotated[str, typer.Argument(help="A SQL query; see docs/schema.md for tables and views.")],
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json")] = "table",
) -> None:
    """Run a read-only SQL query against the database and print the result."""
    import duckdb

    with open_atlas(db, read_only=True) as atlas:
        try:
            df = atlas.sql(query)
        except duckdb.Error as exc:
            raise CliError(f"query failed: {exc}") from exc
    if fmt == "csv":
        out_console.print(df.to_csv(index=False), end="", highlight=False, markup=False)
    elif fmt == "json":
        out_console.print(df.to_json(orient="records", date_format="iso", force_ascii=False), highlight=False)
    else:
        table = Table(*[str(c) for c in df.columns])
        for row in df.itertuples(index=False):
            table.add_row(*["" if v is None else str(v) for v in row])
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
