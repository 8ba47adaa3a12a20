"""Worker processes: the import's preparers of large JSON-lines inputs, and an ordered map for other bulk work.

A worker runs one task on item after item (``worker_main``).  For an import, the task parses,
serialises, hashes and normalises a ``LineBatch`` (``cartatlas.pipeline.prepare``) and sends the
prepared batch back as Arrow IPC, so the importing process only cuts the file into lines, plans
versions and writes; ``Preparer`` keeps the batches in input order, preparing small inputs in this
process and starting the workers only for large files.  ``ordered_map`` runs any task that a
module-level setup function makes (screening a batch of trials, computing link features:
``cartatlas.pipeline.parallel``) over items in input order.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa

from cartatlas.model import ImportStats
from cartatlas.pipeline.lines import SeenLines, prepare_lines
from cartatlas.pipeline.prepare import Batch, KnownHashes, prepare
from cartatlas.sources.base import Item, LineBatch

#: Worker processes that prepare large JSON-lines inputs; ``0`` prepares everything in this process.
#: Defaults to the number of CPUs (at most 4: the writer and the reading process need a core too).
WORKERS_ENV = "CARTATLAS_IMPORT_WORKERS"
_MAX_WORKERS = 4


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


_IpcBatch = tuple[ImportStats, bytes, dict[str, bytes]]


def _prepare_lines(batch: LineBatch, known: KnownHashes | None = None, seen: SeenLines | None = None) -> _IpcBatch:
    """In a worker process: parse, serialise, hash and normalise a batch of lines; Arrow IPC back."""
    prepared = prepare_lines(batch, known, seen)
    return (
        prepared.stats,
        _to_ipc(prepared.records),
        {name: _to_ipc(table) for name, table in prepared.derived.items()},
    )


def line_task(known_path: str | None = None, seen_path: str | None = None) -> Callable[[LineBatch], _IpcBatch]:
    """The import's task: prepare a ``LineBatch``.

    ``known_path`` is a ``.npy`` file of ``KnownHashes`` prefixes, and
    ``seen_path`` one of ``SeenLines`` digests, mapped read-only (the workers
    share their pages).
    """
    import cartatlas.normalise  # noqa: F401  (registers every format)

    known = KnownHashes(np.load(known_path, mmap_mode="r")) if known_path else None
    seen = SeenLines.load(seen_path) if seen_path else None
    return lambda batch: _prepare_lines(batch, known, seen)


def worker_main(read_fd: int, write_fd: int, setup: str, args: tuple[Any, ...] = ()) -> None:
    """A worker: items in, ``task(item)`` out, until its input closes.

    ``setup`` names a module-level function ("module:function") that, given
    ``args``, returns the task.  Ctrl-C is the parent process's to handle: it
    closes the pipes, and the worker ends at the next read.  Everything
    imported before the first item is frozen out of the cyclic collector, so
    collections only see item data.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = Connection(read_fd, writable=False)
    sink = Connection(write_fd, readable=False)
    module, _, name = setup.partition(":")
    try:
        task = getattr(importlib.import_module(module), name)(*args)
    except Exception:
        task = None
        failure = traceback.format_exc()
    gc.freeze()
    while True:
        try:
            item = source.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[str, Any] = ("ok", task(item)) if task is not None else ("error", failure)
        except Exception:
            result = ("error", traceback.format_exc())
        try:
            sink.send(result)
        except OSError:
            return


