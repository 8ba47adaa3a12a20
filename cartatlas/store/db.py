"""The embedded DuckDB database: opening, migrating and bookkeeping of runs.

One file holds everything (default ``cartatlas.duckdb`` in the working
directory, or ``$CARTATLAS_DB``).  Raw record versions are append-only; every
normalised table is derived from them and can be rebuilt with ``rebuild``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shlex
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

from cartatlas.model import ImportStats, Reject
from cartatlas.store.migrations import LATEST_VERSION, MIGRATIONS
from cartatlas.store.sandbox import QueryRefused, check_query, open_query_connection
from cartatlas.version import __version__

log = logging.getLogger(__name__)

DEFAULT_DB = "cartatlas.duckdb"


#: Rows per row group in the database file.  With DuckDB's default (122,880) every checkpoint of a
#: large import rewrites a partly filled row group of up to half a GB of records; at 16,384 rows an
#: import of 250,000 records ran 1.6 times as fast and left a file half the size.  DuckDB takes the
#: size per attachment, not from the file, so every open sets it.
ROW_GROUP_SIZE = 16_384
#: The name the database file is attached under.
CATALOG = "cartatlas"
#: The columns of a run the summary lists.
_RUN_COLUMNS = (
    "run_id",
    "kind",
    "registry",
    "started_at",
    "finished_at",
    "status",
    "seen",
    "new",
    "changed",
    "rejected",
)


#: The memory DuckDB may hold (``SET memory_limit``); past it, large joins and sorts spill to disk.
MEMORY_LIMIT_ENV = "CARTATLAS_MEMORY_LIMIT"
#: DuckDB's own default is 80% of the machine's memory, which it fills with cached pages as it reads: at
#: 560,000 trials the report's process reached 2.4 GiB, for no gain in time over 1.1 GiB with 512 MB
#: (``docs/performance.md``).  Imports and bulk screening lower it further while they run.
DEFAULT_MEMORY_LIMIT = "1GiB"


def _limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    try:
        con.execute("SELECT current_setting('memory_limit')")  # a connection that works, before blaming the value
        con.execute(f"SET memory_limit = '{value.replace(chr(39), '')}'")
    except duckdb.Error as exc:
        problem = f"${MEMORY_LIMIT_ENV}={value!r} is not a memory size DuckDB knows (e.g. 1GiB, 512MB): {exc}"
        raise StoreError(problem) from None


def _connect(target: str, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to ``target``, attached with cartatlas's storage options and made the default."""
    if target == ":memory:":
        con = duckdb.connect(target)
        _limit_memory(con)
        return con
    con = duckdb.connect()
    try:
        _limit_memory(con)
        _attach(con, target, read_only=read_only)
        # Spill files next to the database, as DuckDB does for a database it opens itself.
        quoted = target.replace("'", "''")
        con.execute(f"SET temp_directory = '{quoted}.tmp'")
    except BaseException:
        con.close()
        raise
    return con


def _attach(con: duckdb.DuckDBPyConnection, target: str, *, read_only: bool) -> None:
    quoted = target.replace("'", "''")
    options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
    con.execute(f"ATTACH '{quoted}' AS {CATALOG} ({options})")
    con.execute(f"USE {CATALOG}")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if there still is one.

    A COMMIT that fails (a full disk while writing the write-ahead log) has
    already ended its transaction: a ROLLBACK after it would fail too, and its
    "no transaction is active" would hide the real cause.
    """
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        log.debug("nothing to roll back: %s", exc)


class StoreError(RuntimeError):
    """The database cannot be used: the message says why, in words, and names the file."""


class SchemaError(StoreError):
    """The database file cannot be used by this version of cartatlas."""


class DatabaseInUse(StoreError):
    """Another process has the database open (DuckDB allows one writer, or any number of readers)."""


class StorageError(StoreError):
    """DuckDB could not write the database's files: the disk is full, read-only, or not ours."""


#: Operating-system failures worth naming in place of DuckDB's wording (and of what they caused).
_STORAGE_CAUSES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")
_STORAGE_ADVICE = {
    "No space left on device": "; free some space and run the command again (what was saved before is kept)",
    "Disk quota exceeded": "; free some space and run the command again (what was saved before is kept)",
    "Read-only file system": "; commands that only read (report, summary, sql, export) work on it",
    "Permission denied": "; commands that only read (report, summary, sql, export) work on it",
}


