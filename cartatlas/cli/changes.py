"""Commands about change and freshness: ``refresh``, ``diff``, ``feed`` (issue 12)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from cartatlas.cli.common import CliError, DbOption, err_console, literal, open_atlas, styled

DIFF_FORMATS = ("text", "json", "csv")


def refresh_cmd(
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Redo every step, even those already up to date.")] = False,
) -> None:
    """Bring everything derived up to date: labels, curation, links, publication labels and links.

    Import, sync, curate and rebuild do this at their end; run it after an
    upgrade of cartatlas (a new knowledge base) or when report or summary
    says something is stale.
    """
    with open_atlas(db) as atlas:
        result = atlas.refresh(force=force, on_step=lambda step: err_console.print(styled("[dim]refresh: {}[/]", step)))
        stale = atlas.staleness()
    lines = result.describe()
    err_console.print(literal("refresh: " + ("; ".join(lines) if lines else "everything was up to date")))
    for s in stale:  # pragma: no cover - derive leaves nothing stale; kept so a regression is visible
        err_console.print(styled("[yellow]still stale[/] {}", s))


def _write_out(text: str, out: Path | None) -> None:
    """To stdout, or to a file replaced atomically."""
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def diff_cmd(
    before: Annotated[
        str,
        typer.Option(
            "--from",
            help="The earlier landscape: a date (YYYY-MM-DD, counted from the database) or a report's "
            "summary.json (or its directory).",
        ),
    ],
    after: Annotated[
        str | None,
        typer.Option("--to", help="The later landscape, the same way (default: the database as of today)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json or csv.")] = "text",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    focus: Annotated[
        str | None, typer.Option("--focus", help="Focus country for dates (default: a given report's, else CN).")
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option(help="Country groups for dates: a scheme (wei2021, mainland, ...) or NAME=CODES;NAME=CODES."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Trials listed per list in text output (0: all).")] = 20,
    db: DbOption = None,
) -> None:
    """What changed between two landscapes: counts, ranks, new and dropped trials, real status changes.

    Each side is a date counted from the database or an earlier report's
    summary.json; two summary files need no database.  Status and phase
    changes are listed only between two stored versions of a record, never
    as artefacts of a record stored in one version.  The text starts with a
    paragraph in words built from the largest changes.
    """
    if fmt not in DIFF_FORMATS:
        raise CliError(f"unknown format {fmt!r}; choose from {', '.join(DIFF_FORMATS)}")
    from cartatlas.analysis import diff as diffs
    from cartatlas.dates import parse_date
    from cartatlas.report.changes import render_csv, render_text

    for name, value in (("--from", before), ("--to", after)):
        if value is not None and not diffs.is_summary(value) and parse_date(value) is None:
            raise CliError(f"{name} {value!r} is neither a date (YYYY-MM-DD) nor a report's summary.json or folder")
    options: dict[str, Any] = {}
    if focus:
        options["focus"] = focus
    if groups:
        options["groups"] = groups if "=" not in groups else groups.split(";")
    try:
        if diffs.is_summary(before) and after is not None and diffs.is_summary(after):
            result = diffs.diff_summaries(diffs.load_summary(before), diffs.load_summary(after))
        else:
            with open_atlas(db, read_only=True) as atlas:
                result = atlas.diff(before, after, **options)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if fmt == "json":
        text = orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str).decode() + "\n"
    elif fmt == "csv":
        text = render_csv(result)
    else:
        text = render_text(result, limit=limit)
    _write_out(text, out)
    if out is not None:
        err_console.print(f"wrote the diff {result['from']['label']} -> {result['to']['label']} to {out}")


#: Where build writes its report, and so where sync and feed write the feed by default.
DEFAULT_FEED_DIR = Path("cartatlas-report")


def feed_cmd(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory for feed.atom and feed.json (default: cartatlas-report/ beside "
            "the database, where build writes its report).",
        ),
    ] = None,
    runs: Annotated[
        int, typer.Option(help="Cover the latest N imports or syncs that stored trial records.", min=1)
    ] = 1,
    since: Annotated[
        str | None, typer.Option(help="Cover every run started on or after this date (YYYY-MM-DD) instead.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Write the feed of new and changed CAR trials since the previous import or sync (Atom and JSON Feed).

    A trial is new when no version of it was stored before the window, changed
    when the version shown as current now was first fetched in the window;
    changed entries list what differs from the version current before.
    sync and build write the same feed into the report directory.
    """
    import datetime as dt

    since_date = None
    if since is not None:
        try:
            since_date = dt.date.fromisoformat(since)
        except ValueError:
            raise CliError(f"--since {since!r}: expected a date as YYYY-MM-DD") from None
    with open_atlas(db, read_only=True) as atlas:
        folder = out or default_feed_dir(atlas)
        written = atlas.write_feed(folder, runs=runs, since=since_date)
    err_console.print(
        literal(f"feed: {written.feed.describe()}; wrote {folder / 'feed.atom'} and {folder / 'feed.json'}")
    )


def default_feed_dir(atlas: Any) -> Path:
    """cartatlas-report/ beside the database: where build, run in the database's folder, writes its report."""
    path = str(atlas.store.path)
    return (Path(path).parent if path != ":memory:" else Path()) / DEFAULT_FEED_DIR


def write_feed_after(atlas: Any, out: Path | None, *, skip: bool = False) -> None:
    """The feed after a sync: into ``--feed DIR``, or the default folder; nothing with ``--no-feed``."""
    if skip:
        return
    folder = out or default_feed_dir(atlas)
    written = atlas.write_feed(folder)
    err_console.print(literal(f"feed: {written.feed.describe()}; wrote {folder / 'feed.atom'}"))


FeedDirOption = Annotated[
    Path | None,
    typer.Option(
        "--feed",
        help="Write the feed of new and changed CAR trials (feed.atom, feed.json) here "
        "(default: cartatlas-report/ beside the database).",
    ),
]
NoFeedOption = Annotated[bool, typer.Option("--no-feed", help="Do not write the feed.")]


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh_cmd)
    app.command("diff")(diff_cmd)
    app.command("feed")(feed_cmd)
