"""Article classification, links to trials and the report's publication figures (issue 6).

The CAR-T articles are the hand-made fixtures in tests/fixtures/pubmed/ (see
its README: no real CAR-T abstract is available offline); the trials they link
to are small hand-written ClinicalTrials.gov API v2 studies built below.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

import cartatlas
from cartatlas.analysis import publications as pubs
from cartatlas.model import RawRecord
from cartatlas.normalise import format_spec
from cartatlas.pipeline.prepare import normalised_row
from cartatlas.publications.places import country_of, region_of
from cartatlas.report.figures import FIGURES, GROUP_COLOURS, fig_publications_per_year, theme_config
from cartatlas.sources.files import read_paths
from cartatlas.sources.pubmed.identity import FORMAT

FIXTURES = Path(__file__).parent / "fixtures" / "pubmed"

EXPECTED: dict[str, dict[str, Any]] = {
    "99000001": {
        "kind": "clinical-report",
        "patients_treated": 18,
        "targets": ["CD19"],
        "country": "CN",
        "region": "CN-BJ",
        "basis": "corresponding author",
        "branch": "heme-malignancy",
    },
    "99000002": {
        "kind": "clinical-report",
        "patients_treated": 17,
        "targets": ["BCMA"],
        "country": "CN",
        "region": "CN-HB",
        "basis": "first author",
        "branch": "heme-malignancy",
    },
    "99000003": {
        "kind": "clinical-report",
        "patients_treated": 1,
        "targets": ["CD7"],
        "country": "CN",
        "region": "CN-JS",
        "basis": "first author",
        "branch": "heme-malignancy",
    },
    "99000004": {"kind": "review", "patients_treated": None, "targets": ["CD19"], "country": "US"},
    "99000005": {
        "kind": "preclinical",
        "patients_treated": None,
        "targets": ["Mesothelin"],
        "country": "CN",
        "region": "CN-GD",
        "branch": "solid-tumor",
    },
    "99000006": {"kind": "guideline", "patients_treated": None, "targets": []},
    "99000007": {"kind": "commentary", "patients_treated": None, "targets": [], "country": "GB"},
    "99000008": {"kind": "clinical-report", "patients_treated": 21, "targets": ["CD22"], "country": "US"},
}


def _rows() -> dict[str, dict[str, Any]]:
    out = {}
    for item in read_paths([FIXTURES]):
        if isinstance(item, RawRecord):
            out[item.record_id] = dict(normalised_row(format_spec(FORMAT), item.payload))
    return out


def test_fixtures_are_marked_hand_made() -> None:
    for path in FIXTURES.glob("*.xml"):
        assert "HAND-MADE FIXTURE" in path.read_text(), path.name
    assert "hand-made" in (FIXTURES / "README.md").read_text().lower()


@pytest.mark.parametrize("pmid", sorted(EXPECTED))
def test_kind_targets_patients_and_place_of_each_fixture(pmid: str) -> None:
    row = _rows()[pmid]
    want = EXPECTED[pmid]
    assert row["kind"] == want["kind"], row["kind_evidence"]
    assert row["is_car"]
    assert row["patients_treated"] == want["patients_treated"], row["patients_evidence"]
    assert row["targets"] == want["targets"]
    assert row["report_country"] == want.get("country")
    if "region" in want:
        assert row["report_region"] == want["region"]
    if "basis" in want:
        assert row["report_country_basis"] == want["basis"]
    if "branch" in want:
        assert row["disease_branch"] == want["branch"]
    assert row["kind_evidence"]


def test_the_cases_that_trip_a_classifier_carry_their_reasons() -> None:
    rows = _rows()
    review = rows["99000004"]
    assert "others' results" in review["kind_evidence"]  # it quotes 30 treated patients, not its own
    preclinical = rows["99000005"]
    assert "trial only announced" in preclinical["kind_evidence"]
    assert preclinical["nct_ids"] == ["NCT03323944"]  # the planned trial's id is kept, the kind is not changed
    chictr = rows["99000002"]
    assert chictr["registry_ids"] == [{"registry": "chictr", "id": "ChiCTR-OPC-16009113", "found_in": "abstract"}]
    assert chictr["pub_date_text"] == "2019 Nov-Dec" and chictr["pub_date"] == dt.date(2019, 11, 1)
    case = rows["99000003"]
    assert case["patients_evidence"] == "a 34-year-old man"
    trial = rows["99000001"]
    assert trial["patients_evidence"] == "Eighteen patients were infused"
    assert trial["pmc_id"] == "PMC9900001" and trial["doi"] == "10.0000/handmade.0001"
    assert trial["authors"][0]["orcid"] == "0000-0000-0000-0001"
    assert trial["authors"][1]["equal_contrib"]
    assert trial["abstract"].startswith("BACKGROUND: CD19-directed chimeric antigen receptor (CAR) T cells")
    us = rows["99000008"]
    assert us["pub_date_precision"] == "season" and us["pub_date"] == dt.date(2018, 1, 1)


@pytest.mark.parametrize(
    ("affiliation", "country", "region"),
    [
        ("Department of Hematology, Peking University People's Hospital, Beijing 100044, P.R. China.", "CN", "CN-BJ"),
        ("The First Affiliated Hospital of Soochow University, Suzhou 215006, China", "CN", "CN-JS"),
        (
            "Xiangya Hospital, Central South University, Changsha, Hunan, China. Electronic address: a@b.cn.",
            "CN",
            "CN-HN",
        ),
        ("Abramson Cancer Center, University of Pennsylvania, Philadelphia, PA 19104", "US", None),
        ("Seoul National University Hospital, Seoul, Republic of Korea.", "KR", None),
        ("University College London, London, England.", "GB", None),
        ("University of Manchester.", None, None),
    ],
)
def test_country_and_province_of_affiliations(affiliation: str, country: str | None, region: str | None) -> None:
    assert country_of(affiliation) == country
    found = region_of(affiliation) if country == "CN" else None
    assert (found[0] if found else None) == region


def _study(
    nct: str, title: str, sponsor: str, start: str, condition: str, country: str, **extra: Any
) -> dict[str, Any]:
    ident: dict[str, Any] = {"nctId": nct, "briefTitle": title}
    if "secondary" in extra:
        ident["secondaryIdInfos"] = [{"id": extra["secondary"], "type": "REGISTRY"}]
    return {
        "protocolSection": {
            "identificationModule": ident,
            "statusModule": {
                "overallStatus": "COMPLETED",
                "startDateStruct": {"date": start},
                "lastUpdatePostDateStruct": {"date": "2020-01-01"},
            },
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": sponsor, "class": "OTHER"}},
            "conditionsModule": {"conditions": [condition]},
            "armsInterventionsModule": {"interventions": [{"type": "BIOLOGICAL", "name": title}]},
            "contactsLocationsModule": {"locations": [{"facility": sponsor, "city": "x", "country": country}]},
        }
    }


@pytest.fixture
def loaded(atlas: cartatlas.Atlas, tmp_path: Path) -> cartatlas.Atlas:
    return load_articles(atlas, tmp_path)


def load_articles(atlas: cartatlas.Atlas, tmp_path: Path) -> cartatlas.Atlas:
    """The hand-made articles of tests/fixtures/pubmed and four hand-made trials they report or cite, linked."""
    studies = [
        _study(
            "NCT01864889",
            "CD19 CAR-T cells for B-ALL",
            "Chinese PLA General Hospital",
            "2013-05",
            "B-cell acute lymphoblastic leukemia",
            "China",
        ),
        _study(
            "NCT02666000",
            "BCMA CAR-T for myeloma",
            "Tongji Hospital",
            "2016-09",
            "Multiple Myeloma",
            "China",
            secondary="ChiCTR-OPC-16009113",
        ),
        _study(
            "NCT02315612",
            "Anti-CD22 CAR T cells in children and young adults with B-ALL",
            "National Cancer Institute (NCI)",
            "2014-12",
            "Acute Lymphoblastic Leukemia",
            "United States",
        ),
        _study(
            "NCT09999999",
            "CD22 CAR-T for B-ALL",
            "Somewhere Else Hospital",
            "2019-01",
            "Acute Lymphoblastic Leukemia",
            "Germany",
        ),
    ]
    trials = tmp_path / "trials.json"
    trials.write_bytes(orjson.dumps(studies))
    atlas.import_files([trials, FIXTURES])
    atlas.link_publications()
    return atlas


def test_links_by_databank_abstract_id_secondary_id_and_score(loaded: cartatlas.Atlas) -> None:
    links = loaded.sql("SELECT pmid, trial_id, method, score, evidence, in_store FROM publication_links ORDER BY 1, 2")
    got = {(r.pmid, r.trial_id): r for r in links.itertuples()}
    databank = got[("99000001", "NCT01864889")]
    assert (databank.method, databank.score, databank.in_store) == ("databank", 1.0, True)
    chictr = got[("99000002", "NCT02666000")]
    assert chictr.method == "abstract_id" and "secondary id" in chictr.evidence
    # the ChiCTR number resolved to the stored trial that lists it; it is not linked a second time on its own
    assert ("99000002", "ChiCTR-OPC-16009113") not in got
    scored = got[("99000008", "NCT02315612")]
    assert scored.method == "scored" and scored.score >= 0.6
    assert "target CD22 shared" in scored.evidence and "National Cancer Institute" in scored.evidence
    # started after the report was published: never a candidate
    assert ("99000008", "NCT09999999") not in got
    # a planned trial named by a preclinical paper is linked by its id (not in the store here) ...
    assert got[("99000005", "NCT03323944")].in_store is False
    # ... while reviews and commentaries get no scored links
    assert not [k for k in got if k[0] in ("99000004", "99000007") and got[k].method == "scored"]


def test_publications_api_and_rebuild(loaded: cartatlas.Atlas) -> None:
    frame = loaded.publications(kind="clinical-report", country="CN")
    assert frame["pmid"].tolist() == ["99000001", "99000002", "99000003"]
    assert frame.loc[0, "linked_trials"].tolist() == ["NCT01864889"]
    assert loaded.rebuild() >= 8 + 4
    assert len(loaded.publications()) == 8
    assert loaded.sql("SELECT count(*) AS n FROM clinical_reports")["n"][0] == 4
    authors = loaded.sql("SELECT last_name, is_corresponding FROM publication_authors WHERE pmid = '99000001'")
    assert authors.values.tolist() == [["Zhang", False], ["Li", False], ["Han", True]]


def test_report_figures_and_table1(loaded: cartatlas.Atlas) -> None:
    as_of = dt.date(2020, 6, 30)
    fig_a = pubs.fig2a_reports_per_year(loaded, as_of, "CN")
    totals = fig_a.groupby("group")["reports"].sum().to_dict()
    assert totals == {"China": 3, "United States": 1, "Other countries": 0}
    row_2016 = fig_a[(fig_a["group"] == "China") & (fig_a["year"] == 2016)].iloc[0]
    assert row_2016["reports"] == 1 and row_2016["pmids"] == ["99000001"]  # e-published 2016-10-05
    assert fig_a[fig_a["group"] == "China"]["cumulative"].max() == 3
    earlier = pubs.fig2a_reports_per_year(loaded, dt.date(2019, 12, 31), "CN")
    assert earlier.groupby("group")["reports"].sum()["China"] == 2
    fig_b = pubs.fig2b_reports_per_target(loaded, as_of, "CN")
    assert dict(zip(fig_b["target"], fig_b["reports"], strict=True)) == {"BCMA": 1, "CD19": 1, "CD7": 1}
    assert set(fig_b["branch"]) == {"hematologic"}
    fig_c = pubs.fig2c_reports_per_region(loaded, as_of, "CN")
    assert dict(zip(fig_c["region"], fig_c["reports"], strict=True)) == {"Beijing": 1, "Hubei": 1, "Jiangsu": 1}
    table = pubs.table1_focus_reports(loaded, as_of, "CN")
    assert table.columns[:8].tolist() == [
        "pmid",
        "first_author",
        "year",
        "journal",
        "target",
        "disease",
        "patients_treated",
        "linked_trials",
    ]
    first = table.iloc[0]
    assert (first["pmid"], first["first_author"], first["year"], first["target"]) == (
        "99000001",
        "Zhang W",
        2016,
        "CD19",
    )
    assert first["patients_treated"] == 18 and first["linked_trials"] == "NCT01864889"
    assert table["linked_trials"].tolist()[1] == "NCT02666000"
    us = pubs.table1_focus_reports(loaded, as_of, "US")
    assert us["pmid"].tolist() == ["99000008"] and us.loc[0, "linked_trials"] == "NCT02315612"


def _colours(spec: dict[str, Any]) -> dict[str, str]:
    """Category -> colour of every colour scale in a chart spec (its layers included)."""
    found: dict[str, str] = {}
    for part in [spec, *spec.get("layer", [])]:
        scale = part.get("encoding", {}).get("color", {}).get("scale", {})
        if "domain" in scale:
            found.update(zip(scale["domain"], scale["range"], strict=True))
    return found


def test_fig2_drawn_by_the_report_in_the_colours_of_fig1(loaded: cartatlas.Atlas) -> None:
    """Fig. 2a-2c are the report's figures: China has the colour it has in Fig. 1a, the style is the shared one.

    Before issue 14 they were drawn in ``analysis/publications.py`` with a palette of their own taken in table
    order, so China was orange (#E69F00) in Fig. 2a and vermillion (#D55E00) in Fig. 1a.
    """
    as_of = "2020-06-30"
    land = loaded.landscape(as_of, "CN")
    fig1a = FIGURES["fig1a_cumulative"].draw(land).to_dict()
    per_year = FIGURES["fig2a_reports_per_year"].draw(land).to_dict()
    assert loaded.figure("fig2a_reports_per_year", as_of).to_dict() == per_year
    china = _colours(fig1a)["China"]
    assert china == GROUP_COLOURS["China"] == "#D55E00"
    assert _colours(per_year) == {g: GROUP_COLOURS[g] for g in ("China", "United States", "Other countries")}
    assert per_year["config"] == fig1a["config"] and per_year["config"]["font"] == theme_config()["font"]
    assert per_year["encoding"]["x"]["axis"]["title"] == "Year of publication"
    assert per_year["encoding"]["y"]["axis"]["title"] == "Clinical reports (n)"
    rows = per_year["datasets"][per_year["data"]["name"]]
    assert {(r["group"], r["year"], r["n"]) for r in rows if r["n"]} == {
        ("China", 2016, 1),
        ("China", 2019, 1),
        ("China", 2020, 1),
        ("United States", 2018, 1),
    }
    cumulative = fig_publications_per_year(land, cumulative=True).to_dict()
    assert cumulative["mark"]["type"] == "line" and _colours(cumulative)["China"] == china
    per_target = FIGURES["fig2b_reports_per_target"].draw(land).to_dict()
    assert per_target["layer"][0]["encoding"]["y"]["sort"] == ["BCMA", "CD19", "CD7"]
    assert _colours(per_target) == {"hematologic": china}
    assert per_target["config"] == fig1a["config"]
    per_region = FIGURES["fig2c_reports_per_region"].draw(land).to_dict()
    assert per_region["layer"][0]["encoding"]["y"]["sort"] == ["Beijing", "Hubei", "Jiangsu"]
    assert _colours(per_region)["Region"] == china
    assert "pmids" not in orjson.dumps([per_year, per_target, per_region]).decode()


def test_figures_on_an_empty_store(atlas: cartatlas.Atlas) -> None:
    assert pubs.fig2a_reports_per_year(atlas, dt.date(2020, 6, 30)).empty
    assert pubs.table1_focus_reports(atlas, dt.date(2020, 6, 30)).empty
