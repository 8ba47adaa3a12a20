"""The curator's CSV file, as rows: one reader for the label overrides and the link decisions.

The same file carries both (``field`` says which); each consumer validates
its own rows, but what makes the file readable at all is decided here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

REQUIRED_COLUMNS = ("trial_id", "field", "value", "reason", "curator", "date")


def curation_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row; a file that cannot be read, or lacks a column, is a ValueError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read curation file: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path}: curation file lacks column(s) {', '.join(missing)} (needs {REQUIRED_COLUMNS})")
    yield from enumerate(reader, start=2)
