"""ClinicalTrials.gov website CSV downloads, the 2018 layout and the current one.

Both start with an "NCT Number" column; the rest of the header says which
layout it is (``ctgov_csv.csv_row_to_v2`` reads either).  Each row is
stored as a dict keyed by the header names (format ``ctgov_csv``).  The file
is streamed, so an export of any size reads in flat memory, and a broken row
(wrong number of fields, no NCT id) is a Reject naming the file and line
while the other rows import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import IO

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, Reader, register_reader
from cartatlas.sources.ctgov.identity import NCT_IN_TEXT, csv_record_updated

ID_COLUMN = "NCT Number"
_NCT = re.compile(r"^NCT\d{8}$")
#: Site lists of large trials run past the csv module's default 128 KiB field limit.
_FIELD_LIMIT = 64 * 1024 * 1024


def _header(inp: Input) -> tuple[list[str], str] | None:
    """(header fields, delimiter) when the first line is a ClinicalTrials.gov CSV header."""
    first = inp.text_head(65536).split("\n", 1)[0].rstrip("\r")
    for delimiter in (",", "\t"):
        fields = next(csv.reader([first], delimiter=delimiter), [])
        if ID_COLUMN in (f.strip() for f in fields):
            return [f.strip() for f in fields], delimiter
    return None


def _claims(inp: Input) -> bool:
    return _header(inp) is not None


def _read(inp: Input) -> Iterator[Item]:
    found = _header(inp)
    if found is None:
        yield Reject(inp.name, "line 1", f'no "{ID_COLUMN}" column in the header')
        return
    header, delimiter = found
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        yield Reject(inp.name, "line 1", f"header repeats column names {dupes}: rows cannot be read by name")
        return
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    with inp.open() as fh:
        yield from _rows(inp.name, io.TextIOWrapper(fh, encoding="utf-8-sig", newline=""), header, delimiter)


def _rows(source: str, text: IO[str], header: list[str], delimiter: str) -> Iterator[Item]:
    reader = csv.reader(text, delimiter=delimiter)
    try:
        next(reader)  # the header, already read
    except (csv.Error, UnicodeDecodeError, StopIteration):
        return
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Reject(source, _lines(start, reader.line_num), f"malformed CSV: {exc}")
            start = reader.line_num + 1
            continue
        except UnicodeDecodeError as exc:
            yield Reject(source, f"after line {reader.line_num}", f"not UTF-8 text, reading stopped: {exc}")
            return
        locator = _lines(start, reader.line_num)
        start = reader.line_num + 1
        if not any(f.strip() for f in fields):
            continue
        yield _row_record(source, locator, header, fields)


def _lines(first: int, last: int) -> str:
    return f"line {first}" if last <= first else f"lines {first}-{last}"


def _row_record(source: str, locator: str, header: list[str], fields: list[str]) -> Item:
    if len(fields) != len(header):
        m = NCT_IN_TEXT.search(" ".join(fields))
        return Reject(
            source,
            locator,
            f"row has {len(fields)} fields but the header has {len(header)}",
            m.group(0) if m else None,
        )
    row = dict(zip(header, fields, strict=True))
    nct = row[ID_COLUMN].strip()
    if not nct:
        return Reject(source, locator, f'row has no NCT id ("{ID_COLUMN}" is empty)')
    if not _NCT.match(nct):
        return Reject(source, locator, f'"{ID_COLUMN}" is {nct[:40]!r}, not an NCT id')
    return RawRecord(
        registry="ctgov",
        record_id=nct,
        format="ctgov_csv",
        payload=row,
        source=source,
        locator=locator,
        record_updated=csv_record_updated(row),
    )


register_reader(Reader("ctgov-csv", _claims, _read))
