"""The Python API: what a notebook user calls, and what the CLI is built on.

``cartatlas.open(path)`` gives an ``Atlas`` whose methods return pandas
DataFrames; the CLI commands call the same methods, so numbers never differ
between a notebook and a terminal.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from cartatlas.model import ImportStats
from cartatlas.sources.files import iter_paths, read_path
from cartatlas.store.db import Store
from cartatlas.store.export import export_trials
from cartatlas.store.ingest import rebuild, save_records


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
