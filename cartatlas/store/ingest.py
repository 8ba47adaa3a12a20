"""Writing raw record versions and their normalised rows, batch by batch.

Each batch is one transaction: its raw versions, the normalised rows they
produce and the rejects found are committed together or not at all, so an
interrupted import leaves whole batches behind and never half a record.

Which version of a record is current: the one with the latest registry
update date; on a tie, the richer format; then the latest stored.  Importing
an old file after a fresh sync therefore adds its versions to the history but
does not roll the normalised view back.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
import pyarrow as pa

from cartatlas.model import ImportStats, RawRecord, Reject, Skipped, Trial
from cartatlas.normalise.formats import DerivedTable, derived_tables, format_spec
from cartatlas.store.db import Store, now

log = logging.getLogger(__name__)

BATCH_SIZE = 2000

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


def payload_text(record: RawRecord) -> str:
    """The stored form of a payload: JSON with sorted keys, or the text itself."""
    if isinstance(record.payload, str):
        return record.payload
    return orjson.dumps(record.payload, option=orjson.OPT_SORT_KEYS).decode()


def content_hash(format_name: str, text: str) -> str:
    view = format_spec(format_name).hash_view(text)
    return hashlib.sha256(view.encode()).hexdigest()[:32]


@dataclass(slots=True)
class _Prepared:
    record: RawRecord
    text: str
    digest: str
    rank: int
    target: DerivedTable
    trial: Trial | None = None


def _order_key(updated: Any, rank: int, version_id: int) -> tuple[Any, int, int]:
    # None sorts first so that any dated version wins over an undated one.
    return (updated.toordinal() if updated is not None else -1, rank, version_id)


def _batches(items: Iterable[RawRecord | Reject | Skipped], size: int) -> Iterator[list[RawRecord | Reject | Skipped]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def save_records(
    store: Store,
    items: Iterable[RawRecord | Reject | Skipped],
    run_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[ImportStats], None] | None = None,
) -> ImportStats:
    """Store new and changed versions, refresh normalised rows, log rejects.

    ``items`` may interleave records and rejects (a reader reports a broken
    record in place and goes on).  ``on_batch`` receives each batch's stats
    after its commit, which is what a progress bar or a sync checkpoint needs.

    Batch N is committed on a writer thread while batch N+1 is read, parsed
    and normalised (DuckDB releases the GIL while it writes).  The next batch
    only consults the database after the previous commit has finished, so
    version decisions always see every earlier batch.
    """
    total = ImportStats()
    pending: tuple[Future[None], ImportStats] | None = None

    def settle() -> None:
        nonlocal pending
        if pending is not None:
            future, done = pending
            pending = None
            future.result()
            total.add(done)
            if on_batch is not None:
                on_batch(done)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartatlas-writer") as writer:
        try:
            for chunk in _batches(items, batch_size):
                prepared, stats = _prepare(chunk)
                settle()
                plan = _plan(store, prepared, stats, run_id)
                pending = (writer.submit(_commit, store, run_id, *plan, stats.rejects), stats)
            settle()
        except BaseException:
            # Let an in-flight commit finish (or roll back) before the error propagates.
            if pending is not None:
                pending[0].exception()
            raise
    return total


def _prepare(chunk: Sequence[RawRecord | Reject | Skipped]) -> tuple[list[_Prepared], ImportStats]:
    """Serialise, hash and normalise a batch: all the CPU work that needs no database."""
    stats = ImportStats()
    prepared: list[_Prepared] = []
    for item in chunk:
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
            p = _Prepared(item, text, content_hash(item.format, text), spec.rank, spec.target)
        except (TypeError, ValueError) as exc:
            stats.rejects.append(Reject(item.source, item.locator, f"cannot serialise record: {exc}", item.record_id))
            continue
        try:
            p.trial = spec.to_trial(item.payload)
        except Exception as exc:  # a normaliser bug must not lose the rest of the batch
            stats.rejects.append(Reject(item.source, item.locator, f"cannot normalise: {exc!r}", item.record_id))
            continue
        row_id = p.trial[spec.target.id_column]  # type: ignore[literal-required]
        if row_id != item.record_id:
            problem = f"record id {row_id} does not match {item.record_id}"
            stats.rejects.append(Reject(item.source, item.locator, problem, item.record_id))
            continue
        prepared.append(p)
    return prepared, stats


@dataclass(slots=True)
class _Derived:
    """Normalised rows bound for one derived table, and which of them replace a stored row."""

    table: DerivedTable
    rows: list[dict[str, Any]] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)


def _plan(
    store: Store, prepared: list[_Prepared], stats: ImportStats, run_id: str
) -> tuple[dict[str, list[Any]], list[_Derived]]:
    """Decide which prepared records are new versions and which become current."""
    keys = {(p.record.registry, p.record.record_id) for p in prepared}
    existing: dict[tuple[str, str], set[str]] = {}
    current: dict[tuple[str, str], tuple[Any, int, int]] = {}
    if keys:
        rows = store.con.execute(
            "SELECT r.registry, r.record_id, r.content_hash, r.record_updated, r.format, r.version_id "
            "FROM raw_records r JOIN (SELECT UNNEST(?) AS registry, UNNEST(?) AS record_id) k "
            "USING (registry, record_id)",
            [[k[0] for k in keys], [k[1] for k in keys]],
        ).fetchall()
        for registry, record_id, digest, updated, fmt, version_id in rows:
            key = (registry, record_id)
            existing.setdefault(key, set()).add(digest)
            order = _order_key(updated, format_spec(fmt).rank, version_id)
            if key not in current or order > current[key]:
                current[key] = order

    new_rows: dict[str, list[Any]] = {name: [] for name in _RAW_SCHEMA.names}
    ids = _reserve_version_ids(store, len(prepared)) if prepared else iter(())
    winners: dict[tuple[str, str], tuple[tuple[Any, int, int], _Prepared, int]] = {}
    fetched_at = now()
    for p in prepared:
        rec = p.record
        key = (rec.registry, rec.record_id)
        seen_hashes = existing.setdefault(key, set())
        if p.digest in seen_hashes:
            stats.unchanged += 1
            continue
        if seen_hashes:
            stats.changed += 1
        else:
            stats.new += 1
        seen_hashes.add(p.digest)
        version_id = next(ids)
        values = (
            version_id,
            rec.registry,
            rec.record_id,
            p.digest,
            rec.format,
            rec.source_kind,
            rec.source,
            rec.locator,
            fetched_at,
            rec.record_updated,
            run_id,
            p.text,
        )
        for column, value in zip(_RAW_SCHEMA.names, values, strict=True):
            new_rows[column].append(value)
        order = _order_key(rec.record_updated, p.rank, version_id)
        best = winners.get(key)
        if order > current.get(key, (-2, 0, 0)) and (best is None or order > best[0]):
            winners[key] = (order, p, version_id)

    derived: dict[str, _Derived] = {}
    for key, (_, p, version_id) in winners.items():
        assert p.trial is not None
        row: dict[str, Any] = dict(p.trial)
        row["version_id"] = version_id
        row["content_hash"] = p.digest
        group = derived.setdefault(p.target.name, _Derived(p.target))
        group.rows.append(row)
        if key in current:
            group.replaced.append(key)
    stats.rejected = len(stats.rejects)
    for r in stats.rejects:
        log.debug("rejected %s", r)
    return new_rows, list(derived.values())


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
    raw_columns: dict[str, list[Any]],
    derived: list[_Derived],
    rejects: list[Reject],
) -> None:
    """One transaction per batch: raw versions, normalised rows and rejects together."""
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        if raw_columns["version_id"]:
            raw_tbl = pa.Table.from_pydict(raw_columns, schema=_RAW_SCHEMA)
            con.register("_raw_batch", raw_tbl)
            con.execute("INSERT INTO raw_records BY NAME SELECT * FROM _raw_batch")
            con.unregister("_raw_batch")
        for group in derived:
            _upsert(store, group)
        store.save_rejects(run_id, rejects)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
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
    _insert(store, group.table, group.rows)


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
                row: dict[str, Any] = dict(spec.to_trial(orjson.loads(payload) if spec.is_json else payload))
                row["version_id"] = version_id
                row["content_hash"] = digest
                out.setdefault(spec.target.name, (spec.target, []))[1].append(row)
            for table, table_rows in out.values():
                _insert(store, table, table_rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(version_ids)


def _insert(store: Store, table: DerivedTable, rows: list[dict[str, Any]]) -> None:
    tbl = pa.Table.from_pylist(rows, schema=table.schema)
    store.con.register("_derived_batch", tbl)
    store.con.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM _derived_batch")
    store.con.unregister("_derived_batch")
