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


# -- a file that says two things, or nothing, or something new (issue 11, part 4) ----------------------


def test_two_rows_for_one_trial_and_field_are_both_rejected_naming_each_other(
    atlas: cartatlas.Atlas, tmp_path: Path
) -> None:
    before = labels(atlas, "NCT05507827")
    curation = write_csv(
        tmp_path / "cur.csv",
        [
            ["NCT05507827", "targets", "CD19", "one reading", "tester", "2024-01-01"],
            ["NCT05507827", "branch", "heme-malignancy", "unrelated field", "tester", "2024-01-01"],
            ["NCT05507827", "targets", "CD19; CD22", "another reading", "tester", "2024-01-01"],
        ],
    )
    by_line = {o.line: o for o in atlas.curate(curation)}
    assert by_line[2].status == "invalid" and by_line[4].status == "invalid"
    assert "line 4" in by_line[2].message and "cur.csv:2" in by_line[2].message
    assert "line 2" in by_line[4].message and "cur.csv:4" in by_line[4].message
    assert by_line[3].status == "applied"
    after = labels(atlas, "NCT05507827")
    assert list(after["targets"]) == list(before["targets"])  # neither row won
    assert list(after["curated_fields"]) == ["branch"]


def test_rows_for_the_same_trial_in_two_registries_do_not_clash(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    path = tmp_path / "cur.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*HEADER, "registry"])
        w.writerow(["NCT05507827", "targets", "CD19", "ctgov record", "tester", "2024-01-01", "ctgov"])
        w.writerow(["NCT05507827", "targets", "CD22", "ictrp copy", "tester", "2024-01-01", "euctr"])
    statuses = sorted(o.status for o in atlas.curate(path))
    assert statuses == ["applied", "unknown_trial"]  # no euctr record here; no clash either


def test_an_empty_value_never_empties_a_label_and_the_marker_does(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    """A blank cell is a row not filled in (a review file is full of them): skipped, never "empty this label"."""
    assert list(labels(atlas, "NCT05507827")["targets"])  # the rules found targets
    curation = write_csv(
        tmp_path / "cur.csv",
        [
            ["NCT05507827", "targets", "", "forgot the value", "tester", "2024-01-01"],
            ["NCT05507827", "combinations", " ; ", "only separators", "tester", "2024-01-01"],
            ["NCT05507827", "relation", "", "scalar left empty", "tester", "2024-01-01"],
            ["NCT05507827", "branch", "(none)", "the marker on a scalar", "tester", "2024-01-01"],
            ["NCT05507827", "disease_entity", "(none); B-ALL", "marker and a value", "tester", "2024-01-01"],
        ],
    )
    by_line = {o.line: o for o in atlas.curate(curation)}
    assert sorted(by_line) == [3, 5, 6]  # the blank lines 2 and 4 are skipped
    assert all(by_line[n].status == "invalid" for n in (3, 5, 6)), by_line
    assert "(none)" in by_line[3].message and "empty" in by_line[3].message
    assert "(none)" in by_line[5].message
    assert list(labels(atlas, "NCT05507827")["curated_fields"]) == []
    write_csv(curation, [["NCT05507827", "targets", "(none)", "no antigen disclosed", "tester", "2024-01-01"]])
    (outcome,) = atlas.curate(curation)
    assert outcome.status == "applied"
    after = labels(atlas, "NCT05507827")
    assert list(after["targets"]) == [] and list(after["curated_fields"]) == ["targets"]


def test_a_target_or_product_not_in_the_knowledge_tables_is_flagged_as_new(
    atlas: cartatlas.Atlas, tmp_path: Path
) -> None:
    curation = write_csv(
        tmp_path / "cur.csv",
        [
            ["NCT05507827", "targets", "CD19; GPRC5D; XYZ7", "a new antigen", "tester", "2024-01-01"],
            [
                "NCT05507827",
                "products",
                "tisagenlecleucel; Kymriah; ACME-CAR-1",
                "named in the protocol",
                "tester",
                "2024-01-01",
            ],
            ["NCT05507827", "disease_entity", "B-ALL", "checked", "tester", "2024-01-01"],
        ],
    )
    outcomes = atlas.curate(curation)
    new = [o for o in outcomes if o.status == "new_name"]
    assert [(o.line, o.override.field if o.override else None) for o in new] == [
        (2, "targets"),
        (3, "products"),
        (3, "products"),
    ]
    assert "XYZ7" in new[0].message and "cur.csv:2" in new[0].message and "antigens.csv" in new[0].message
    assert "Kymriah" in new[1].message and "tisagenlecleucel" in new[1].message  # an alias: the table's name
    assert "ACME-CAR-1" in new[2].message
    # Flagged, not refused: the curator's value is applied and the warning is logged.
    assert list(labels(atlas, "NCT05507827")["targets"]) == ["CD19", "GPRC5D", "XYZ7"]
    logged = atlas.sql("SELECT status, count(*) AS n FROM curation_log GROUP BY 1 ORDER BY 1")
    assert dict(zip(logged["status"], logged["n"], strict=True)) == {"applied": 3, "new_name": 3}


def test_curate_help_documents_the_empty_marker() -> None:
    result = CliRunner().invoke(app, ["curate", "--help"])
    assert result.exit_code == 0 and "(none)" in result.output
