"""WHO ICTRP exports: every sample file imports, counts per register match the files, fields map right."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

import cartatlas
from cartatlas.model import RawRecord
from cartatlas.normalise.ictrp import normalise_ictrp
from cartatlas.normalise.phases import normalise_phases
from cartatlas.sources.files import read_path
from tests.ictrp_samples import CSV_FILES, XML_FILES, counts_in_file, csv_rows, distinct_trials, sample_db, xml_trials

ALL_FILES = CSV_FILES + XML_FILES


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_record_of_every_file_is_read_under_its_register(path: Path) -> None:
    items = list(read_path(path))
    records = [i for i in items if isinstance(i, RawRecord)]
    assert len(records) == len(items), [str(i) for i in items if not isinstance(i, RawRecord)][:3]
    assert Counter(r.registry for r in records) == counts_in_file(path)
    assert {r.format for r in records} == {"ictrp_xml" if path.suffix == ".xml" else "ictrp_csv"}


def test_the_database_holds_each_registration_once_per_register() -> None:
    expected = distinct_trials()
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        got = atlas.sql(
            "SELECT registry, count(*) AS n FROM trials WHERE source_format LIKE 'ictrp%' GROUP BY 1"
        ).set_index("registry")["n"]
        rejects = atlas.sql("SELECT count(*) AS n FROM rejects")["n"][0]
    assert {k: int(v) for k, v in got.items()} == {k: len(v) for k, v in expected.items()}
    assert rejects == 0


def test_a_trial_in_two_exports_is_one_record_with_two_versions() -> None:
    in_xml = {t["TrialID"] for t in xml_trials(XML_FILES[0])}
    in_csv = {r["TrialID"] for r in csv_rows(CSV_FILES[0])}
    both = sorted(in_xml & in_csv)
    assert both
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        versions = atlas.versions(both[0])
        rows = atlas.sql("SELECT count(*) AS n FROM trials WHERE trial_id = ?", [both[0]])["n"][0]
    assert rows == 1
    assert set(versions["format"]) >= {"ictrp_xml", "ictrp_csv"}


def _row(trial_id: str, path: Path) -> dict[str, str]:
    return next(r for r in csv_rows(path) if r["TrialID"] == trial_id)


def test_a_chictr_row_maps_field_by_field() -> None:
    row = _row("ChiCTR2000029953", CSV_FILES[0])
    t = normalise_ictrp(row)
    assert t["registry"] == "chictr"
    assert t["source_register"] == "ChiCTR"
    assert t["brief_title"] == (
        "Construction and Analysis of Prognostic Predictive Model of Novel Coronavirus Pneumonia (COVID-19)"
    )
    assert t["official_title"] == t["brief_title"]  # the hundreds of padding spaces are gone
    assert t["lead_sponsor"] == "Zhongnan Hospital of Wuhan University"
    assert t["first_posted"] == dt.date(2020, 2, 17)
    assert t["first_submitted"] is None
    assert t["last_update_posted"] == dt.date(2020, 2, 17)
    assert t["start_date"] == dt.date(2020, 2, 1)
    assert t["overall_status"] == "NOT_RECRUITING"
    assert t["study_type"] == "OBSERVATIONAL"
    assert t["study_design"] == "Factorial"
    assert t["phases"] == ["NA"] and t["phase_text"] == "N/A"
    assert t["enrollment"] == 400  # survival group:200;died:200;
    assert t["countries"] == ["CN"]
    assert t["sex"] == "ALL"
    assert t["conditions"] == ["2019-nCoV Pneumonia"]
    assert [a["label"] for a in t["arm_groups"]] == ["survival group", "died"]
    assert t["interventions"] == []  # "none" for both groups
    assert len(t["primary_outcomes"]) == 4
    assert t["eligibility_criteria"].startswith("Inclusion criteria: 2019-nCoV-infected")
    assert "Exclusion criteria:" in t["eligibility_criteria"]
    assert t["web_address"] == "http://www.chictr.org.cn/showproj.aspx?proj=49217"
    assert t["language"] == "en"


def test_a_clinicaltrials_gov_row_maps_field_by_field() -> None:
    t = normalise_ictrp(_row("NCT04246242", CSV_FILES[1]))
    assert t["registry"] == "ctgov" and t["nct_id"] == "NCT04246242"
    assert t["first_posted"] == dt.date(2020, 1, 27)  # 27/01/2020, day first
    assert t["start_date"] == dt.date(2020, 1, 25)  # January 25, 2020
    assert t["phases"] == ["PHASE4"]
    assert t["enrollment"] == 500
    assert t["study_type"] == "INTERVENTIONAL"
    assert {(i["type"], i["name"]) for i in t["interventions"]} == {
        ("DRUG", "arbidol,200mg,tid"),
        ("DRUG", "arbidol,400mg,tid"),
        ("DRUG", "Conventional treatment group"),
    }
    assert t["study_design"].startswith("Allocation: Randomized.")
    assert "<br>" not in t["eligibility_criteria"]
    assert t["minimum_age"] is None and t["maximum_age"] is None


def test_an_eu_ctr_row_reads_its_phase_block_products_and_eudract_number() -> None:
    t = normalise_ictrp(_row("EUCTR2015-002340-14-NL", CSV_FILES[0]))
    assert t["registry"] == "euctr"
    assert t["phases"] == ["PHASE4"]
    assert {"id": "2015-002340-14", "type": "EUDRACT_NUMBER", "domain": "EU CTR", "registry": "eudract"} in t[
        "secondary_ids"
    ]
    names = {i["name"] for i in t["interventions"]}
    assert {"LEVOFLOXACIN", "HYDROCORTISONE"} <= names
    assert {"PT", "GR", "ES", "IE", "GB", "AU", "NZ"} <= set(t["countries"])
    assert t["conditions"][0] == "Severe Community Acquired Pneumonia"
    assert not any(c.startswith("MedDRA") for c in t["conditions"])


def test_an_xml_trial_maps_like_its_csv_row() -> None:
    xml_ids = {t["TrialID"] for t in xml_trials(XML_FILES[0])}
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        df = atlas.sql("SELECT payload FROM raw_records WHERE record_id = 'ChiCTR2000029953' AND format = 'ictrp_xml'")
    assert "ChiCTR2000029953" in xml_ids
    from_xml = normalise_ictrp(df["payload"][0], "ictrp_xml")
    from_csv = normalise_ictrp(_row("ChiCTR2000029953", CSV_FILES[0]))
    for field in ("trial_id", "registry", "brief_title", "lead_sponsor", "first_posted", "enrollment", "phases"):
        assert from_xml[field] == from_csv[field], field  # type: ignore[literal-required]


def test_the_curated_extract_layout_reads_its_own_column_names() -> None:
    path = next(p for p in CSV_FILES if p.name.startswith("ntd"))
    row = csv_rows(path)[0]
    t = normalise_ictrp(row)
    assert t["trial_id"] == "NCT05957978"
    assert t["phases"] == ["PHASE2"] and t["phase_text"] == "Phase 2"  # Phase_Original, not the curated PHASE
    assert t["first_posted"] == dt.date(2023, 6, 14)
    assert t["enrollment"] == 52
    assert t["countries"] == ["ET"]
    assert t["minimum_age"] == "15Y"


def test_every_phase_spelling_in_the_samples_is_understood() -> None:
    spellings: Counter[str] = Counter()
    for path in CSV_FILES:
        for row in csv_rows(path):
            spellings[row.get("Phase") or row.get("Phase_Original") or ""] += 1
    for path in XML_FILES:
        for trial in xml_trials(path):
            spellings[trial.get("Phase") or ""] += 1
    assert len(spellings) > 30
    no_phase = {"", "Retrospective study", "New Treatment Measure Clinical Study", "Other"}
    for spelling in spellings:
        phases = normalise_phases([spelling])
        if spelling.strip() in no_phase:
            assert phases == [], spelling
        else:
            assert phases, f"{spelling!r} maps to nothing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", ["PHASE0"]),
        ("1-2", ["PHASE1", "PHASE2"]),
        ("Phase I/II", ["PHASE1", "PHASE2"]),
        ("Phase 2/Phase 3", ["PHASE2", "PHASE3"]),
        ("Early Phase 1", ["EARLY_PHASE1"]),
        ("N/A", ["NA"]),
        ("Retrospective study", []),
        ("New Treatment Measure Clinical Study", []),
        ("Post Marketing Surveillance", ["PHASE4"]),
        ("III期临床试验", ["PHASE3"]),
        ("I期+II期", ["PHASE1", "PHASE2"]),
        ("探索性研究/预试验", ["PHASE0"]),
        (
            "Human pharmacology (Phase I): no\nTherapeutic exploratory (Phase II): yes\n"
            "Therapeutic confirmatory - (Phase III): yes\nTherapeutic use (Phase IV): no\n",
            ["PHASE2", "PHASE3"],
        ),
        (
            "\n    Human pharmacology (Phase I): \n    Therapeutic exploratory (Phase II): yes\n"
            "    Therapeutic confirmatory - (Phase III): \n    Therapeutic use (Phase IV): no",
            ["PHASE2"],
        ),
    ],
)
def test_registry_phase_spellings(text: str, expected: list[str]) -> None:
    assert normalise_phases([text]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20200217", dt.date(2020, 2, 17)),
        ("17 February 2020", dt.date(2020, 2, 17)),
        ("27/01/2020", dt.date(2020, 1, 27)),
        ("2024-05-28 00:00:00", dt.date(2024, 5, 28)),
        ("2025/10/27", dt.date(2025, 10, 27)),
        ("2020年2月17日", dt.date(2020, 2, 17)),
        ("2020年02月", dt.date(2020, 2, 1)),
        ("20201399", None),
    ],
)
def test_ictrp_and_chictr_dates(text: str, expected: dt.date | None) -> None:
    from cartatlas.dates import parse_date

    assert parse_date(text) == expected


def test_an_ictrp_copy_of_a_clinicaltrials_gov_record_is_a_version_of_it(tmp_path: Path, data_dir: Path) -> None:
    """covid-19-search.json (classic API) and the ICTRP export share four NCT records."""
    import csv

    shared = ["NCT04323787", "NCT04332380", "NCT04332835", "NCT04339322"]
    rows = [r for r in csv_rows(CSV_FILES[0]) if r["TrialID"] in shared]
    excerpt = tmp_path / "ictrp_excerpt.csv"
    with excerpt.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        atlas.import_files([data_dir / "ctgov" / "classic_api" / "covid-19-search.json"], classify=False)
        before = int(atlas.sql("SELECT count(*) AS n FROM trials")["n"][0])
        atlas.import_files([excerpt], classify=False)
        for nct in shared:
            formats = set(atlas.versions(nct)["format"])
            assert formats == {"ctgov_classic", "ictrp_csv"}, nct
            assert atlas.sql("SELECT count(*) AS n FROM trials WHERE trial_id = ?", [nct])["n"][0] == 1
        assert int(atlas.sql("SELECT count(*) AS n FROM trials")["n"][0]) == before
        stats = atlas.link()
        clusters = atlas.sql("SELECT count(*) AS n, count(DISTINCT registry || trial_id) AS d FROM trial_clusters")
        assert clusters["n"][0] == clusters["d"][0] == stats.trials == before
