"""Weekly re-runs (issue 16): a re-import of a whole export does only the work its changes need,
and stores exactly what the full path stores."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

import cartatlas
from cartatlas.pipeline import ingest, prepare, version_plan, workers
from tests.conftest import CTGOV, DATA

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


def _weeks(tmp_path: Path, n: int) -> tuple[Path, Path, list[str], list[str]]:
    """Week 1: the first n monitor studies; week 2: the same export with every 50th study's status
    changed and two new studies (copies with new NCT ids).  Returns the files, the changed and new ids."""
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines()[:n]
    first, second = tmp_path / "week1.jsonl", tmp_path / "week2.jsonl"
    first.write_bytes(b"\n".join(lines) + b"\n")
    changed, new, out = [], [], []
    for i, line in enumerate(lines):
        if i % 50 == 7:
            study = orjson.loads(line)
            status = study["protocolSection"].setdefault("statusModule", {})
            status["overallStatus"] = "TERMINATED" if status.get("overallStatus") != "TERMINATED" else "COMPLETED"
            changed.append(study["protocolSection"]["identificationModule"]["nctId"])
            line = orjson.dumps(study)
        out.append(line)
    for k, line in enumerate(lines[:2]):
        study = orjson.loads(line)
        study["protocolSection"]["identificationModule"]["nctId"] = f"NCT9{k:07d}"
        new.append(f"NCT9{k:07d}")
        out.append(orjson.dumps(study))
    second.write_bytes(b"\n".join(out) + b"\n")
    return first, second, changed, new


Content = dict[str, list[tuple[object, ...]]]


def _content(atlas: cartatlas.Atlas) -> Content:
    queries = {
        "raw": "SELECT * EXCLUDE (fetched_at, run_id) FROM raw_records ORDER BY version_id",
        "trials": "SELECT * FROM trials ORDER BY registry, trial_id",
        "sites": "SELECT * FROM trial_sites ORDER BY ALL",
        "rejects": "SELECT source, locator, record_id, problem FROM rejects ORDER BY ALL",
    }
    return {name: [tuple(r) for r in atlas.store.con.execute(q).fetchall()] for name, q in queries.items()}


def _two_weeks(db: Path, first: Path, second: Path) -> tuple[list[cartatlas.ImportStats], Content]:
    with cartatlas.open(db) as atlas:
        stats = [atlas.import_files([path], classify=False) for path in (first, second)]
        return stats, _content(atlas)


@pytest.mark.parametrize("n_workers", ["0", "1"])
def test_a_reimport_skips_known_records_and_stores_what_the_full_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_workers: str
) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, n_workers)
    monkeypatch.setattr(workers, "WORKERS_AFTER", 0)  # with workers: from the first full batch on
    first, second, changed, new = _weeks(tmp_path, ingest.BATCH_SIZE + 500)
    stats, skipped = _two_weeks(tmp_path / "skip.duckdb", first, second)
    monkeypatch.setattr(ingest, "known_hashes", lambda store: None)  # the full path: every record normalised
    full_stats, full = _two_weeks(tmp_path / "full.duckdb", first, second)
    assert skipped == full
    assert (stats[1].seen, stats[1].new, stats[1].changed, stats[1].unchanged) == (2502, 2, 50, 2450)
    assert [(s.new, s.changed, s.unchanged, s.rejected) for s in stats] == [
        (s.new, s.changed, s.unchanged, s.rejected) for s in full_stats
    ]
    # The change is picked up: the changed studies show their new status, the new ones are there.
    with cartatlas.open(tmp_path / "skip.duckdb") as atlas:
        rows = atlas.store.con.execute(
            "SELECT t.trial_id, t.overall_status, r.payload FROM trials t JOIN raw_records r USING (version_id) "
            "WHERE t.trial_id IN (SELECT UNNEST(?))",
            [changed + new],
        ).fetchall()
    assert len(rows) == len(changed) + len(new) == 52
    for _trial_id, status, payload in rows:
        assert orjson.loads(payload)["protocolSection"]["statusModule"]["overallStatus"].lower() == status.lower()


def test_known_records_are_not_normalised_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    first, second, changed, new = _weeks(tmp_path, 600)
    calls: list[str] = []
    real = prepare.normalised_row

    def counting(spec: Any, payload: Any) -> Any:
        row = real(spec, payload)
        calls.append(row["trial_id"])
        return row

    monkeypatch.setattr(prepare, "normalised_row", counting)
    monkeypatch.setattr(version_plan, "normalised_row", counting)
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([first], classify=False)
        assert len(calls) == 600
        calls.clear()
        stats = atlas.import_files([second], classify=False)
    assert sorted(calls) == sorted(changed + new)
    assert (stats.changed, stats.new, stats.unchanged) == (12, 2, 588)


def test_a_known_hash_not_stored_for_its_record_is_normalised_while_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hash of week 2 claimed known (as a hash of another record, or a 64-bit collision would):
    the changed and new records are normalised while planning, or rejected as the full path rejects them."""
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    first, second, changed, _new = _weeks(tmp_path, 600)
    with cartatlas.open(tmp_path / "scratch.duckdb") as atlas:
        atlas.import_files([second], classify=False)
        every_hash = version_plan.known_hashes(atlas.store)
    assert every_hash is not None and len(every_hash) == 602
    real = prepare.normalised_row

    def failing(spec: Any, payload: Any) -> Any:  # one changed study no longer normalises
        row = real(spec, payload)
        if row["trial_id"] == changed[3] and row["overall_status"] == "TERMINATED":
            raise ValueError("broken on purpose")
        return row

    monkeypatch.setattr(prepare, "normalised_row", failing)
    monkeypatch.setattr(version_plan, "normalised_row", failing)
    contents, all_stats = [], []
    for name, known in (("claimed", lambda store: every_hash), ("full", lambda store: None)):
        monkeypatch.setattr(ingest, "known_hashes", known)
        stats, content = _two_weeks(tmp_path / f"{name}.duckdb", first, second)
        contents.append(content)
        all_stats.append([(s.seen, s.new, s.changed, s.unchanged, s.rejected) for s in stats])
    assert contents[0] == contents[1]
    assert all_stats[0] == all_stats[1]
    assert all_stats[0][1] == (602, 2, 11, 588, 1)
    assert [r[3] for r in contents[0]["rejects"]] == ["cannot normalise: ValueError('broken on purpose')"]


