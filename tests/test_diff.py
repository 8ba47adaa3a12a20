"""What changed between two landscapes (issue 12, part 3): counts, ranks, trials, real status changes.

The database holds every ClinicalTrials.gov sample: the monitors' 2026 corpus
and, for about fifty of its trials, the 2018 website download, so those
trials have a stored version current on 2020-06-30 and another one now.  The
numbers are those an analyst found by diffing two reports' CSVs by hand.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import cartatlas
from cartatlas.analysis import diff as diffs
from cartatlas.cli import app
from cartatlas.report.changes import render_csv
from tests.conftest import CTGOV

THEN, NOW = "2020-06-30", "2026-12-02"
LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
MONITOR = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("diff") / "d.duckdb"
    with cartatlas.open(path) as a:
        a.import_files([CTGOV])
    with cartatlas.open(path, read_only=True) as a:
        yield a


@pytest.fixture(scope="module")
def story(atlas: cartatlas.Atlas) -> dict[str, Any]:
    return atlas.diff(THEN, NOW)


def _rows(d: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in d["sections"][section]["rows"]}


def test_the_paragraph_tells_what_the_analyst_found(story: dict[str, Any]) -> None:
    text = story["paragraph"]
    # Issue 13's screening counts products named only by a code, antigen lists and shorthand (before: 672 to
    # 2,433, CD7 59, GPRC5D 25, Claudin18.2 37, Zhejiang 217, autoimmune 299).
    assert text.startswith(f"Between {THEN} and {NOW}, the CAR trials counted grew from 679 to 2,470 (+1,791)")
    for phrase in (
        "CD7 (from 4 to 60; 9th to 5th)",
        "GPRC5D (from none to 29; now 6th)",
        "Claudin18.2 (from 5 to 38; 7th to 3rd)",
        "Zhejiang rose from 5th to 2nd (from 36 to 221 trials)",
        "307 trials now treat autoimmune diseases (4 on 2020-06-30)",
        "Zhejiang University now leads the sponsors in China with 85 trials",
        "1,791 trials are new to the count",
    ):
        assert phrase in text, phrase
    targets = _rows(story, "targets_heme")
    assert (targets["CD7"]["before"], targets["CD7"]["after"], targets["CD7"]["rank_before"]) == (4, 60, 9)
    assert _rows(story, "regions")["Zhejiang"]["rank_after"] == 2


def test_every_number_is_a_row_of_the_two_landscapes(atlas: cartatlas.Atlas, story: dict[str, Any]) -> None:
    """The diff counts nothing itself: before and after are the landscape tables, trial for trial."""
    then, now = atlas.landscape(THEN), atlas.landscape(NOW)
    for section, table, key in (
        ("targets_heme", "focus_targets_heme", "target"),
        ("targets_solid", "focus_targets_solid", "target"),
        ("regions", "focus_regions", "region"),
        ("sponsors", "focus_sponsors", "lead_sponsor"),
        ("branches", "branch", "branch"),
    ):
        rows = _rows(story, section)
        old = {r[key]: r for r in then.tables[table].to_dict("records")}
        new = {r[key]: r for r in now.tables[table].to_dict("records")}
        assert set(rows) == set(old) | set(new), section
        for k, row in rows.items():
            assert row["before"] == (old[k]["n"] if k in old else 0), (section, k)
            assert row["after"] == (new[k]["n"] if k in new else 0), (section, k)
            added = set(new[k]["trial_ids"] if k in new else []) - set(old[k]["trial_ids"] if k in old else [])
            assert set(row["added"]) == added, (section, k)
    head = {r["key"]: r for r in story["headline"]}
    assert (head["units"]["before"], head["units"]["after"]) == (len(then.units), len(now.units))
    new_ids = {t["trial_id"] for t in story["new_trials"]}
    assert new_ids == set(now.units["unit_id"]) - set(then.units["unit_id"]) == set(head["units"]["added"])
    assert story["dropped_trials"] == []
    first = story["new_trials"][0]
    assert first["registered"] > THEN and first["title"] and set(first) >= {"sponsor", "targets"}


def test_status_changes_are_only_between_two_stored_versions(atlas: cartatlas.Atlas, story: dict[str, Any]) -> None:
    info = story["status_assessment"]
    assert info["assessed"] and info["compared"] == 40
    assert len(story["status_changes"]) == 34 and story["phase_changes"] == []
    example = next(c for c in story["status_changes"] if c["trial_id"] == "NCT00881920")
    assert (example["from"], example["to"]) == ("RECRUITING", "ACTIVE_NOT_RECRUITING")
    for change in story["status_changes"]:
        then, now = change["from_version"], change["to_version"]
        assert then["version_id"] != now["version_id"] and then["updated"] <= THEN < now["updated"] <= NOW
        stored = atlas.sql(
            "SELECT version_id, CAST(record_updated AS VARCHAR) AS updated FROM raw_records WHERE record_id = ?",
            [change["trial_id"]],
        )
        versions = dict(zip(stored["version_id"], stored["updated"], strict=True))
        assert versions[then["version_id"]] == then["updated"] and versions[now["version_id"]] == now["updated"]
    # Trials stored in one version, updated after 2020-06-30: their 2020 status is the latest one, an
    # artefact; none of them is listed, and the assessment counts them.
    single = atlas.sql(
        "SELECT record_id FROM raw_records GROUP BY record_id HAVING count(*) = 1 AND min(record_updated) > ?",
        [THEN],
    )["record_id"]
    changed = {c["trial_id"] for c in story["status_changes"]}
    assert not changed & set(single)
    assert info["no_version_then"] == 364


def _report(atlas: cartatlas.Atlas, out: Path, **options: Any) -> dict[str, Any]:
    result = atlas.report(out, figures=False, **options)
    return result.summary


def test_a_report_compared_across_database_states_reports_no_artefact(tmp_path: Path) -> None:
    """A record stored once, in a version newer than the earlier report's date, has no status for that date.

    The earlier report showed its latest status for 2020-06-30; once the registry posts a new status,
    the old compare listed a "change" from a status the trial never had on that date.
    """
    studies = {s["protocolSection"]["identificationModule"]["nctId"]: s for s in json.loads(LEUKEMIA.read_text())}
    real = "NCT02349698"  # stored version of 2019-06-25: current on 2020-06-30
    artefact = "NCT00586391"  # from the monitors' corpus: one version, updated after 2020-06-30
    with gzip.open(MONITOR, "rt", encoding="utf-8") as lines:
        monitor = next(json.loads(line) for line in lines if f'"{artefact}"' in line)
    (tmp_path / "monitor.json").write_text(json.dumps([monitor]))
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([LEUKEMIA, tmp_path / "monitor.json"])
        first = _report(atlas, tmp_path / "then", as_of=THEN)
        assert first["units"][artefact]["version"] is None
        assert first["units"][real]["version"]["updated"] == "2019-06-25"
        later = copy.deepcopy(studies[real])
        later["protocolSection"]["statusModule"].update(
            overallStatus="COMPLETED", lastUpdatePostDateStruct={"date": "2026-11-30", "type": "ACTUAL"}
        )
        monitor = copy.deepcopy(monitor)
        monitor["protocolSection"]["statusModule"].update(
            overallStatus="TERMINATED", lastUpdatePostDateStruct={"date": "2026-11-30", "type": "ACTUAL"}
        )
        assert first["units"][artefact]["status"] != "TERMINATED"
        (tmp_path / "update.json").write_text(json.dumps([later, monitor]))
        atlas.import_files([tmp_path / "update.json"])
        second = _report(atlas, tmp_path / "now", as_of=NOW, compare=tmp_path / "then" / "summary.json")
    changes = second["changes"]
    assert [(c["trial_id"], c["from"], c["to"]) for c in changes["status_changes"]] == [
        (real, "RECRUITING", "COMPLETED")
    ]
    assert changes["status_assessment"]["no_version_then"] >= 1
    html = (tmp_path / "now" / "index.html").read_text()
    assert "What changed since 2020-06-30" in html and real in html

    # A summary.json from before versions were recorded: no status change is claimed at all.
    old = json.loads((tmp_path / "then" / "summary.json").read_text())
    for state in old["units"].values():
        del state["version"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    unassessed = diffs.diff_summaries(diffs.load_summary(tmp_path / "old.json"), diffs.load_summary(tmp_path / "now"))
    assert unassessed["status_changes"] == [] and not unassessed["status_assessment"]["assessed"]
    assert "status and phase changes were not assessed" in unassessed["paragraph"].lower()


def test_diff_command_text_json_csv_and_two_reports_without_a_database(
    atlas: cartatlas.Atlas, story: dict[str, Any], tmp_path: Path
) -> None:
    runner = CliRunner()
    db = atlas.store.path
    text = runner.invoke(app, ["diff", "--db", db, "--from", THEN, "--to", NOW])
    assert text.exit_code == 0, text.output
    assert story["paragraph"][:80] in " ".join(text.stdout.split())
    assert "Regions of China: largest changes" in text.stdout
    as_json = runner.invoke(app, ["diff", "--db", db, "--from", THEN, "--to", NOW, "--format", "json"])
    parsed = json.loads(as_json.stdout)
    assert parsed["paragraph"] == story["paragraph"] and parsed["sections"].keys() == story["sections"].keys()
    out = tmp_path / "diff.csv"
    as_csv = runner.invoke(app, ["diff", "--db", db, "--from", THEN, "--to", NOW, "-f", "csv", "-o", str(out)])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    sections = {r["section"] for r in rows}
    assert {"paragraph", "headline", "targets_heme", "regions", "sponsors", "new_trial", "status_change"} <= sections
    cd7 = next(r for r in rows if r["section"] == "targets_heme" and r["key"] == "CD7")
    assert (cd7["before"], cd7["after"], cd7["change"], cd7["rank_before"], cd7["rank_after"]) == (
        "4", "60", "56", "9", "5",
    )  # fmt: skip
    # Two reports' summary files: no database needed.
    atlas.report(tmp_path / "a", as_of=THEN, figures=False)
    atlas.report(tmp_path / "b", as_of=NOW, figures=False)
    files = runner.invoke(
        app,
        ["diff", "--db", str(tmp_path / "none.duckdb"), "--from", str(tmp_path / "a"),
         "--to", str(tmp_path / "b" / "summary.json"), "--format", "json"],
    )  # fmt: skip
    assert files.exit_code == 0, files.output
    from_files = json.loads(files.stdout)
    assert from_files["paragraph"] == story["paragraph"]
    assert not (tmp_path / "none.duckdb").exists()
    bad = runner.invoke(app, ["diff", "--db", db, "--from", "last tuesday"])
    assert bad.exit_code != 0 and "--from 'last tuesday' is neither a date" in str(bad.exception)


def test_csv_cells_that_look_like_formulas_stay_text() -> None:
    d = {
        "paragraph": "p",
        "headline": [],
        "sections": {},
        "new_trials": [
            {
                "trial_id": "NCT1",
                "title": '=HYPERLINK("http://x","y")',
                "sponsor": "+evil",
                "targets": [],
                "registered": "2020-01-01",
            },
        ],
    }
    rows = list(csv.DictReader(io.StringIO(render_csv(d))))
    assert rows[1]["title"] == '\'=HYPERLINK("http://x","y")' and rows[1]["sponsor"] == "'+evil"


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(min_value=0, max_value=50), max_size=30))
def test_ranks_are_one_plus_the_rows_with_more_trials(counts: dict[str, int]) -> None:
    ranks = diffs._ranks([{"k": k, "n": n} for k, n in counts.items()], "k")
    for k, n in counts.items():
        assert ranks[k] == 1 + sum(m > n for m in counts.values())


def test_ordinals() -> None:
    words = [diffs.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112)]
    assert words == ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th",
                     "112th"]  # fmt: skip
