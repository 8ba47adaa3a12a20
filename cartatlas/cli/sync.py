"""Commands that harvest live registry APIs: ``sync ctgov``."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.changes import FeedDirOption, NoFeedOption, write_feed_after
from cartatlas.cli.common import CliError, DbOption, err_console, literal, open_atlas
from cartatlas.cli.harvest import harvesting, parse_since
from cartatlas.cli.pubmed import pubmed_cmd
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.ctgov import SyncPlan, SyncProgress
from cartatlas.pipeline.harvest.estimate import estimate_pass
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

        _bulk(db, bulk_url or bulk_url_for(base_url), keep, max_retries, feed, no_feed)
        return
    if every_study:
        query = ALL_STUDIES
    if estimate:
        _estimate(db, query, since_date, full, base_url, rate, page_size, max_retries)
        return
    # The pass's progress object, once the first page is in: what to say when the run stops.
    last: list[SyncProgress] = []
    with harvesting(
        db, "sync ctgov", unit="page", units="pages", errors=(ApiError,), resume_from=lambda: _where(last)
    ) as (atlas, run):
        pace = _Pace(rate, page_size)

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


#: From how many records a pass is better made from the registry's export, and what to say then.
BULK_HINT_RECORDS = 100_000
BULK_HINT = (
    "the registry's own export is the fast route to this many studies: `cartatlas sync ctgov --bulk` downloads "
    "every study in one request (about 2.5 GB) and imports it (docs/performance.md)"
)


class _Pace:
    """The pass's plan, said once its size is known, and its pages and records per second as it goes."""

    def __init__(self, rate: float, page_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.page_size = page_size
        self.said = False
        self._clock = clock
        self.began = clock()
        #: Records committed by earlier runs of a resumed pass: not this run's speed.
        self.records_before = 0

    def start(self, records_before: int, total: int | None) -> None:
        """Say the estimate for what is left, the first time the registry's count is known."""
        if self.said or total is None:
            return
        self.said = True
        self.records_before = records_before
        left = max(0, total - records_before)
        plan = estimate_pass(left, self.page_size, self.rate)
        err_console.print(literal(f"sync ctgov: {'left: ' if records_before else ''}{plan.describe()}"))
        if left >= BULK_HINT_RECORDS:
            err_console.print(literal(f"  note: {BULK_HINT}"))

    def describe(self, prog: SyncProgress) -> str:
        pages = "?" if prog.total is None else f"{max(prog.pages_done, -(-prog.total // self.page_size)):,}"
        elapsed = self._clock() - self.began
        speed = (prog.records_done - self.records_before) / elapsed if elapsed > 0 else 0.0
        return f"page {prog.pages_done:,}/{pages}, {speed:,.0f} records/s"


def _estimate(
    db: Path | None,
    query: str | None,
    since: dt.date | None,
    full: bool,
    base_url: str,
    rate: float,
    page_size: int,
    max_retries: int,
) -> None:
    """``--estimate``: one request for the count of the pass the same command would make, and what it would cost."""
    from cartatlas.pipeline.harvest.ctgov import plan_sync
    from cartatlas.sources.ctgov.api import DEFAULT_QUERY, CtgovClient
    from cartatlas.store import sync_state
    from cartatlas.store.db import DEFAULT_DB

    the_query = sync_state.normalise_query(query or DEFAULT_QUERY)
    state = None
    if Path(db or DEFAULT_DB).exists():  # no database yet: the first pass is a full one
        with open_atlas(db, read_only=True) as atlas:
            state = sync_state.load(atlas.store, "ctgov", the_query)
    plan = plan_sync(state, the_query, since, full)
    try:
        with CtgovClient(base_url, rate=rate, page_size=page_size, max_retries=max_retries) as client:
            total = client.count(the_query, plan.since)
    except ApiError as exc:
        raise CliError(str(exc)) from exc
    done = plan.resume.records_done if plan.resume is not None else 0
    err_console.print(literal(f"sync ctgov: {plan.reason}"))
    left = max(0, total - done)
    print(f"{'left: ' if done else ''}{estimate_pass(left, page_size, rate).describe()}")
    if left >= BULK_HINT_RECORDS:
        print(BULK_HINT)


def _bulk(db: Path | None, url: str, keep: Path | None, max_retries: int, feed: Path | None, no_feed: bool) -> None:
    """``--bulk``: the export downloaded with a bar by bytes, then imported with a bar by records."""
    from cartatlas.sources.ctgov.bulk import BulkDownloadError, Download

    with harvesting(
        db, "sync ctgov --bulk", unit="batch", units="batches", errors=(BulkDownloadError,), advice=_bulk_advice
    ) as (atlas, run):
        run.announce(f"downloading {url}")

        files: list[int] = []

        def on_download(done: int, total: int | None) -> None:
            # In MB: the bar counts whole units.
            run.move(done // 1_000_000, None if total is None else total // 1_000_000, "downloading (MB)")

        def on_downloaded(got: Download) -> None:
            files.append(got.members)
            run.announce(f"downloaded {got.size / 1e6:,.1f} MB, {got.members:,} files; importing")
            run.move(0, got.members, "importing (files)")

        def on_batch(stats: ImportStats) -> None:
            done = run.stats.seen + stats.seen
            run.advance(stats, done=done, total=files[0] if files else None, description="importing (files)")

        atlas.sync_ctgov_bulk(
            url,
            keep=keep,
            max_retries=max_retries,
            on_download=on_download,
            on_downloaded=on_downloaded,
            on_batch=on_batch,
        )
        write_feed_after(atlas, feed, skip=no_feed)
    run.finish()


def _bulk_advice(exc: Exception) -> str | None:
    return "nothing of the download was kept or imported; run the same command again to download it again."


def _where(last: list[SyncProgress]) -> str:
    if last:
        return f"from page {last[0].pages_done + 1}."
    return "from its last checkpoint."


sync_app.command("pubmed")(pubmed_cmd)


def register(app: typer.Typer) -> None:
    app.add_typer(sync_app, name="sync")
