"""The publication operations behind ``Atlas`` (sync, links, reading), kept here so ``api`` stays thin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd

from cartatlas.model import ImportStats
from cartatlas.store.db import Store


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
    from cartatlas.sources.http import given
    from cartatlas.sources.pubmed import eutils
    from cartatlas.store import sync_state

    now = clock or eutils.utc_now
    the_query = sync_state.normalise_query(query or eutils.DEFAULT_QUERY)
    state = sync_state.load(store, eutils.REGISTRY, the_query)
    plan = eutils.plan_sync(state, the_query, since, full)
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
        _, progress = eutils.harvest(store, client, run_id, plan, on_batch=count, clock=now)
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


def publications(
    store: Store,
    *,
    kind: str | None = None,
    country: str | None = None,
    car_only: bool = False,
) -> pd.DataFrame:
    """Normalised publications with their linked trial ids, one row per PMID."""
    where, params = [], []
    if kind:
        where.append("p.kind = ?")
        params.append(kind)
    if country:
        where.append("p.report_country = ?")
        params.append(country.upper())
    if car_only:
        where.append("p.is_car")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return store.con.execute(
        "SELECT p.*, coalesce(l.linked_trials, []) AS linked_trials FROM publications p "
        "LEFT JOIN (SELECT pmid, list(trial_id ORDER BY score DESC, trial_id) AS linked_trials "
        "FROM publication_links GROUP BY pmid) l USING (pmid) "
        f"{clause} ORDER BY TRY_CAST(p.pmid AS BIGINT), p.pmid",
        params,
    ).df()
