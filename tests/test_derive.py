"""Derived data is never stale (issue 12, part 4).

After every import, sync, curation and rebuild, links, clusters, labels and
publication links match the stored versions and the knowledge base, or the
command says what is stale.  The overlapping registration is the real WHO
ICTRP row of NCT04324996 (a CAR-NK trial for COVID-19), and its ChiCTR twin
is a copy of that row edited in a temporary folder into a ChiCTR
registration that names the NCT id, as ChiCTR registrations of
internationally registered trials do.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas import knowledge, pipeline
from cartatlas.cli import app
from tests.conftest import CTGOV, DATA

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
ICTRP_CSV = DATA / "ictrp" / "COVID19-1135-trials.csv"
CAR_NK = "NCT04324996"
TWIN = "ChiCTR2000031999"
PUBMED_FIXTURES = Path(__file__).parent / "fixtures" / "pubmed"


def _ictrp_row(trial_id: str) -> tuple[list[str], dict[str, str]]:
    with ICTRP_CSV.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        row = next(r for r in reader if r["TrialID"] == trial_id)
        return list(reader.fieldnames or []), row


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_car_nk(folder: Path) -> Path:
    """The real ICTRP row of NCT04324996, alone in a file (a ClinicalTrials.gov registration)."""
    fields, row = _ictrp_row(CAR_NK)
    return _write_csv(folder / "car_nk.csv", fields, [row])


def write_twin(folder: Path, **edits: str) -> Path:
    """The same trial as a ChiCTR registration that gives the NCT id as its secondary id."""
    fields, row = _ictrp_row(CAR_NK)
    twin = {
        **row,
        "TrialID": TWIN,
        "Source Register": "ChiCTR",
        "web address": "http://www.chictr.org.cn/showproj.aspx?proj=51999",
        "Secondary IDs": CAR_NK,
        **edits,
    }
    return _write_csv(folder / "twin.csv", [*fields, "Secondary IDs"], [twin])


def _units(atlas: cartatlas.Atlas) -> dict[str, list[str]]:
    units = atlas.landscape("2026-12-02").units
    return dict(zip(units["unit_id"], units["registrations"], strict=True))


def test_import_then_report_counts_a_trial_registered_twice_once(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "--db", str(db), str(LEUKEMIA), str(write_car_nk(tmp_path))])
    assert result.exit_code == 0, result.output
    first = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "r1"), "--no-figures"])
    assert first.exit_code == 0, first.output
    with cartatlas.open(db, read_only=True) as atlas:
        before = _units(atlas)
    assert before[CAR_NK] == [f"ctgov:{CAR_NK}"]

    result = runner.invoke(app, ["import", "--db", str(db), str(write_twin(tmp_path))])
    assert result.exit_code == 0, result.output
    second = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "r2"), "--no-figures"])
    assert second.exit_code == 0, second.output
    assert "stale" not in second.output
    with cartatlas.open(db, read_only=True) as atlas:
        after = _units(atlas)
        assert atlas.staleness() == []
    assert len(after) == len(before) == 16
    assert after[CAR_NK] == [f"ctgov:{CAR_NK}", f"chictr:{TWIN}"]
    assert TWIN not in after


def test_a_report_on_unlinked_registrations_says_so(tmp_path: Path) -> None:
    """Imports that defer the refresh leave links stale; report and summary say it and how to fix it."""
    db = tmp_path / "a.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([LEUKEMIA, write_car_nk(tmp_path)])
        atlas.import_files([write_twin(tmp_path)], classify=False)
        stale = {s.product: s for s in atlas.staleness()}
        assert set(stale) == {"classifications", "trial_links"}
        assert stale["trial_links"].fix == "cartatlas link"
        assert "1 trials are not screened yet" in stale["classifications"].reason
    runner = CliRunner()
    out = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "r"), "--no-figures"])
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "stale trial_links" in said and "may count twice; run `cartatlas link`" in said
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Some derived data is out of date" in page and "<code>cartatlas link</code>" in page
    summary = runner.invoke(app, ["summary", "--db", str(db), "--json"])
    assert {s["product"] for s in json.loads(summary.stdout)["stale"]} == {
        "classifications",
        "trial_links",
    }
    refreshed = runner.invoke(app, ["refresh", "--db", str(db)])
    assert refreshed.exit_code == 0, refreshed.output
    with cartatlas.open(db, read_only=True) as atlas:
        assert atlas.staleness() == []
        assert _units(atlas)[CAR_NK] == [f"ctgov:{CAR_NK}", f"chictr:{TWIN}"]


def test_registrations_that_disagree_on_car_count_once_and_go_to_the_curator(tmp_path: Path) -> None:
    """The ChiCTR twin without its CAR words: one trial, counted from its CAR registration, flagged."""
    plain = {
        "Public title": "A Phase I/II Study of Universal Off-the-shelf NK Cells for Therapy of COVID-19",
        "Scientific title": "A Phase I/II Study of Universal Off-the-shelf NK Cells for Therapy of COVID-19",
        "Intervention": "Biological: NK cells",
    }
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([LEUKEMIA, write_car_nk(tmp_path), write_twin(tmp_path, **plain)])
        relation = atlas.sql("SELECT trial_id, relation FROM classifications WHERE trial_id IN (?, ?)", [CAR_NK, TWIN])
        assert dict(relation.values.tolist()) == {CAR_NK: "therapy", TWIN: "none"}
        units = _units(atlas)
        assert len(units) == 16 and TWIN not in units
        assert units[CAR_NK] == [f"ctgov:{CAR_NK}"]  # counted from its CAR registration
        flagged = atlas.cluster_disagreements()
        assert flagged["cluster_id"].tolist() == [CAR_NK]
        row = flagged.iloc[0]
        assert list(row["car_registrations"]) == [f"ctgov:{CAR_NK}"]
        assert list(row["other_registrations"]) == [f"chictr:{TWIN}"]
        assert atlas.summary()["cluster_disagreements"] == 1

        # A curator who reads both settles it: the twin is a CAR trial too.
        curation = tmp_path / "curation.csv"
        curation.write_text(
            "trial_id,field,value,reason,curator,date\n"
            f"{TWIN},relation,therapy,same trial as {CAR_NK}; the CAR-NK arm is in the protocol,jdoe,2026-12-01\n"
        )
        atlas.curate(curation)
        assert atlas.cluster_disagreements().empty
        assert _units(atlas)[CAR_NK] == [f"ctgov:{CAR_NK}", f"chictr:{TWIN}"]


def test_curate_applies_link_decisions_at_once(tmp_path: Path) -> None:
    """A curator's 'different' link row splits the pair as soon as the file is applied (no `link` needed)."""
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([LEUKEMIA, write_car_nk(tmp_path), write_twin(tmp_path)])
        assert len(_units(atlas)) == 16
        curation = tmp_path / "curation.csv"
        curation.write_text(
            "trial_id,field,value,reason,curator,date\n"
            f"{TWIN},link,different:ctgov:{CAR_NK},two cohorts registered apart,jdoe,2026-12-01\n"
        )
        atlas.curate(curation)
        units = _units(atlas)
        assert len(units) == 17 and units[TWIN] == [f"chictr:{TWIN}"]
        assert atlas.staleness() == []
        # Editing the file after it was applied is noticed.
        curation.write_text(curation.read_text().replace("different", "same"))
        assert [s.product for s in atlas.staleness()] == ["curation", "trial_links"]
        atlas.refresh()
        assert atlas.staleness() == [] and len(_units(atlas)) == 16


