"""Cells of the CSV and Excel files cartatlas writes: safe to open in a spreadsheet, and able to hold the text.

Registry text, curators' values and SQL results are data, but a spreadsheet
reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
programs, a tab or a carriage return) as a formula: ``=HYPERLINK(...)`` or
``=cmd|' /C calc'!A0`` in a trial's title would become a live link or a
command the moment a reader opens the file.  Following OWASP's advice on CSV
injection, every *text* cell that starts with one of those characters gets a
single quote in front (``neutralise``); numbers, dates and booleans are not
text and keep their values, so a negative enrolment stays the number -5.
The rule is defined once here (``FORMULA_TRIGGERS``) and applied by every CSV
and Excel writer of the package: through ``neutralise`` on Python values, and
through ``neutralise_sql`` where DuckDB writes the CSV itself.

Excel files have two more limits that registry text can hit: XML 1.0 cannot
hold most control characters (an ESC or a vertical tab in a title stopped the
whole report with openpyxl's ``IllegalCharacterError``), and a cell holds at
most 32,767 characters.  ``write_xlsx`` replaces such characters with U+FFFD,
cuts long cells with a visible marker, never writes a formula cell from data,
and returns notes that say how many cells were changed and which rows and
columns were cut, for the command to print.  The database keeps the raw text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:
    import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: The most characters an Excel cell holds.
EXCEL_CELL_LIMIT = 32_767
CUT_MARKER = " [cut: Excel cell limit]"

#: Characters XML 1.0 (and so an .xlsx file) cannot hold: C0 controls but tab, newline and carriage return;
#: lone surrogates; U+FFFE and U+FFFF.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold replaced by U+FFFD (also used for figures' SVG)."""
    return _NOT_IN_XML.sub(REPLACEMENT, text)


def neutralise(text: str) -> str:
    """``text`` with a single quote in front when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralise_sql(expr: str) -> str:
    """A DuckDB expression applying ``neutralise`` to the VARCHAR expression ``expr`` (NULL stays NULL)."""
    firsts = ", ".join("'" + c.replace("'", "''") + "'" for c in FORMULA_TRIGGERS)
    return f"CASE WHEN left({expr}, 1) IN ({firsts}) THEN '''' || {expr} ELSE {expr} END"


def flat_text(value: Sequence[Any] | Mapping[str, Any]) -> str:
    """A nested value as one cell: a list of strings joined with '; ', anything else as JSON."""
    if isinstance(value, Mapping):
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    items = list(value)
    if all(isinstance(v, str) for v in items):
        return "; ".join(items)
    return orjson.dumps(items, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")  # pandas' NaT and NA, without importing pandas


def _cell(value: Any) -> Any:
    """A frame's value as a CSV cell: missing as None, nested values flattened, text neutralised."""
    if _is_missing(value):
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple | Mapping):
        return neutralise(flat_text(value))
    if isinstance(value, str):
        return neutralise(value)
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as it should go to a CSV file: text cells neutralised, lists flattened, numbers untouched."""
    import pandas as pd

    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in frame.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(_cell).astype(object)
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` to a CSV file (UTF-8, no index) with every text cell neutralised."""
    csv_frame(frame).to_csv(path, index=False, encoding="utf-8")


@dataclass
class CellChanges:
    """What writing an Excel file changed in the data, for the command to say."""

    neutralised: int = 0
    replaced: int = 0  # cells with characters XML cannot hold
    cut: list[tuple[str, str, str]] = field(default_factory=list)  # (sheet, row label, column)

    def notes(self, name: str) -> list[str]:
        """One line per kind of change; ``name`` names the file."""
        out = []
        if self.replaced:
            out.append(
                f"{name}: {self.replaced:,} cell{'s' if self.replaced != 1 else ''} held characters an Excel file "
                "cannot store (control characters); they were replaced with U+FFFD (the database keeps the text)"
            )
        if self.cut:
            where = "; ".join(f"{sheet} {row}, column {col}" for sheet, row, col in self.cut[:20])
            more = f"; and {len(self.cut) - 20:,} more" if len(self.cut) > 20 else ""
            out.append(
                f"{name}: {len(self.cut):,} cell{'s' if len(self.cut) != 1 else ''} cut at Excel's "
                f"{EXCEL_CELL_LIMIT:,}-character limit: {where}{more}"
            )
        return out


class _XlsxCells:
    """Turns values into openpyxl cells that hold them as they are: text as text, never a formula."""

    def __init__(self, changes: CellChanges) -> None:
        self.changes = changes

    def text(self, ws: Any, text: str, where: tuple[str, str, str] | None) -> Any:
        from openpyxl.cell import WriteOnlyCell

        safe = neutralise(text)
        if len(safe) != len(text):
            self.changes.neutralised += 1
        cleaned = xml_safe(safe)
        if cleaned != safe:
            self.changes.replaced += 1
        if len(cleaned) > EXCEL_CELL_LIMIT:
            cleaned = cleaned[: EXCEL_CELL_LIMIT - len(CUT_MARKER)] + CUT_MARKER
            if where is not None:
                self.changes.cut.append(where)
        cell = WriteOnlyCell(ws, value=cleaned)
        cell.data_type = "s"  # openpyxl would otherwise make '=...' a formula and '#N/A' an error cell
        return cell

    def value(self, ws: Any, value: Any, where: tuple[str, str, str] | None) -> Any:
        if _is_missing(value):
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, str):
            return self.text(ws, value, where)
        if isinstance(value, bool | int | Decimal):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else self.text(ws, str(value), where)
        if isinstance(value, dt.datetime):
            if type(value) is not dt.datetime and hasattr(value, "to_pydatetime"):
                value = value.to_pydatetime()  # pandas' Timestamp
            # Excel has no time zones: an aware time is written in UTC.
            return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        if isinstance(value, dt.date | dt.time):
            return value
        if isinstance(value, list | tuple | Mapping):
            return self.text(ws, flat_text(value), where)
        return self.text(ws, str(value), where)


def write_xlsx(sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Any]]]], path: Path) -> CellChanges:
    """Write each sheet's (columns, rows) to one workbook at ``path``; returns what had to change.

    A cut cell is reported by the sheet, the row's first value (the trial id
    in cartatlas's tables) and the column.
    """
    from openpyxl import Workbook

    changes = CellChanges()
    cells = _XlsxCells(changes)
    wb = Workbook(write_only=True)
    for name, (columns, rows) in sheets.items():
        ws = wb.create_sheet(title=name[:31])
        ws.append([cells.text(ws, str(c), None) for c in columns])
        cols = [str(c) for c in columns]
        for n, row in enumerate(rows, start=1):
            label = f"row {n}" if not cols else f"row {n} ({cols[0]} {row[0]})"
            ws.append([cells.value(ws, v, (name, label, col)) for v, col in zip(row, cols, strict=True)])
    wb.save(path)
    return changes


def frame_sheet(frame: pd.DataFrame) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """A DataFrame as ``write_xlsx``'s (columns, rows)."""
    return [str(c) for c in frame.columns], frame.itertuples(index=False, name=None)
