"""ChiCTR's own formats: WHO-format XML, a trial page and a search result page (real samples)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cartatlas
from cartatlas.model import RawRecord
from cartatlas.normalise.chictr import normalise_chictr_page, normalise_chictr_xml
from cartatlas.sources.chictr.pages import parse_detail_page, parse_search_page, waf_answer
from cartatlas.sources.files import read_path
from tests.chictr_server import BLOCK_PAGE, CHALLENGE_PAGE
from tests.ictrp_samples import CHICTR, sample_db

DETAIL = CHICTR / "trial_detail_page.html"
LISTING = CHICTR / "search_results_page.html"
WHO_XML = CHICTR / "ChiCTR2000034346.xml"


def test_the_who_xml_maps_field_by_field() -> None:
    [record] = list(read_path(WHO_XML))
    assert isinstance(record, RawRecord)
    assert (record.registry, record.record_id, record.format) == ("chictr", "ChiCTR2000034346", "chictr_xml")
    t = normalise_chictr_xml(record.payload)
    assert t["brief_title"] == "Survey for Surgery status of a designated Hospital for COVID-19 management in Guangzhou"
    assert t["lead_sponsor"] == "Jianxing He"
    assert t["first_posted"] == dt.date(2020, 7, 2)
    assert t["start_date"] == dt.date(2020, 4, 10)
    assert t["enrollment"] == 2418 + 821
    assert t["overall_status"] == "COMPLETED"
    assert t["study_type"] == "HEALTH_SERVICES_RESEARCH"
    assert t["study_design"] == "Sequential"
    assert t["phases"] == [] and t["phase_text"] == "Retrospective study"
    assert t["countries"] == ["CN"]
    assert t["conditions"] == ["Novel Coronavirus Pneumonia (COVID-19)"]
    assert t["primary_outcomes"] == ["decrease"]
    assert t["sex"] == "ALL"
    assert "(2) Types of surgery not available" in (t["eligibility_criteria"] or "")
    assert t["web_address"] == "http://www.chictr.org.cn/showproj.aspx?proj=55654"
    assert [a["label"] for a in t["arm_groups"]] == ["2019 Y", "2020 Y"] and t["interventions"] == []
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        stored = atlas.sql("SELECT source_format FROM trials WHERE trial_id = 'ChiCTR2000034346'")
    assert list(stored["source_format"]) == ["chictr_xml"]


def test_the_trial_page_keeps_chinese_and_english() -> None:
    page = parse_detail_page(DETAIL.read_bytes())
    t = normalise_chictr_page(page)
    assert t["trial_id"] == "ChiCTR2400084905" and t["registry"] == "chictr"
    assert t["brief_title"].startswith("SUNRAY-01, A Global Pivotal Study")
    assert t["brief_title_local"].startswith("SUNRAY-01，一项比较LY3537982联合帕博利珠单抗")
    assert t["official_title_local"].startswith("SUNRAY-01，一项比较")
    assert t["lead_sponsor"] == "Jilin Cancer Hospital" and t["lead_sponsor_local"] == "吉林省肿瘤医院"
    assert t["language"] == "zh+en"
    assert t["first_posted"] == dt.date(2024, 5, 28) and t["last_update_posted"] == dt.date(2024, 5, 28)
    assert t["start_date"] == dt.date(2024, 6, 1) and t["completion_date"] == dt.date(2029, 10, 1)
    assert t["overall_status"] == "NOT_YET_RECRUITING"
    assert t["study_type"] == "INTERVENTIONAL" and t["study_design"] == "Parallel"
    assert t["phases"] == ["PHASE3"] and t["phase_text"] == "3"
    assert t["enrollment"] == 192 * 2 + 276 * 2
    assert t["sex"] == "ALL" and t["minimum_age"] == "18 Years" and t["maximum_age"] is None
    names = {i["name"]: i["other_names"] for i in t["interventions"]}
    assert names["LY3537982 in combination with pembrolizumab"] == ["LY3537982联合帕博利珠单抗"]
    assert [a["label"] for a in t["arm_groups"]][:2] == ["experimental group（Part A）", "control group（Part A）"]
    assert "KRAS G12C突变、局部晚期或转移性非小细胞肺癌" in t["conditions"]
    assert t["conditions_local"] == ["KRAS G12C突变、局部晚期或转移性非小细胞肺癌"]
    assert t["conditions"][0].startswith("KRAS G12C-Mutant")
    assert t["primary_outcomes"] == ["progression-free survival"]
    assert t["secondary_outcomes"] == ["Overall survival", "overall response rate"]
    assert t["brief_summary"].startswith("To determine the optimal dose of LY3537982")
    assert t["brief_summary_local"].startswith("确定LY3537982")
    assert t["eligibility_criteria"].startswith("1. Histologically or cytologically confirmed NSCLC")
    assert "\n2. Must have disease" in t["eligibility_criteria"]
    assert t["eligibility_criteria_local"].startswith("1 经组织学或细胞学证实")
    assert len(t["sites"]) == 43 and t["countries"] == ["CN"]
    assert t["sites"][0]["facility"] == "Jilin Cancer Hospital" and t["sites"][0]["state"] == "Jilin"
    assert t["collaborators"] == [{"name": "Jilin Cancer Hospital", "sponsor_class": None}]
    assert t["secondary_ids"] == [] and t["nct_id"] is None


def test_the_stored_page_is_its_content_not_its_markup() -> None:
    [record] = list(read_path(DETAIL))
    assert isinstance(record, RawRecord) and record.format == "chictr_html"
    assert record.record_updated == dt.date(2024, 5, 28)
    import orjson

    assert len(orjson.dumps(record.payload)) < DETAIL.stat().st_size / 5


def test_the_result_list_gives_a_stub_per_row() -> None:
    listing = parse_search_page(LISTING.read_bytes())
    assert listing.total == 32 and len(listing.rows) == 10 and not listing.problems
    first = listing.rows[0]
    assert (first.registration_number, first.proj, first.registered) == ("ChiCTR2500111173", "274313", "2025/10/27")
    records = [r for r in read_path(LISTING) if isinstance(r, RawRecord)]
    assert [r.record_id for r in records] == [row.registration_number for row in listing.rows]
    t = normalise_chictr_page(records[0].payload)
    assert t["brief_title"] == t["brief_title_local"] and t["brief_title"].endswith("SUNRAY-02")
    assert t["lead_sponsor"] == "广东省人民医院（广东省医学科学院）"
    assert t["study_type"] == "INTERVENTIONAL" and t["first_posted"] == dt.date(2025, 10, 27)
    assert t["web_address"] == "https://www.chictr.org.cn/showproj.html?proj=274313"
    assert t["language"] == "zh"


def test_a_full_page_replaces_the_list_stub_of_the_same_trial(tmp_path: Path) -> None:
    page_row = LISTING.read_text(encoding="utf-8").replace("ChiCTR2500111173", "ChiCTR2400084905")
    listing = tmp_path / "list.html"
    listing.write_text(page_row, encoding="utf-8")
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        atlas.import_files([DETAIL], classify=False)
        atlas.import_files([listing], classify=False)
        row = atlas.sql("SELECT source_format, brief_title FROM trials WHERE trial_id = 'ChiCTR2400084905'")
    assert row["source_format"][0] == "chictr_html"
    assert row["brief_title"][0].startswith("SUNRAY-01, A Global")


def test_firewall_answers_are_recognised() -> None:
    assert "JavaScript challenge" in (waf_answer(200, CHALLENGE_PAGE) or "")
    assert "block page" in (waf_answer(405, BLOCK_PAGE) or "")
    assert "405" in (waf_answer(405, "<html></html>") or "")
    assert waf_answer(200, DETAIL.read_text(encoding="utf-8")) is None
    assert waf_answer(200, LISTING.read_text(encoding="utf-8")) is None


def test_a_saved_firewall_page_is_not_a_trial(tmp_path: Path) -> None:
    path = tmp_path / "showproj.html"
    path.write_text(CHALLENGE_PAGE, encoding="utf-8")
    items = list(read_path(path))
    assert not any(isinstance(i, RawRecord) for i in items)
