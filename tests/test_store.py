"""The versioned store: append-only raw versions, current-version choice, migrations, transactions."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

import cartatlas
from cartatlas.pipeline import ingest, write
from cartatlas.store.db import ROW_GROUP_SIZE, SchemaError, Store
from cartatlas.store.migrations import LATEST_VERSION, MIGRATIONS
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"


def _studies() -> list[dict[str, Any]]:
    return json.loads(LEUKEMIA.read_text())  # type: ignore[no-any-return]


def _write(path: Path, studies: list[dict[str, Any]]) -> Path:
    path.write_bytes(orjson.dumps(studies))
    return path


def _changed(study: dict[str, Any], status: str, updated: str) -> dict[str, Any]:
    s = copy.deepcopy(study)
    s["protocolSection"]["statusModule"]["overallStatus"] = status
    s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": updated, "type": "ACTUAL"}
    return s


def test_reimport_of_identical_content_adds_nothing(atlas: cartatlas.Atlas) -> None:
    first = atlas.import_files([LEUKEMIA])
    assert (first.seen, first.new, first.rejected) == (100, 100, 0)
    again = atlas.import_files([LEUKEMIA])
    assert (again.new, again.changed, again.unchanged) == (0, 0, 100)
    assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 100


def test_same_content_in_another_shape_is_unchanged(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    """Key order and file layout are not content: a JSONL.gz of the same studies adds nothing."""
    atlas.import_files([LEUKEMIA])
    shuffled = tmp_path / "page.jsonl.gz"
    with gzip.open(shuffled, "wb") as fh:
        for s in _studies():
            fh.write(json.dumps(s, sort_keys=False, indent=None)[::1].encode() + b"\n")
    stats = atlas.import_files([shuffled])
    assert stats.unchanged == 100 and stats.new == 0


def test_changed_content_adds_a_version_and_updates_the_trial(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    studies = _studies()
    atlas.import_files([_write(tmp_path / "v1.json", studies[:3])])
    newer = _changed(studies[0], "COMPLETED", "2024-05-01")
    stats = atlas.import_files([_write(tmp_path / "v2.json", [newer])])
    assert (stats.changed, stats.new) == (1, 0)
    nct = newer["protocolSection"]["identificationModule"]["nctId"]
    versions = atlas.versions(nct)
    assert list(versions["version_no"]) == [1, 2]
    trial = atlas.sql("SELECT overall_status, version_id FROM trials WHERE trial_id = ?", [nct])
    assert trial["overall_status"][0] == "COMPLETED"
    assert trial["version_id"][0] == versions["version_id"].iloc[-1]
    # The first version is still there, byte for byte.
    old = orjson.loads(atlas.raw(int(versions["version_id"].iloc[0])))
    assert (
        old["protocolSection"]["statusModule"]["overallStatus"]
        == studies[0]["protocolSection"]["statusModule"]["overallStatus"]
    )


def test_an_older_file_imported_later_does_not_roll_back(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    study = _studies()[0]
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    atlas.import_files([_write(tmp_path / "new.json", [_changed(study, "COMPLETED", "2025-01-01")])])
    stats = atlas.import_files([_write(tmp_path / "old.json", [_changed(study, "RECRUITING", "2020-01-01")])])
    assert stats.changed == 1
    assert len(atlas.versions(nct)) == 2
    status = atlas.sql("SELECT overall_status FROM trials WHERE trial_id = ?", [nct])["overall_status"][0]
    assert status == "COMPLETED"
    # ...and a rebuild from raw reaches the same answer.
    atlas.rebuild()
    assert atlas.sql("SELECT overall_status FROM trials WHERE trial_id = ?", [nct])["overall_status"][0] == "COMPLETED"


def test_two_versions_in_one_batch_keep_the_latest(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    study = _studies()[1]
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    both = [_changed(study, "COMPLETED", "2025-02-01"), _changed(study, "RECRUITING", "2024-02-01")]
    stats = atlas.import_files([_write(tmp_path / "both.json", both)])
    assert (stats.new, stats.changed) == (1, 1)
    assert atlas.sql("SELECT overall_status FROM trials WHERE trial_id = ?", [nct])["overall_status"][0] == "COMPLETED"


def test_bad_input_is_named_and_the_rest_imports(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    studies = _studies()[:5]
    no_id = copy.deepcopy(studies[0])
    del no_id["protocolSection"]["identificationModule"]["nctId"]
    mixed = _write(tmp_path / "mixed.json", [no_id, *studies[1:]])
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(LEUKEMIA.read_bytes()[:5000])
    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_bytes(orjson.dumps(studies[1]) + b"\n{broken\n" + orjson.dumps(studies[2]) + b"\n")
    missing = tmp_path / "nope.json"
    stats = atlas.import_files([mixed, truncated, jsonl, missing])
    messages = [str(r) for r in stats.rejects]
    assert stats.rejected == 4
    assert any("mixed.json" in m and "item 0" in m and "no NCT id" in m for m in messages)
    assert any("truncated.json" in m and "truncated JSON" in m for m in messages)
    assert any("lines.jsonl" in m and "line 2" in m and "invalid JSON" in m for m in messages)
    assert any("nope.json" in m and "no such file" in m for m in messages)
    assert stats.new == 4  # studies[1:5]; the JSONL repeats two of them
    logged = atlas.sql("SELECT count(*) AS n FROM rejects")["n"][0]
    assert logged == 4
    run = atlas.sql("SELECT status, rejected FROM runs")
    assert run["status"][0] == "partial" and run["rejected"][0] == 4


def test_a_failure_mid_batch_leaves_nothing_half_written(
    atlas: cartatlas.Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(write, "upsert", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        atlas.import_files([LEUKEMIA])
    assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 0
    assert atlas.sql("SELECT count(*) AS n FROM trials")["n"][0] == 0
    assert atlas.sql("SELECT status FROM runs")["status"][0] == "failed"
    monkeypatch.undo()
    assert atlas.import_files([LEUKEMIA]).new == 100


@pytest.mark.parametrize(
    ("commit_size", "commit_bytes", "kept"), [(10, 1 << 30, 20), (25, 1 << 30, 60), (10_000, 1, 20)]
)
def test_batches_commit_independently(
    atlas: cartatlas.Atlas, monkeypatch: pytest.MonkeyPatch, commit_size: int, commit_bytes: int, kept: int
) -> None:
    """A crash in the third transaction keeps the first two whole and adds nothing of the third.

    Batches of 10 records are merged into transactions of at least ``commit_size`` records, or
    fewer once they pass ``commit_bytes`` (1 byte: each batch is a transaction).
    """
    calls = {"n": 0}
    real = write.upsert

    def flaky(store: Store, group: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("crash")
        real(store, group)

    monkeypatch.setattr(write, "upsert", flaky)
    monkeypatch.setattr(ingest, "BATCH_SIZE", 10)
    defaults = {"batch_size": 10, "commit_size": commit_size, "commit_bytes": commit_bytes, "on_batch": None}
    monkeypatch.setattr(ingest.save_records, "__kwdefaults__", defaults)
    with pytest.raises(RuntimeError):
        atlas.import_files([LEUKEMIA])
    raw = atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0]
    trials = atlas.sql("SELECT count(*) AS n FROM trials")["n"][0]
    assert raw == trials == kept


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.duckdb"
    Store.open(db).close()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', now())", [LATEST_VERSION + 1])
    con.close()
    with pytest.raises(SchemaError, match="newer cartatlas"):
        Store.open(db)


def test_foreign_duckdb_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.close()
    with pytest.raises(SchemaError, match="not a cartatlas database"):
        Store.open(db)
    con = duckdb.connect(str(db))
    assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == {"customers"}
    con.close()


def test_old_schema_is_migrated_and_rebuilt_from_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database written at schema 2 (raw records and trials only) opens at the latest schema."""
    from cartatlas.store import db as db_module

    db = tmp_path / "old.duckdb"
    with monkeypatch.context() as m:
        m.setattr(db_module, "MIGRATIONS", MIGRATIONS[:2])
        m.setattr(db_module, "LATEST_VERSION", 2)
        with cartatlas.open(db) as atlas:
            atlas.import_files([LEUKEMIA], classify=False)
            assert atlas.store.schema_version() == 2
    with cartatlas.open(db) as atlas:
        assert atlas.store.schema_version() == LATEST_VERSION
        applied = atlas.sql("SELECT version FROM schema_migrations ORDER BY version")["version"].tolist()
        assert applied == [m.version for m in MIGRATIONS]
        assert atlas.sql("SELECT count(*) AS n FROM trials")["n"][0] == 100
        assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 100
        assert atlas.classify() == 100


