"""Version planning: which prepared records are new versions of a stored record, and which become current.

Which version of a record is current: the one with the latest registry update date; on a tie, the
richer format; then the latest stored.  Importing an old file after a fresh sync therefore adds its
versions to the history but does not roll the normalised view back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from cartatlas.model import Reject, _order_key
from cartatlas.normalise.formats import DerivedTable, derived_tables, format_spec
from cartatlas.pipeline.prepare import (
    PREPARED_SCHEMA,
    RAW_SCHEMA,
    ROW,
    Batch,
    KnownHashes,
    derived_arrow,
    normalised_row,
)
from cartatlas.store.db import Store, now

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DerivedRows:
    """Normalised rows bound for one derived table, and which of them replace a stored row."""

    table: DerivedTable
    rows: pa.Table
    replaced: list[tuple[str, str]] = field(default_factory=list)


def plan_versions(store: Store, batch: Batch, run_id: str) -> tuple[pa.Table | None, list[DerivedRows]]:
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
                **{name: chosen.column(name) for name in RAW_SCHEMA.names if name in PREPARED_SCHEMA.names},
                "fetched_at": pa.repeat(pa.scalar(fetched_at, RAW_SCHEMA.field("fetched_at").type), n),
                "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
            }
        ).select(RAW_SCHEMA.names)

    derived: list[DerivedRows] = []
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
            row_numbers = table.column(ROW).to_pylist()
            if row_numbers == rows_of:  # every row, in order (a first import)
                picked = table.drop_columns([ROW])
            else:
                position = {r: j for j, r in enumerate(row_numbers)}
                picked = table.take(pa.array([position[r] for r in rows_of], pa.int64())).drop_columns([ROW])
            picked = picked.append_column("version_id", pa.array(vids, pa.int64()))
            derived.append(DerivedRows(_derived_table(name), picked, replaced))
    stats.rejected = len(stats.rejects)
    for r in stats.rejects:
        log.debug("rejected %s", r)
    return raw, derived


def known_hashes(store: Store) -> KnownHashes | None:
    """The stored content hashes as ``KnownHashes`` (None when nothing is stored yet)."""
    table = store.con.sql(
        "SELECT DISTINCT TRY_CAST('0x' || content_hash[1:16] AS UBIGINT) AS h FROM raw_records "
        "WHERE h IS NOT NULL ORDER BY h"
    ).to_arrow_table()
    if table is None or table.num_rows == 0:
        return None
    return KnownHashes(table.column(0).to_numpy())


def _normalise_unknown(
    batch: Batch, keys: list[tuple[str, str]], digests: list[str], existing: dict[tuple[str, str], set[str]]
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
    target_names = targets.to_pylist()
    missing = [
        i for i, target in enumerate(target_names) if target is None and digests[i] not in existing.get(keys[i], ())
    ]
    if not missing:
        return
    chosen = batch.records.take(pa.array(missing, pa.int64())).to_pylist()
    rows: dict[str, tuple[DerivedTable, list[dict[str, Any]]]] = {}
    for i, rec in zip(missing, chosen, strict=True):
        spec = format_spec(rec["format"])
        try:
            trial = normalised_row(spec, orjson.loads(rec["payload"]) if spec.is_json else rec["payload"])
            row_id = trial[spec.target.id_column]  # type: ignore[literal-required]
            problem = None if row_id == rec["record_id"] else f"record id {row_id} does not match {rec['record_id']}"
        except Exception as exc:  # as in preparation: a normaliser bug rejects the record, not the batch
            problem = f"cannot normalise: {exc!r}"
        if problem is not None:
            batch.stats.rejects.append(Reject(rec["source"], rec["locator"], problem, rec["record_id"]))
            batch.dropped.add(i)
            continue
        row: dict[str, Any] = dict(trial)
        row["content_hash"] = rec["content_hash"]
        row[ROW] = i
        rows.setdefault(spec.target.name, (spec.target, []))[1].append(row)
        target_names[i] = spec.target.name
    for name, (table, table_rows) in rows.items():
        new = derived_arrow(table, table_rows)
        batch.derived[name] = pa.concat_tables([batch.derived[name], new]) if name in batch.derived else new
    batch.records = batch.records.set_column(
        PREPARED_SCHEMA.get_field_index("target"), "target", pa.array(target_names, pa.string())
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
