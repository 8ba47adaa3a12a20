"""The embedded DuckDB database: opening, migrating and bookkeeping of runs.

One file holds everything (default ``cartatlas.duckdb`` in the working
directory, or ``$CARTATLAS_DB``).  Raw record versions are append-only; every
normalised table is derived from them and can be rebuilt with ``rebuild``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from cartatlas import __version__
from cartatlas.model import ImportStats, Reject
from cartatlas.store.migrations import LATEST_VERSION, MIGRATIONS

log = logging.getLogger(__name__)

DEFAULT_DB = "cartatlas.duckdb"


#: Rows per row group in the database file.  With DuckDB's default (122,880) every checkpoint of a
#: large import rewrites a partly filled row group of up to half a GB of records; at 16,384 rows an
#: import of 250,000 records ran 1.6 times as fast and left a file half the size.  DuckDB takes the
#: size per attachment, not from the file, so every open sets it.
ROW_GROUP_SIZE = 16_384
#: The name the database file is attached under.
CATALOG = "cartatlas"


def _connect(target: str, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to ``target``, attached with cartatlas's storage options and made the default."""
    if target == ":memory:":
        return duckdb.connect(target)
    con = duckdb.connect()
    quoted = target.replace("'", "''")
    options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
    try:
        con.execute(f"ATTACH '{quoted}' AS {CATALOG} ({options})")
        con.execute(f"USE {CATALOG}")
        # Spill files next to the database, as DuckDB does for a database it opens itself.
        con.execute(f"SET temp_directory = '{quoted}.tmp'")
    except BaseException:
        con.close()
        raise
    return con


class SchemaError(RuntimeError):
    """The database file cannot be used by this version of cartatlas."""


def default_db_path() -> Path:
    return Path(os.environ.get("CARTATLAS_DB") or DEFAULT_DB)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Run:
    """An open run: its id, and the stats it will be logged with (callers add to them or replace them)."""

    run_id: str
    stats: ImportStats


