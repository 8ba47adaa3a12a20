"""The PubMed harvest pass: searches and batches of one query into the store, checkpointed per batch.

``harvest`` checkpoints in ``sync_state`` after each committed batch (the
search ranges still to read and the current history set, ``Cursor``), so an
interrupted harvest continues where it stopped.  The client that searches,
fetches and splits is ``cartatlas.sources.pubmed.eutils``; this module is the
pipeline's, since it writes to the store (moved from that module unchanged).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest import HarvestPass
from cartatlas.sources.http import given
from cartatlas.sources.pubmed import eutils
from cartatlas.sources.pubmed.eutils import (
    REGISTRY,
    SINCE_OVERLAP_DAYS,
    EutilsClient,
    EutilsError,
    HistoryExpired,
    Search,
)
from cartatlas.store import sync_state
from cartatlas.store.db import Store

log = logging.getLogger(__name__)


# -- planning and checkpoints ------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What this run will do: resume a pass, or begin one (full or since a date)."""

    query: str
    since: dt.date | None
    resume: sync_state.SyncState | None
    reason: str


def plan_sync(state: sync_state.SyncState | None, query: str, since: dt.date | None, full: bool) -> Plan:
    """Resume an interrupted pass unless told otherwise; a new pass counts from the last complete one."""
    if full and since is not None:
        raise ValueError("a full pass and a since date exclude each other")
    if state is not None and state.running:
        same = (full and state.since is None) or (since is not None and since == state.since)
        if same or (not full and since is None):
            return Plan(query, state.since, state, f"resuming the interrupted pass ({state.records_done:,} done)")
    if full:
        return Plan(query, None, None, "full pass")
    if since is not None:
        return Plan(query, since, None, f"records modified since {since}")
    if state is not None and state.last_success_at is not None and state.pass_started_at is not None:
        auto = state.pass_started_at.astimezone(dt.UTC).date() - dt.timedelta(days=SINCE_OVERLAP_DAYS)
        return Plan(
            query, auto, None, f"records modified since {auto} (last complete pass, less {SINCE_OVERLAP_DAYS} days)"
        )
    return Plan(query, None, None, "full pass (no earlier complete pass of this query)")


DateRange = tuple[str, str] | None


def range_term(query: str, rng: DateRange) -> str:
    if rng is None:
        return query
    return f'({query}) AND ("{rng[0]}"[dp] : "{rng[1]}"[dp])'


def _split(rng: DateRange, today: dt.date) -> list[DateRange] | None:
    """Halve a publication-date range; None when it is a single day already."""
    lo, hi = (dt.date(1800, 1, 1), dt.date(today.year + 1, 12, 31)) if rng is None else (_d(rng[0]), _d(rng[1]))
    if lo >= hi:
        return None
    mid = lo + (hi - lo) // 2
    return [(_s(lo), _s(mid)), (_s(mid + dt.timedelta(days=1)), _s(hi))]


