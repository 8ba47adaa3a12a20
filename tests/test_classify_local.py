"""Bilingual records: the classifier reads the local-language fields beside the English ones.

Hand-made record (no real bilingual CAR-T ChiCTR record is among the samples): an English title that
says nothing of the product, and a Chinese title that names a CD19 CAR-T cell product.
"""

from __future__ import annotations

from typing import Any

from cartatlas.classify import classify_trial


def _trial(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "trial_id": "ChiCTR2000099999",
        "registry": "chictr",
        "brief_title": "A clinical study of cell therapy in relapsed B-cell leukemia",
        "conditions": ["B-cell acute lymphoblastic leukemia"],
        "interventions": [],
        "arm_groups": [],
    }
    base.update(fields)
    return base


def test_chinese_title_names_the_car_product() -> None:
    english_only = classify_trial(_trial())
    assert english_only["relation"] == "none"
    chinese = "靶向CD19嵌合抗原受体T细胞（CAR-T细胞）治疗复发难治B细胞白血病的临床研究"
    both = classify_trial(_trial(brief_title_local=chinese))
    assert both["relation"] == "therapy"
    assert both["targets"] == ["CD19"]
    assert any(e["field"] == "brief_title_local" for e in both["evidence"])


def test_chinese_conditions_give_the_disease() -> None:
    result = classify_trial(
        _trial(
            brief_title="CD19 CAR-T cells for relapsed disease",
            conditions=[],
            conditions_local=["复发难治性B细胞急性淋巴细胞白血病"],
        )
    )
    assert result["relation"] == "therapy"
    assert result["branch"] == "heme-malignancy"
