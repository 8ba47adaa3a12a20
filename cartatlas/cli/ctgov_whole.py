"""``sync ctgov`` for the whole registry: the estimate said up front, the bar's pace, the bulk export.

Kept apart from ``cli/sync.py``, which only adds the options (``--all``,
``--estimate``, ``--bulk``) and calls these.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from cartatlas.cli.changes import write_feed_after
from cartatlas.cli.common import CliError, err_console, literal, open_atlas
from cartatlas.cli.harvest import harvesting
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.ctgov import SyncProgress
from cartatlas.pipeline.harvest.estimate import estimate_pass
from cartatlas.sources.ctgov.api import ApiError

#: From how many records a pass is better made from the registry's export, and what to say then.
BULK_HINT_RECORDS = 100_000
BULK_HINT = (
    "the registry's own export is the fast route to this many studies: `cartatlas sync ctgov --bulk` downloads "
    "every study in one request (about 2.5 GB) and imports it (docs/performance.md)"
)


class Pace:
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


def estimate_only(
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


def bulk_sync(db: Path | None, url: str, keep: Path | None, max_retries: int, feed: Path | None, no_feed: bool) -> None:
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
