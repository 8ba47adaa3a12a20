"""Writing raw record versions and their normalised rows, batch by batch.

Records are prepared in batches of ``BATCH_SIZE`` and written in
transactions of about ``COMMIT_SIZE``: a transaction's raw versions, the
normalised rows they produce and the rejects found are committed together or
not at all, so an interrupted import leaves whole transactions behind and
never half a record.  (A sync page is one transaction of its own.)

Which version of a record is current: the one with the latest registry
update date; on a tie, the richer format; then the latest stored.  Importing
an old file after a fresh sync therefore adds its versions to the history but
does not roll the normalised view back.

A batch goes through three steps.  *Prepare* is all the CPU work that needs
no database: serialise and hash every record, normalise it, and lay the
results out as Arrow tables.  *Plan* looks up the stored hashes of the
records of a transaction's batches and decides which are new versions and
which become current.  *Commit* writes the chosen rows.  Large JSON-lines
files (``LineBatch``) are prepared in worker processes, which also parse
them, and send back Arrow IPC: the importing process then only cuts the file
into lines, plans and writes, and never builds a Python object per record.
Commits run on a writer thread, overlapping the next transaction's batches.
Where the time goes is measured in ``docs/performance.md``.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from cartatlas.model import ImportStats, RawRecord, Reject, Skipped, Trial, _order_key
from cartatlas.normalise.formats import DerivedTable, FormatSpec, derived_tables, format_spec
from cartatlas.sources.files import Item, LineBatch
from cartatlas.sources.limits import max_record_bytes, record_too_large
from cartatlas.store.bulk import import_settings
from cartatlas.store.db import Store, now, rollback

log = logging.getLogger(__name__)

#: Records prepared together (in one worker, or in this process).
BATCH_SIZE = 2000
#: Records written in one transaction: prepared batches are merged up to this size.  DuckDB's cost
#: per statement and per commit is large next to its cost per row (a 2,000-record commit costs 60%
#: more per record than a 10,000-record one); larger transactions gain little more and hold more memory.
COMMIT_SIZE = 10_000
#: Worker processes that prepare large JSON-lines inputs; ``0`` prepares everything in this process.
#: Defaults to the number of CPUs (at most 4: the writer and the reading process need a core too).
WORKERS_ENV = "CARTATLAS_IMPORT_WORKERS"
_MAX_WORKERS = 4

_RAW_SCHEMA = pa.schema(
    [
        ("version_id", pa.int64()),
        ("registry", pa.string()),
        ("record_id", pa.string()),
        ("content_hash", pa.string()),
        ("format", pa.string()),
        ("source_kind", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("record_updated", pa.date32()),
        ("run_id", pa.string()),
        ("payload", pa.string()),
    ]
)
#: A prepared record: the stored columns known before planning, and the derived table of its row.
_PREPARED_SCHEMA = pa.schema(
    [(f.name, f.type) for f in _RAW_SCHEMA if f.name not in ("version_id", "fetched_at", "run_id")]
    + [("target", pa.string())]
)
#: Links a normalised row to its record (row number in the prepared records table).
_ROW = "_row"


def _label_publication(row: dict[str, Any]) -> dict[str, Any]:
    from cartatlas.publications.classify import classify_publication

    return classify_publication(row)


#: Labels computed from a normalised row before it is stored, by target table: an article's kind, CAR,
#: targets and country are stored with it (``cartatlas.pipeline.derived.relabel_publications`` redoes
#: them when the knowledge base changes).  Trials are screened later, by ``derive``.
LABELLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"publications": _label_publication}


def normalised_row(spec: FormatSpec, payload: Any) -> Trial:
    """parse -> normalise -> label: the row one record gives its derived table (``spec.target``)."""
    row = spec.to_trial(payload)
    labeller = LABELLERS.get(spec.target.name)
    if labeller is not None:
        row.update(labeller(row))  # type: ignore[typeddict-item, arg-type]
    return row


def payload_text(record: RawRecord) -> str:
    """The stored form of a payload: JSON with sorted keys, or the text itself."""
    if isinstance(record.payload, str):
        return record.payload
    return orjson.dumps(record.payload, option=orjson.OPT_SORT_KEYS).decode()


def content_hash(format_name: str, text: str) -> str:
    view = format_spec(format_name).hash_view(text)
    return hashlib.sha256(view.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class KnownHashes:
    """The content hashes stored before an import began (their first 64 bits, sorted).

    A weekly re-import of a whole registry export brings mostly records that
    are stored already, and normalising them (with their Arrow conversion)
    is two thirds of preparing a record.  A record whose hash is known is
    therefore prepared without its normalised row: planning decides whether
    it is really an unchanged version, and the rare record that is not (a
    hash stored for another record, or two hashes sharing 64 bits) is
    normalised then, in ``_plan``, so the outcome never depends on this set.
    """

    prefixes: np.ndarray

    def __contains__(self, digest: str) -> bool:
        try:
            value = np.uint64(int(digest[:16], 16))
        except ValueError:
            return False
        i = int(self.prefixes.searchsorted(value))
        return i < len(self.prefixes) and bool(self.prefixes[i] == value)

    def __len__(self) -> int:
        return len(self.prefixes)


def known_hashes(store: Store) -> KnownHashes | None:
    """The stored content hashes as a ``KnownHashes`` (None when nothing is stored yet)."""
    table = store.con.sql(
        "SELECT DISTINCT TRY_CAST('0x' || content_hash[1:16] AS UBIGINT) AS h FROM raw_records "
        "WHERE h IS NOT NULL ORDER BY h"
    ).to_arrow_table()
    if table is None or table.num_rows == 0:
        return None
    return KnownHashes(table.column(0).to_numpy())


@dataclass(slots=True)
class _Batch:
    """One batch after preparation, columnar so that it crosses a process boundary as Arrow IPC."""

    stats: ImportStats
    #: One row per record that serialised and normalised (``_PREPARED_SCHEMA``).
    records: pa.Table
    #: Normalised rows by derived table name; ``_ROW`` points into ``records``.
    derived: dict[str, pa.Table]
    #: Rows of ``records`` rejected while planning (a known hash whose record failed to normalise).
    dropped: set[int] = field(default_factory=set)


_ROW_SCHEMAS: dict[str, pa.Schema] = {}


def _row_schema(table: DerivedTable) -> pa.Schema:
    """A derived table's columns as prepared: the version id is not known yet, the record's row is."""
    schema = _ROW_SCHEMAS.get(table.name)
    if schema is None:
        schema = pa.schema([f for f in table.schema if f.name != "version_id"] + [pa.field(_ROW, pa.int32())])
        _ROW_SCHEMAS[table.name] = schema
    return schema


def _derived_arrow(table: DerivedTable, rows: list[dict[str, Any]]) -> pa.Table:
    """Normalised rows as Arrow columns, ready for a plain ``INSERT`` in the writer.

    ``from_pylist`` here, in the worker, keeps the conversion off the single
    writer.  (Serialising the rows to JSON and parsing them with DuckDB's
    ``from_json`` was tried: it costs twice as much.)
    """
    return pa.Table.from_pylist(rows, schema=_row_schema(table))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Preparing a batch allocates hundreds of thousands of acyclic objects (parsed JSON, rows).

    Each full collection the allocator triggers meanwhile walks all of them; pausing the cyclic
    collector for the batch (reference counting still frees everything) halves the cost of parsing
    and normalising.  Anything cyclic is collected once the collector runs again, which must be
    after the batch's objects are gone: the first allocation after ``gc.enable()`` would otherwise
    walk them all once more.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _prepare(items: Iterable[Item], known: KnownHashes | None = None) -> _Batch:
    """Serialise, hash and normalise a batch: all the CPU work that needs no database.

    Records whose hash is in ``known`` are not normalised (see ``KnownHashes``).
    """
    with _gc_paused():
        return _prepare_batch(items, known)  # its parsed records and rows are freed before the collector resumes


def _prepare_batch(items: Iterable[Item], known: KnownHashes | None = None) -> _Batch:
    stats = ImportStats()
    columns: dict[str, list[Any]] = {name: [] for name in _PREPARED_SCHEMA.names}
    column_lists = [columns[name] for name in _PREPARED_SCHEMA.names]
    rows: dict[str, tuple[DerivedTable, list[dict[str, Any]]]] = {}
    n = 0
    limit = max_record_bytes()
    for item in items:
        if isinstance(item, Reject):
            stats.rejects.append(item)
            continue
        if isinstance(item, Skipped):
            stats.skipped.append(item)
            continue
        stats.seen += 1
        try:
            spec = format_spec(item.format)
            text = payload_text(item)
            digest = content_hash(item.format, text)
        except (TypeError, ValueError) as exc:
            problem = f"cannot serialise record: {exc}"
            stats.rejects.append(Reject(item.source, item.locator, problem, item.record_id))
            continue
        if len(text) > limit:
            # Whatever its format (a study in a JSON document, an XML file): normalising and screening a
            # record costs memory in proportion to its size, so one record may not take the machine.
            stats.rejects.append(Reject(item.source, item.locator, record_too_large(len(text), limit), item.record_id))
            continue
        if known is not None and digest in known:
            # Most likely a version stored already: no normalised row (no target) unless planning needs one.
            values = (*_record_values(item, digest, text), None)
            for column, value in zip(column_lists, values, strict=True):
                column.append(value)
            n += 1
            continue
        try:
            trial = normalised_row(spec, item.payload)
        except Exception as exc:  # a normaliser bug must not lose the rest of the batch
            stats.rejects.append(Reject(item.source, item.locator, f"cannot normalise: {exc!r}", item.record_id))
            continue
        target = spec.target
        row_id = trial[target.id_column]  # type: ignore[literal-required]
        if row_id != item.record_id:
            problem = f"record id {row_id} does not match {item.record_id}"
            stats.rejects.append(Reject(item.source, item.locator, problem, item.record_id))
            continue
        row: dict[str, Any] = dict(trial)
        row["content_hash"] = digest
        row[_ROW] = n
        group = rows.get(target.name)
        if group is None:
            group = rows[target.name] = (target, [])
        group[1].append(row)
        values = (*_record_values(item, digest, text), target.name)
        for column, value in zip(column_lists, values, strict=True):
            column.append(value)
        n += 1
    records = pa.Table.from_pydict(columns, schema=_PREPARED_SCHEMA)
    derived = {name: _derived_arrow(t, r) for name, (t, r) in rows.items()}
    return _Batch(stats, records, derived)


def _record_values(item: RawRecord, digest: str, text: str) -> tuple[Any, ...]:
    """A prepared record's stored columns (``_PREPARED_SCHEMA`` but its target), in order."""
    return (
        item.registry,
        item.record_id,
        digest,
        item.format,
        item.source_kind,
        item.source,
        item.locator,
        item.record_updated,
        text,
    )


