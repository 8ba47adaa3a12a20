"""Writing the normalised trials to files users open elsewhere.

Files are written to a temporary name beside the target and renamed into
place, so a crash or a full disk never leaves a half-written export under the
name a user (or a script) expects.  ``trial_id`` and ``registry`` come first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from cartatlas.store.db import Store
from cartatlas.store.schema import TRIAL_FIELDS

FORMATS = ("csv", "jsonl", "parquet", "xlsx")

#: Extra column providers: later pipeline stages (classification, linking) add
#: (sql select list, join clause) pairs keyed by stage name.
EXPORT_EXTENSIONS: dict[str, Callable[[Store], tuple[list[str], str] | None]] = {}


def _flat(field: pa.Field) -> str:
    """A CSV/Excel cell for a nested column: lists of strings joined, structs as JSON."""
    name = f't."{field.name}"'
    t = field.type
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return f"array_to_string({name}, '; ') AS \"{field.name}\""
    if pa.types.is_list(t) or pa.types.is_struct(t):
        return f'CAST(to_json({name}) AS VARCHAR) AS "{field.name}"'
    return f'{name} AS "{field.name}"'


def export_query(store: Store, *, flat: bool) -> str:
    cols = [_flat(f) if flat else f't."{f.name}"' for f in TRIAL_FIELDS]
    joins: list[str] = []
    for provide in EXPORT_EXTENSIONS.values():
        extension = provide(store)
        if extension is not None:
            extra_cols, join = extension
            cols.extend(extra_cols)
            joins.append(join)
    return f"SELECT {', '.join(cols)} FROM trials t {' '.join(joins)} ORDER BY t.registry, t.trial_id"


def _atomic_target(out: Path) -> tuple[Path, Callable[[], None], Callable[[], None]]:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)

    def commit() -> None:
        os.replace(tmp, out)

    def abort() -> None:
        tmp.unlink(missing_ok=True)

    return tmp, commit, abort


def export_trials(store: Store, fmt: str, out: Path) -> int:
    """Write every normalised trial to ``out``; returns the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    query = export_query(store, flat=fmt in ("csv", "xlsx"))
    tmp, commit, abort = _atomic_target(out)
    try:
        if fmt == "xlsx":
            df = store.con.execute(query).df()
            df.to_excel(tmp, index=False, sheet_name="trials", engine="openpyxl")
            rows = len(df)
        else:
            options = {
                "csv": "FORMAT CSV, HEADER TRUE",
                "jsonl": "FORMAT JSON",
                "parquet": "FORMAT PARQUET, COMPRESSION ZSTD",
            }[fmt]
            escaped = str(tmp).replace("'", "''")
            store.con.execute(f"COPY ({query}) TO '{escaped}' ({options})")
            row = store.con.execute("SELECT count(*) FROM trials").fetchone()
            rows = int(row[0]) if row else 0
        commit()
    except BaseException:
        abort()
        raise
    return rows
