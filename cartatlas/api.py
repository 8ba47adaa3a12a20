"""The Python API: what a notebook user calls, and what the CLI is built on.

``cartatlas.open(path)`` gives an ``Atlas`` whose methods return pandas
DataFrames; the CLI commands call the same methods, so numbers never differ
between a notebook and a terminal.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from cartatlas.model import ImportStats
from cartatlas.sources.files import iter_paths, read_path
from cartatlas.store.db import Store
from cartatlas.store.export import export_trials
from cartatlas.store.ingest import rebuild, save_records

if TYPE_CHECKING:
    from cartatlas.sources.ctgov.api import CtgovClient, SyncPlan, SyncProgress


class Atlas:
    """A cartatlas database opened for analysis and updates."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- context management ------------------------------------------------------

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------

    def import_files(
        self,
        paths: Iterable[str | Path],
        *,
        on_batch: Callable[[ImportStats], None] | None = None,
        on_file: Callable[[Path], None] | None = None,
    ) -> ImportStats:
        """Import every record of the given files and folders (formats detected by content)."""
        path_list = [Path(p) for p in paths]
        run_id = self.store.start_run("import", None, "; ".join(map(str, path_list)), {"paths": path_list})
        stats = ImportStats()
        status = "failed"
        try:
            for path, explicit in iter_paths(path_list):
                if on_file is not None:
                    on_file(path)
                items = read_path(path, strict=explicit)
                stats.add(save_records(self.store, items, run_id, on_batch=on_batch))
            status = "partial" if stats.rejected else "ok"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.store.finish_run(run_id, stats, status)
        return stats

    def sync_ctgov(
        self,
        query: str | None = None,
        since: dt.date | None = None,
        full: bool = False,
        *,
        base_url: str | None = None,
        rate: float | None = None,
        max_retries: int | None = None,
        page_size: int | None = None,
        client: CtgovClient | None = None,
        on_plan: Callable[[SyncPlan], None] | None = None,
        on_page: Callable[[SyncProgress, ImportStats], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> ImportStats:
        """Harvest ClinicalTrials.gov API v2 into the database, resuming any interrupted pass.

        Without ``since`` or ``full``, asks only for records updated since the
        last complete pass of the same query began (less a few days); the
        first pass of a query is full.  ``client`` replaces the HTTP client
        built from ``base_url``, ``rate``, ``max_retries`` and ``page_size``.
        """
        # Imported here so that ``import cartatlas`` does not pull in the HTTP stack.
        from cartatlas.sources.ctgov import api as ctgov_api
        from cartatlas.store import sync_state

        now = clock or ctgov_api.utc_now
        the_query = sync_state.normalise_query(query or ctgov_api.DEFAULT_QUERY)
        state = sync_state.load(self.store, ctgov_api.REGISTRY, the_query)
        plan = ctgov_api.plan_sync(state, the_query, since, full)
        if on_plan is not None:
            on_plan(plan)
        own_client = client is None
        if client is None:
            options: dict[str, Any] = {"base_url": base_url or ctgov_api.DEFAULT_BASE_URL}
            if rate is not None:
                options["rate"] = rate
            if max_retries is not None:
                options["max_retries"] = max_retries
            if page_size is not None:
                options["page_size"] = page_size
            client = ctgov_api.CtgovClient(**options)
        params = {
            "query": the_query,
            "since": plan.since,
            "full": full,
            "resume": plan.resume is not None,
            "plan": plan.reason,
            "page_size": client.page_size,
            "rate": client.rate,
        }
        run_id = self.store.start_run("sync", ctgov_api.REGISTRY, client.base_url, params)
        stats = ImportStats()

        def count(progress: SyncProgress, page_stats: ImportStats) -> None:
            stats.add(page_stats)
            if on_page is not None:
                on_page(progress, page_stats)

        status = "failed"
        try:
            ctgov_api.harvest(self.store, client, run_id, plan, on_page=count, clock=now)
            status = "partial" if stats.rejected else "ok"
        except duckdb.InterruptException as exc:
            # Ctrl-C while DuckDB was writing surfaces as DuckDB's own exception.
            status = "interrupted"
            raise KeyboardInterrupt from exc
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.store.finish_run(run_id, stats, status)
            if own_client:
                client.close()
        return stats

    def rebuild(self) -> int:
        """Re-derive normalised tables from the stored raw versions."""
        return rebuild(self.store)

    # -- reading -----------------------------------------------------------------

    def sql(self, query: str, params: builtins.list[Any] | None = None) -> pd.DataFrame:
        """Any SQL over the database (tables and views are documented in docs/schema.md)."""
        return self.store.con.execute(query, params or []).df()

    def trials(self, registry: str | None = None, country: str | None = None) -> pd.DataFrame:
        """Normalised trials, one row per trial, optionally for one registry or country code."""
        where, params = [], []
        if registry:
            where.append("registry = ?")
            params.append(registry)
        if country:
            where.append("list_contains(countries, ?)")
            params.append(country.upper())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.sql(f"SELECT * FROM trials {clause} ORDER BY registry, trial_id", params)

    def sites(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM trial_sites ORDER BY registry, trial_id, site_no")

    def versions(self, record_id: str) -> pd.DataFrame:
        """Every stored version of one record, oldest first, without payloads."""
        return self.sql("SELECT * FROM record_versions WHERE record_id = ? ORDER BY version_id", [record_id])

    def raw(self, version_id: int) -> Any:
        """The payload of one stored version, exactly as it is kept."""
        row = self.store.con.execute("SELECT payload FROM raw_records WHERE version_id = ?", [version_id]).fetchone()
        return None if row is None else row[0]

    def summary(self) -> dict[str, Any]:
        return self.store.summary()

    def export(self, fmt: str, out: str | Path) -> int:
        return export_trials(self.store, fmt, Path(out))


def open(path: str | Path | None = None, *, read_only: bool = False) -> Atlas:
    """Open (or create) a cartatlas database; default ``$CARTATLAS_DB`` or ./cartatlas.duckdb."""
    return Atlas(Store.open(path, read_only=read_only))


def import_files(paths: Iterable[str | Path], db: str | Path | None = None) -> ImportStats:
    """Import files into a database in one call (opens and closes it)."""
    with open(db) as atlas:
        return atlas.import_files(paths)
