"""Indexes for reading one trial by its id (migration 9): the explorer's trial page, ``Atlas.trial``.

Every table's primary key is an index, but on (registry, id) pairs, which
DuckDB does not use to filter; a trial is asked for by its id alone.
Without these a read of one trial scans its id column (a row group of
16,384 rows decompressed per read: some 10 ms for one trials row at 100,000
trials, more than the page's goal allows under load).  With them DuckDB
looks the row up (an "Index Scan" in the plan).

Each index is on one column of ids; they are small (an ART of the ids) and
cost little on an import.
"""

from __future__ import annotations

#: (index name, table, column) of each lookup index.
LOOKUPS: tuple[tuple[str, str, str], ...] = (
    ("trials_by_trial_id", "trials", "trial_id"),
    ("classifications_by_trial_id", "classifications", "trial_id"),
    ("raw_records_by_record_id", "raw_records", "record_id"),
    ("trial_links_by_trial_id_a", "trial_links", "trial_id_a"),
    ("trial_links_by_trial_id_b", "trial_links", "trial_id_b"),
    ("publication_links_by_trial_id", "publication_links", "trial_id"),
)


def lookups_ddl(*tables: str) -> str:
    """CREATE INDEX IF NOT EXISTS for the lookup indexes of these tables (default: all)."""
    return "\n".join(
        f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column});"
        for name, table, column in LOOKUPS
        if not tables or table in tables
    )