def test_read_only_open_of_missing_db_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such database"):
        Store.open(tmp_path / "missing.duckdb", read_only=True)


def test_file_is_written_in_small_row_groups_and_cursors_see_it(tmp_path: Path) -> None:
    """Every open attaches the file with cartatlas's row-group size (DuckDB does not keep it in the file)."""
    db = tmp_path / "rg.duckdb"
    Store.open(db).close()
    with Store.open(db) as store:  # a reopened file, too
        store.con.execute(f"CREATE TABLE numbers AS SELECT range AS i FROM range({2 * ROW_GROUP_SIZE + 1})")
        groups = store.con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('numbers')").fetchone()
        assert groups == (3,)
    with Store.open(db, read_only=True) as store:
        assert store.arrow("SELECT count(*) AS n FROM numbers").column("n").to_pylist() == [2 * ROW_GROUP_SIZE + 1]
        cursor = store.cursor()
        assert cursor.execute("SELECT max(version) FROM schema_migrations").fetchone() == (LATEST_VERSION,)
        cursor.close()


def test_payloads_are_stored_compressed(atlas: cartatlas.Atlas) -> None:
    """Payloads are declared zstd: left to itself DuckDB stores large JSON texts uncompressed, 7 times larger."""
    atlas.import_files([LEUKEMIA], classify=False)
    atlas.store.con.execute("CHECKPOINT")
    ddl = atlas.sql("SELECT sql FROM duckdb_tables() WHERE table_name = 'raw_records'")["sql"][0]
    assert "payload VARCHAR USING COMPRESSION ZSTD" in ddl
    methods = set(
        atlas.sql("SELECT compression FROM pragma_storage_info('raw_records') WHERE column_name = 'payload'")[
            "compression"
        ]
    )
    assert methods <= {"ZSTD", "Constant"}


