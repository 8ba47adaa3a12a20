"""The trial table as a file: CSV, Excel or Parquet, exactly its rows and columns, safe to open.

Registry text is written by strangers.  A text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
spreadsheet programs (CSV injection); the package's one rule for it
(``cartatlas.spreadsheet``) puts a ``'`` in front, which spreadsheets show as
text, and its Excel writer also replaces characters XML cannot hold and cuts
cells at Excel's limit.  Numbers stay numbers.  Parquet files get the same
cells as the CSV, so the three downloads never disagree.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cartatlas import spreadsheet

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


def render(frame: pd.DataFrame, fmt: str) -> bytes:
    """The table as the bytes of a CSV (UTF-8 with BOM, for Excel), XLSX or Parquet file."""
    if fmt == "csv":
        return spreadsheet.csv_frame(frame).to_csv(index=False).encode("utf-8-sig")
    if fmt == "xlsx":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "trials.xlsx"
            spreadsheet.write_xlsx({"trials": spreadsheet.frame_sheet(frame)}, path)
            return path.read_bytes()
    if fmt == "parquet":
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(spreadsheet.csv_frame(frame), preserve_index=False), buffer)
        return buffer.getvalue()
    raise ValueError(f"unknown download format {fmt!r}; use csv, xlsx or parquet")