def _links(atlas: cartatlas.Atlas) -> list[tuple[object, ...]]:
    query = "SELECT * EXCLUDE (linked_at) FROM trial_links ORDER BY ALL"
    return [tuple(r) for r in atlas.store.con.execute(query).fetchall()]


def test_a_relink_from_stored_features_gives_the_links_of_a_full_pass(tmp_path: Path) -> None:
    """ICTRP samples (links across registries) and monitor studies: after a weekly change, the links made
    from the stored features of unchanged registrations equal those of a pass that computes every one."""
    from cartatlas.link import link_trials
    from cartatlas.link.features import refresh_features

    first, second, changed, new = _weeks(tmp_path, 300)
    # One changed study now names another study's NCT id in its title: a link the re-run must find.
    lines = second.read_bytes().splitlines()
    named = orjson.loads(lines[20])["protocolSection"]["identificationModule"]["nctId"]
    study = orjson.loads(lines[7])
    study["protocolSection"]["identificationModule"]["briefTitle"] += f" (extension of {named})"
    lines[7] = orjson.dumps(study)
    second.write_bytes(b"\n".join(lines) + b"\n")
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([DATA / "ictrp", first], classify=False)
        store = atlas.store
        stats = link_trials(store)
        cached = _links(atlas)
        assert refresh_features(store) == 0  # every feature stored
        link_trials(store, cached=False)
        assert _links(atlas) == cached
        assert (stats.clusters, len(cached)) == (29, 116)  # the ICTRP samples: scored links across registries

        atlas.import_files([second], classify=False)
        assert refresh_features(store) == len(changed) + len(new) == 8
        link_trials(store)
        cached = _links(atlas)
        link_trials(store, cached=False)
        full = _links(atlas)
    assert cached == full
    mine = orjson.loads(lines[7])["protocolSection"]["identificationModule"]["nctId"]
    assert [r[4:] for r in cached if {r[1], r[3]} == {mine, named}] == [
        ("id_in_title", 1.0, r[6], "candidate") for r in cached if {r[1], r[3]} == {mine, named}
    ]
    assert any({r[1], r[3]} == {mine, named} for r in cached)


def test_rebuild_makes_the_link_features_again(tmp_path: Path) -> None:
    """A rebuild re-normalises rows under unchanged content hashes: features made from the old rows go."""
    first, _second, _changed, _new = _weeks(tmp_path, 300)
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([DATA / "ictrp", first], classify=False)
        atlas.link()
        links = _links(atlas)
        # Features no longer matching their rows (as after a normaliser upgrade) are trusted by a re-link ...
        atlas.store.con.execute("UPDATE link_features SET profile = '[[],[],[],[],false,[],[],null,null,null,[]]'")
        atlas.link()
        assert _links(atlas) == []
        # ... and made again after a rebuild.
        atlas.rebuild()
        assert _links(atlas) == links