def _d(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y/%m/%d").date()


def _s(day: dt.date) -> str:
    return day.strftime("%Y/%m/%d")


@dataclass
class Cursor:
    """The page token of a pubmed pass: ranges still to search and the current set."""

    pending: list[DateRange] = field(default_factory=lambda: [None])
    current: dict[str, Any] | None = None

    def dumps(self) -> str:
        return orjson.dumps({"pending": self.pending, "current": self.current}).decode()

    @classmethod
    def loads(cls, token: str | None) -> Cursor:
        if not token:
            return cls()
        data = orjson.loads(token)
        pending = [tuple(r) if r is not None else None for r in data.get("pending", [])]
        return cls(pending=pending, current=data.get("current"))


@dataclass(slots=True)
class Progress:
    query: str
    since: dt.date | None
    resumed: bool
    batches_done: int = 0
    records_done: int = 0
    total: int | None = None
    searches: int = 0
    done: bool = False
    notes: list[str] = field(default_factory=list)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def harvest(
    store: Store,
    client: EutilsClient,
    run_id: str,
    plan: Plan,
    *,
    on_batch: Callable[[Progress, ImportStats], None] | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    max_steps: int = 100_000,
) -> tuple[ImportStats, Progress]:
    """Walk a pass into the store, checkpointing after every committed batch."""
    harvest_pass = HarvestPass.open(
        store, REGISTRY, plan.query, plan.since, run_id, clock, resume=plan.resume is not None
    )
    state = harvest_pass.state
    cursor = Cursor.loads(state.page_token) if harvest_pass.resumed else Cursor()
    progress = Progress(
        state.query, state.since, plan.resume is not None, state.pages_done, state.records_done, state.total
    )
    stats = ImportStats()

    def save(cur: Cursor) -> None:
        harvest_pass.checkpoint(
            page_token=cur.dumps(),
            pages_done=progress.batches_done,
            records_done=progress.records_done,
            total=progress.total,
        )

    for _ in range(max_steps):
        if cursor.current is None:
            if not cursor.pending:
                break
            rng = cursor.pending[0]
            search = client.esearch(range_term(state.query, rng), since=state.since)
            progress.searches += 1
            if progress.total is None:
                progress.total = search.count
            if search.count > client.window:
                halves = _split(rng, clock().date())
                if halves is not None:
                    log.info("%s: %d records, more than PubMed serves per search; splitting", rng, search.count)
                    cursor.pending[0:1] = halves
                    save(cursor)
                    continue
                note = (
                    f"{search.count:,} records published {rng[0] if rng else ''} exceed PubMed's window; "
                    f"only the first {client.window:,} are read"
                )
                progress.notes.append(note)
                log.warning("%s", note)
            cursor.pending.pop(0)
            cursor.current = {
                "range": rng,
                "webenv": search.webenv,
                "query_key": search.query_key,
                "count": search.count,
                "retstart": 0,
            }
            save(cursor)
            continue
        cur = cursor.current
        limit = min(int(cur["count"]), client.window)
        retstart = int(cur["retstart"])
        if retstart >= limit:
            cursor.current = None
            save(cursor)
            continue
        search = Search(range_term(state.query, cur["range"]), int(cur["count"]), cur["webenv"], cur["query_key"], "")
        try:
            batch = client.efetch(search, retstart, min(client.batch_size, limit - retstart))
            if batch.size == 0:
                raise HistoryExpired(f"efetch returned no records at retstart {retstart} of {limit}")
        except HistoryExpired as exc:
            if cur.get("researched"):
                note = f"gave up on date range {cur['range']} at record {retstart}: {exc}"
                progress.notes.append(note)
                log.warning("%s", note)
                cursor.current = None
                save(cursor)
                continue
            log.info("history set expired (%s); searching again", exc)
            fresh = client.esearch(range_term(state.query, cur["range"]), since=state.since)
            progress.searches += 1
            same = fresh.count == int(cur["count"])
            cursor.current = {
                "range": cur["range"],
                "webenv": fresh.webenv,
                "query_key": fresh.query_key,
                "count": fresh.count,
                # The same count means the same set in the same order: go on; otherwise read it again.
                "retstart": retstart if same else 0,
                "researched": True,
            }
            save(cursor)
            continue
        batch_stats = harvest_pass.save(batch.items, batch_size=max(client.batch_size, 1))
        stats.add(batch_stats)
        progress.batches_done += 1
        progress.records_done += batch.size
        cur["retstart"] = retstart + batch.size
        cur.pop("researched", None)
        save(cursor)
        log.info(
            "batch %d: %d records (%d of %s)", progress.batches_done, batch.size, progress.records_done, progress.total
        )
        if on_batch is not None:
            on_batch(progress, batch_stats)
    else:
        raise EutilsError(f"stopped after {max_steps:,} steps without finishing the pass")
    harvest_pass.finish()
    progress.done = True
    return stats, progress


def sync_pubmed(
    store: Store,
    query: str | None = None,
    since: dt.date | None = None,
    full: bool = False,
    *,
    email: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    rate: float | None = None,
    max_retries: int | None = None,
    batch_size: int | None = None,
    client: Any = None,
    on_plan: Callable[[Any], None] | None = None,
    on_batch: Callable[[Any, ImportStats], None] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    link: bool = True,
) -> tuple[ImportStats, Any]:
    """Harvest PubMed through the E-utilities, then refresh the publication links."""
    from cartatlas.publications.links import refresh_links

    now = clock or utc_now
    the_query = sync_state.normalise_query(query or eutils.DEFAULT_QUERY)
    state = sync_state.load(store, eutils.REGISTRY, the_query)
    plan = plan_sync(state, the_query, since, full)
    if on_plan is not None:
        on_plan(plan)
    own_client = client is None
    if client is None:
        options = given(rate=rate, max_retries=max_retries, batch_size=batch_size)
        client = eutils.EutilsClient(
            base_url=base_url or eutils.DEFAULT_BASE_URL, email=email, api_key=api_key, **options
        )
    params = {
        "query": the_query,
        "since": plan.since,
        "full": full,
        "resume": plan.resume is not None,
        "plan": plan.reason,
        "batch_size": client.batch_size,
        "rate": client.rate,
        "api_key": bool(client.api_key),
    }
    run_id = store.start_run("sync", eutils.REGISTRY, client.base_url, params)
    stats = ImportStats()
    progress = None

    def count(prog: Any, batch_stats: ImportStats) -> None:
        stats.add(batch_stats)
        if on_batch is not None:
            on_batch(prog, batch_stats)

    status = "failed"
    try:
        _, progress = harvest(store, client, run_id, plan, on_batch=count, clock=now)
        status = "partial" if stats.rejected else "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, stats, status)
        if own_client:
            client.close()
    if link:
        refresh_links(store)
    return stats, progress
