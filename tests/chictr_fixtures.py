"""ChiCTR records constructed from the real ChiCTR trial page, for linking and classification tests.

``chictr_twin`` takes the real page (``../shared/data/chictr/trial_detail_page.html``,
read in place) and replaces its fields with what another ChiCTR registration
would say.  The Chinese titles, sponsor names, group and disease names given
here and by the tests are HAND-MADE (translations written for the tests),
marked ``# hand-made`` where they appear.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from cartatlas.sources.chictr.pages import parse_detail_page
from tests.ictrp_samples import CHICTR


@functools.cache
def _real_page() -> dict[str, Any]:
    return parse_detail_page((CHICTR / "trial_detail_page.html").read_bytes())


def _set(page: dict[str, Any], label: str, value: str) -> None:
    hits = [f for f in page["fields"] if label in (f.get("cn"), f.get("en"))]
    assert hits, label
    for entry in hits:
        entry.pop("value_cn", None)
        entry.pop("value_en", None)
        entry["value"] = value


def chictr_twin(
    regno: str,
    *,
    title_en: str | None,
    title_zh: str,
    sponsor_en: str | None,
    sponsor_zh: str,
    registered: str,
    size: int,
    intervention_en: str | None,
    intervention_zh: str,
    partner: str = "",
    disease_en: str = "Relapsed or refractory acute leukemia",
    disease_zh: str = "复发/难治性急性白血病",  # hand-made
) -> dict[str, Any]:
    """The real ChiCTR page with its fields replaced: a ChiCTR registration of another trial."""
    page = copy.deepcopy(_real_page())
    values = {
        "Registration number": regno,
        "Date of Registration": f"{registered} 00:00:00",
        "Date of Last Refreshed on": f"{registered} 10:00:00",
        "Public title": title_en or "",
        "Scientific title": title_en or "",
        "注册题目": title_zh,
        "研究课题的正式科学名称": title_zh,
        "English Acronym": "",
        "注册题目简写": "",
        "Primary sponsor": sponsor_en or "",
        "研究实施负责（组长）单位": sponsor_zh,
        "The registration number of the Partner Registry or other register": partner,
        "Objectives of Study": "",
        "研究目的": "",
        "Target disease": disease_en if title_en else "",
        "研究疾病": disease_zh,
    }
    for label, value in values.items():
        _set(page, label, value)
    for block in page["blocks"]:
        if block["en"] == "Interventions":
            block["records"] = [
                {
                    "组别": "试验组",  # hand-made
                    "样本量": str(size),
                    "Group": "experimental group" if title_en else "",
                    "Sample size": "",
                    "干预措施": intervention_zh,
                    "干预措施代码": "",
                    "Intervention": intervention_en or "",
                    "Intervention code": "",
                }
            ]
        if block["en"] == "Secondary sponsor":
            block["records"] = []
    return page


#: ChiCTR twin of NCT04272125 (CD123 CAR-T, Chongqing Precision Biotech, 40 patients, registered 2020-02-17).
CD123 = {
    "title_en": "A clinical study of CD123 targeted chimeric antigen receptor T cells for relapsed or "
    "refractory acute myeloid leukemia",
    "title_zh": "CD123靶向嵌合抗原受体T细胞治疗复发/难治性急性髓系白血病的临床研究",  # hand-made
    "sponsor_en": "Chongqing Precision Biotech Co., Ltd.",
    "sponsor_zh": "重庆精准生物技术有限公司",  # hand-made
    "registered": "2020-02-24",
    "size": 40,
    "intervention_en": "CD123 CAR-T cells",
    "intervention_zh": "CD123 CAR-T细胞",  # hand-made
}
#: ChiCTR twin of NCT05480501 (IM19 CAR-T, Beijing Immunochina, 9 patients, registered 2022-07-29).
IM19 = {
    "title_en": "Safety and efficacy of IM19 chimeric antigen receptor T cells in relapsed/refractory B-cell "
    "acute lymphoblastic leukemia",
    "title_zh": "IM19嵌合抗原受体T细胞治疗复发/难治性B细胞急性淋巴细胞白血病的安全性和有效性研究",  # hand-made
    "sponsor_en": "Beijing Immunochina Medical Science & Technology Co., Ltd.",
    "sponsor_zh": "北京艺妙神州医药科技有限公司",  # hand-made
    "registered": "2022-08-08",
    "size": 9,
    "intervention_en": "IM19 CAR-T cells",
    "intervention_zh": "IM19 CAR-T细胞",  # hand-made
}