def _merge(batches: list[_Batch]) -> _Batch:
    """Consecutive prepared batches as one, in order (for one transaction)."""
    if len(batches) == 1:
        return batches[0]
    stats = ImportStats()
    derived: dict[str, list[pa.Table]] = {}
    offset = 0
    for batch in batches:
        stats.add(batch.stats)
        for name, table in batch.derived.items():
            rows = pa.array(table.column(_ROW).to_numpy() + offset, pa.int32())
            derived.setdefault(name, []).append(table.set_column(table.schema.get_field_index(_ROW), _ROW, rows))
        offset += batch.records.num_rows
    records = pa.concat_tables([b.records for b in batches])
    return _Batch(stats, records, {name: pa.concat_tables(tables) for name, tables in derived.items()})


# -- worker processes ---------------------------------------------------------------------------


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


_IpcBatch = tuple[ImportStats, bytes, dict[str, bytes]]


def _prepare_lines(batch: LineBatch, known: KnownHashes | None = None) -> _IpcBatch:
    """In a worker process: parse, serialise, hash and normalise a batch of lines; Arrow IPC back."""
    prepared = _prepare(batch.items(), known)
    return (
        prepared.stats,
        _to_ipc(prepared.records),
        {name: _to_ipc(table) for name, table in prepared.derived.items()},
    )