def test_views_unnest_sites_and_countries(atlas: cartatlas.Atlas) -> None:
    atlas.import_files([LEUKEMIA])
    sites = atlas.sql("SELECT count(*) AS n FROM trial_sites")["n"][0]
    expected = sum(
        len(s["protocolSection"].get("contactsLocationsModule", {}).get("locations", [])) for s in _studies()
    )
    assert sites == expected
    tw = atlas.sql("SELECT count(*) AS n FROM trial_countries WHERE trial_id = 'NCT05756322'")["n"][0]
    assert tw == 2


def test_an_existing_database_gets_the_lookup_indexes_and_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 9: a database of schema 7 opens with an index on each id column a trial is read by."""
    from cartatlas.store.schema.lookups import LOOKUPS

    db = tmp_path / "seven.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([LEUKEMIA])
        # Back to schema 7 as a database of before had it: no link_features, no lookup index (the label
        # columns of migration 10 stay: their migration keeps a present column).
        con = atlas.store.con
        for name, _, _ in LOOKUPS:
            con.execute(f"DROP INDEX {name}")
        con.execute("DROP TABLE link_features")
        con.execute("DELETE FROM schema_migrations WHERE version >= 8")
        assert atlas.store.schema_version() == 7
        assert atlas.sql("SELECT count(*) AS n FROM duckdb_indexes()")["n"][0] == 0
    with cartatlas.open(db) as atlas:
        assert atlas.store.schema_version() == LATEST_VERSION >= 9
        recorded = atlas.sql("SELECT version, name FROM schema_migrations WHERE version = 9")
        assert recorded["name"].tolist() == [next(m.name for m in MIGRATIONS if m.version == 9)]
        indexes = atlas.sql("SELECT index_name, table_name, expressions FROM duckdb_indexes() ORDER BY index_name")
        assert sorted(zip(indexes["index_name"], indexes["table_name"], strict=True)) == sorted(
            (name, table) for name, table, _ in LOOKUPS
        )
        for table in ("trials", "classifications", "raw_records"):  # DuckDB picks an index scan as it runs
            column = next(c for _, t, c in LOOKUPS if t == table)
            plan = atlas.store.con.execute(f"EXPLAIN ANALYZE SELECT * FROM {table} WHERE {column} = ?", ["NCT05756322"])
            assert "Type: Index Scan" in plan.fetchall()[0][1], table
        assert atlas.trial("NCT05756322") is not None
    with cartatlas.open(db) as atlas:  # a rebuild recreates trials: its index comes back with it
        atlas.rebuild()
        names = set(atlas.sql("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'trials'")["index_name"])
        assert names == {"trials_by_trial_id"}


def test_duckdb_memory_is_bounded_and_the_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's own default (80% of the machine) would fill with cached pages; cartatlas bounds it."""
    from cartatlas.store.db import MEMORY_LIMIT_ENV, StoreError

    db = tmp_path / "m.duckdb"
    with Store.open(db) as store:
        row = store.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None and row[0] in ("1.0 GiB", "1024.0 MiB")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    with Store.open(db, read_only=True) as store:
        row = store.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None and row[0] in ("286.1 MiB", "300.0 MB")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(StoreError, match=r"CARTATLAS_MEMORY_LIMIT='lots' is not a memory size"):
        Store.open(db)
