"""Storing classifications: the screening labels of every trial, with their evidence.

Classification is derived data: it is recomputed for a trial whenever the
trial's current version or the classifier changes, and curators' overrides
are applied on top afterwards (``cartatlas.curation``), so an override
survives every re-sync and re-classification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pyarrow as pa

from cartatlas.knowledge import labels
from cartatlas.store.db import Store, now, rollback
from cartatlas.store.export import EXPORT_EXTENSIONS
from cartatlas.store.schema import TRIAL_SCHEMA

log = logging.getLogger(__name__)

#: Label fields a curator may override, with how each is stored (``cartatlas/knowledge/labels.py``).
LIST_FIELDS = labels.LIST_FIELDS
SCALAR_FIELDS = labels.SCALAR_FIELDS
CURATABLE = labels.CURATABLE


def _label_columns() -> list[tuple[str, pa.DataType]]:
    """The declared labels' columns in the table's order: ``flags`` before ``confidence``, its score after it."""
    out: list[tuple[str, pa.DataType]] = []
    for label in labels.LABELS:
        if label.name == "confidence":
            out.append(("flags", pa.list_(pa.string())))
        out.append((label.name, pa.list_(pa.string()) if label.is_list else pa.string()))
        if label.name == "confidence":
            out.append(("confidence_score", pa.float64()))
    return out


_CLASS_SCHEMA = pa.schema(
    [
        ("registry", pa.string()),
        ("trial_id", pa.string()),
        ("content_hash", pa.string()),
        *_label_columns(),
        ("evidence", pa.string()),
        ("auto", pa.string()),
        ("curated_fields", pa.list_(pa.string())),
        ("classifier_version", pa.string()),
        ("kb_version", pa.string()),
        ("classified_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def _confidence(value: Any, score: Any = None) -> tuple[str | None, float | None]:
    """The classifier may give a label, a score, or both; keep both forms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        s = float(value)
        return ("high" if s >= 0.8 else "medium" if s >= 0.5 else "low"), s
    label = str(value) if value is not None else None
    numeric = float(score) if isinstance(score, int | float) else None
    if numeric is None and label is not None:
        numeric = {"high": 0.9, "medium": 0.6, "low": 0.3}.get(label)
    return label, numeric


def classification_row(c: dict[str, Any], content_hash: str, versions: tuple[str, str]) -> dict[str, Any]:
    """A classifier result as a ``classifications`` row."""
    label, score = _confidence(c.get("confidence"), c.get("confidence_score"))
    row: dict[str, Any] = {
        "registry": c["registry"],
        "trial_id": c["trial_id"],
        "content_hash": content_hash,
        "confidence": label,
        "confidence_score": score,
        "evidence": orjson.dumps(c.get("evidence") or [], default=str).decode(),
        "curated_fields": [],
        "classifier_version": versions[0],
        "kb_version": versions[1],
    }
    for declared in labels.LABELS:
        if declared.name == "confidence":
            continue
        value = c.get(declared.name)
        row[declared.name] = _as_list(value) if declared.is_list else value
    row["relation"] = c["relation"]
    row["flags"] = _as_list(c.get("flags"))
    row["auto"] = orjson.dumps({k: row[k] for k in CURATABLE}).decode()
    return row


def stale_trials(store: Store, classifier_version: str, kb_version: str, *, force: bool = False) -> list[str]:
    """Trials whose classification is missing or was made from another version or classifier."""
    if force:
        rows = store.con.execute("SELECT trial_id FROM trials").fetchall()
    else:
        rows = store.con.execute(
            """
            SELECT t.trial_id FROM trials t
            LEFT JOIN classifications c USING (registry, trial_id)
            WHERE c.trial_id IS NULL OR c.content_hash <> t.content_hash
               OR c.classifier_version <> ? OR c.kb_version <> ?
            """,
            [classifier_version, kb_version],
        ).fetchall()
    return [r[0] for r in rows]


