"""The report directory: files, summary.json consistency, escaping of registry text, comparison."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)> & "CAR-T"'


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The leukemia sample plus one real CAR-T record whose title was replaced by hostile markup."""
    tmp = tmp_path_factory.mktemp("report")
    studies = json.loads(LEUKEMIA.read_text())
    hostile = copy.deepcopy(
        next(s for s in studies if s["protocolSection"]["identificationModule"]["nctId"] == "NCT02349698")
    )
    hostile["protocolSection"]["identificationModule"]["nctId"] = "NCT99999999"
    hostile["protocolSection"]["identificationModule"]["briefTitle"] = EVIL + " CD19 CAR-T cells"
    (tmp / "hostile.json").write_text(json.dumps([hostile]))
    path = tmp / "r.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([LEUKEMIA, tmp / "hostile.json"])
    return path


def test_report_writes_every_part(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["report", "--db", str(db), "--as-of", "2023-12-31", "--out", str(out), "--no-figures"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and (out / "summary.json").is_file()
    tables = {p.name for p in (out / "tables").iterdir()}
    assert {"trials.csv", "cumulative_by_year.csv", "focus_targets_heme.csv", "cartatlas_tables.xlsx"} <= tables
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["as_of"] == "2023-12-31" and summary["options"]["focus"] == "CN"
    assert summary["provenance"]["cartatlas_version"] == cartatlas.__version__
    assert summary["provenance"]["snapshot"][0]["registry"] == "ctgov"
    # Every group total equals its number of listed trials, and the units behind it exist.
    units = summary["units"]
    for group, n in summary["facts"]["totals"]["by_group"].items():
        assert n == sum(group in u["groups"] for u in units.values())
    for row in summary["tables"]["focus_targets_heme"]:
        assert row["n"] == len(row["trial_ids"]) and set(row["trial_ids"]) <= set(units)
    assert not list(tmp_path.glob(".rep.*")), "no staging directory left behind"


def test_registry_text_is_escaped_everywhere(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with cartatlas.open(db, read_only=True) as atlas:
        atlas.report(out, as_of="2023-12-31", figures=False)
    html = (out / "index.html").read_text()
    assert "NCT99999999" in html
    assert "<img src=x" not in html and 'alert("x")</script>' not in html
    # The data block holds the title as JSON with '<' escaped, so it cannot close its <script>.
    block = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert data["trials"]["NCT99999999"]["title"].startswith(EVIL)
    assert "</script>" not in block.group(1)
    # Only the two scripts of the page itself.
    assert html.count("<script") == 2


def test_compare_lists_new_trials_and_status_changes(db: Path, tmp_path: Path) -> None:
    with cartatlas.open(db, read_only=True) as atlas:
        first = atlas.report(tmp_path / "a", as_of="2019-12-31", figures=False)
        second = atlas.report(
            tmp_path / "b", as_of="2023-12-31", figures=False, compare=tmp_path / "a" / "summary.json"
        )
    changes = second.summary["changes"]
    old_units = set(first.summary["units"])
    new = {t["trial_id"] for t in changes["new_trials"]}
    assert new == set(second.summary["units"]) - old_units
    assert "NCT05507827" in new and "NCT02349698" not in new
    assert changes["from"]["as_of"] == "2019-12-31" and changes["to"]["as_of"] == "2023-12-31"
    html = (tmp_path / "b" / "index.html").read_text()
    assert "What changed since 2019-12-31" in html
    # The section comes first, before the overview.
    assert html.index('id="changes"') < html.index('id="overview"')


def test_report_rejects_a_bad_date_clearly(db: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--db", str(db), "--as-of", "last tuesday", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "x").exists()
