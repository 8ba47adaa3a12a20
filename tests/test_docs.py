"""The documentation names every table, view and column users query (so docs/schema.md stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import cartatlas

ROOT = Path(__file__).resolve().parents[1]


def test_schema_doc_covers_every_table_view_and_column(tmp_path: Path) -> None:
    # The label columns of classifications are documented in docs/labels.md, which docs/schema.md points at
    # (generated from the declaration: scripts/label_docs.py).
    doc = (ROOT / "docs" / "schema.md").read_text() + (ROOT / "docs" / "labels.md").read_text()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", doc))
    with cartatlas.open(tmp_path / "d.duckdb") as atlas:
        tables = atlas.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
        missing_tables = sorted(set(tables["table_name"]) - words)
        assert not missing_tables, f"docs/schema.md lacks {missing_tables}"
        for table in ("trials", "classifications", "raw_records", "trial_links", "trial_clusters"):
            if table not in set(tables["table_name"]):
                continue
            columns = atlas.sql(f"DESCRIBE {table}")["column_name"]
            missing = sorted(set(columns) - words)
            assert not missing, f"docs/schema.md lacks columns of {table}: {missing}"
