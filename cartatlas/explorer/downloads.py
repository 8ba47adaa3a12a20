"""The trial table as a file: CSV, Excel or Parquet, exactly its rows and columns, safe to open.

Registry text is written by strangers.  A cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
spreadsheet programs (CSV injection), so every such text cell gets a leading
``'``, which spreadsheets show as text; numbers stay numbers.  Parquet files
get the same cells as the CSV, so the three downloads never disagree.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, made plain text; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("str", "string"):
            out[column] = out[column].map(neutralise).astype(object)
    return out


def render(frame: pd.DataFrame, fmt: str) -> bytes:
    """The table as the bytes of a CSV (UTF-8 with BOM, for Excel), XLSX or Parquet file."""
    safe = neutralised(frame)
    if fmt == "csv":
        return safe.to_csv(index=False).encode("utf-8-sig")
    buffer = io.BytesIO()
    if fmt == "xlsx":
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            safe.to_excel(writer, index=False, sheet_name="trials")
        return buffer.getvalue()
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(safe, preserve_index=False), buffer)
        return buffer.getvalue()
    raise ValueError(f"unknown download format {fmt!r}; use csv, xlsx or parquet")
