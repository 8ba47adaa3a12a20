"""Writing planned versions: raw records, normalised rows and rejects, one transaction at a time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from cartatlas.model import Reject
from cartatlas.normalise.formats import DerivedTable
from cartatlas.pipeline.version_plan import DerivedRows
from cartatlas.store.db import Store, rollback


def commit(
    store: Store,
    run_id: str,
    raw: pa.Table | None,
    derived: list[DerivedRows],
    rejects: list[Reject],
    lines: pa.Table | None = None,
) -> None:
    """One transaction per batch: raw versions, normalised rows, rejects and line digests together."""
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        if raw is not None:
            con.register("_raw_batch", raw)
            con.execute("INSERT INTO raw_records BY NAME SELECT * FROM _raw_batch")
            con.unregister("_raw_batch")
        for group in derived:
            upsert(store, group)
        store.save_rejects(run_id, rejects)
        if lines is not None:
            insert_arrow(store, "line_digests", lines)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def upsert(store: Store, group: DerivedRows) -> None:
    """Replace the rows of records seen before; insert the rest."""
    con = store.con
    table, id_column = group.table.name, group.table.id_column
    if group.replaced:
        keys = pa.table({"registry": [k[0] for k in group.replaced], "id": [k[1] for k in group.replaced]})
        con.register("_replaced_keys", keys)
        con.execute(f"DELETE FROM {table} WHERE (registry, {id_column}) IN (SELECT (registry, id) FROM _replaced_keys)")
        con.unregister("_replaced_keys")
    insert_arrow(store, table, group.rows)


def insert_rows(store: Store, table: DerivedTable, rows: list[dict[str, Any]]) -> None:
    insert_arrow(store, table.name, pa.Table.from_pylist(rows, schema=table.schema))


def insert_arrow(store: Store, table: str, rows: pa.Table) -> None:
    store.con.register("_derived_batch", rows)
    store.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _derived_batch")
    store.con.unregister("_derived_batch")
