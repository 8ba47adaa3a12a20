"""scripts/compare_outputs.py, the check that a refactoring moved no number (issue 14), on a small build.

No digest is pinned here: the script's digests change whenever a merged change legitimately moves a
number.  These tests check the mechanism: the same build digests the same, a changed cell, row or
summary number is named, and what differs between runs by nature (times, paths, version stamps, the
order of tied rows) is not.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import CTGOV

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_outputs", ROOT / "scripts" / "compare_outputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare_outputs = _script()


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path, dict[str, str]]:
    """The same 100 ClinicalTrials.gov studies built twice, in two databases, as of the sample's "today"."""
    out = []
    for name in ("a", "b"):
        work = tmp_path_factory.mktemp(name)
        out += [work, compare_outputs.build_and_digest([CTGOV / "api_v2" / "leukemia_query_100.json"], work)]
    return out[0], out[1], out[2], out[3]


def test_the_same_build_twice_digests_the_same(two_builds: tuple[Path, dict[str, str], Path, dict[str, str]]) -> None:
    work_a, first, work_b, second = two_builds
    assert compare_outputs.compare(first, second) == []
    assert {"export.csv", "publications.csv", "summary.json"} <= first.keys()
    assert any(name.startswith("tables/") for name in first)
    # The two summaries do differ, in what a run stamps on them: those are not compared.
    raw = [(w / "report" / "summary.json").read_text(encoding="utf-8") for w in (work_a, work_b)]
    assert raw[0] != raw[1]


def test_a_changed_cell_names_its_file(
    tmp_path: Path, two_builds: tuple[Path, dict[str, str], Path, dict[str, str]]
) -> None:
    work, first, _, _ = two_builds
    rows = list(csv.reader((work / "export.csv").open(newline="", encoding="utf-8")))
    column = rows[0].index("enrollment")
    rows[1][column] = str(int(rows[1][column] or 0) + 1)
    changed = tmp_path / "export.csv"
    with changed.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    digests = dict(first, **{"export.csv": compare_outputs.csv_digest(changed)})
    assert compare_outputs.compare(first, digests) == ["export.csv: differs"]


def test_row_order_does_not_count_but_every_row_does(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text('target,n,partners\nCD19,3,"{""CD22"": 1, ""CD20"": 1}"\nBCMA,3,{}\n', encoding="utf-8")
    before = compare_outputs.csv_digest(table)
    table.write_text('target,n,partners\nBCMA,3,{}\nCD19,3,"{""CD20"": 1, ""CD22"": 1}"\n', encoding="utf-8")
    assert compare_outputs.csv_digest(table) == before
    table.write_text("target,n,partners\nBCMA,3,{}\n", encoding="utf-8")
    assert compare_outputs.csv_digest(table) != before


def test_summary_ignores_stamps_but_not_numbers(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    data = {"provenance": {"generated_at": "2026-01-01", "database": "/x"}, "facts": {"units": 10}}
    summary.write_text(json.dumps(data), encoding="utf-8")
    before = compare_outputs.summary_digest(summary)
    data["provenance"] = {"generated_at": "2027-01-01", "database": "/y", "knowledge_base_version": "abc"}
    summary.write_text(json.dumps(data), encoding="utf-8")
    assert compare_outputs.summary_digest(summary) == before
    data["facts"] = {"units": 11}
    summary.write_text(json.dumps(data), encoding="utf-8")
    assert compare_outputs.summary_digest(summary) != before


def test_missing_and_new_outputs_are_named() -> None:
    assert compare_outputs.compare({"a": "1", "b": "2"}, {"b": "2", "c": "3"}) == [
        "a: missing now",
        "c: new (not in the saved digests)",
    ]


def test_a_label_added_since_is_left_out_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ignore-labels-since``: a new label's column, count table and summary key go; every other cell counts."""
    table = tmp_path / "trials.csv"
    table.write_text("unit_id,product_source,new_label\nNCT1,autologous,CD28\n", encoding="utf-8")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"tables": {"branch": [{"n": 1}], "new_label": [{"n": 1}]}}), encoding="utf-8")
    monkeypatch.setattr(compare_outputs, "IGNORED", {"new_label", "new_value"})
    with_label = (compare_outputs.csv_digest(table), compare_outputs.summary_digest(summary))
    table.write_text("unit_id,product_source\nNCT1,autologous\n", encoding="utf-8")
    summary.write_text(json.dumps({"tables": {"branch": [{"n": 1}]}}), encoding="utf-8")
    assert (compare_outputs.csv_digest(table), compare_outputs.summary_digest(summary)) == with_label
    table.write_text("unit_id,product_source\nNCT1,allogeneic\n", encoding="utf-8")
    assert compare_outputs.csv_digest(table) != with_label[0]


def test_ignore_labels_since_names_the_declared_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    from cartatlas.knowledge.labels import BASE_SCHEMA, LABELS

    monkeypatch.setattr(compare_outputs, "IGNORED", set())
    assert compare_outputs.ignore_labels_since(BASE_SCHEMA) == [label.name for label in LABELS]
    assert "product_source" in compare_outputs.IGNORED
    monkeypatch.setattr(compare_outputs, "IGNORED", set())
    assert compare_outputs.ignore_labels_since(99) == []
    assert not compare_outputs.IGNORED


def test_evidence_of_a_label_left_out_is_left_out_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export's evidence cell loses the new label's items and is otherwise the cell as written before."""
    before = '[{"decision":"relation","value":"therapy","field":"brief_title","text":"CAR-T ζ","rule":"r"}]'
    after = before[:-1] + ',{"decision":"new_label","value":"CD28","field":"brief_title","text":"28z","rule":"x"}]'
    table = tmp_path / "export.csv"

    def write(evidence: str) -> None:
        with table.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["trial_id", "evidence"], ["NCT1", evidence]])

    write(before)
    old = compare_outputs.csv_digest(table)
    monkeypatch.setattr(compare_outputs, "IGNORED", {"new_label"})
    write(after)
    assert compare_outputs.csv_digest(table) == old
    write(after.replace("therapy", "none"))
    assert compare_outputs.csv_digest(table) != old
