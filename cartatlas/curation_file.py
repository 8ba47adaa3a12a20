"""The curator's CSV file, as rows: one reader for the label overrides and the link decisions.

The same file carries both (``field`` says which); each consumer validates
its own rows, but what makes the file readable at all is decided here.  Rows
with a blank ``value`` are skipped: a review file (``cartatlas review --out``)
lists every label to check, and a curator fills in only those decided.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

REQUIRED_COLUMNS = ("trial_id", "field", "value", "reason", "curator", "date")


def curation_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for every filled-in row; a file that cannot be read, or lacks a column, is a ValueError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read curation file: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path}: curation file lacks column(s) {', '.join(missing)} (needs {REQUIRED_COLUMNS})")
    for lineno, row in enumerate(reader, start=2):
        # A row whose value is blank was not filled in (``cartatlas review --out`` writes one per label to
        # check, and the curator fills only those decided): it is no instruction and is skipped.
        if (row.get("value") or "").strip():
            yield lineno, row
