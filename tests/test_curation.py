"""Curation: overrides applied after the rules, logged, stale when the record changed, never lost."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
HEADER = ["trial_id", "field", "value", "reason", "curator", "date"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


@pytest.fixture
def atlas(tmp_path: Path) -> cartatlas.Atlas:
    a = cartatlas.open(tmp_path / "c.duckdb")
    a.import_files([LEUKEMIA])
    return a


def labels(atlas: cartatlas.Atlas, trial_id: str) -> dict[str, object]:
    row = atlas.sql("SELECT * FROM classifications WHERE trial_id = ?", [trial_id]).iloc[0]
    return dict(row)


def test_override_applies_and_removing_it_restores_the_rules(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    before = labels(atlas, "NCT05756322")  # LBS-007, a CDC7 inhibitor: not a CAR trial
    assert before["relation"] == "none"
    curation = write_csv(
        tmp_path / "cur.csv",
        [["NCT05756322", "relation", "ancillary", "test override", "tester", "2024-01-01"]],
    )
    outcomes = atlas.curate(curation)
    assert [o.status for o in outcomes] == ["applied"]
    after = labels(atlas, "NCT05756322")
    assert after["relation"] == "ancillary" and list(after["curated_fields"]) == ["relation"]
    assert json.loads(str(after["auto"]))["relation"] == "none"
    write_csv(curation, [])
    atlas.curate(curation)
    restored = labels(atlas, "NCT05756322")
    assert restored["relation"] == "none" and list(restored["curated_fields"]) == []


def test_list_fields_and_survival_of_reclassification(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    curation = write_csv(
        tmp_path / "cur.csv",
        [["NCT05507827", "targets", "CD19; CD22; CD20", "third target in the protocol", "tester", "2024-01-01"]],
    )
    atlas.curate(curation)
    assert list(labels(atlas, "NCT05507827")["targets"]) == ["CD19", "CD22", "CD20"]
    atlas.classify(force=True)  # the rules run again; the remembered file is re-applied
    assert list(labels(atlas, "NCT05507827")["targets"]) == ["CD19", "CD22", "CD20"]
    assert list(labels(atlas, "NCT05507827")["curated_fields"]) == ["targets"]


def test_stale_invalid_and_unknown_lines(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    curation = write_csv(
        tmp_path / "cur.csv",
        [
            # NCT05507827 was last updated 2022-12-14: an override from 2022-01-01 predates that change.
            ["NCT05507827", "branch", "heme-malignancy", "checked", "tester", "2022-01-01"],
            ["NCT05507827", "relation", "maybe", "bad value", "tester", "2024-01-01"],
            ["NCT05507827", "colour", "blue", "bad field", "tester", "2024-01-01"],
            ["NCT05507827", "relation", "therapy", "", "tester", "2024-01-01"],
            ["NCT00000000", "relation", "none", "no such trial", "tester", "2024-01-01"],
            ["NCT05507827", "link", "same:chictr:ChiCTR2000034346", "handled by linking", "tester", "2024-01-01"],
        ],
    )
    outcomes = atlas.curate(curation)
    by_line = {o.line: o for o in outcomes}
    assert by_line[2].status == "stale" and "2022-12-14" in by_line[2].message
    assert by_line[3].status == "invalid" and "maybe" in by_line[3].message and "cur.csv:3" in by_line[3].message
    assert by_line[4].status == "invalid" and "unknown field" in by_line[4].message
    assert by_line[5].status == "invalid" and "reason" in by_line[5].message
    assert by_line[6].status == "unknown_trial"
    assert by_line[7].status == "other_step"
    logged = atlas.sql("SELECT status, count(*) AS n FROM curation_log GROUP BY 1 ORDER BY 1")
    assert dict(zip(logged["status"], logged["n"], strict=True)) == {
        "invalid": 3,
        "other_step": 1,
        "stale": 1,
        "unknown_trial": 1,
    }


def test_missing_columns_are_refused(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("trial_id,value\nNCT1,x\n")
    with pytest.raises(ValueError, match="lacks column"):
        atlas.curate(bad)


def test_curate_and_review_commands(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    db = atlas.store.path
    atlas.close()
    ok = write_csv(tmp_path / "ok.csv", [["NCT05756322", "relation", "none", "confirmed", "tester", "2026-01-01"]])
    runner = CliRunner()
    result = runner.invoke(app, ["curate", "--db", db, str(ok)])
    assert result.exit_code == 0, result.output
    bad = write_csv(tmp_path / "bad.csv", [["NCT00000000", "relation", "none", "x", "tester", "2026-01-01"]])
    assert runner.invoke(app, ["curate", "--db", db, str(bad)]).exit_code == 1
    review = runner.invoke(app, ["review", "--db", db, "--limit", "5", "--out", str(tmp_path / "review.csv")])
    assert review.exit_code == 0, review.output
    with (tmp_path / "review.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    needs = [int(r["need"]) for r in rows]
    assert needs == sorted(needs, reverse=True)
    assert all(r["evidence"] and r["why"] for r in rows)
    # Nothing filled in: curate applies nothing and removes the earlier override, without complaint.
    result = runner.invoke(app, ["curate", "--db", db, str(tmp_path / "review.csv")])
    assert result.exit_code == 0, result.output
