"""Issue 14: every classification label declared once (cartatlas/knowledge/labels.py), the rest generated.

Each test takes one thing that used to spell the labels out by hand and checks it now follows the
declaration, with the exact columns, vocabularies and facets the hand-written copies had.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import duckdb

from cartatlas import curation
from cartatlas.analysis import filters
from cartatlas.knowledge import labels
from cartatlas.report import labels as report_labels
from cartatlas.store import classifications, migrations

ROOT = Path(__file__).resolve().parents[1]
#: The labels before the declaration, in the order of the table's columns.
BASE = (
    "relation", "platforms", "targets", "target_strategy", "branch", "disease_entity", "product_source",
    "combinations", "products", "confidence",
)  # fmt: skip


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("label_docs", ROOT / "scripts" / "label_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_base_labels_keep_their_order_and_schema_version() -> None:
    base = [la.name for la in labels.LABELS if la.schema_version == labels.BASE_SCHEMA]
    assert tuple(base) == BASE
    assert len(labels.BY_NAME) == len(labels.LABELS)


def test_migration_3_creates_the_table_it_always_created() -> None:
    """The DDL is generated, and for the labels of migration 3 it is the hand-written one, column for column."""
    con = duckdb.connect()
    con.execute(migrations.CLASSIFICATION_DDL)
    columns = [r[0] for r in con.execute("DESCRIBE classifications").fetchall()]
    assert columns == [
        "registry", "trial_id", "content_hash", *BASE[:-1], "flags", "confidence", "confidence_score",
        "evidence", "auto", "curated_fields", "classifier_version", "kb_version", "classified_at",
    ]  # fmt: skip
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall())
    assert types["platforms"] == "VARCHAR[]" and types["product_source"] == "VARCHAR"
    nullable = dict(con.execute("SELECT column_name, is_nullable FROM information_schema.columns").fetchall())
    assert nullable["relation"] == "NO" and nullable["branch"] == "YES"


def test_every_declared_label_is_a_column_of_a_new_database(tmp_path: Path) -> None:
    from cartatlas.store.db import Store

    with Store.open(tmp_path / "new.duckdb") as store:
        columns = {r[0] for r in store.con.execute("DESCRIBE classifications").fetchall()}
        assert {la.name for la in labels.LABELS} <= columns
        assert store.schema_version() == migrations.LATEST_VERSION
    assert set(classifications._CLASS_SCHEMA.names) <= columns


def test_curatable_fields_and_vocabularies_come_from_the_declaration() -> None:
    assert classifications.LIST_FIELDS[:5] == ("platforms", "targets", "disease_entity", "combinations", "products")
    assert classifications.SCALAR_FIELDS[:5] == (
        "relation",
        "target_strategy",
        "branch",
        "product_source",
        "confidence",
    )
    assert curation.VOCABULARIES["product_source"] == frozenset({"autologous", "allogeneic", "in-vivo", "unknown"})
    assert curation.VOCABULARIES["platforms"] >= {"CAR-T", "CAR-NK", "in-vivo-CAR"}
    assert "targets" not in curation.VOCABULARIES  # open: the knowledge base names targets


def test_export_columns_follow_the_declaration() -> None:
    found = classifications.export_columns(None)  # type: ignore[arg-type]
    assert found is not None
    cols = found[0]
    base = [
        "c.relation", "c.platforms", "c.targets", "c.target_strategy", "c.branch", "c.disease_entity",
        "c.product_source", "c.combinations", "c.products",
    ]  # fmt: skip
    assert cols[: len(base)] == base
    tail = [
        "c.flags",
        "c.confidence",
        "c.confidence_score",
        "c.curated_fields",
        "CAST(c.evidence AS VARCHAR) AS evidence",
    ]
    assert [c for c in cols if c in tail] == tail


def test_explorer_facets_and_columns_keep_their_order() -> None:
    names = list(filters.FACETS)
    assert names[:6] == ["target", "strategy", "platform", "branch", "disease", "phase"]
    assert names.index("registry") + 1 == names.index("source") == names.index("confidence") - 1
    assert names[-1] == "curated"
    assert filters.FACETS["source"].label == "Cell source" and filters.FACETS["source"].column == "product_source"
    assert filters.TABLE_COLUMNS["diseases"].label == "Diseases"
    assert filters.TABLE_COLUMNS["targets"].source == "targets"


def test_report_words_come_from_the_declaration() -> None:
    assert report_labels.label("product_source", "unknown") == "Not stated"
    assert report_labels.label("platform", "CAR-gdT") == "CAR-γδT"
    assert report_labels.label("strategy", "co-administered") == "Co-administered CARs"
    assert report_labels.PRODUCT_SOURCE_LABELS["in-vivo"] == "In vivo"


def test_label_docs_are_current() -> None:
    """docs/labels.md is generated from the declaration: a label's commit carries the regenerated page."""
    assert _script().main(["--check"]) == 0
