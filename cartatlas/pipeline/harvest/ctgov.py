"""The ClinicalTrials.gov harvest pass: pages of one query into the store, checkpointed.

``harvest`` walks the pages of one query into the store and checkpoints after
every committed page in ``sync_state`` (see ``cartatlas.store.sync_state``), so
that an interrupted harvest continues where it stopped and an incremental one
asks only for records updated since the last complete pass began
(``plan_sync``).  The client that fetches the pages and splits them into
records is ``cartatlas.sources.ctgov.api``; this module is the pipeline's,
since it writes to the store (moved from that module unchanged).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest import HarvestPass
from cartatlas.sources.ctgov.api import (
    MAX_PAGE_SIZE,
    REGISTRY,
    SINCE_OVERLAP_DAYS,
    ApiError,
    CtgovClient,
    PageTokenRejected,
    page_records,
)
from cartatlas.store import sync_state
from cartatlas.store.db import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SyncProgress:
    """Where a pass stands, for progress bars and the closing message."""

    query: str
    since: dt.date | None
    resumed: bool
    pages_done: int = 0
    records_done: int = 0
    total: int | None = None
    restarts: int = 0
    done: bool = False
    #: Set when the pass continues from another run's checkpoint or starts again.
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SyncPlan:
    """What this run will do: resume a pass, or begin one (full or since a date)."""

    query: str
    since: dt.date | None
    resume: sync_state.SyncState | None
    reason: str


def plan_sync(
    state: sync_state.SyncState | None,
    query: str,
    since: dt.date | None,
    full: bool,
) -> SyncPlan:
    """Decide between resuming and starting, and from which date.

    An interrupted pass is resumed unless the caller asks for a different one
    (another ``since``, or ``full`` when it was incremental).  A new pass
    without an explicit date counts from the start of the last complete pass,
    less ``SINCE_OVERLAP_DAYS``: records posted while that pass ran are asked
    for again rather than missed.
    """
    if full and since is not None:
        raise ValueError("a full pass and a since date exclude each other")
    if state is not None and state.running:
        wanted_matches = (full and state.since is None) or (since is not None and since == state.since)
        if wanted_matches or (not full and since is None):
            where = f"page {state.pages_done + 1}" + (
                f" ({state.records_done:,} of {state.total:,} records done)" if state.total is not None else ""
            )
            return SyncPlan(query, state.since, state, f"resuming the interrupted pass at {where}")
    if full:
        return SyncPlan(query, None, None, "full pass")
    if since is not None:
        return SyncPlan(query, since, None, f"records updated since {since}")
    if state is not None and state.last_success_at is not None and state.pass_started_at is not None:
        auto = state.pass_started_at.astimezone(dt.UTC).date() - dt.timedelta(days=SINCE_OVERLAP_DAYS)
        return SyncPlan(
            query,
            auto,
            None,
            f"records updated since {auto} (last complete pass began {state.pass_started_at:%Y-%m-%d %H:%M} UTC, "
            f"less {SINCE_OVERLAP_DAYS} days)",
        )
    return SyncPlan(query, None, None, "full pass (no earlier complete pass of this query)")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: How often one run starts its pass again after refused page tokens before giving up.
MAX_RESTARTS = 2


def harvest(
    store: Store,
    client: CtgovClient,
    run_id: str,
    plan: SyncPlan,
    *,
    on_page: Callable[[SyncProgress, ImportStats], None] | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> tuple[ImportStats, SyncProgress]:
    """Walk a pass into the store, checkpointing after each committed page.

    The stats cover this run only; ``SyncProgress`` covers the whole pass,
    including pages committed by the runs it resumes.
    """
    harvest_pass = HarvestPass.open(
        store, REGISTRY, plan.query, plan.since, run_id, clock, resume=plan.resume is not None
    )
    state = harvest_pass.state
    progress = SyncProgress(
        query=state.query,
        since=state.since,
        resumed=plan.resume is not None,
        pages_done=state.pages_done,
        records_done=state.records_done,
        total=state.total,
    )
    stats = ImportStats()
    while True:
        try:
            for page in client.fetch_pages(state.query, state.since, state.page_token):
                page_no = progress.pages_done + 1
                page_stats = harvest_pass.save(page_records(page, page_no), batch_size=MAX_PAGE_SIZE)
                stats.add(page_stats)
                progress.pages_done = page_no
                progress.records_done += len(page.studies)
                if page.total_count is not None:
                    progress.total = page.total_count
                harvest_pass.checkpoint(
                    page_token=page.next_page_token,
                    pages_done=progress.pages_done,
                    records_done=progress.records_done,
                    total=progress.total,
                )
                log.info(
                    "page %d: %d records (%s of %s)",
                    page_no,
                    len(page.studies),
                    f"{progress.records_done:,}",
                    "?" if progress.total is None else f"{progress.total:,}",
                )
                if on_page is not None:
                    on_page(progress, page_stats)
        except PageTokenRejected as exc:
            if progress.restarts >= MAX_RESTARTS:
                raise ApiError(f"{exc}; the pass was already restarted {progress.restarts} times, giving up") from exc
            progress.restarts += 1
            note = (
                f"the server refused the page token for page {progress.pages_done + 1} (tokens expire); "
                "starting the pass again from the first page"
            )
            log.warning("%s", note)
            progress.notes.append(note)
            harvest_pass.restart()
            progress.pages_done = progress.records_done = 0
            progress.total = None
            continue
        break
    if progress.total is not None and progress.records_done != progress.total:
        log.info(
            "the pass read %d records where the server counted %d at its start (the registry changed meanwhile)",
            progress.records_done,
            progress.total,
        )
    harvest_pass.finish()
    progress.done = True
    return stats, progress