def worker_main(read_fd: int, write_fd: int, known_path: str | None = None) -> None:
    """A preparing worker: ``LineBatch``es in, prepared batches (Arrow IPC) out, until its input closes.

    Ctrl-C is the importing process's to handle: it closes the pipes, and the
    worker ends at the next read.  Everything imported before the first batch
    is frozen out of the cyclic collector, so collections only see batch data.
    ``known_path`` is a ``.npy`` file of ``KnownHashes`` prefixes, mapped read-only
    (the workers share its pages).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cartatlas.normalise  # noqa: F401  (registers every format)

    known = KnownHashes(np.load(known_path, mmap_mode="r")) if known_path else None
    gc.freeze()
    source = Connection(read_fd, writable=False)
    sink = Connection(write_fd, readable=False)
    while True:
        try:
            batch = source.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[str, Any] = ("ok", _prepare_lines(batch, known))
        except Exception:
            result = ("error", traceback.format_exc())
        try:
            sink.send(result)
        except OSError:
            return


def import_workers() -> int:
    """How many worker processes prepare a large import (``$CARTATLAS_IMPORT_WORKERS`` or the CPU count)."""
    if os.name != "posix" or not sys.executable:  # workers inherit pipe descriptors (POSIX only)
        return 0
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        return max(0, int(value))
    return min(os.cpu_count() or 1, _MAX_WORKERS)


def _widen_pipe(fd: int) -> None:
    """A batch is megabytes; through the default 64 KiB pipe it takes a hundred context switches, each a
    wait for a busy CPU on a loaded machine.  Linux lets a pipe grow (``F_SETPIPE_SZ``); elsewhere, no-op."""
    try:
        import fcntl

        fcntl.fcntl(fd, 1031, _PIPE_SIZE)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass


_PIPE_SIZE = 1 << 20


class _Workers:
    """Worker processes started with ``python -c``, talking over pipes.

    Not ``multiprocessing``: its spawned children re-import the user's main
    module, which breaks any script without an ``if __name__ == "__main__"``
    guard, and forking a process that holds DuckDB and Arrow threads is not
    safe.  Each worker has at most one batch at a time, so neither side can
    block on a full pipe while the other waits for it.
    """

    def __init__(self, n: int, known: KnownHashes | None = None) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.procs: list[tuple[subprocess.Popen[bytes], Connection, Connection]] = []
        self.busy: list[bool] = []
        self.used = False
        self.known_file: str | None = None
        try:
            if known is not None:
                fd, self.known_file = tempfile.mkstemp(prefix="cartatlas-known-", suffix=".npy")
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, known.prefixes)
            for _ in range(n):
                to_child_r, to_child_w = os.pipe()
                from_child_r, from_child_w = os.pipe()
                code = (
                    "from cartatlas.pipeline.ingest import worker_main; "
                    f"worker_main({to_child_r}, {from_child_w}, {self.known_file!r})"
                )
                for fd in (to_child_w, from_child_w):
                    _widen_pipe(fd)
                proc = subprocess.Popen(
                    [sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL
                )
                os.close(to_child_r)
                os.close(from_child_w)
                self.procs.append(
                    (proc, Connection(to_child_w, readable=False), Connection(from_child_r, writable=False))
                )
                self.busy.append(False)
        except BaseException:
            self.close()
            raise

    def send(self, i: int, batch: LineBatch) -> None:
        self.procs[i][1].send(batch)
        self.busy[i] = True
        self.used = True

    def receive(self, i: int) -> _IpcBatch:
        try:
            status, value = self.procs[i][2].recv()
        except EOFError:
            raise RuntimeError(f"import worker {i} ended unexpectedly (exit code {self.procs[i][0].poll()})") from None
        self.busy[i] = False
        if status != "ok":
            raise RuntimeError(f"import worker {i} failed:\n{value}")
        return cast(_IpcBatch, value)

    def close(self) -> None:
        for _proc, to_child, from_child in self.procs:
            to_child.close()
            from_child.close()
        for proc, _, _ in self.procs:
            if not self.used:  # started ahead for a file that turned out small: no need to wait for its imports
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        if self.known_file is not None:
            Path(self.known_file).unlink(missing_ok=True)
            self.known_file = None


#: Full line batches prepared in this process before worker processes take over, and the batch at
#: which they are started (in the background: their start-up overlaps the batches prepared here).  A
#: worker spends about half a second of CPU importing cartatlas, which a file of a few thousand lines
#: never earns back on 2 cores: with workers from the first batch, 2,500 records took 1.6 s instead of
#: 0.7 s and 10,000 took 3.1 s instead of 2.6 s; from about 25,000 records on, the workers win.
WORKERS_AFTER = 5
WORKERS_START_AT = 2


class _Preparer:
    """Prepares batches in order, in this process or, for large line files, in worker processes.

    Each worker holds at most one batch, so at most ``workers`` batches are in
    flight and memory stays flat however large the input.  The workers take
    over only after ``WORKERS_AFTER`` full ``LineBatch``es: a small import
    never waits for them.
    """

    def __init__(self, workers: int, batch_size: int, known: KnownHashes | None = None) -> None:
        self.known = known
        self.workers = workers
        self.batch_size = batch_size
        self.pool: _Workers | None = None
        self.full_batches = 0
        self.next_worker = 0
        #: Prepared batches, or the index of the worker preparing one, in input order.
        self.queue: deque[_Batch | int] = deque()

    def push(self, unit: Sequence[Item] | LineBatch) -> Iterator[_Batch]:
        """Start preparing ``unit``; yield the batches that are due, oldest first."""
        if isinstance(unit, LineBatch) and unit.n_lines >= self.batch_size and self.workers > 0:
            self.full_batches += 1
            if self.pool is None and self.full_batches >= min(WORKERS_START_AT, WORKERS_AFTER + 1):
                self.pool = _Workers(self.workers, self.known)
        # A short batch (the end of a large file) goes to the workers too once they have taken over.
        pool = self.pool
        if isinstance(unit, LineBatch) and pool is not None and (pool.used or self.full_batches > WORKERS_AFTER):
            i = self.next_worker
            self.next_worker = (i + 1) % self.workers
            while pool.busy[i]:  # its previous batch is still queued: hand batches on until it is out
                yield self._next()
            pool.send(i, unit)
            self.queue.append(i)
        else:
            self.queue.append(_prepare(unit.items() if isinstance(unit, LineBatch) else unit, self.known))
        while self.queue and isinstance(self.queue[0], _Batch):
            yield self._next()

    def drain(self) -> Iterator[_Batch]:
        while self.queue:
            yield self._next()

    def _next(self) -> _Batch:
        head = self.queue.popleft()
        if isinstance(head, _Batch):
            return head
        assert self.pool is not None
        stats, records, derived = self.pool.receive(head)
        return _Batch(stats, _from_ipc(records), {name: _from_ipc(data) for name, data in derived.items()})

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def _units(items: Iterable[Item | LineBatch], size: int) -> Iterator[list[Item] | LineBatch]:
    """Batches of up to ``size`` items, in order; a full ``LineBatch`` is a batch of its own.

    A short ``LineBatch`` (a small file) is unpacked into the running batch, so
    that small files of every format share batches and transactions.
    """
    chunk: list[Item] = []
    for item in items:
        if isinstance(item, LineBatch):
            if item.n_lines >= size:
                if chunk:
                    yield chunk
                    chunk = []
                yield item
                continue
            for sub in item.items():
                chunk.append(sub)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def save_records(
    store: Store,
    items: Iterable[Item | LineBatch],
    run_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    commit_size: int = COMMIT_SIZE,
    on_batch: Callable[[ImportStats], None] | None = None,
    skip_known: bool = False,
) -> ImportStats:
    """Store new and changed versions, refresh normalised rows, log rejects.

    ``skip_known`` prepares records whose content hash is stored already
    without normalising them (``KnownHashes``): what a re-import of a whole
    export needs, where most records did not change.  The stored result is
    the same either way.

    ``items`` may interleave records and rejects (a reader reports a broken
    record in place and goes on), and ``LineBatch``es of unparsed lines
    (``read_path_batches``), which ``import_workers()`` worker processes
    prepare.  ``on_batch`` receives each batch's stats after its
    commit, which is what a progress bar or a sync checkpoint needs.

    Batch N is committed on a writer thread while later batches are read,
    parsed and normalised (DuckDB releases the GIL while it writes).  A batch
    only consults the database after the previous commit has finished, so
    version decisions always see every earlier batch.
    """
    total = ImportStats()
    pending: tuple[Future[None], ImportStats] | None = None
    group: list[_Batch] = []

    def settle() -> None:
        nonlocal pending
        if pending is not None:
            future, done = pending
            pending = None
            future.result()
            total.add(done)
            if on_batch is not None:
                on_batch(done)

    def write(batch: _Batch) -> None:
        group.append(batch)
        if sum(b.records.num_rows for b in group) >= commit_size:
            flush()

    def flush() -> None:
        nonlocal pending
        if not group:
            return
        merged = _merge(group)
        group.clear()
        settle()
        raw, derived = _plan(store, merged, run_id)
        pending = (writer.submit(_commit, store, run_id, raw, derived, merged.stats.rejects), merged.stats)

    preparer = _Preparer(import_workers(), batch_size, known_hashes(store) if skip_known else None)
    with import_settings(store), ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartatlas-writer") as writer:
        try:
            for unit in _units(items, batch_size):
                for batch in preparer.push(unit):
                    write(batch)
            for batch in preparer.drain():
                write(batch)
            flush()
            settle()
            if total.new + total.changed >= _CHECKPOINT_AFTER * batch_size:
                # After a large import, write the last rows into the file now, within the import's
                # memory limit: the checkpoint on close ran with the default limit and, at 250,000
                # records, held 3 GB.  (Small imports and sync pages leave it to DuckDB.)
                store.con.execute("CHECKPOINT")
        except BaseException:
            # Let an in-flight commit finish (or roll back) before the error propagates.
            if pending is not None:
                pending[0].exception()
            raise
        finally:
            preparer.close()
    return total


#: Batches after which an import ends with an explicit checkpoint (see ``save_records``).
_CHECKPOINT_AFTER = 10


@dataclass(slots=True)
class _Derived:
    """Normalised rows bound for one derived table, and which of them replace a stored row."""

    table: DerivedTable
    rows: pa.Table
    replaced: list[tuple[str, str]] = field(default_factory=list)


def _plan(store: Store, batch: _Batch, run_id: str) -> tuple[pa.Table | None, list[_Derived]]:
    """Decide which prepared records are new versions and which become current."""
    stats = batch.stats
    records = batch.records
    registries: list[str] = records.column("registry").to_pylist()
    record_ids: list[str] = records.column("record_id").to_pylist()
    digests: list[str] = records.column("content_hash").to_pylist()
    keys = list(zip(registries, record_ids, strict=True))
    existing: dict[tuple[str, str], set[str]] = {}
    current: dict[tuple[str, str], tuple[Any, int, int]] = {}
    if keys:
        unique = set(keys)
        rows = store.con.execute(
            "SELECT r.registry, r.record_id, r.content_hash, r.record_updated, r.format, r.version_id "
            "FROM raw_records r JOIN (SELECT UNNEST(?) AS registry, UNNEST(?) AS record_id) k "
            "USING (registry, record_id)",
            [[k[0] for k in unique], [k[1] for k in unique]],
        ).fetchall()
        for registry, record_id, digest, updated, fmt, version_id in rows:
            key = (registry, record_id)
            existing.setdefault(key, set()).add(digest)
            order = _order_key(updated, format_spec(fmt).rank, version_id)
            if key not in current or order > current[key]:
                current[key] = order

    if keys:
        _normalise_unknown(batch, keys, digests, existing)
        records = batch.records  # with the targets of the records normalised there
    ids = _reserve_version_ids(store, len(keys)) if keys else iter(())
    taken: list[int] = []
    version_ids: list[int] = []
    winners: dict[tuple[str, str], tuple[tuple[Any, int, int], int, int]] = {}
    updated_col: list[Any] | None = None
    ranks: list[int] = []
    for i, key in enumerate(keys):
        if i in batch.dropped:
            continue
        seen_hashes = existing.setdefault(key, set())
        digest = digests[i]
        if digest in seen_hashes:
            stats.unchanged += 1
            continue
        if seen_hashes:
            stats.changed += 1
        else:
            stats.new += 1
        seen_hashes.add(digest)
        version_id = next(ids)
        taken.append(i)
        version_ids.append(version_id)
        if updated_col is None:
            updated_col = records.column("record_updated").to_pylist()
            ranks = [format_spec(f).rank for f in records.column("format").to_pylist()]
        order = _order_key(updated_col[i], ranks[i], version_id)
        best = winners.get(key)
        if order > current.get(key, (-2, 0, 0)) and (best is None or order > best[0]):
            winners[key] = (order, i, version_id)

    raw: pa.Table | None = None
    if taken:
        # A first import keeps every record, in order: no need to copy the payloads.
        chosen = records if len(taken) == records.num_rows else records.take(pa.array(taken, pa.int64()))
        n = len(taken)
        fetched_at = now()
        raw = pa.table(
            {
                "version_id": pa.array(version_ids, pa.int64()),
                **{name: chosen.column(name) for name in _PREPARED_SCHEMA.names if name != "target"},
                "fetched_at": pa.repeat(pa.scalar(fetched_at, _RAW_SCHEMA.field("fetched_at").type), n),
                "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
            }
        ).select(_RAW_SCHEMA.names)

    derived: list[_Derived] = []
    if winners:
        targets: list[str] = records.column("target").to_pylist()
        by_target: dict[str, tuple[list[int], list[int], list[tuple[str, str]]]] = {}
        for key, (_, i, version_id) in winners.items():
            rows_of, vids, replaced = by_target.setdefault(targets[i], ([], [], []))
            rows_of.append(i)
            vids.append(version_id)
            if key in current:
                replaced.append(key)
        for name, (rows_of, vids, replaced) in by_target.items():
            table = batch.derived[name]
            row_numbers = table.column(_ROW).to_pylist()
            if row_numbers == rows_of:  # every row, in order (a first import)
                picked = table.drop_columns([_ROW])
            else:
                position = {r: j for j, r in enumerate(row_numbers)}
                picked = table.take(pa.array([position[r] for r in rows_of], pa.int64())).drop_columns([_ROW])
            picked = picked.append_column("version_id", pa.array(vids, pa.int64()))
            derived.append(_Derived(_derived_table(name), picked, replaced))
    stats.rejected = len(stats.rejects)
    for r in stats.rejects:
        log.debug("rejected %s", r)
    return raw, derived


def _normalise_unknown(
    batch: _Batch, keys: list[tuple[str, str]], digests: list[str], existing: dict[tuple[str, str], set[str]]
) -> None:
    """Normalise the records prepared without a row (``KnownHashes``) whose hash is not stored for them.

    Rare: a hash stored for another record, or 64-bit prefixes that collide.
    They get the row the full preparation would have given them, or become
    rejects as they would have, so skipping known hashes never changes what
    is stored.
    """
    targets = batch.records.column("target")
    if targets.null_count == 0:
        return
    missing = [
        i
        for i, target in enumerate(targets.to_pylist())
        if target is None and digests[i] not in existing.get(keys[i], ())
    ]
    if not missing:
        return
    chosen = batch.records.take(pa.array(missing, pa.int64())).to_pylist()
    rows: dict[str, tuple[DerivedTable, list[dict[str, Any]]]] = {}
    target_names = targets.to_pylist()
    for i, rec in zip(missing, chosen, strict=True):
        spec = format_spec(rec["format"])
        try:
            trial = normalised_row(spec, orjson.loads(rec["payload"]) if spec.is_json else rec["payload"])
            row_id = trial[spec.target.id_column]  # type: ignore[literal-required]
            problem = None if row_id == rec["record_id"] else f"record id {row_id} does not match {rec['record_id']}"
        except Exception as exc:
            problem = f"cannot normalise: {exc!r}"
        if problem is not None:
            batch.stats.rejects.append(Reject(rec["source"], rec["locator"], problem, rec["record_id"]))
            batch.dropped.add(i)
            continue
        row: dict[str, Any] = dict(trial)
        row["content_hash"] = rec["content_hash"]
        row[_ROW] = i
        rows.setdefault(spec.target.name, (spec.target, []))[1].append(row)
        target_names[i] = spec.target.name
    for name, (table, table_rows) in rows.items():
        new = _derived_arrow(table, table_rows)
        batch.derived[name] = pa.concat_tables([batch.derived[name], new]) if name in batch.derived else new
    batch.records = batch.records.set_column(
        _PREPARED_SCHEMA.get_field_index("target"), "target", pa.array(target_names, pa.string())
    )


def _derived_table(name: str) -> DerivedTable:
    for table in derived_tables():
        if table.name == name:
            return table
    raise ValueError(f"no derived table {name!r}")


def _reserve_version_ids(store: Store, n: int) -> Iterator[int]:
    """Version ids continue from the largest stored one.

    DuckDB allows one writer per file, and the batch that uses these ids
    commits before the next batch asks, so max()+1 is race-free here and far
    cheaper than drawing n values from a sequence.
    """
    row = store.con.execute("SELECT coalesce(max(version_id), 0) FROM raw_records").fetchone()
    start = int(row[0]) + 1 if row else 1
    return iter(range(start, start + n))


def _commit(
    store: Store,
    run_id: str,
    raw: pa.Table | None,
    derived: list[_Derived],
    rejects: list[Reject],
) -> None:
    """One transaction per batch: raw versions, normalised rows and rejects together."""
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        if raw is not None:
            con.register("_raw_batch", raw)
            con.execute("INSERT INTO raw_records BY NAME SELECT * FROM _raw_batch")
            con.unregister("_raw_batch")
        for group in derived:
            _upsert(store, group)
        store.save_rejects(run_id, rejects)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def _upsert(store: Store, group: _Derived) -> None:
    """Replace the rows of records seen before; insert the rest."""
    con = store.con
    table, id_column = group.table.name, group.table.id_column
    if group.replaced:
        keys = pa.table({"registry": [k[0] for k in group.replaced], "id": [k[1] for k in group.replaced]})
        con.register("_replaced_keys", keys)
        con.execute(f"DELETE FROM {table} WHERE (registry, {id_column}) IN (SELECT (registry, id) FROM _replaced_keys)")
        con.unregister("_replaced_keys")
    _insert_arrow(store, table, group.rows)


def current_versions(store: Store) -> dict[tuple[str, str], int]:
    """The version id shown as current for every stored record (see module doc)."""
    best: dict[tuple[str, str], tuple[Any, int, int]] = {}
    for registry, record_id, version_id, updated, fmt in store.con.execute(
        "SELECT registry, record_id, version_id, record_updated, format FROM raw_records"
    ).fetchall():
        order = _order_key(updated, format_spec(fmt).rank, version_id)
        key = (registry, record_id)
        if key not in best or order > best[key]:
            best[key] = order
    return {key: order[2] for key, order in best.items()}


def rebuild(store: Store, *, batch_size: int = BATCH_SIZE) -> int:
    """Re-normalise every record from its current raw version.

    Run after a migration of derived tables or an upgrade of the normaliser;
    the raw history is read, never changed.  One transaction, so readers see
    the old tables or the new ones.
    """
    con = store.con
    version_ids = sorted(current_versions(store).values())
    con.execute("BEGIN TRANSACTION")
    try:
        for table in derived_tables():
            con.execute(f"DELETE FROM {table.name}")
        for start in range(0, len(version_ids), batch_size):
            chunk = version_ids[start : start + batch_size]
            rows = con.execute(
                "SELECT version_id, content_hash, format, payload FROM raw_records "
                "WHERE version_id IN (SELECT UNNEST(?))",
                [chunk],
            ).fetchall()
            out: dict[str, tuple[DerivedTable, list[dict[str, Any]]]] = {}
            for version_id, digest, fmt, payload in rows:
                spec = format_spec(fmt)
                row: dict[str, Any] = dict(normalised_row(spec, orjson.loads(payload) if spec.is_json else payload))
                row["version_id"] = version_id
                row["content_hash"] = digest
                out.setdefault(spec.target.name, (spec.target, []))[1].append(row)
            for table, table_rows in out.values():
                _insert(store, table, table_rows)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return len(version_ids)


def _insert(store: Store, table: DerivedTable, rows: list[dict[str, Any]]) -> None:
    _insert_arrow(store, table.name, pa.Table.from_pylist(rows, schema=table.schema))


def _insert_arrow(store: Store, table: str, rows: pa.Table) -> None:
    store.con.register("_derived_batch", rows)
    store.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _derived_batch")
    store.con.unregister("_derived_batch")
