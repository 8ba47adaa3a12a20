"""The harvest passes over the live sources, one module per source (``ctgov``, ``chictr``, ``pubmed``).

Each pass reads the checkpoint of its query (``cartatlas.store.sync_state``), asks its client
(``cartatlas.sources``) for the next page or batch, stores its records (``cartatlas.pipeline.ingest``)
and checkpoints, so an interrupted pass continues where it stopped.  ``HarvestPass`` is what the
three share: opening (or resuming) the pass, storing a page, checkpointing, starting again, finishing;
each source's module keeps only how it walks its registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cartatlas.model import ImportStats
from cartatlas.pipeline.ingest import save_records
from cartatlas.sources.base import Item
from cartatlas.store import sync_state
from cartatlas.store.db import Store


@dataclass
class HarvestPass:
    """One pass of one query through a registry: its checkpoint, and what every step writes."""

    store: Store
    run_id: str
    state: sync_state.SyncState
    clock: Callable[[], dt.datetime]
    #: True when this run continues an interrupted pass (from its checkpoint), False for a new pass.
    resumed: bool = False

    @classmethod
    def open(
        cls,
        store: Store,
        registry: str,
        query: str,
        since: dt.date | None,
        run_id: str,
        clock: Callable[[], dt.datetime],
        *,
        resume: bool,
    ) -> HarvestPass:
        """Resume the query's interrupted pass when ``resume`` and there is one, else begin a new pass."""
        previous = sync_state.load(store, registry, query)
        resumed = resume and previous is not None and previous.running
        if resumed and previous is not None:
            state = previous
            sync_state.resume_pass(store, state, run_id, clock())
        else:
            state = sync_state.begin_pass(store, registry, query, since, run_id, clock(), previous)
        return cls(store, run_id, state, clock, resumed)

    def save(self, items: Iterable[Item], **options: Any) -> ImportStats:
        """Store one page's records (``save_records``: versions, normalised rows, rejects) in this run."""
        return save_records(self.store, items, self.run_id, **options)

    def checkpoint(self, *, page_token: str | None, pages_done: int, records_done: int, total: int | None) -> None:
        """Remember where the pass stands, after the records before it were committed."""
        sync_state.checkpoint(
            self.store,
            self.state,
            page_token=page_token,
            pages_done=pages_done,
            records_done=records_done,
            total=total,
            at=self.clock(),
        )

    def restart(self) -> None:
        """Start the pass again from its first page (the checkpoint forgets where it was)."""
        sync_state.restart_pass(self.store, self.state, self.clock())

    def finish(self) -> None:
        """The pass read every page: the next incremental pass counts from when this one began."""
        sync_state.finish_pass(self.store, self.state, self.clock())
