"""Writing the normalised trials to files users open elsewhere.

Files are written to a temporary name beside the target and renamed into
place, so a crash or a full disk never leaves a half-written export under the
name a user (or a script) expects.  ``trial_id`` and ``registry`` come first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cartatlas.store.db import Store
from cartatlas.store.schema import TRIAL_FIELDS

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


def export_trials(store: Store, fmt: str, out: Path) -> int:
    """Write every normalised trial to ``out``; returns the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    query = export_query(store, flat=fmt in ("csv", "xlsx"))
    return _write(store, query, fmt, out, table="trials")


def export_publications(store: Store, fmt: str, out: Path) -> int:
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
    # Excel holds at most 32,767 characters per cell (author lists of consortia are longer).
    return _write(store, query, fmt, out, table="publications", cell_limit=32000)


def _write(store: Store, query: str, fmt: str, out: Path, *, table: str, cell_limit: int | None = None) -> int:
    """``query``'s rows to ``out`` in ``fmt``, atomically; returns the rows of ``table``.

    ``cell_limit`` cuts longer texts in an Excel file, saying so in the cell.
    """
    tmp, commit, abort = _atomic_target(out)
    try:
        if fmt == "xlsx":
            df = store.con.execute(query).df()
            if cell_limit is not None:
                limit = cell_limit
                df = df.map(
                    lambda v: v[:limit] + " [cut: Excel cell limit]" if isinstance(v, str) and len(v) > limit else v
                )
            df.to_excel(tmp, index=False, sheet_name=table, engine="openpyxl")
        else:
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
    return int(row[0]) if row else 0
