"""The review queue on the sample build: only what needs a person, with reasons, in a file ``curate`` reads."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.review import COLUMNS
from cartatlas.store.classifications import CURATABLE
from tests.conftest import DATA

SAMPLE = [DATA / "ctgov", DATA / "ictrp", DATA / "chictr", DATA / "pubmed"]
#: The queue of the sample build (`cartatlas build` on the four sample folders): labels and trials.
#: Before issue 12 the queue held 3,864 trials, 2,468 of them non-CAR trials with no flag and high confidence.
#: Issue 13 (731, 656 before) adds the probable CAR trials read from a code name (low confidence, flagged),
#: their undisclosed targets and assumed platforms, and CAR-T named only as the setting in prose.
QUEUE_ROWS, QUEUE_TRIALS = 789, 683


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample build's database (import, classify, link), as `cartatlas build` makes it."""
    path = tmp_path_factory.mktemp("review") / "sample.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files(SAMPLE)
        atlas.link()
    return path


def _copy(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy.duckdb"
    shutil.copy(db, out)
    return out


def test_queue_holds_only_what_needs_a_person(sample_db: Path) -> None:
    with cartatlas.open(sample_db, read_only=True) as atlas:
        queue = atlas.review(limit=None)
        plain = atlas.sql(
            """
            SELECT trial_id FROM classifications
            WHERE relation = 'none' AND confidence = 'high'
              AND len(list_filter(flags, lambda f: f <> 'unknown-disease')) = 0
            """
        )
    assert (len(queue), queue["trial_id"].nunique()) == (QUEUE_ROWS, QUEUE_TRIALS)
    assert list(queue.columns) == list(COLUMNS)
    assert queue["why"].str.len().min() > 0
    assert set(queue["field"]) <= set(CURATABLE)
    assert list(queue["need"]) == sorted(queue["need"], reverse=True)
    # A non-CAR trial with no doubt about it is never asked about; one in the queue is asked about its relation.
    assert not set(queue["trial_id"]) & set(plain["trial_id"])
    assert set(queue.loc[queue["relation"] == "none", "field"]) <= {"relation"}


def test_probable_car_trials_read_from_a_code_name_are_asked_about(sample_db: Path) -> None:
    """Issue 13: a code-named product of a CAR developer is counted with low confidence and put to a curator."""
    with cartatlas.open(sample_db, read_only=True) as atlas:
        queue = atlas.review(limit=None)
    # ZM001 Injection (Beijing Immunochina): no CAR word; counted as therapy, asked about.
    row = queue[(queue["trial_id"] == "NCT06852573") & (queue["field"] == "relation")].iloc[0]
    assert row["current"] == "therapy" and row["confidence"] == "low" and row["need"] >= 60
    assert "code-named product of a CAR developer" in row["why"]
    assert "relation:probable-car-from-code-name" in row["flags"]
    # GDX012 (Takeda's gamma-delta T cells, lymphodepletion): not counted, but asked about.
    row = queue[(queue["trial_id"] == "NCT05886491") & (queue["field"] == "relation")].iloc[0]
    assert row["current"] == "none" and "no sign that it is a gene-modified cell product" in row["why"]


def test_round_trip_review_file_to_curate(sample_db: Path, tmp_path: Path) -> None:
    db = _copy(sample_db, tmp_path)
    runner = CliRunner()
    file = tmp_path / "review.csv"
    result = runner.invoke(app, ["review", "--db", str(db), "--out", str(file), "--curator", "tester"])
    assert result.exit_code == 0, result.output
    with file.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert len(rows) == QUEUE_ROWS
    for row in rows:
        assert row["value"] == "" and row["curator"] == "tester" and row["reason"].startswith("review: ")
        assert all(item.strip() for item in row["flags"].split(";") if row["flags"])
        assert all(item.strip() for item in row["why"].split(";"))
        assert isinstance(json.loads(row["evidence"]), list)
    # The curator decides one label: fills its value, leaves every other row blank.
    pick = next(r for r in rows if r["field"] == "relation" and r["current"] == "ancillary")
    pick["value"] = "therapy"
    with file.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    result = runner.invoke(app, ["curate", "--db", str(db), str(file)])
    assert result.exit_code == 0, result.output
    assert "1 applied" in result.output
    with cartatlas.open(db, read_only=True) as atlas:
        label = atlas.sql(
            "SELECT relation, curated_fields FROM classifications WHERE registry = ? AND trial_id = ?",
            [pick["registry"], pick["trial_id"]],
        ).iloc[0]
        queue = atlas.review(limit=None)
        logged = atlas.sql("SELECT status, count(*) AS n FROM curation_log GROUP BY 1")
    assert label["relation"] == "therapy" and list(label["curated_fields"]) == ["relation"]
    assert dict(zip(logged["status"], logged["n"], strict=True)) == {"applied": 1}
    # The decided label leaves the queue.
    asked = queue[(queue["trial_id"] == pick["trial_id"]) & (queue["field"] == "relation")]
    assert asked.empty


def test_stale_overrides_and_registrations_that_disagree_come_first(sample_db: Path, tmp_path: Path) -> None:
    db = _copy(sample_db, tmp_path)
    curation = tmp_path / "cur.csv"
    with curation.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial_id", "field", "value", "reason", "curator", "date"])
        # NCT05507827 was updated by the registry after this override: stale.
        w.writerow(["NCT05507827", "branch", "heme-malignancy", "checked", "tester", "2022-01-01"])
        # The JPRN registration of ECMOCARD (an ECMO study) made a CAR trial; its ANZCTR twin stays none.
        w.writerow(["JPRN-UMIN000039686", "relation", "therapy", "test: a disagreement", "tester", "2026-01-01"])
    with cartatlas.open(db) as atlas:
        assert [o.status for o in atlas.curate(curation)] == ["stale", "applied"]
        queue = atlas.review(limit=None)
    top = queue.iloc[0]
    assert (top["trial_id"], top["field"], top["current"], top["need"]) == (
        "NCT05507827",
        "branch",
        "heme-malignancy",
        90,
    )
    assert "2026-07-17" in top["why"]  # the current version (the monitor snapshot), after the override
    twin = queue[queue["trial_id"] == "ACTRN12620000421932"].iloc[0]
    assert (twin["field"], twin["current"], twin["need"]) == ("relation", "none", 80)
    assert "JPRN-UMIN000039686 (therapy)" in twin["why"]
    # The curated registration itself is not asked about again: the curator decided it.
    assert queue[queue["trial_id"] == "JPRN-UMIN000039686"].empty
    assert len(queue) == QUEUE_ROWS + 2