def import_workers() -> int:
    """How many worker processes do bulk work (``$CARTATLAS_IMPORT_WORKERS`` or the CPU count)."""
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

    def __init__(self, n: int, setup: str, args: tuple[Any, ...] = ()) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.procs: list[tuple[subprocess.Popen[bytes], Connection, Connection]] = []
        self.busy: list[bool] = []
        self.used = False
        try:
            for _ in range(n):
                to_child_r, to_child_w = os.pipe()
                from_child_r, from_child_w = os.pipe()
                code = (
                    "from cartatlas.pipeline.workers import worker_main; "
                    f"worker_main({to_child_r}, {from_child_w}, {setup!r}, {args!r})"
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

    def send(self, i: int, item: Any) -> None:
        self.procs[i][1].send(item)
        self.busy[i] = True
        self.used = True

    def receive(self, i: int) -> Any:
        try:
            status, value = self.procs[i][2].recv()
        except EOFError:
            raise RuntimeError(f"import worker {i} ended unexpectedly (exit code {self.procs[i][0].poll()})") from None
        self.busy[i] = False
        if status != "ok":
            raise RuntimeError(f"import worker {i} failed:\n{value}")
        return value

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


def ordered_map(setup: str, args: tuple[Any, ...], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``task(item)`` for every item, in input order, computed by ``workers`` worker processes.

    ``setup(*args)`` (a "module:function" name) makes the task in each worker.
    Each worker holds one item at a time, so at most ``workers`` items are in
    flight and memory stays flat however many there are; the items are read
    as the workers free up.  A task's error is raised here, naming the worker.
    """
    pool = _Workers(workers, setup, args)
    try:
        pending: deque[int] = deque()
        i = 0
        for item in items:
            while pool.busy[i]:  # its previous item is still queued: hand results on until it is out
                yield pool.receive(pending.popleft())
            pool.send(i, item)
            pending.append(i)
            i = (i + 1) % workers
        while pending:
            yield pool.receive(pending.popleft())
    finally:
        pool.close()


#: Full line batches prepared in this process before worker processes take over, and the batch at
#: which they are started (in the background: their start-up overlaps the batches prepared here).  A
#: worker spends about half a second of CPU importing cartatlas, which a file of a few thousand lines
#: never earns back on 2 cores: with workers from the first batch, 2,500 records took 1.6 s instead of
#: 0.7 s and 10,000 took 3.1 s instead of 2.6 s; from about 25,000 records on, the workers win.
WORKERS_AFTER = 5
WORKERS_START_AT = 2


class Preparer:
    """Prepares batches in order, in this process or, for large line files, in worker processes.

    Each worker holds at most one batch, so at most ``workers`` batches are in
    flight and memory stays flat however large the input.  The workers take
    over only after ``WORKERS_AFTER`` full ``LineBatch``es: a small import
    never waits for them.
    """

    def __init__(
        self, workers: int, batch_size: int, known: KnownHashes | None = None, seen: SeenLines | None = None
    ) -> None:
        #: Hashes stored before the import began: their records are prepared without normalising.
        self.known = known
        #: Lines stored before the import began: left out of line batches (``cartatlas.pipeline.lines``).
        self.seen = seen
        #: The known hashes and seen lines for the workers to map (files: a pipe would block until each
        #: worker started).
        self.files: list[str] = []
        self.workers = workers
        self.batch_size = batch_size
        self.pool: _Workers | None = None
        self.full_batches = 0
        self.next_worker = 0
        #: Prepared batches, or the index of the worker preparing one, in input order.
        self.queue: deque[Batch | int] = deque()

    def push(self, unit: Sequence[Item] | LineBatch) -> Iterator[Batch]:
        """Start preparing ``unit``; yield the batches that are due, oldest first."""
        if isinstance(unit, LineBatch) and (unit.full or unit.n_lines >= self.batch_size) and self.workers > 0:
            self.full_batches += 1
            if self.pool is None and self.full_batches >= min(WORKERS_START_AT, WORKERS_AFTER + 1):
                self.pool = _Workers(self.workers, "cartatlas.pipeline.workers:line_task", self._shared_files())
        # A short batch (the end of a large file) goes to the workers too once they have taken over.
        pool = self.pool
        if isinstance(unit, LineBatch) and pool is not None and (pool.used or self.full_batches > WORKERS_AFTER):
            i = self.next_worker
            self.next_worker = (i + 1) % self.workers
            while pool.busy[i]:  # its previous batch is still queued: hand batches on until it is out
                yield self._next()
            pool.send(i, unit)
            self.queue.append(i)
        elif isinstance(unit, LineBatch):
            self.queue.append(prepare_lines(unit, self.known, self.seen))
        else:
            self.queue.append(prepare(unit, self.known))
        while self.queue and isinstance(self.queue[0], Batch):
            yield self._next()

    def _shared_files(self) -> tuple[str | None, str | None]:
        """The known hashes and seen lines written to files for the workers to map."""
        known_file = seen_file = None
        if self.known is not None:
            fd, known_file = tempfile.mkstemp(prefix="cartatlas-known-", suffix=".npy")
            self.files.append(known_file)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, self.known.prefixes)
        if self.seen is not None:
            fd, seen_file = tempfile.mkstemp(prefix="cartatlas-lines-", suffix=".npy")
            self.files.append(seen_file)
            os.close(fd)
            self.seen.save(seen_file)
        return known_file, seen_file

    def drain(self) -> Iterator[Batch]:
        while self.queue:
            yield self._next()

    def _next(self) -> Batch:
        head = self.queue.popleft()
        if isinstance(head, Batch):
            return head
        assert self.pool is not None
        stats, records, derived = cast(_IpcBatch, self.pool.receive(head))
        return Batch(stats, _from_ipc(records), {name: _from_ipc(data) for name, data in derived.items()})

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        for file in self.files:
            Path(file).unlink(missing_ok=True)
        self.files = []
