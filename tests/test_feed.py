"""The feed of new and changed CAR trials between imports (issue 12, part 3).

The first import is the real leukemia sample; the second is a file of copies
of real records edited in a temporary folder: two CAR trials whose registry
posted a later version (status and phase changed), one CAR trial stripped of
its CAR product (no longer a CAR trial), a non-CAR trial that changed, an
unchanged copy, an older version of a CAR trial (stored, but not current),
and one CAR trial the first file did not hold (from the monitors' corpus).
The feed must list exactly the new, changed and no-longer-CAR trials.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
MONITOR = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
ATOM = "{http://www.w3.org/2005/Atom}"

CHANGED = ("NCT02349698", "NCT04100187")
NO_LONGER_CAR = "NCT05942599"
OLDER_VERSION = "NCT05164042"
UNCHANGED = "NCT05507827"
NOT_CAR = "NCT01174615"
NEW = "NCT00019136"


def _by_id(studies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["protocolSection"]["identificationModule"]["nctId"]: s for s in studies}


def _monitor_record(nct: str) -> dict[str, Any]:
    with gzip.open(MONITOR, "rt", encoding="utf-8") as f:
        for line in f:
            if f'"{nct}"' in line:
                record: dict[str, Any] = json.loads(line)
                return record
    raise AssertionError(f"{nct} not in the monitors' corpus")


def _strip_car(value: Any) -> Any:
    """Every text of a record without its CAR product (a registry rewrote the trial as a plain T-cell study)."""
    if isinstance(value, str):
        for word in ("chimeric antigen receptor", "Chimeric Antigen Receptor", "CAR-T", "CAR T", "CART", "CAR"):
            value = value.replace(word, "T-cell")
        return value
    if isinstance(value, list):
        return [_strip_car(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_car(v) for k, v in value.items()}
    return value


def _later(study: dict[str, Any], day: str) -> dict[str, Any]:
    study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": day, "type": "ACTUAL"}
    return study


def write_second_file(folder: Path) -> Path:
    studies = _by_id(json.loads(LEUKEMIA.read_text()))
    out = []
    for nct in CHANGED:
        s = _later(copy.deepcopy(studies[nct]), "2026-11-30")
        s["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
        s["protocolSection"]["designModule"]["phases"] = ["PHASE2"]
        out.append(s)
    gone = _later(_strip_car(copy.deepcopy(studies[NO_LONGER_CAR])), "2026-11-30")
    out.append(gone)
    older = copy.deepcopy(studies[OLDER_VERSION])
    older["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2015-01-01", "type": "ACTUAL"}
    older["protocolSection"]["statusModule"]["overallStatus"] = "NOT_YET_RECRUITING"
    out.append(older)
    out.append(copy.deepcopy(studies[UNCHANGED]))
    plain = _later(copy.deepcopy(studies[NOT_CAR]), "2026-11-30")
    plain["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
    out.append(plain)
    out.append(_monitor_record(NEW))
    path = folder / "second.json"
    path.write_text(json.dumps(out))
    return path


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("feed")
    db = tmp / "f.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([LEUKEMIA])
        atlas.import_files([write_second_file(tmp)])
    return tmp, db


def test_the_feed_lists_exactly_the_new_and_changed_car_trials(fed: tuple[Path, Path]) -> None:
    _, db = fed
    with cartatlas.open(db, read_only=True) as atlas:
        feed = atlas.feed()
    kinds = {e.trial_id: e.kind for e in feed.entries}
    assert kinds == {
        CHANGED[0]: "changed",
        CHANGED[1]: "changed",
        NO_LONGER_CAR: "no_longer_car",
        NEW: "new",
    }
    assert feed.counts() == {"new": 1, "changed": 2, "no_longer_car": 1}
    changed = next(e for e in feed.entries if e.trial_id == CHANGED[0])
    fields = {c.field: (c.before, c.after) for c in changed.changes}
    assert fields["overall_status"] == ("RECRUITING", "COMPLETED")
    assert [str(p) for p in fields["phases"][1]] == ["PHASE2"]
    gone = next(e for e in feed.entries if e.trial_id == NO_LONGER_CAR)
    assert ("relation", "therapy", "none") in [(c.field, c.before, c.after) for c in gone.changes]
    assert len(feed.runs) == 1 and feed.runs[0]["kind"] == "import"


def test_atom_and_json_feed_are_valid(fed: tuple[Path, Path]) -> None:
    tmp, db = fed
    out = tmp / "site"
    result = CliRunner().invoke(app, ["feed", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "1 new and 2 changed CAR trials, 1 no longer screened as one, in the import of" in said
    root = etree.parse(str(out / "feed.atom")).getroot()
    assert root.tag == f"{ATOM}feed"
    # RFC 4287 4.1.1: exactly one id, title and updated; an author (here on the feed).
    for tag in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{tag}")) == 1, tag
    assert root.find(f"{ATOM}author/{ATOM}name").text == "cartatlas"
    entries = root.findall(f"{ATOM}entry")
    ids = []
    trials = set()
    for entry in entries:
        for tag in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{tag}")) == 1, tag
        ids.append(entry.findtext(f"{ATOM}id"))
        dt.datetime.fromisoformat(entry.findtext(f"{ATOM}updated").replace("Z", "+00:00"))
        link = entry.find(f"{ATOM}link[@rel='alternate']")
        assert link is not None and link.get("href").startswith("https://clinicaltrials.gov/study/NCT")
        trials.add(link.get("href").rsplit("/", 1)[1])
        assert entry.find(f"{ATOM}content").get("type") == "text"
    assert trials == {*CHANGED, NO_LONGER_CAR, NEW}
    assert len(set(ids)) == len(ids) == 4 and all(i.startswith("urn:uuid:") for i in ids)
    changed = next(e for e in entries if CHANGED[0] in e.findtext(f"{ATOM}title"))
    assert "status RECRUITING -> COMPLETED" in changed.findtext(f"{ATOM}summary")
    document = json.loads((out / "feed.json").read_text())
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert {i["id"] for i in document["items"]} == set(ids)
    for item in document["items"]:
        assert item["content_text"] and item["url"].startswith("https://clinicaltrials.gov/study/")
        dt.datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
    assert document["_cartatlas"]["counts"] == {"new": 1, "changed": 2, "no_longer_car": 1}


def test_a_run_that_stores_nothing_keeps_the_feed_and_ids_are_stable(fed: tuple[Path, Path], tmp_path: Path) -> None:
    tmp, db = fed
    copy_db = tmp_path / "f.duckdb"
    copy_db.write_bytes(db.read_bytes())
    with cartatlas.open(copy_db) as atlas:
        before = {e.trial_id: e for e in atlas.feed().entries}
        atlas.import_files([tmp / "second.json"])  # everything unchanged
        after = {e.trial_id: e for e in atlas.feed().entries}
        assert set(after) == set(before)
        assert {k: v.version_id for k, v in after.items()} == {k: v.version_id for k, v in before.items()}
        both = atlas.feed(runs=2)
    # Two runs back, every trial is new (each once, at its current version): the first file's 15 CAR
    # trials less the one that is no longer one, and the trial the second file added.
    ids = {e.trial_id for e in both.entries}
    assert len(ids) == len(both.entries) == 15 and {e.kind for e in both.entries} == {"new"}
    assert NEW in ids and NO_LONGER_CAR not in ids and set(CHANGED) <= ids


def test_build_and_report_write_the_feed_into_the_report(fed: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = fed
    with cartatlas.open(db, read_only=True) as atlas:
        atlas.report(tmp_path / "r", figures=False)
    atom = etree.parse(str(tmp_path / "r" / "feed.atom")).getroot()
    assert len(atom.findall(f"{ATOM}entry")) == 4
    assert (tmp_path / "r" / "feed.json").is_file()


def test_sync_writes_the_feed_of_what_it_changed(tmp_path: Path) -> None:
    """Two passes of `sync ctgov` against a local server replaying real records; the registry changes two CAR trials."""
    from replay_server import ReplayServer, real_studies

    db = tmp_path / "s.duckdb"
    folder = tmp_path / "cartatlas-report"  # beside the database: the default
    runner = CliRunner()
    with ReplayServer(real_studies(300)) as server:
        args = ["sync", "ctgov", "--base-url", server.url, "--db", str(db), "--rate", "500", "--page-size", "100"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        with cartatlas.open(db, read_only=True) as atlas:
            car = atlas.sql(
                "SELECT trial_id FROM classifications WHERE relation IN ('therapy', 'follow_up') ORDER BY trial_id"
            )["trial_id"].tolist()
        atom = etree.parse(str(folder / "feed.atom")).getroot()
        assert len(atom.findall(f"{ATOM}entry")) == len(car) > 2
        assert {c.get("term") for c in atom.iter(f"{ATOM}category") if c.get("label", "").startswith("New")} == {"new"}

        def terminated(study: dict[str, Any]) -> None:
            study["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"

        for nct in car[:2]:
            server.update(nct, terminated, "2026-11-30")
        second = runner.invoke(app, [*args, "--full"])
        assert second.exit_code == 0, second.output
    assert "0 new and 2 changed CAR trials in the sync of" in " ".join(second.output.split())
    atom = etree.parse(str(folder / "feed.atom")).getroot()
    entries = atom.findall(f"{ATOM}entry")
    assert sorted(e.find(f"{ATOM}link").get("href").rsplit("/", 1)[1] for e in entries) == car[:2]
    assert all("-> TERMINATED" in e.findtext(f"{ATOM}summary") for e in entries)
