"""The ChiCTR harvest pass: result pages of one query, every trial page stored, checkpointed per trial.

``sync_state`` records the result page and row to continue from (token
``"page:row"``), so an interrupted harvest re-reads one result page and goes on.
The client that fetches and splits is ``cartatlas.sources.chictr.sync``; this
module is the pipeline's, since it writes to the store (moved from that module
unchanged).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cartatlas.model import ImportStats, Reject
from cartatlas.pipeline.harvest import HarvestPass
from cartatlas.sources.chictr.sync import REGISTRY, ChictrClient, ChictrError, _trial_item
from cartatlas.store.db import Store

log = logging.getLogger(__name__)


# -- the harvest --------------------------------------------------------------------------


@dataclass(slots=True)
class ChictrProgress:
    """Where a pass stands, for progress bars and the closing message."""

    query: str
    resumed: bool
    pages_done: int = 0
    records_done: int = 0
    total: int | None = None
    done: bool = False
    notes: list[str] = field(default_factory=list)


def _token(page: int, row: int) -> str:
    return f"{page}:{row}"


def _parse_token(token: str | None) -> tuple[int, int]:
    if not token:
        return 1, 0
    try:
        page, _, row = token.partition(":")
        return max(1, int(page)), max(0, int(row or 0))
    except ValueError:
        log.warning("ChiCTR checkpoint %r is not page:row; starting the pass from its first page", token)
        return 1, 0


def harvest(
    store: Store,
    client: ChictrClient,
    run_id: str,
    query: str,
    *,
    on_trial: Callable[[ChictrProgress, ImportStats], None] | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> tuple[ImportStats, ChictrProgress]:
    """Walk the result pages of ``query`` and store every trial page, checkpointing after each trial."""
    harvest_pass = HarvestPass.open(store, REGISTRY, query, None, run_id, clock, resume=True)
    state = harvest_pass.state
    progress = ChictrProgress(
        query=state.query,
        resumed=state.pages_done > 0 or state.records_done > 0,
        pages_done=state.pages_done,
        records_done=state.records_done,
        total=state.total,
    )
    page_no, skip = _parse_token(state.page_token)
    if progress.resumed:
        progress.notes.append(f"resumed at result page {page_no}, row {skip + 1}")
    stats = ImportStats()
    previous_ids: list[str] | None = None
    page_size = 0
    for _ in range(client.max_pages):
        listing, list_url = client.search(state.query, page_no)
        unreadable = [Reject(list_url, f"row {row_no}", problem) for row_no, problem in listing.problems]
        if unreadable:
            store.save_rejects(run_id, unreadable)
            stats.rejects.extend(unreadable)
            stats.rejected += len(unreadable)
        if listing.total is not None:
            progress.total = listing.total
        ids = [r.registration_number for r in listing.rows]
        if not ids:
            break
        if ids == previous_ids:
            raise ChictrError(f"{list_url}: the site sent the same results for page {page_no} as for the page before")
        previous_ids = ids
        for index, row in enumerate(listing.rows):
            if index < skip:
                continue
            item = _trial_item(client, row.registration_number, row.proj, list_url, index)
            trial_stats = harvest_pass.save([item])
            stats.add(trial_stats)
            progress.records_done += 1
            harvest_pass.checkpoint(
                page_token=_token(page_no, index + 1),
                pages_done=progress.pages_done,
                records_done=progress.records_done,
                total=progress.total,
            )
            if on_trial is not None:
                on_trial(progress, trial_stats)
        skip = 0
        progress.pages_done += 1
        harvest_pass.checkpoint(
            page_token=_token(page_no + 1, 0),
            pages_done=progress.pages_done,
            records_done=progress.records_done,
            total=progress.total,
        )
        page_size = max(page_size, len(ids))
        if len(ids) < page_size or (progress.total is not None and page_no * page_size >= progress.total):
            break  # a short page is the last one; so is the page that reaches the total
        page_no += 1
    else:
        raise ChictrError(f"stopped after {client.max_pages:,} result pages without reaching the last one")
    harvest_pass.finish()
    progress.done = True
    return stats, progress
