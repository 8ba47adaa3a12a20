"""Sync checkpoints: one row of ``sync_state`` per registry and query.

A harvest of a live registry API is a *pass*: a walk through every page of one
query, optionally limited to records updated since a date.  The row records
where the pass has got to (the next page token) after each page's records are
committed, so a pass interrupted in any way continues from its last committed
page; and it records when the last complete pass started, which is what the
next incremental pass counts from.

The checkpoint is written in its own transaction after the page's records.  A
crash between the two makes the next run fetch that page again, which stores
nothing new because identical versions are recognised by their content hash;
the opposite order could skip a page, so it is not used.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from cartatlas.store.db import Store

log = logging.getLogger(__name__)

RUNNING = "running"
DONE = "done"

_COLUMNS = (
    "sync_key, registry, query, since, page_token, pages_done, records_done, total, status, run_id, "
    "pass_started_at, updated_at, last_success_at, last_success_from"
)


@dataclass(slots=True)
class SyncState:
    """A checkpoint as stored; ``since`` is None for a full pass."""

    sync_key: str
    registry: str
    query: str
    since: dt.date | None
    page_token: str | None
    pages_done: int
    records_done: int
    total: int | None
    status: str
    run_id: str | None
    pass_started_at: dt.datetime | None
    updated_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_success_from: dt.date | None

    @property
    def running(self) -> bool:
        return self.status == RUNNING


def sync_key(registry: str, query: str) -> str:
    """The checkpoint key: whitespace differences in a query do not make it another query."""
    return f"{registry}:{normalise_query(query)}"


def normalise_query(query: str) -> str:
    return " ".join(query.split())


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def load(store: Store, registry: str, query: str) -> SyncState | None:
    row = store.con.execute(
        f"SELECT {_COLUMNS} FROM sync_state WHERE sync_key = ?", [sync_key(registry, query)]
    ).fetchone()
    if row is None:
        return None
    return SyncState(
        sync_key=row[0],
        registry=row[1],
        query=row[2],
        since=row[3],
        page_token=row[4],
        pages_done=int(row[5] or 0),
        records_done=int(row[6] or 0),
        total=None if row[7] is None else int(row[7]),
        status=row[8],
        run_id=row[9],
        pass_started_at=_utc(row[10]),
        updated_at=_utc(row[11]),
        last_success_at=_utc(row[12]),
        last_success_from=row[13],
    )


def _write(store: Store, state: SyncState) -> None:
    store.con.execute(
        f"INSERT OR REPLACE INTO sync_state ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            state.sync_key,
            state.registry,
            state.query,
            state.since,
            state.page_token,
            state.pages_done,
            state.records_done,
            state.total,
            state.status,
            state.run_id,
            state.pass_started_at,
            state.updated_at,
            state.last_success_at,
            state.last_success_from,
        ],
    )


def begin_pass(
    store: Store,
    registry: str,
    query: str,
    since: dt.date | None,
    run_id: str,
    at: dt.datetime,
    previous: SyncState | None,
) -> SyncState:
    """Start a pass from its first page, keeping what the last complete pass recorded."""
    state = SyncState(
        sync_key=sync_key(registry, query),
        registry=registry,
        query=normalise_query(query),
        since=since,
        page_token=None,
        pages_done=0,
        records_done=0,
        total=None,
        status=RUNNING,
        run_id=run_id,
        pass_started_at=at,
        updated_at=at,
        last_success_at=previous.last_success_at if previous else None,
        last_success_from=previous.last_success_from if previous else None,
    )
    _write(store, state)
    return state


def resume_pass(store: Store, state: SyncState, run_id: str, at: dt.datetime) -> None:
    """Adopt an interrupted pass for a new run.

    The run that was killed never recorded its end, so it is marked
    interrupted here; its pass keeps its original start time, because
    records updated since then may have moved between pages already read.
    """
    if state.run_id and state.run_id != run_id:
        store.con.execute(
            "UPDATE runs SET status = 'interrupted' WHERE run_id = ? AND status = 'running'", [state.run_id]
        )
    state.run_id = run_id
    state.updated_at = at
    _write(store, state)


def checkpoint(
    store: Store,
    state: SyncState,
    *,
    page_token: str | None,
    pages_done: int,
    records_done: int,
    total: int | None,
    at: dt.datetime,
) -> None:
    """Record that every page before ``page_token`` is committed."""
    state.page_token = page_token
    state.pages_done = pages_done
    state.records_done = records_done
    state.total = total
    state.updated_at = at
    _write(store, state)


def restart_pass(store: Store, state: SyncState, at: dt.datetime) -> None:
    """Go back to the first page of the same pass (same ``since``, same start time)."""
    checkpoint(store, state, page_token=None, pages_done=0, records_done=0, total=None, at=at)


def finish_pass(store: Store, state: SyncState, at: dt.datetime) -> None:
    state.status = DONE
    state.page_token = None
    state.updated_at = at
    state.last_success_at = at
    state.last_success_from = state.since
    _write(store, state)
