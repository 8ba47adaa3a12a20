"""Machine output on stdout: CSV, JSON, JSON lines and stored payloads, byte-exact.

These bytes are for programs, so they never pass through a Rich console: a
console wraps lines at its width (80 columns when stdout is a pipe), reads
``[...]`` as markup and ``:x:`` as an emoji.  Here rows are written with the
csv module and orjson straight to ``sys.stdout.buffer``, so the output is the
same on a terminal, a pipe or a file.

Values are DuckDB's own Python values, not a DataFrame's (pandas turns NULL
into ``NaN`` or ``NaT``, integers with NULLs into floats and dates into
timestamps).  NULL is an empty CSV cell and JSON ``null``; dates and times
are ISO 8601; lists are JSON arrays (in CSV, lists of strings are joined with
'; ' and other nested values written as JSON, as ``export --format csv``
does); CSV text cells are neutralised against spreadsheet formulas
(``cartatlas.spreadsheet``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

import orjson

from cartatlas.spreadsheet import flat_text, neutralise

MACHINE_FORMATS = ("csv", "json", "jsonl")

#: The integers orjson writes as numbers; larger ones (HUGEINT) are written as text rather than rounded.
_INT_RANGE = (-(2**63), 2**64 - 1)


def json_value(value: Any) -> Any:
    """``value`` as orjson can write it exactly: non-finite floats as null, decimals as numbers when exact.

    DuckDB's values need little; the rest is for values from pandas or numpy
    (``NaT`` and ``NaN`` are null, numpy scalars and arrays plain numbers and
    lists, timestamps ISO text) that a summary may hold.
    """
    if value is None or isinstance(value, bool | str | uuid.UUID):
        return value
    if isinstance(value, dt.date | dt.time):
        if value != value:  # pandas' NaT
            return None
        # Subclasses (pandas' Timestamp) as ISO text; orjson writes the standard types itself.
        return value if type(value) in (dt.date, dt.datetime, dt.time) else value.isoformat()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return json_value(value.tolist())
    if isinstance(value, int):
        return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return json_value(int(value))
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def text_value(value: Any, dtype: str | None = None) -> str:
    """``value`` as the text of a cell (CSV, or a table for people): NULL empty, dates ISO, lists flattened.

    ``dtype`` is DuckDB's type of the column: a ``VARCHAR[]`` is joined with
    '; ' (NULL items left out, as DuckDB's ``array_to_string`` does), every
    other nested value is JSON, as in ``export --format csv``.
    """
    if dtype == "VARCHAR[]" and isinstance(value, list):
        return "; ".join(v for v in value if v is not None)
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | Mapping):
        if dtype is not None:
            return orjson.dumps(value).decode()
        return flat_text(value)
    return str(value)


def _is_text(value: Any) -> bool:
    """Whether a value's cell is text (neutralised in CSV) rather than a number, a date or a boolean."""
    return not isinstance(value, bool | int | float | Decimal | dt.date | dt.time) and value is not None


def write_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: str,
    sink: IO[bytes],
    types: Sequence[str] | None = None,
) -> int:
    """Write ``rows`` to ``sink`` as ``fmt`` (csv, json or jsonl); returns the number of rows.

    ``types`` are DuckDB's column types, which decide how a list is written in CSV.
    """
    if fmt not in MACHINE_FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(MACHINE_FORMATS)})")
    names = [str(c) for c in columns]
    dtypes: Sequence[str | None] = list(types) if types is not None else [None] * len(names)
    n = 0
    if fmt == "csv":
        text = io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow([neutralise(c) for c in names])
            for row in rows:
                writer.writerow(
                    [
                        neutralise(text_value(v, t)) if _is_text(v) else text_value(v, t)
                        for v, t in zip(row, dtypes, strict=True)
                    ]
                )
                n += 1
            text.flush()
        finally:
            text.detach()  # the sink stays open: it is stdout
        return n
    objects = ({name: json_value(v) for name, v in zip(names, row, strict=True)} for row in rows)
    if fmt == "json":
        items = list(objects)
        sink.write(orjson.dumps(items) + b"\n")
        return len(items)
    for obj in objects:
        sink.write(orjson.dumps(obj) + b"\n")
        n += 1
    return n


def stdout_bytes() -> IO[bytes]:
    """Standard output as bytes, after anything already written to it as text."""
    sys.stdout.flush()
    return sys.stdout.buffer


def write_json(obj: Any) -> None:
    """One JSON document on stdout, indented for reading; dates ISO, NULL null."""
    sink = stdout_bytes()
    sink.write(orjson.dumps(json_value(obj), option=orjson.OPT_INDENT_2) + b"\n")
    sink.flush()


def write_payload(payload: str | bytes) -> None:
    """A stored payload on stdout exactly as kept: no newline added, nothing interpreted."""
    sink = stdout_bytes()
    sink.write(payload.encode("utf-8") if isinstance(payload, str) else payload)
    sink.flush()