def iter_trials(store: Store, trial_ids: list[str], batch_size: int = 5000) -> Iterator[pa.Table]:
    """Normalised trials (the trials table's columns) in Arrow tables of ``batch_size`` rows.

    One query streamed in record batches: a query per batch scanned the whole
    trials table each time, which made classifying N trials cost O(N^2) reads.
    It runs on its own cursor, so the caller may write between batches.
    """
    if not trial_ids:
        return
    columns = ", ".join(f'"{name}"' for name in TRIAL_SCHEMA.names)
    cursor = store.cursor()
    try:
        cursor.register("_trial_ids", pa.table({"trial_id": pa.array(trial_ids, pa.string())}))
        reader = cursor.sql(
            f"SELECT {columns} FROM trials WHERE trial_id IN (SELECT trial_id FROM _trial_ids)"
        ).to_arrow_reader(batch_size)
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            while rows >= batch_size:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, batch_size)
                rest = table.slice(batch_size)
                pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            yield pa.Table.from_batches(pending)
    finally:
        cursor.close()


#: A classifications row as a batch makes it, before it is stamped with the time it is stored.
_ROW_SCHEMA = pa.schema([f for f in _CLASS_SCHEMA if f.name != "classified_at"])

#: Classifies batches of trials (``classify_table``), in order; the pipeline may run it in worker processes.
#: Given the batches and how many trials they hold in all.
TableMap = Callable[[Iterator[pa.Table], int], Iterator[pa.Table]]


def classify_table(
    trials: pa.Table, classify: Callable[[dict[str, Any]], dict[str, Any]], versions: tuple[str, str]
) -> pa.Table:
    """The ``classifications`` rows of a batch of trials (without ``classified_at``).

    A trial the classifier fails on is logged and left out: one bad record must
    not stop the screening of the rest.
    """
    rows = []
    for trial in trials.to_pylist():
        try:
            result = classify(trial)
        except Exception:
            log.exception("classification failed for %s", trial.get("trial_id"))
            continue
        rows.append(classification_row(result, trial["content_hash"], versions))
    return pa.Table.from_pylist(rows, schema=_ROW_SCHEMA)


def save_classifications(
    store: Store,
    classify: Callable[[dict[str, Any]], dict[str, Any]],
    versions: tuple[str, str],
    *,
    force: bool = False,
    on_batch: Callable[[int], None] | None = None,
    map_tables: TableMap | None = None,
) -> int:
    """Classify every trial that needs it and store the results; returns how many.

    ``map_tables`` classifies the batches instead of this process (in worker
    processes; it must give what ``classify_table`` with ``classify`` gives).
    Runs under the import's DuckDB memory settings: reading every trial once
    otherwise leaves the whole table cached, and memory grows with the database.
    """
    from cartatlas.store.bulk import import_settings

    with import_settings(store):
        todo = stale_trials(store, *versions, force=force)
        batches = iter_trials(store, todo)
        if map_tables is not None:
            results = map_tables(batches, len(todo))
        else:
            results = (classify_table(batch, classify, versions) for batch in batches)
        done = 0
        for table in results:
            _replace(store, table)
            done += table.num_rows
            if on_batch is not None:
                on_batch(table.num_rows)
        return done


def _replace(store: Store, rows: pa.Table) -> None:
    if not rows.num_rows:
        return
    con = store.con
    stamp = pa.repeat(pa.scalar(now(), _CLASS_SCHEMA.field("classified_at").type), rows.num_rows)
    table = rows.append_column(_CLASS_SCHEMA.field("classified_at"), stamp)
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_class_batch", table)
        con.execute(
            "DELETE FROM classifications WHERE (registry, trial_id) IN (SELECT (registry, trial_id) FROM _class_batch)"
        )
        con.execute("INSERT INTO classifications BY NAME SELECT * FROM _class_batch")
        con.unregister("_class_batch")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def export_columns(store: Store) -> tuple[list[str], str] | None:
    """Classification columns for ``cartatlas export`` (flattening is done by the exporter)."""
    cols = [f"c.{name}" for name, _ in _label_columns()]
    cols += ["c.curated_fields", "CAST(c.evidence AS VARCHAR) AS evidence"]
    return cols, "LEFT JOIN classifications c USING (registry, trial_id)"


EXPORT_EXTENSIONS["classification"] = export_columns