class Store:
    """A cartatlas database.  Use as a context manager, or call ``close``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path
        row = con.execute("SELECT current_database()").fetchone()
        self.catalog = str(row[0]) if row else "memory"

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to this database, for a result read while the main one writes.

        A cursor starts in DuckDB's default catalog, not in the attached
        cartatlas file (see ``_connect``), so it is pointed there first.
        """
        cursor = self.con.cursor()
        cursor.execute(f'USE "{self.catalog}"')
        return cursor

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None, *, read_only: bool = False, migrate: bool = True) -> Store:
        """Open (creating if needed) and bring the schema up to date.

        A file written by a newer cartatlas, or a DuckDB file that is not a
        cartatlas database, is refused with a message that says so rather
        than being modified.
        """
        target = str(path if path is not None else default_db_path())
        if target != ":memory:" and read_only and not Path(target).exists():
            raise SchemaError(f"{target}: no such database (import or sync something first)")
        try:
            con = _connect(target, read_only=read_only)
        except duckdb.Error as exc:
            raise SchemaError(f"{target}: cannot open as a DuckDB database: {exc}") from exc
        # Imports write in batches of a few MB; checkpointing after each (the
        # default 16 MB WAL threshold) roughly doubles write time for no gain.
        if not read_only:
            con.execute("SET checkpoint_threshold = '256MB'")
        store = cls(con, target)
        try:
            store._check_and_migrate(migrate=migrate and not read_only)
        except BaseException:
            con.close()
            raise
        return store

    def _tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    def schema_version(self) -> int:
        if "schema_migrations" not in self._tables():
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _check_and_migrate(self, *, migrate: bool) -> None:
        tables = self._tables()
        if tables and "schema_migrations" not in tables:
            raise SchemaError(
                f"{self.path}: this DuckDB file is not a cartatlas database "
                f"(it has tables {', '.join(sorted(tables)[:5])} but no schema_migrations)"
            )
        current = self.schema_version()
        if current > LATEST_VERSION:
            raise SchemaError(
                f"{self.path}: written by a newer cartatlas (schema version {current}; "
                f"this cartatlas {__version__} knows up to {LATEST_VERSION}). Upgrade cartatlas to open it."
            )
        if current == LATEST_VERSION:
            return
        if not migrate:
            raise SchemaError(
                f"{self.path}: schema version {current} is older than {LATEST_VERSION}; "
                "open it once without --read-only to migrate it"
            )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        needs_rebuild = False
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            if current:
                log.info("migrating %s to schema %d: %s", self.path, migration.version, migration.name)
            self.con.execute("BEGIN TRANSACTION")
            try:
                migration.apply(self.con)
                self.con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, now()],
                )
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            needs_rebuild |= migration.rebuild
        if needs_rebuild and current:
            from cartatlas.store.ingest import rebuild

            rebuild(self)

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------

    def start_run(self, kind: str, registry: str | None, source: str, params: dict[str, Any]) -> str:
        run_id = f"{now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.con.execute(
            "INSERT INTO runs (run_id, kind, registry, source, params, started_at, status, cartatlas_version) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
            [run_id, kind, registry, source, orjson.dumps(params, default=str).decode(), now(), __version__],
        )
        return run_id

    @contextmanager
    def run(self, kind: str, registry: str | None, source: str, params: dict[str, Any]) -> Iterator[Run]:
        """A logged run: its status is ok, partial (something rejected), failed or interrupted.

        Ctrl-C while DuckDB is writing surfaces as DuckDB's own exception; it is
        re-raised as KeyboardInterrupt so callers see one kind of interruption.
        """
        handle = Run(self.start_run(kind, registry, source, params), ImportStats())
        status = "failed"
        try:
            yield handle
            status = "partial" if handle.stats.rejected else "ok"
        except duckdb.InterruptException as exc:
            status = "interrupted"
            raise KeyboardInterrupt from exc
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.finish_run(handle.run_id, handle.stats, status)

    def finish_run(self, run_id: str, stats: ImportStats, status: str | None = None) -> None:
        final = status or ("partial" if stats.rejected else "ok")
        self.con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, seen = ?, new = ?, changed = ?, unchanged = ?, "
            "rejected = ? WHERE run_id = ?",
            [now(), final, stats.seen, stats.new, stats.changed, stats.unchanged, stats.rejected, run_id],
        )

    def save_rejects(self, run_id: str, rejects: list[Reject]) -> None:
        if not rejects:
            return
        at = now()
        self.con.executemany(
            "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
            [[run_id, r.source, r.locator, r.record_id, r.problem, at] for r in rejects],
        )

    # -- reading -----------------------------------------------------------------

    def arrow(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        """A query result as an Arrow table (dates stay dates, nested values stay nested).

        Runs on its own cursor so that a half-read result elsewhere on the
        main connection cannot block it.
        """
        cursor = self.cursor()
        try:
            table = cursor.sql(query, params=params or {}).to_arrow_table()
        finally:
            cursor.close()
        return table if table is not None else pa.table({})

    def summary(self) -> dict[str, Any]:
        """Counts a user wants after an import: what is stored, from where, how current."""
        q = self.con.execute
        raw = q(
            "SELECT registry, count(DISTINCT record_id), count(*), min(fetched_at), max(fetched_at) "
            "FROM raw_records GROUP BY registry ORDER BY registry"
        ).fetchall()
        trials = q(
            "SELECT registry, count(*), min(first_posted), max(first_posted), max(last_update_posted) "
            "FROM trials GROUP BY registry ORDER BY registry"
        ).fetchall()
        formats = q("SELECT source_format, count(*) FROM trials GROUP BY 1 ORDER BY 2 DESC").fetchall()
        status = q(
            "SELECT coalesce(overall_status, '(none)'), count(*) FROM trials GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        phases = q(
            "SELECT coalesce(array_to_string(phases, '/'), ''), count(*) FROM trials GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        countries = q(
            "SELECT country_code, count(*) FROM trial_countries GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15"
        ).fetchall()
        relations = q("SELECT relation, count(*) FROM classifications GROUP BY 1 ORDER BY 2 DESC").fetchall()
        platforms = q(
            "SELECT p, count(*) FROM (SELECT UNNEST(platforms) AS p FROM classifications "
            "WHERE relation IN ('therapy', 'follow_up')) GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        rejected = q("SELECT count(*) FROM rejects").fetchone()
        return {
            "database": self.path,
            "schema_version": self.schema_version(),
            "registries": [
                {
                    "registry": r[0],
                    "records": r[1],
                    "versions": r[2],
                    "first_fetched": r[3],
                    "last_fetched": r[4],
                }
                for r in raw
            ],
            "trials": [
                {
                    "registry": t[0],
                    "trials": t[1],
                    "first_posted_min": t[2],
                    "first_posted_max": t[3],
                    "last_update_max": t[4],
                }
                for t in trials
            ],
            "by_format": dict(formats),
            "by_status": dict(status),
            "by_phase": {k or "(none)": v for k, v in phases},
            "top_countries": dict(countries),
            "by_relation": dict(relations),
            "by_platform": dict(platforms),
            "rejects_logged": rejected[0] if rejected else 0,
        }
