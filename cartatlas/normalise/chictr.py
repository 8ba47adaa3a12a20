"""ChiCTR's own records to normalised trials: its WHO-format XML, its trial pages, its result lists.

ChiCTR records are bilingual or Chinese only.  The main fields of a Trial
(``brief_title``, ``brief_summary``, ``lead_sponsor``...) hold the English text
when the record has it and the Chinese text otherwise, so that every reader of
the main fields (the classifier, exports) sees the record's words; the Chinese
text is always kept in the ``*_local`` fields as well.  List fields carry both
languages: ``conditions`` has the English and the Chinese disease names, each
intervention its English name with the Chinese one in ``other_names``.

Dates: ChiCTR's "Date of Registration" goes into ``first_posted`` (a ChiCTR
record is public from registration); ChiCTR shows no separate submission date,
so ``first_submitted`` stays empty.  "Date of Last Refreshed on" is
``last_update_posted`` and orders versions.
"""

from __future__ import annotations

import re
from typing import Any

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import find_registry_ids, id_registry
from cartatlas.model import ArmGroup, Intervention, SecondaryId, Site, Sponsor, Trial
from cartatlas.normalise import who
from cartatlas.normalise.countries import normalise_country
from cartatlas.normalise.formats import FormatSpec, register_format
from cartatlas.normalise.ictrp import trial_from_fields
from cartatlas.normalise.phases import normalise_phases
from cartatlas.normalise.places import site_place, sponsor_country
from cartatlas.sources.chictr.pages import REGISTRY
from cartatlas.sources.who import one_line, xml_fields

BASE_URL = "https://www.chictr.org.cn"
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}")
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+|岁|月|天)?")
_AGE_UNITS = {"岁": "Years", "月": "Months", "天": "Days"}
_ACRONYM_MAX = 40


# -- WHO-format XML ----------------------------------------------------------------------


def normalise_chictr_xml(text: str) -> Trial:
    return trial_from_fields(xml_fields(text), "chictr_xml")


# -- trial pages ---------------------------------------------------------------------------


def _bilingual(en: str | None, zh: str | None) -> tuple[str | None, str | None]:
    """(main, local): the English text first, the Chinese one kept as local; Chinese alone fills both."""
    en = en if en and not who.is_empty_value(en) else None
    zh = zh if zh and not who.is_empty_value(zh) else None
    if en and who.has_cjk(en) and not zh:
        return en, en
    return (en or zh), zh


def _value(page: dict[str, Any], *labels: str, whole: bool = False) -> str | None:
    from cartatlas.sources.chictr.pages import field_value

    value = field_value(page, *labels, whole=whole)
    return None if who.is_empty_value(value) else value


def _dates(text: str | None) -> list[Any]:
    return [parse_date(d) for d in _DATE.findall(text or "")]


def _age(text: str | None) -> str | None:
    m = _AGE.search(text or "")
    if m is None:
        return None
    unit = m[2] or "years"
    unit = _AGE_UNITS.get(unit, unit.capitalize())
    return f"{m[1]} {unit}"


def _secondary_ids(text: str | None, trial_id: str) -> list[SecondaryId]:
    out: list[SecondaryId] = []
    seen = {trial_id.casefold()}
    for registry, sid in find_registry_ids(text):
        if sid.casefold() not in seen:
            seen.add(sid.casefold())
            out.append(SecondaryId(id=sid, type="PARTNER_REGISTRY", domain=None, registry=registry))
    if not out and text and not who.is_empty_value(text):
        for item in who.split_list(text, separators=";,，；"):
            if item.casefold() not in seen:
                seen.add(item.casefold())
                out.append(SecondaryId(id=item, type="PARTNER_REGISTRY", domain=None, registry=id_registry(item)))
    return out


def _interventions(records: list[dict[str, str]]) -> tuple[list[Intervention], list[ArmGroup], int | None]:
    interventions: list[Intervention] = []
    arms: list[ArmGroup] = []
    total = 0
    sized = False
    for rec in records:
        name, local = _bilingual(rec.get("Intervention"), rec.get("干预措施"))
        label, label_local = _bilingual(rec.get("Group"), rec.get("组别"))
        size = re.search(r"\d+", rec.get("样本量") or rec.get("Sample size") or "")
        if size:
            total += int(size[0])
            sized = True
        code = rec.get("Intervention code") or rec.get("干预措施代码")
        if name:
            others = [local] if local and local != name else []
            if code and not who.is_empty_value(code):
                others.append(code)
            if not any(i["name"] == name for i in interventions):
                interventions.append(Intervention(type=None, name=name, other_names=others, description=None))
        if label:
            description = " ".join(t for t in (label_local if label_local != label else None,) if t) or None
            arms.append(
                ArmGroup(label=label, type=None, description=description, intervention_names=[name] if name else [])
            )
    return interventions, arms, (total if sized else None)


