"""DuckDB settings for a bulk write (an import, a re-screening of every trial).

Moved here from the importer (``cartatlas.pipeline.ingest``) so that the store's own bulk writers
(``cartatlas.store.classifications``) use them without importing the pipeline above it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from cartatlas.store.db import Store

#: DuckDB settings while importing.  Committed rows stay in memory until a checkpoint writes them to
#: the file, and DuckDB otherwise caches the whole growing file: a bounded memory limit with a
#: checkpoint every 128 MB of log keeps an import's memory flat (about half a GiB at any size).  With
#: a larger threshold the unwritten rows crowd the limit and commits slow down twofold; with a smaller
#: one the growing row group is rewritten too often.
IMPORT_MEMORY_LIMIT = 320 * 2**20
IMPORT_CHECKPOINT_THRESHOLD = "128MB"
_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def _size(text: str) -> float:
    """A DuckDB size setting ("18.6 GiB", "256.0 MiB") in bytes (infinity when unparsable)."""
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * _UNITS[unit or "bytes"]
    except (ValueError, KeyError):
        return math.inf


@contextmanager
def import_settings(store: Store) -> Iterator[None]:
    """Apply the import's memory settings for the duration of ``save_records``, then restore them.

    A limit the user set lower is kept.
    """
    con = store.con
    names = ("memory_limit", "checkpoint_threshold")
    before = {
        name: str(value)
        for name, value in con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN (?, ?)", list(names)
        ).fetchall()
    }
    if len(before) != len(names):  # an unknown DuckDB: leave its settings alone
        yield
        return
    if _size(before["memory_limit"]) > IMPORT_MEMORY_LIMIT:
        con.execute(f"SET memory_limit = '{IMPORT_MEMORY_LIMIT // 2**20}MB'")
    con.execute(f"SET checkpoint_threshold = '{IMPORT_CHECKPOINT_THRESHOLD}'")
    try:
        yield
    finally:
        for name, value in before.items():
            con.execute(f"SET {name} = '{value}'")
