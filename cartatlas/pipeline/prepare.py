"""Preparing records for the store: all the CPU work of an import that needs no database.

Serialise and hash every record (``payload_text``, ``content_hash``), normalise and label it
(``normalised_row``), and lay the results out as Arrow tables (``Batch``): one table of the records'
stored columns, one per derived table of their normalised rows.  Being columnar, a prepared batch
crosses a process boundary as Arrow IPC (``cartatlas.pipeline.workers``); version planning
(``cartatlas.pipeline.version_plan``) and writing (``cartatlas.pipeline.write``) take it from there.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from cartatlas.model import ImportStats, RawRecord, Reject, Skipped, Trial
from cartatlas.normalise.formats import DerivedTable, FormatSpec, format_spec
from cartatlas.sources.base import Item
from cartatlas.sources.limits import max_record_bytes, record_too_large

RAW_SCHEMA = pa.schema(
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
#: The digest of the line a record is the only record of (``cartatlas.pipeline.lines``), else null.
LINE_DIGEST = "line_digest"
#: A prepared record: the stored columns known before planning, the derived table of its row and its
#: line's digest.
PREPARED_SCHEMA = pa.schema(
    [(f.name, f.type) for f in RAW_SCHEMA if f.name not in ("version_id", "fetched_at", "run_id")]
    + [("target", pa.string()), (LINE_DIGEST, pa.binary(16))]
)
#: Links a normalised row to its record (row number in the prepared records table).
ROW = "_row"


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
    normalised then (``version_plan``), so the outcome never depends on this set.
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


@dataclass(slots=True)
class Batch:
    """One batch after preparation, columnar so that it crosses a process boundary as Arrow IPC."""

    stats: ImportStats
    #: One row per record that serialised and normalised (``PREPARED_SCHEMA``).
    records: pa.Table
    #: Normalised rows by derived table name; ``ROW`` points into ``records``.
    derived: dict[str, pa.Table]
    #: Rows of ``records`` rejected while planning (a known hash whose record failed to normalise).
    dropped: set[int] = field(default_factory=set)


_ROW_SCHEMAS: dict[str, pa.Schema] = {}


def _row_schema(table: DerivedTable) -> pa.Schema:
    """A derived table's columns as prepared: the version id is not known yet, the record's row is."""
    schema = _ROW_SCHEMAS.get(table.name)
    if schema is None:
        schema = pa.schema([f for f in table.schema if f.name != "version_id"] + [pa.field(ROW, pa.int32())])
        _ROW_SCHEMAS[table.name] = schema
    return schema


def derived_arrow(table: DerivedTable, rows: list[dict[str, Any]]) -> pa.Table:
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


def prepare(items: Iterable[Item], known: KnownHashes | None = None) -> Batch:
    """Serialise, hash and normalise a batch: all the CPU work that needs no database.

    Records whose hash is in ``known`` are not normalised (see ``KnownHashes``).
    """
    with _gc_paused():
        return _prepare_batch(items, known)  # its parsed records and rows are freed before the collector resumes


def _prepare_batch(items: Iterable[Item], known: KnownHashes | None = None) -> Batch:
    stats = ImportStats()
    columns: dict[str, list[Any]] = {name: [] for name in PREPARED_SCHEMA.names}
    column_lists = [columns[name] for name in PREPARED_SCHEMA.names]
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
            values = (*record_values(item, digest, text), None, None)
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
        row[ROW] = n
        group = rows.get(target.name)
        if group is None:
            group = rows[target.name] = (target, [])
        group[1].append(row)
        values = (*record_values(item, digest, text), target.name, None)
        for column, value in zip(column_lists, values, strict=True):
            column.append(value)
        n += 1
    records = pa.Table.from_pydict(columns, schema=PREPARED_SCHEMA)
    derived = {name: derived_arrow(t, r) for name, (t, r) in rows.items()}
    return Batch(stats, records, derived)


def record_values(item: RawRecord, digest: str, text: str) -> tuple[Any, ...]:
    """A prepared record's stored columns (``PREPARED_SCHEMA`` but its target and line digest), in order."""
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


def merge_batches(batches: list[Batch]) -> Batch:
    """Consecutive prepared batches as one, in order (for one transaction)."""
    if len(batches) == 1:
        return batches[0]
    stats = ImportStats()
    derived: dict[str, list[pa.Table]] = {}
    offset = 0
    for batch in batches:
        stats.add(batch.stats)
        for name, table in batch.derived.items():
            rows = pa.array(table.column(ROW).to_numpy() + offset, pa.int32())
            derived.setdefault(name, []).append(table.set_column(table.schema.get_field_index(ROW), ROW, rows))
        offset += batch.records.num_rows
    records = pa.concat_tables([b.records for b in batches])
    return Batch(stats, records, {name: pa.concat_tables(tables) for name, tables in derived.items()})
