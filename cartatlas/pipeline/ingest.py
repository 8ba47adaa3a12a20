"""Writing raw record versions and their normalised rows, batch by batch.

Records are prepared in batches of ``BATCH_SIZE`` and written in
transactions of about ``COMMIT_SIZE`` records (or ``COMMIT_BYTES``): a transaction's raw versions, the
normalised rows they produce and the rejects found are committed together or
not at all, so an interrupted import leaves whole transactions behind and
never half a record.  (A sync page is one transaction of its own.)

Which version of a record is current is decided in ``version_plan`` (the
latest registry update date, then the richer format, then the latest stored).

A batch goes through three steps, each in a module of its own.  *Prepare*
(``prepare``) is all the CPU work that needs no database: serialise and hash
every record, normalise it, and lay the results out as Arrow tables.  *Plan*
(``version_plan``) looks up the stored hashes of the records of a
transaction's batches and decides which are new versions and which become
current.  *Commit* (``write``) writes the chosen rows.  Large JSON-lines files
(``LineBatch``) are prepared in worker processes (``workers``), which also
parse them, and send back Arrow IPC: the importing process then only cuts the
file into lines, plans and writes, and never builds a Python object per
record.  Commits run on a writer thread, overlapping the next transaction's
batches.  This module runs the steps in order (``save_records``) and
re-normalises the stored records (``rebuild``).
Where the time goes is measured in ``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson

from cartatlas.model import ImportStats
from cartatlas.normalise.formats import DerivedTable, derived_tables, format_spec
from cartatlas.pipeline.lines import digest_rows, seen_lines
from cartatlas.pipeline.prepare import Batch, merge_batches, normalised_row
from cartatlas.pipeline.version_plan import current_versions, known_hashes, plan_versions
from cartatlas.pipeline.workers import Preparer, import_workers
from cartatlas.pipeline.write import commit, insert_rows
from cartatlas.sources.base import Item, LineBatch
from cartatlas.store.bulk import import_settings
from cartatlas.store.db import Store, rollback

#: Records prepared together (in one worker, or in this process).
BATCH_SIZE = 2000
#: Records written in one transaction: prepared batches are merged up to this size.  DuckDB's cost
#: per statement and per commit is large next to its cost per row (a 2,000-record commit costs 60%
#: more per record than a 10,000-record one); larger transactions gain little more and hold more memory.
COMMIT_SIZE = 10_000
#: ... or fewer, when their prepared records and rows pass this many bytes: the importing process holds
#: a transaction being written and the next being gathered, so its memory grows with a transaction's
#: bytes, and full studies are long.  On the registry-like corpus (56,000 records, 90% API v2 studies):
#: unbounded 34.5 s and 1,777 MiB (2,577 with the workers), 64 MiB 31.7 s and 1,021 MiB (1,843), 32 MiB
#: 38.8 s and 1,042 MiB.
COMMIT_BYTES = 64 << 20


def _units(items: Iterable[Item | LineBatch], size: int) -> Iterator[list[Item] | LineBatch]:
    """Batches of up to ``size`` items, in order; a full ``LineBatch`` is a batch of its own.

    A short ``LineBatch`` (a small file) is unpacked into the running batch, so
    that small files of every format share batches and transactions.
    """
    chunk: list[Item] = []
    for item in items:
        if isinstance(item, LineBatch):
            if item.full or item.n_lines >= size:
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
    commit_bytes: int = COMMIT_BYTES,
    on_batch: Callable[[ImportStats], None] | None = None,
    skip_known: bool = False,
) -> ImportStats:
    """Store new and changed versions, refresh normalised rows, log rejects.

    Transactions hold ``commit_size`` records or ``commit_bytes`` of prepared
    data, whichever comes first.

    ``skip_known`` prepares records whose content hash is stored already
    without normalising them (``KnownHashes``), and leaves out the lines of
    JSON-lines files that an earlier import stored (``SeenLines``): what a
    re-import of a whole export needs, where most records did not change.
    The stored result and the counts are the same either way.

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
    group: list[Batch] = []

    def settle() -> None:
        nonlocal pending
        if pending is not None:
            future, done = pending
            pending = None
            future.result()
            total.add(done)
            if on_batch is not None:
                on_batch(done)

    def write(batch: Batch) -> None:
        group.append(batch)
        if sum(b.records.num_rows for b in group) >= commit_size or sum(map(_nbytes, group)) >= commit_bytes:
            flush()

    def flush() -> None:
        nonlocal pending
        if not group:
            return
        merged = merge_batches(group)
        group.clear()
        settle()
        raw, derived = plan_versions(store, merged, run_id)
        lines = digest_rows(merged.records, merged.dropped) if keep_lines else None
        pending = (writer.submit(commit, store, run_id, raw, derived, merged.stats.rejects, lines), merged.stats)

    keep_lines = store.has_table("line_digests")  # not in a database of an older schema
    known, seen = (known_hashes(store), seen_lines(store) if keep_lines else None) if skip_known else (None, None)
    preparer = Preparer(import_workers(), batch_size, known, seen)
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


def _nbytes(batch: Batch) -> int:
    return int(batch.records.nbytes) + sum(int(t.nbytes) for t in batch.derived.values())


#: Batches after which an import ends with an explicit checkpoint (see ``save_records``).
_CHECKPOINT_AFTER = 10


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
        # Link features were made from the old rows under the same content hashes: made again on the next link.
        if store.has_table("link_features"):
            con.execute("DELETE FROM link_features")
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
                insert_rows(store, table, table_rows)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return len(version_ids)
