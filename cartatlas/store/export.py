"""Writing the normalised trials to files users open elsewhere.

Files are written to a temporary name beside the target and renamed into
place, so a crash or a full disk never leaves a half-written export under the
name a user (or a script) expects.  ``trial_id`` and ``registry`` come first.

CSV and Excel files are opened in spreadsheets: their text cells are
neutralised against formulas, and an Excel file replaces what it cannot hold
(``cartatlas.spreadsheet``).  JSON lines and Parquet carry the text as stored.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cartatlas.spreadsheet import neutralise_sql, write_xlsx
from cartatlas.store.db import Store
from cartatlas.store.schema import TRIAL_FIELDS

log = logging.getLogger(__name__)

#: Rows fetched at a time when writing an Excel file.
_FETCH_ROWS = 10_000

FORMATS = ("csv", "jsonl", "parquet", "xlsx")

#: Extra column providers: later pipeline stages (classification, linking) add
#: (sql select list, join clause) pairs keyed by stage name.
EXPORT_EXTENSIONS: dict[str, Callable[[Store], tuple[list[str], str] | None]] = {}


def export_query(store: Store, *, flat: bool) -> str:
    """The export SELECT: trial columns, then every registered extension's columns.

    ``flat`` (CSV, Excel) turns lists of strings into '; '-joined text and
    other nested values into JSON text, by the column types DuckDB reports,
    so extension columns are flattened the same way as trial columns.
    """
    cols = [f't."{f.name}"' for f in TRIAL_FIELDS]
    joins: list[str] = []
    for provide in EXPORT_EXTENSIONS.values():
        extension = provide(store)
        if extension is not None:
            extra_cols, join = extension
            cols.extend(extra_cols)
            joins.append(join)
    query = f"SELECT {', '.join(cols)} FROM trials t {' '.join(joins)} ORDER BY t.registry, t.trial_id"
    return _flattened(store, query) if flat else query


def _flattened(store: Store, query: str) -> str:
    """``query`` with lists of strings as '; '-joined text and other nested values as JSON text."""
    outer = []
    for name, dtype, *_ in store.con.execute(f"DESCRIBE ({query})").fetchall():
        quoted = '"' + name.replace('"', '""') + '"'
        if dtype == "VARCHAR[]":
            outer.append(f"array_to_string({quoted}, '; ') AS {quoted}")
        elif dtype.endswith("[]") or dtype.startswith(("STRUCT", "MAP")):
            outer.append(f"CAST(to_json({quoted}) AS VARCHAR) AS {quoted}")
        else:
            outer.append(quoted)
    return f"SELECT {', '.join(outer)} FROM ({query})"


def _neutralised(store: Store, query: str) -> str:
    """``query`` with every text column neutralised against spreadsheet formulas (for DuckDB's CSV writer)."""
    outer = []
    for name, dtype, *_ in store.con.execute(f"DESCRIBE ({query})").fetchall():
        quoted = '"' + name.replace('"', '""') + '"'
        outer.append(f"{neutralise_sql(quoted)} AS {quoted}" if dtype == "VARCHAR" else quoted)
    return f"SELECT {', '.join(outer)} FROM ({query})"


def _atomic_target(out: Path) -> tuple[Path, Callable[[], None], Callable[[], None]]:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); an export gets the mode any new file of the user's would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)

    def commit() -> None:
        os.replace(tmp, out)

    def abort() -> None:
        tmp.unlink(missing_ok=True)

    return tmp, commit, abort


def export_trials(store: Store, fmt: str, out: Path, *, on_note: Callable[[str], None] | None = None) -> int:
    """Write every normalised trial to ``out``; returns the number of rows.

    ``on_note`` hears what an Excel file had to change (default: a logged warning).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    query = export_query(store, flat=fmt in ("csv", "xlsx"))
    return _write(store, query, fmt, out, table="trials", on_note=on_note)


def export_publications(store: Store, fmt: str, out: Path, *, on_note: Callable[[str], None] | None = None) -> int:
    """Write every normalised PubMed article, with its linked trial ids, to ``out``; returns the rows.

    Bookkeeping columns (version id, content hash) are left out; nested
    columns are flattened for CSV and Excel as trials' are (lists of strings
    joined with '; ', other nested values as JSON).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    query = (
        "SELECT p.* EXCLUDE (version_id, content_hash), coalesce(l.linked_trials, []) AS linked_trials "
        "FROM publications p LEFT JOIN (SELECT pmid, list(trial_id ORDER BY score DESC, trial_id) AS linked_trials "
        "FROM publication_links GROUP BY pmid) l USING (pmid) ORDER BY TRY_CAST(p.pmid AS BIGINT), p.pmid"
    )
    if fmt in ("csv", "xlsx"):
        query = _flattened(store, query)
    # Excel holds at most 32,767 characters per cell: author lists of consortia are cut (and reported).
    return _write(store, query, fmt, out, table="publications", on_note=on_note)


def _rows(store: Store, query: str) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    cursor = store.con.execute(query)
    columns = [str(d[0]) for d in cursor.description or []]

    def rows() -> Iterator[tuple[Any, ...]]:
        while batch := cursor.fetchmany(_FETCH_ROWS):
            yield from batch

    return columns, rows()


def _write(
    store: Store, query: str, fmt: str, out: Path, *, table: str, on_note: Callable[[str], None] | None = None
) -> int:
    """``query``'s rows to ``out`` in ``fmt``, atomically; returns the rows of ``table``."""
    tmp, commit, abort = _atomic_target(out)
    notes: list[str] = []
    try:
        if fmt == "xlsx":
            changes = write_xlsx({table: _rows(store, query)}, tmp)
            notes = changes.notes(out.name)
        else:
            if fmt == "csv":
                query = _neutralised(store, query)
            options = {
                "csv": "FORMAT CSV, HEADER TRUE",
                "jsonl": "FORMAT JSON",
                "parquet": "FORMAT PARQUET, COMPRESSION ZSTD",
            }[fmt]
            escaped = str(tmp).replace("'", "''")
            store.con.execute(f"COPY ({query}) TO '{escaped}' ({options})")
        row = store.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        commit()
    except BaseException:
        abort()
        raise
    for note in notes:
        (on_note or log.warning)(note)
    return int(row[0]) if row else 0
