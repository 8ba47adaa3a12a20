"""Screening ChiCTR and ICTRP records: Chinese text, and the COVID-19 cell therapies that are not CAR.

Real records: the ChiCTR trial page and result list (Chinese), the ICTRP
COVID-19 exports.  Hand-made Chinese fixtures (marked ``# hand-made``) are
built on the real ChiCTR page with ``tests.chictr_fixtures.chictr_twin``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import cartatlas
from cartatlas.classify import classify_trial
from cartatlas.model import Trial
from cartatlas.normalise.chictr import normalise_chictr_page
from cartatlas.sources.chictr.pages import parse_detail_page, parse_search_page
from tests.chictr_fixtures import CD123, chictr_twin
from tests.ictrp_samples import CHICTR, sample_db

#: Words of the COVID-19 cell-therapy trials in the ICTRP samples.
CELL_THERAPY = re.compile(
    r"stem cell|mesenchymal|\bMSCs?\b|NK cell|natural killer|cord blood|umbilical cord|exosome|"
    r"T cells?|immune cells?|CAR-|chimeric",
    re.I,
)


def _trial(row: dict[str, Any]) -> Trial:
    """A trials-table row (pandas) back as a Trial: arrays to lists."""
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in row.items()}  # type: ignore[return-value]


def test_the_real_chinese_trial_page_is_not_a_car_trial() -> None:
    trial = normalise_chictr_page(parse_detail_page((CHICTR / "trial_detail_page.html").read_bytes()))
    result = classify_trial(trial)
    assert result["relation"] == "none"
    assert result["branch"] == "solid-tumor"


def test_the_real_chinese_result_list_rows_are_not_car_trials() -> None:
    listing = parse_search_page((CHICTR / "search_results_page.html").read_bytes())
    relations = {
        row.registration_number: classify_trial(normalise_chictr_page(row.as_payload()))["relation"]
        for row in listing.rows
    }
    assert set(relations.values()) == {"none"}, relations


@pytest.fixture(scope="module")
def covid_cell_therapies() -> list[Trial]:
    with cartatlas.open(sample_db(), read_only=True) as atlas:
        rows = atlas.sql("SELECT * FROM trials WHERE source_format LIKE 'ictrp%'").to_dict("records")
    out = []
    for row in rows:
        names = " ".join(i["name"] for i in (row["interventions"] if row["interventions"] is not None else []))
        if CELL_THERAPY.search(f"{row['brief_title']} {row['official_title']} {names}"):
            out.append(_trial(row))
    return out


def test_covid_cell_therapies_that_are_not_car_come_out_none(covid_cell_therapies: list[Trial]) -> None:
    others = [t for t in covid_cell_therapies if t["trial_id"] != "NCT04324996"]
    assert len(others) >= 40
    wrong = {t["trial_id"]: classify_trial(t)["relation"] for t in others}
    assert {k: v for k, v in wrong.items() if v != "none"} == {}


def test_the_car_nk_covid_trial_is_a_car_therapy(covid_cell_therapies: list[Trial]) -> None:
    [car_nk] = [t for t in covid_cell_therapies if t["trial_id"] == "NCT04324996"]
    result = classify_trial(car_nk)
    assert result["relation"] == "therapy"
    assert result["platforms"] == ["CAR-NK"]


CHINESE_ONLY = {"title_en": None, "sponsor_en": None, "intervention_en": None}


@pytest.mark.parametrize(
    ("fixture", "relation", "platforms", "targets", "strategy", "source"),
    [
        (
            {
                "title_zh": "靶向CD19嵌合抗原受体T细胞治疗复发/难治性B细胞淋巴瘤的临床研究",  # hand-made
                "intervention_zh": "自体CD19 CAR-T细胞",  # hand-made
                "disease_zh": "复发/难治性B细胞淋巴瘤",  # hand-made
            },
            "therapy",
            ["CAR-T"],
            ["CD19"],
            "single",
            "autologous",
        ),
        (
            {
                "title_zh": "CD19/CD22双靶点CAR-T细胞治疗复发难治性B细胞急性淋巴细胞白血病",  # hand-made
                "intervention_zh": "CD19/CD22双靶点CAR-T细胞",  # hand-made
            },
            "therapy",
            ["CAR-T"],
            ["CD19", "CD22"],
            "multi-specific-CAR",
            None,
        ),
        (
            {
                "title_zh": "同种异体BCMA CAR-T细胞治疗复发难治多发性骨髓瘤的安全性和有效性研究",  # hand-made
                "intervention_zh": "异体BCMA CAR-T细胞",  # hand-made
                "disease_zh": "复发难治多发性骨髓瘤",  # hand-made
            },
            "therapy",
            ["CAR-T"],
            ["BCMA"],
            "single",
            "allogeneic",
        ),
        (
            {
                "title_zh": "人脐带间充质干细胞治疗新型冠状病毒肺炎的临床研究",  # hand-made
                "intervention_zh": "脐带间充质干细胞",  # hand-made
                "disease_zh": "新型冠状病毒肺炎",  # hand-made
            },
            "none",
            [],
            [],
            None,
            None,
        ),
        (
            {
                "title_zh": "自然杀伤细胞治疗新型冠状病毒肺炎的临床研究",  # hand-made
                "intervention_zh": "NK细胞",  # hand-made
                "disease_zh": "新型冠状病毒肺炎",  # hand-made
            },
            "none",
            [],
            [],
            None,
            None,
        ),
        (
            {
                "title_zh": "嵌合抗原受体T细胞治疗后细胞因子释放综合征的托珠单抗干预研究",  # hand-made
                "intervention_zh": "托珠单抗",  # hand-made
            },
            "ancillary",
            None,
            None,
            None,
            None,
        ),
        (
            {
                "title_zh": "CAR-T细胞治疗后患者的长期随访研究",  # hand-made
                "intervention_zh": "无",  # hand-made
            },
            "follow_up",
            None,
            None,
            None,
            None,
        ),
    ],
    ids=["cd19-autologous", "cd19-cd22-dual", "bcma-allogeneic", "msc", "nk", "crs-tocilizumab", "follow-up"],
)
def test_hand_made_chinese_only_records(
    fixture: dict[str, str],
    relation: str,
    platforms: list[str] | None,
    targets: list[str] | None,
    strategy: str | None,
    source: str | None,
) -> None:
    trial = normalise_chictr_page(chictr_twin("ChiCTR2000030001", **{**CD123, **CHINESE_ONLY, **fixture}))  # type: ignore[arg-type]
    assert trial["language"] == "zh" and trial["brief_title"] == fixture["title_zh"]
    result = classify_trial(trial)
    assert result["relation"] == relation, result["evidence"]
    if platforms is not None:
        assert result["platforms"] == platforms
    if targets is not None:
        assert sorted(result["targets"]) == targets
    if strategy is not None:
        assert result["target_strategy"] == strategy
    if source is not None:
        assert result["product_source"] == source


def test_a_bilingual_record_is_read_in_both_languages() -> None:
    trial = normalise_chictr_page(chictr_twin("ChiCTR2000030001", **CD123))  # type: ignore[arg-type]
    result = classify_trial(trial)
    assert (result["relation"], result["platforms"], result["targets"]) == ("therapy", ["CAR-T"], ["CD123"])
    fields = {e["field"] for e in result["evidence"]}
    assert any(f.startswith("interventions[0]") for f in fields)
