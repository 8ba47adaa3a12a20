"""Linking on constructed pairs built from real records, and curators' link decisions.

The ClinicalTrials.gov side is real (``ctgov/api_v2/leukemia_query_100.json``,
read in place).  It holds two real near-miss pairs: two CD123 CAR-T trials
of Chongqing Precision Biotech registered five days apart (NCT04272125,
NCT04265963) and two IM19 CAR-T trials of Beijing Immunochina (NCT05480501,
NCT05309213).  The ChiCTR side is constructed from the real ChiCTR trial page
(``chictr/trial_detail_page.html``): its fields are replaced by what a ChiCTR
registration of the ClinicalTrials.gov trial would say.  The Chinese titles,
sponsor names and group names are HAND-MADE translations written for these
tests, marked ``# hand-made`` where they appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import cartatlas
from cartatlas.link.curation import parse_value
from cartatlas.model import RawRecord
from cartatlas.normalise.chictr import normalise_chictr_page
from cartatlas.pipeline.ingest import save_records
from tests.chictr_fixtures import CD123, IM19, chictr_twin
from tests.ictrp_samples import CHICTR, CSV_FILES, csv_rows

LEUKEMIA = CHICTR.parent / "ctgov" / "api_v2" / "leukemia_query_100.json"


def _store(atlas: cartatlas.Atlas, pages: dict[str, dict[str, Any]]) -> None:
    run_id = atlas.store.start_run("import", None, "constructed", {})
    records = [
        RawRecord("chictr", regno, "chictr_html", page, f"constructed:{regno}", "") for regno, page in pages.items()
    ]
    stats = save_records(atlas.store, records, run_id)
    assert stats.new == len(records) and not stats.rejected


@pytest.fixture
def ctgov_atlas(tmp_path: Path) -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(tmp_path / "link.duckdb") as atlas:
        atlas.import_files([LEUKEMIA], classify=False)
        yield atlas


def _links(atlas: cartatlas.Atlas) -> dict[tuple[str, str], tuple[str, str]]:
    """{(id a, id b): (method, status)} with the ids of each pair sorted."""
    df = atlas.sql("SELECT trial_id_a, trial_id_b, method, status FROM trial_links")
    return {tuple(sorted((r.trial_id_a, r.trial_id_b))): (r.method, r.status) for r in df.itertuples()}  # type: ignore[misc]


def _cluster(atlas: cartatlas.Atlas, trial_id: str) -> tuple[str, int]:
    row = atlas.sql("SELECT cluster_id, cluster_size FROM trial_clusters WHERE trial_id = ?", [trial_id]).iloc[0]
    return str(row.cluster_id), int(row.cluster_size)


def _used(links: dict[tuple[str, str], tuple[str, str]], a: str, b: str) -> bool:
    found = links.get(tuple(sorted((a, b))))  # type: ignore[arg-type]
    return found is not None and found[1] in ("auto", "confirmed")


def test_the_constructed_page_reads_as_a_bilingual_chictr_record() -> None:
    t = normalise_chictr_page(chictr_twin("ChiCTR2000030001", **CD123))  # type: ignore[arg-type]
    assert t["brief_title"] == CD123["title_en"] and t["brief_title_local"] == CD123["title_zh"]
    assert t["lead_sponsor_local"] == CD123["sponsor_zh"] and t["enrollment"] == 40
    assert t["interventions"][0]["other_names"] == ["CD123 CAR-T细胞"]
    chinese_only = normalise_chictr_page(
        chictr_twin("ChiCTR2000030002", **{**CD123, "title_en": None, "sponsor_en": None, "intervention_en": None})  # type: ignore[arg-type]
    )
    assert chinese_only["brief_title"] == CD123["title_zh"] and chinese_only["language"] == "zh"


def test_a_reworded_bilingual_twin_links_to_its_trial_and_not_to_the_look_alike(ctgov_atlas: cartatlas.Atlas) -> None:
    _store(ctgov_atlas, {"ChiCTR2000030001": chictr_twin("ChiCTR2000030001", **CD123)})  # type: ignore[arg-type]
    stats = ctgov_atlas.link()
    links = _links(ctgov_atlas)
    assert links[("ChiCTR2000030001", "NCT04272125")] == ("score", "auto")
    assert not _used(links, "ChiCTR2000030001", "NCT04265963")  # same sponsor, target, month; 45 patients
    assert _cluster(ctgov_atlas, "ChiCTR2000030001") == ("NCT04272125", 2)
    assert _cluster(ctgov_atlas, "NCT04265963") == ("NCT04265963", 1)
    assert stats.trials == 101 and stats.distinct_trials == 100
    evidence = orjson.loads(
        ctgov_atlas.sql("SELECT evidence FROM trial_links WHERE trial_id_a = 'ChiCTR2000030001' AND status = 'auto'")[
            "evidence"
        ][0]
    )
    assert set(evidence["features"]) >= {"title", "sponsor", "registered", "enrollment"}


def test_the_second_pair_of_look_alikes_too(ctgov_atlas: cartatlas.Atlas) -> None:
    _store(ctgov_atlas, {"ChiCTR2200062511": chictr_twin("ChiCTR2200062511", **IM19)})  # type: ignore[arg-type]
    ctgov_atlas.link()
    links = _links(ctgov_atlas)
    assert _used(links, "ChiCTR2200062511", "NCT05480501")
    assert not _used(links, "ChiCTR2200062511", "NCT05309213")  # same sponsor and product, 58 patients, April


def test_a_cross_reference_links_whatever_the_wording_even_in_chinese_only(ctgov_atlas: cartatlas.Atlas) -> None:
    chinese_only = {**CD123, "title_en": None, "sponsor_en": None, "intervention_en": None}
    _store(
        ctgov_atlas,
        {
            # Partner registry number given: the look-alike's number, on purpose.
            "ChiCTR2000030003": chictr_twin("ChiCTR2000030003", partner="NCT04265963", **chinese_only),  # type: ignore[arg-type]
        },
    )
    ctgov_atlas.link()
    links = _links(ctgov_atlas)
    assert links[("ChiCTR2000030003", "NCT04265963")] == ("secondary_id", "auto")
    assert not _used(links, "ChiCTR2000030003", "NCT04272125")
    assert _cluster(ctgov_atlas, "ChiCTR2000030003") == ("NCT04265963", 2)


def test_a_chinese_only_twin_without_a_cross_reference_is_not_linked(ctgov_atlas: cartatlas.Atlas) -> None:
    chinese_only = {**CD123, "title_en": None, "sponsor_en": None, "intervention_en": None}
    _store(ctgov_atlas, {"ChiCTR2000030004": chictr_twin("ChiCTR2000030004", **chinese_only)})  # type: ignore[arg-type]
    ctgov_atlas.link()
    links = _links(ctgov_atlas)
    assert not any(_used(links, "ChiCTR2000030004", other) for other in ("NCT04272125", "NCT04265963"))
    assert _cluster(ctgov_atlas, "ChiCTR2000030004") == ("ChiCTR2000030004", 1)


def test_another_trial_of_the_same_sponsor_and_target_stays_apart(ctgov_atlas: cartatlas.Atlas) -> None:
    later = {
        **CD123,
        "title_en": "CD123 targeted CAR-T cells combined with decitabine for elderly patients with acute myeloid "
        "leukemia",
        "registered": "2023-06-01",
        "size": 20,
        "intervention_en": "CD123 CAR-T cells and decitabine",
    }
    _store(ctgov_atlas, {"ChiCTR2300071234": chictr_twin("ChiCTR2300071234", **later)})  # type: ignore[arg-type]
    ctgov_atlas.link()
    links = _links(ctgov_atlas)
    assert not any(_used(links, "ChiCTR2300071234", other) for other in ("NCT04272125", "NCT04265963"))


def test_an_id_for_a_record_not_imported_gives_the_cluster_its_id(ctgov_atlas: cartatlas.Atlas) -> None:
    page = chictr_twin("ChiCTR2000030005", partner="NCT09999999", **CD123)  # type: ignore[arg-type]
    _store(ctgov_atlas, {"ChiCTR2000030005": page})
    ctgov_atlas.link()
    assert _cluster(ctgov_atlas, "ChiCTR2000030005") == ("NCT09999999", 1)
    # ...and a score match to another NCT record is then not made: the record named its own.
    assert not _used(_links(ctgov_atlas), "ChiCTR2000030005", "NCT04272125")


def test_an_id_in_free_text_of_the_same_registry_is_not_a_link(tmp_path: Path) -> None:
    """NCT04341870 (CORIMUNO sarilumab) names the CORIMUNO-19 cohort NCT04324047 in its criteria."""
    rows = [r for path in CSV_FILES[:1] for r in csv_rows(path) if r["TrialID"] in ("NCT04341870", "NCT04324047")]
    csv_path = tmp_path / "corimuno.csv"
    import csv

    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        atlas.import_files([csv_path], classify=False)
        atlas.link()
        assert atlas.sql("SELECT count(DISTINCT cluster_id) AS n FROM trial_clusters")["n"][0] == 2


def test_eu_ctr_country_copies_are_one_trial_with_their_clinicaltrials_gov_record(tmp_path: Path) -> None:
    rows = [r for r in csv_rows(CSV_FILES[0]) if r["TrialID"] in ("EUCTR2020-001162-12-FR", "NCT04327388")]
    german = dict(next(r for r in rows if r["TrialID"].startswith("EUCTR")))
    german["TrialID"] = "EUCTR2020-001162-12-DE"  # the same EudraCT trial as a second member state lists it
    german["Countries"] = "Germany"
    import csv

    path = tmp_path / "sarilumab.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, german])
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        atlas.import_files([path], classify=False)
        atlas.link()
        links = _links(atlas)
        assert links[("EUCTR2020-001162-12-DE", "EUCTR2020-001162-12-FR")] == ("same_eudract", "auto")
        for trial_id in ("EUCTR2020-001162-12-DE", "EUCTR2020-001162-12-FR", "NCT04327388"):
            assert _cluster(atlas, trial_id) == ("NCT04327388", 3)


def _curation(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "curation.csv"
    path.write_text("trial_id,field,value,reason,curator,date\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_curators_split_and_confirm_links(ctgov_atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    _store(ctgov_atlas, {"ChiCTR2000030001": chictr_twin("ChiCTR2000030001", **CD123)})  # type: ignore[arg-type]
    curation = _curation(
        tmp_path,
        'ChiCTR2000030001,link,different:ctgov:NCT04272125,"not the same cohort",jdoe,2026-11-20',
        'ChiCTR2000030001,link,same:ctgov:NCT04265963,"sponsor confirmed by e-mail",jdoe,2026-11-20',
        "ChiCTR2000030001,targets,CD123,classification rows are for the classifier,jdoe,2026-11-20",
        "ChiCTR2000030001,link,maybe:ctgov:NCT04265963,bad verdict,jdoe,2026-11-20",
        "ChiCTR2000030001,link,same:ctgov:NCT04265963,,,2026-11-20",
    )
    stats = ctgov_atlas.link(curation)
    links = _links(ctgov_atlas)
    assert links[("ChiCTR2000030001", "NCT04272125")] == ("curated", "rejected")
    assert links[("ChiCTR2000030001", "NCT04265963")] == ("curated", "confirmed")
    assert _cluster(ctgov_atlas, "ChiCTR2000030001") == ("NCT04265963", 2)
    assert _cluster(ctgov_atlas, "NCT04272125") == ("NCT04272125", 1)
    assert stats.curated == 2 and len(stats.problems) == 2
    assert any(":5:" in p for p in stats.problems) and any(":6:" in p for p in stats.problems)
    evidence = orjson.loads(
        ctgov_atlas.sql("SELECT evidence FROM trial_links WHERE status = 'rejected'")["evidence"][0]
    )
    assert evidence["was"]["method"] == "score" and evidence["curator"] == "jdoe"
    # The decisions survive a re-run of the rules.
    ctgov_atlas.link(curation)
    assert _links(ctgov_atlas)[("ChiCTR2000030001", "NCT04272125")] == ("curated", "rejected")


def test_link_values_parse() -> None:
    assert parse_value("same:ctgov:NCT04336254") == ("same", "ctgov", "NCT04336254")
    assert parse_value("Different:euctr:EUCTR2020-001162-12-FR") == ("different", "euctr", "EUCTR2020-001162-12-FR")
    assert parse_value("same:NCT04336254") is None
    assert parse_value("perhaps:ctgov:NCT04336254") is None


def test_an_ictrp_secondary_id_column_links_by_id(tmp_path: Path) -> None:
    """Newer ICTRP exports have a "Secondary ID" column; a ChiCTR row naming its NCT id there is linked by it."""
    import csv

    rows = [r for r in csv_rows(CSV_FILES[0]) if r["TrialID"] in ("ChiCTR2000031319", "NCT04336254")]
    for row in rows:
        row["Secondary ID"] = "NCT04336254; 2020-WH-031" if row["TrialID"].startswith("ChiCTR") else ""
    path = tmp_path / "with_secondary_ids.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        atlas.import_files([path], classify=False)
        chictr = atlas.sql("SELECT nct_id, secondary_ids FROM trials WHERE trial_id = 'ChiCTR2000031319'").iloc[0]
        assert chictr.nct_id == "NCT04336254"
        assert [s["registry"] for s in chictr.secondary_ids] == ["ctgov", None]
        atlas.link()
        assert _links(atlas)[("ChiCTR2000031319", "NCT04336254")] == ("secondary_id", "auto")
        assert _cluster(atlas, "ChiCTR2000031319") == ("NCT04336254", 2)


def test_the_link_command_reports_trials_links_and_candidates(ctgov_atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cartatlas.cli import app

    _store(ctgov_atlas, {"ChiCTR2000030001": chictr_twin("ChiCTR2000030001", **CD123)})  # type: ignore[arg-type]
    db = ctgov_atlas.store.path
    ctgov_atlas.close()
    result = CliRunner().invoke(app, ["link", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["registrations"] == 101 and summary["trials"] == 100
    assert summary["links_used"]["score"] == 1 and summary["linked_groups"] == 1
    missing = CliRunner().invoke(app, ["link", "--db", db, "--curation", str(tmp_path / "none.csv")])
    assert missing.exit_code != 0