def _sites(records: list[dict[str, str]]) -> tuple[list[Site], list[str]]:
    sites: list[Site] = []
    codes: list[str] = []
    for rec in records:
        country, code = normalise_country(rec.get("Country") or None)
        if code is None and (rec.get("国家") or "").strip() in ("中国", "中华人民共和国"):
            country, code = normalise_country("China")
        facility, _ = _bilingual(rec.get("Institution hospital"), rec.get("单位(医院)"))
        city = rec.get("City") or rec.get("市(区县)") or None
        state = rec.get("Province") or rec.get("省(直辖市)") or None
        region_code, region, city_normalised = site_place(code, state, city, facility)
        sites.append(
            Site(
                facility=facility,
                city=city,
                state=state,
                country=country,
                country_code=code,
                zip=None,
                status=None,
                lat=None,
                lon=None,
                region_code=region_code,
                region=region,
                city_normalised=city_normalised,
            )
        )
        if code and code not in codes:
            codes.append(code)
    return sites, codes


def _outcomes(records: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    primary: list[str] = []
    secondary: list[str] = []
    for rec in records:
        name, _ = _bilingual(rec.get("Outcome"), rec.get("指标中文名"))
        if not name:
            continue
        kind = f"{rec.get('Type') or ''} {rec.get('指标类型') or ''}".casefold()
        (primary if "primary" in kind or "主要" in kind else secondary).append(name)
    return primary, secondary


def _join(*texts: str | None) -> str | None:
    parts = [t for t in texts if t]
    return "\n\n".join(parts) or None


def normalise_chictr_page(page: dict[str, Any]) -> Trial:
    """A ChiCTR trial page (as ``cartatlas.sources.chictr.pages`` reads it) or a result-list row."""
    if not isinstance(page, dict):
        raise ValueError(f"ChiCTR page record must be an object, not {type(page).__name__}")
    if page.get("kind") == "chictr_list":
        return _list_row_trial(page)
    from cartatlas.sources.chictr.pages import block_records, registration_number

    trial_id = registration_number(page)
    if trial_id is None:
        raise ValueError("ChiCTR page without a registration number")
    title, title_local = _bilingual(_value(page, "Public title"), _value(page, "注册题目"))
    official, official_local = _bilingual(_value(page, "Scientific title"), _value(page, "研究课题的正式科学名称"))
    sponsor, sponsor_local = _bilingual(_value(page, "Primary sponsor"), _value(page, "研究实施负责（组长）单位"))
    summary, summary_local = _bilingual(_value(page, "Objectives of Study"), _value(page, "研究目的"))
    description, description_local = _bilingual(
        _value(page, "Description for medicine or protocol of treatment in detail"),
        _value(page, "药物成份或治疗方案详述"),
    )
    acronym = _value(page, "English Acronym")
    cond_en = who.split_list(_value(page, "Target disease"), separators=";；")
    cond_zh = who.split_list(_value(page, "研究疾病"), separators=";；")
    interventions, arms, enrollment = _interventions(block_records(page, "Interventions", "干预措施"))
    sites, countries = _sites(block_records(page, "Countries of recruitment and research settings", "研究实施地点"))
    primary, secondary = _outcomes(block_records(page, "Outcomes", "测量指标"))
    ages = (block_records(page, "Participant age", "年龄范围") or [{}])[0]
    execute = _dates(_value(page, "Study execute time", "研究实施时间", whole=True))
    recruiting = _dates(_value(page, "Recruiting time", "征募观察对象时间", whole=True))
    phase_en, phase_zh = _value(page, "Study phase"), _value(page, "研究所处阶段")
    eligibility, eligibility_local = _bilingual(
        _join(_value(page, "Inclusion criteria"), _value(page, "Exclusion criteria")),
        _join(_value(page, "纳入标准"), _value(page, "排除标准")),
    )
    sids = _secondary_ids(
        _value(
            page,
            "The registration number of the Partner Registry or other register",
            "在二级注册机构或其它机构的注册号",
        ),
        trial_id,
    )
    collaborators: list[Sponsor] = []
    for rec in block_records(page, "Secondary sponsor", "试验主办单位(项目批准或申办者)"):
        name, _ = _bilingual(rec.get("Institution hospital"), rec.get("单位(医院)"))
        if name and all(c["name"] != name for c in collaborators):
            collaborators.append(Sponsor(name=name, sponsor_class=None))
    url = page.get("url") if isinstance(page.get("url"), str) else None
    return Trial(
        trial_id=trial_id,
        registry=REGISTRY,
        nct_id=next((s["id"] for s in sids if s["registry"] == "ctgov"), None),
        org_study_id=_value(page, "Study subject ID", "研究课题代号(代码)"),
        secondary_ids=sids,
        brief_title=title,
        official_title=official,
        acronym=acronym if acronym and len(acronym) <= _ACRONYM_MAX else None,
        overall_status=who.status(_value(page, "Recruiting status")) or who.status(_value(page, "征募研究对象情况")),
        study_type=who.study_type(_value(page, "Study type") or _value(page, "研究类型")),
        phases=normalise_phases([p for p in (phase_en, phase_zh) if p]),
        first_submitted=None,
        first_posted=parse_date(_value(page, "Date of Registration", "注册时间")),
        start_date=(execute or recruiting or [None])[0],
        primary_completion_date=None,
        completion_date=execute[1] if len(execute) > 1 else None,
        last_update_posted=parse_date(_value(page, "Date of Last Refreshed on", "最近更新日期")),
        lead_sponsor=sponsor,
        lead_sponsor_class=None,
        collaborators=collaborators,
        conditions=cond_en + [c for c in cond_zh if c not in cond_en],
        keywords=[],
        mesh_terms=[],
        interventions=interventions,
        arm_groups=arms,
        brief_summary=summary,
        detailed_description=description,
        eligibility_criteria=eligibility,
        sex=who.sex(_value(page, "Gender")) or who.sex(_value(page, "性别")),
        minimum_age=_age(ages.get("Min age")),
        maximum_age=_age(ages.get("Max age")),
        enrollment=enrollment,
        enrollment_type="ESTIMATED" if enrollment is not None else None,
        primary_outcomes=primary,
        sites=sites,
        countries=countries,
        has_results=None,
        source_format="chictr_html",
        brief_title_local=title_local,
        official_title_local=official_local,
        lead_sponsor_local=sponsor_local,
        brief_summary_local=summary_local,
        detailed_description_local=description_local,
        conditions_local=cond_zh,
        eligibility_criteria_local=eligibility_local,
        language=who.language_of(title, title_local, official, official_local),
        source_register="ChiCTR",
        web_address=url,
        phase_text=phase_en or phase_zh,
        study_design=_value(page, "Study design") or _value(page, "研究设计"),
        secondary_outcomes=secondary,
        sponsor_country=sponsor_country(sponsor),
    )


def _list_row_trial(row: dict[str, Any]) -> Trial:
    """What a search result list shows of a trial: id, title, sponsor, study type, registration date."""
    trial_id = one_line(row.get("registration_number"))
    if not trial_id:
        raise ValueError("ChiCTR list row without a registration number")
    title = one_line(row.get("title"))
    sponsor = one_line(row.get("sponsor"))
    proj = one_line(row.get("proj"))
    return Trial(
        trial_id=trial_id,
        registry=REGISTRY,
        nct_id=None,
        org_study_id=None,
        secondary_ids=[],
        brief_title=title,
        official_title=None,
        acronym=None,
        overall_status=None,
        study_type=who.study_type(row.get("study_type")),
        phases=[],
        first_submitted=None,
        first_posted=parse_date(one_line(row.get("registered"))),
        start_date=None,
        primary_completion_date=None,
        completion_date=None,
        last_update_posted=None,
        lead_sponsor=sponsor,
        lead_sponsor_class=None,
        collaborators=[],
        conditions=[],
        keywords=[],
        mesh_terms=[],
        interventions=[],
        arm_groups=[],
        brief_summary=None,
        detailed_description=None,
        eligibility_criteria=None,
        sex=None,
        minimum_age=None,
        maximum_age=None,
        enrollment=None,
        enrollment_type=None,
        primary_outcomes=[],
        sites=[],
        countries=[],
        has_results=None,
        source_format="chictr_list",
        brief_title_local=title if who.has_cjk(title) else None,
        lead_sponsor_local=sponsor if who.has_cjk(sponsor) else None,
        language=who.language_of(title),
        source_register="ChiCTR",
        web_address=f"{BASE_URL}/showproj.html?proj={proj}" if proj and proj.isdigit() else None,
        sponsor_country=sponsor_country(sponsor),
    )


#: A trial page is ChiCTR's fullest form (bilingual, sites, outcomes); its WHO XML is English only;
#: a result-list row is a stub that any other version replaces.
register_format(FormatSpec("chictr_html", REGISTRY, 35, True, normalise_chictr_page))
register_format(FormatSpec("chictr_xml", REGISTRY, 30, False, normalise_chictr_xml))
register_format(FormatSpec("chictr_list", REGISTRY, 3, True, normalise_chictr_page))