def storage_error(exc: BaseException, path: str) -> StorageError | None:
    """A one-line ``StorageError`` for a failure to write the database's files, else None.

    Looks through the chain of exceptions: the cause may sit under a later
    failure it provoked.  Names the file DuckDB could not write and what it is
    to the database (``path``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        cause = next((c for c in _STORAGE_CAUSES if c in text), None)
        if isinstance(current, duckdb.Error | OSError) and cause is not None:
            named = re.search(r'file "([^"]+)"', text)
            file = named.group(1) if named else getattr(current, "filename", None) or path
            advice = _STORAGE_ADVICE.get(cause, "")
            return StorageError(f"{cause.lower()} while writing {file}{_role(file, path)}{advice}")
        current = current.__cause__ or current.__context__
    return None


def _role(file: str, path: str) -> str:
    """What a file DuckDB writes is to the database at ``path``."""
    if path == ":memory:":
        return ""
    db = os.path.abspath(path)
    whole = os.path.abspath(file)
    if whole == db:
        return " (the database file)"
    if whole == db + ".wal":
        return " (the database's write-ahead log)"
    if whole.startswith(db + ".tmp"):
        return " (the database's temporary files)"
    return ""


def _open_error(target: str, exc: duckdb.Error, *, read_only: bool) -> StoreError:
    """The reason ``target`` could not be opened, in words."""
    text = str(exc)
    if read_only and "Permission denied" in text:
        return StoreError(f"{target}: permission denied: this user cannot read the file")
    if "Could not set lock on file" in text:
        pid = re.search(r"\(PID (\d+)\)", text)
        if pid is not None:
            who = _process(int(pid.group(1)))
            return DatabaseInUse(
                f"{target}: in use by another {who}, PID {pid.group(1)}; "
                "wait for it to finish (or stop it) and try again"
            )
        return DatabaseInUse(f"{target}: in use by another process ({text})")
    if "Unique file handle conflict" in text:
        return DatabaseInUse(f"{target}: already open in this process; close the other Atlas first")
    return storage_error(exc, target) or SchemaError(f"{target}: cannot open as a DuckDB database: {exc}")


def _process(pid: int) -> str:
    """``cartatlas process`` when process ``pid`` runs cartatlas, else ``process (its program)``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "process"
    words = [a.decode(errors="replace") for a in argv if a]
    if any("cartatlas" in w for w in words):
        return "cartatlas process"
    return f"process ({Path(words[0]).name})" if words else "process"


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

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, *, read_only: bool = False) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        row = con.execute("SELECT current_database()").fetchone()
        self.catalog = str(row[0]) if row else "memory"
        #: The read-only query connection of a read-only store, opened on first use (see ``querying``).
        self._query_con: duckdb.DuckDBPyConnection | None = None
        #: Runs this store started and has not finished: every other run marked running is dead.
        self._own_runs: set[str] = set()
        #: What the migrations just applied left for the pipeline to do, in order (``Migration.then``,
        #: and "rebuild" when derived tables were recreated): ``cartatlas.pipeline.upgrade`` does it.
        self.upgrades: list[str] = []

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
            raise _open_error(target, exc, read_only=read_only) from exc
        # Imports write in batches of a few MB; checkpointing after each (the
        # default 16 MB WAL threshold) roughly doubles write time for no gain.
        if not read_only:
            con.execute("SET checkpoint_threshold = '256MB'")
        store = cls(con, target, read_only=read_only)
        try:
            store._check_and_migrate(migrate=migrate and not read_only)
            if not read_only:
                store._mark_dead_runs()
        except BaseException:
            con.close()
            raise
        return store

    def _tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    def has_table(self, name: str) -> bool:
        """Whether the database has this table (one made by an older schema may lack a newer one)."""
        return name in self._tables()

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
            # Made by an older cartatlas, or its creation was cut short: any command that writes
            # (and cartatlas.open without read_only) finishes the schema.
            raise SchemaError(
                f"{self.path}: schema version {current} of {LATEST_VERSION} (made by an older cartatlas, or its "
                f"creation was interrupted); bring it up to date with: cartatlas rebuild --db {shlex.quote(self.path)}"
            )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        needs_rebuild = False
        upgrades: list[str] = []
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
                rollback(self.con)
                raise
            needs_rebuild |= migration.rebuild
            upgrades.extend(migration.then)
        if needs_rebuild and current:
            upgrades.append("rebuild")
        # The store only stores: re-normalising and recording derived state are the pipeline's
        # (``cartatlas.pipeline.upgrade.finish_upgrade``, which ``cartatlas.open`` runs next).
        self.upgrades = upgrades

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        if self._query_con is not None:
            self._query_con.close()
            self._query_con = None
        self.con.close()

    # -- users' queries ----------------------------------------------------------

    @contextmanager
    def querying(self, query: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to run ``query`` on, if it is a single query (else ``QueryRefused``).

        The connection has the file attached read-only, no access to other
        files, the network or extensions, and a locked configuration (see
        ``cartatlas.store.sandbox``).  A read-only store keeps one beside its
        own.  A writable store holds the file for writing, and DuckDB lets a
        process attach a file only once while it is written, so the store
        hands the file over for the query and takes it back afterwards (some
        70 ms on the 18 MB database of all sample data); the caller must read
        the whole result within the block.
        """
        check_query(query)
        if self.path == ":memory:":
            raise QueryRefused("an in-memory database has no file to query read-only; ask for a writable connection")
        if self.read_only:
            if self._query_con is None:
                self._query_con = open_query_connection(self.path, CATALOG)
            yield self._query_con
            return
        self.con.execute("USE memory")
        try:
            self.con.execute(f"DETACH {CATALOG}")
        except BaseException:
            self.con.execute(f"USE {CATALOG}")
            raise
        try:
            con = open_query_connection(self.path, CATALOG)
            try:
                yield con
            finally:
                con.close()
        finally:
            try:
                _attach(self.con, self.path, read_only=False)
            except duckdb.Error as exc:
                raise _open_error(self.path, exc, read_only=False) from exc

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
        self._own_runs.add(run_id)
        return run_id

    def _mark_dead_runs(self) -> None:
        """Runs still marked running were cut short (a killed process): say so.

        DuckDB lets one process write a file, and no other process read it
        meanwhile, so whoever opens the file for writing knows that no run it
        did not start itself is still going.
        """
        self.con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")

    def _status_sql(self) -> str:
        """SQL for a run's status as it stands: ``running`` only for the runs of this open store.

        A run of a process that is gone was interrupted; a read-only store
        cannot write that down, so it reads it so (see ``_mark_dead_runs``).
        """
        own = ", ".join("'" + r.replace("'", "''") + "'" for r in sorted(self._own_runs))
        alive = f" AND run_id NOT IN ({own})" if own else ""
        return f"CASE WHEN status = 'running'{alive} THEN 'interrupted' ELSE status END"

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
        except duckdb.Error as exc:
            translated = storage_error(exc, self.path)
            if translated is None:
                raise
            raise translated from exc
        finally:
            try:
                self.finish_run(handle.run_id, handle.stats, status)
            except duckdb.Error as exc:
                if status in ("ok", "partial"):
                    raise
                # The failure that ended the run says more than this one; a later open marks the run interrupted.
                log.warning("run %s could not be marked %s: %s", handle.run_id, status, exc)

    def finish_run(self, run_id: str, stats: ImportStats, status: str | None = None) -> None:
        final = status or ("partial" if stats.rejected else "ok")
        self.con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, seen = ?, new = ?, changed = ?, unchanged = ?, "
            "rejected = ? WHERE run_id = ?",
            [now(), final, stats.seen, stats.new, stats.changed, stats.unchanged, stats.rejected, run_id],
        )
        self._own_runs.discard(run_id)

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
        # Trials whose current version has no screening yet (an import cut short before it classified).
        unclassified = q(
            "SELECT count(*) FROM trials t LEFT JOIN classifications c USING (registry, trial_id) "
            "WHERE c.trial_id IS NULL OR c.content_hash <> t.content_hash"
        ).fetchone()
        status_sql = self._status_sql()
        runs = q(f"SELECT {status_sql} AS s, count(*) FROM runs GROUP BY s ORDER BY 2 DESC, 1").fetchall()
        last_runs = q(
            f"SELECT {', '.join(status_sql if c == 'status' else c for c in _RUN_COLUMNS)} "
            "FROM runs ORDER BY started_at DESC LIMIT 5"
        ).fetchall()
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
            "unclassified_trials": unclassified[0] if unclassified else 0,
            "runs": dict(runs),
            "last_runs": [dict(zip(_RUN_COLUMNS, r, strict=True)) for r in last_runs],
        }