def test_a_knowledge_change_reaches_publication_labels_without_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels made with another knowledge base are reported stale, then re-derived by the next refresh."""
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([PUBMED_FIXTURES])
        truth = atlas.sql("SELECT pmid, kind, targets, report_region FROM publications ORDER BY pmid")
        assert atlas.staleness() == []
        # Labels from an older knowledge base: one article's labels differ from what the current one says.
        atlas.sql("UPDATE publications SET kind = 'other', targets = [] WHERE pmid = '99000003'", writable=True)
        monkeypatch.setattr(knowledge, "knowledge_version", lambda: "kb-next")
        stale = {s.product: s for s in atlas.staleness()}
        assert "publication_labels" in stale and "kb-next" in stale["publication_labels"].reason
        assert stale["publication_labels"].fix == "cartatlas refresh"
        result = atlas.refresh()
        assert result.publications_relabelled == 8
        again = atlas.sql("SELECT pmid, kind, targets, report_region FROM publications ORDER BY pmid")
        assert again.equals(truth)
        assert atlas.staleness() == []
        state = atlas.sql("SELECT knowledge_version FROM derived_state WHERE product = 'publication_labels'")
        assert state.iloc[0, 0] == "kb-next"


def test_relabelling_reproduces_the_normaliser(tmp_path: Path) -> None:
    """Labels re-derived from the stored rows equal those the normaliser wrote (same knowledge base)."""
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([PUBMED_FIXTURES])
        columns = ", ".join(pipeline._LABEL_COLUMNS)
        before = atlas.sql(f"SELECT pmid, {columns} FROM publications ORDER BY pmid")
        assert pipeline.relabel_publications(atlas.store) == 8
        assert atlas.sql(f"SELECT pmid, {columns} FROM publications ORDER BY pmid").equals(before)


def test_publication_figures_follow_the_chosen_country_groups(tmp_path: Path) -> None:
    """--groups mainland names the focus group 'China (mainland)' for articles as for trials."""
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([PUBMED_FIXTURES])
        default = atlas.landscape("2020-06-30").tables["pub_fig2a"]
        assert set(default["group"]) == {"China", "United States", "Other countries"}
        mainland = atlas.landscape("2020-06-30", groups="mainland").tables["pub_fig2a"]
        assert set(mainland["group"]) == {"China (mainland)", "United States", "Other countries"}
        assert mainland.groupby("group")["reports"].sum()["China (mainland)"] == 3
        custom = atlas.landscape("2020-06-30", groups=["Greater China=CN,TW,HK,MO", "Americas=US,CA"])
        fig = custom.tables["pub_fig2a"]
        assert fig.groupby("group")["reports"].sum().to_dict() == {
            "Greater China": 3,
            "Americas": 1,
            "Other countries": 0,
        }
        assert custom.tables["pub_table1"]["pmid"].tolist() == ["99000001", "99000002", "99000003"]


def test_rebuild_refreshes_links_and_publication_labels(tmp_path: Path) -> None:
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([LEUKEMIA, write_car_nk(tmp_path), write_twin(tmp_path), PUBMED_FIXTURES])
        atlas.sql("DELETE FROM trial_links", writable=True)
        assert len(_units(atlas)) == 17
        atlas.rebuild()
        assert len(_units(atlas)) == 16
        assert atlas.staleness() == []


def test_a_database_too_large_to_relink_inline_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above CARTATLAS_RELINK_MAX registrations an import leaves linking to `cartatlas link`, and says so."""
    monkeypatch.setenv("CARTATLAS_RELINK_MAX", "50")
    with cartatlas.open(tmp_path / "a.duckdb") as atlas:
        atlas.import_files([LEUKEMIA, write_car_nk(tmp_path), write_twin(tmp_path)])
        assert atlas.derived is not None and atlas.derived.links is None
        assert "run `cartatlas link`" in " ".join(atlas.derived.describe())
        assert [s.product for s in atlas.staleness()] == ["trial_links"]
        atlas.link()
        assert atlas.staleness() == [] and len(_units(atlas)) == 16
