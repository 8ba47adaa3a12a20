"""Commands that harvest live registry APIs: ``sync ctgov``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.changes import FeedDirOption, NoFeedOption, write_feed_after
from cartatlas.cli.common import CliError, DbOption
from cartatlas.cli.ctgov_whole import Pace, bulk_sync, estimate_only
from cartatlas.cli.harvest import harvesting, parse_since
from cartatlas.cli.pubmed import pubmed_cmd
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.ctgov import SyncPlan, SyncProgress
from cartatlas.sources.ctgov.api import (
    ALL_STUDIES,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE,
    MAX_PAGE_SIZE,
    SINCE_OVERLAP_DAYS,
    ApiError,
)

sync_app = typer.Typer(
    help="Harvest registry APIs into the database (polite, resumable, incremental).",
    no_args_is_help=True,
)


@sync_app.command("ctgov")
def ctgov_cmd(
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            "-q",
            help="Essie expression for query.term (default: an OR of CAR-T, CAR-NK, CAAR-T, CAR-Treg, CAR-M "
            "and 'chimeric antigen receptor' phrases).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only records whose last update was posted on or after this date (YYYY-MM-DD). "
            f"Default: since the last complete pass of the same query began, less {SINCE_OVERLAP_DAYS} days."
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Ask for every record of the query, not only updates.")] = False,
    every_study: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every study in the registry (about 560,000), not only the CAR query: a pass of some 560 pages. "
            "--bulk is the fast route to the same records.",
        ),
    ] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate", help="Only ask how many records the pass would read and say how long it would take."
        ),
    ] = False,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="Download the registry's own export of every study (one zip of per-study JSON, about 2.5 GB) "
            "and import it, instead of paging through the API.",
        ),
    ] = False,
    bulk_url: Annotated[
        str | None,
        typer.Option(help="Where --bulk downloads the export from (default: studies/download below --base-url)."),
    ] = None,
    keep: Annotated[
        Path | None, typer.Option(help="With --bulk: keep the downloaded archive at this path (default: deleted).")
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Requests per second (ClinicalTrials.gov tolerates about 0.8).", min=0.001)
    ] = DEFAULT_RATE,
    max_retries: Annotated[
        int, typer.Option(help="Attempts per page after the first before giving up (the checkpoint is kept).", min=0)
    ] = DEFAULT_MAX_RETRIES,
    base_url: Annotated[
        str, typer.Option(help="API v2 root (point it at a test server or a mirror).")
    ] = DEFAULT_BASE_URL,
    page_size: Annotated[
        int, typer.Option(help="Records per page (the API allows up to 1000).", min=1, max=MAX_PAGE_SIZE)
    ] = MAX_PAGE_SIZE,
    feed: FeedDirOption = None,
    no_feed: NoFeedOption = False,
    db: DbOption = None,
) -> None:
    """Harvest ClinicalTrials.gov API v2 into the database.

    Each page is committed and checkpointed before the next is asked for: an
    interrupted sync (Ctrl-C, lost connection, killed process) continues from
    its last page when the same command is run again.  The registry's count and
    an estimate of the time are printed before the first page of a pass.
    --all harvests every study in the registry; --bulk fetches the same from
    the registry's zip export, verified whole before anything is stored.  Exit
    status 1 when any record was rejected, 2 when the API or the download
    could not be used, 130 on Ctrl-C.
    """
    since_date = parse_since(since, full)
    if every_study and query is not None:
        raise CliError("--all and --query exclude each other (--all is every study, whatever the query)")
    if bulk:
        if query is not None or since is not None or estimate:
            raise CliError("--bulk downloads every study: it takes no --query, --since or --estimate")
        from cartatlas.sources.ctgov.bulk import bulk_url_for

        bulk_sync(db, bulk_url or bulk_url_for(base_url), keep, max_retries, feed, no_feed)
        return
    if every_study:
        query = ALL_STUDIES
    if estimate:
        estimate_only(db, query, since_date, full, base_url, rate, page_size, max_retries)
        return
    # The pass's progress object, once the first page is in: what to say when the run stops.
    last: list[SyncProgress] = []
    with harvesting(
        db, "sync ctgov", unit="page", units="pages", errors=(ApiError,), resume_from=lambda: _where(last)
    ) as (atlas, run):
        pace = Pace(rate, page_size)

        def on_plan(plan: SyncPlan) -> None:
            if plan.resume is None:
                run.announce(plan.reason)
            else:
                run.announce(plan.reason, done=plan.resume.records_done, total=plan.resume.total)
                pace.start(plan.resume.records_done, plan.resume.total)

        def on_page(prog: SyncProgress, page_stats: ImportStats) -> None:
            if not last:
                last.append(prog)
            pace.start(0, prog.total)
            run.advance(page_stats, done=prog.records_done, total=prog.total, description=pace.describe(prog))

        atlas.sync_ctgov(
            query,
            since_date,
            full,
            base_url=base_url,
            rate=rate,
            max_retries=max_retries,
            page_size=page_size,
            on_plan=on_plan,
            on_page=on_page,
        )
        write_feed_after(atlas, feed, skip=no_feed)
    prog = last[0] if last else None
    summary = None
    if prog is not None:
        summary = (
            f"pass complete: {prog.pages_done:,} page{'s' if prog.pages_done != 1 else ''}, "
            f"{prog.records_done:,} records" + (f" (server counted {prog.total:,})" if prog.total is not None else "")
        )
    run.finish(prog.notes if prog is not None else (), summary)


def _where(last: list[SyncProgress]) -> str:
    if last:
        return f"from page {last[0].pages_done + 1}."
    return "from its last checkpoint."


sync_app.command("pubmed")(pubmed_cmd)


def register(app: typer.Typer) -> None:
    app.add_typer(sync_app, name="sync")
