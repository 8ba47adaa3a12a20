"""Domain knowledge as data files, each entry with a source note.

Code in this package only loads the files; adding a synonym, product or
country spelling is a one-line change to a CSV here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from importlib import resources


def read_table(name: str) -> Iterator[dict[str, str]]:
    """Yield the rows of a knowledge CSV, refusing rows that lack a source note."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
        if "source" in row and not (row["source"] or "").strip():
            raise ValueError(f"knowledge/{name} line {lineno}: entry has no source note")
        yield row


def knowledge_version() -> str:
    """A stamp for reports: changes whenever any knowledge file changes."""
    import hashlib

    digest = hashlib.sha256()
    root = resources.files(__name__)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".csv", ".tsv", ".yaml", ".json")):
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]
