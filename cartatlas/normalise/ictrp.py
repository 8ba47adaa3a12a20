"""WHO ICTRP export rows (XML and CSV) to normalised trials.

ICTRP republishes 17+ registries in one table, but each register fills the
columns its own way: ChiCTR writes interventions and sample sizes per group
("case:30;control:30;"), ClinicalTrials.gov "Drug: name;Drug: name", EU CTR
multi-line product and phase blocks.  Both export formats are read into one
dict keyed by ICTRP's column names (case, spaces and underscores folded), so a
field is interpreted once whichever file it came from.

Dates: "Date registration" is the date the record was registered in its
source register; it goes into ``first_posted`` (for ClinicalTrials.gov rows
that is the first-posted date; for other registers, registration is when a
record becomes public).  ICTRP has no separate submission date, so
``first_submitted`` stays empty.  "Last Refreshed on" (when ICTRP last took the
record from its register) goes into ``last_update_posted`` and orders versions.
"""

from __future__ import annotations

import re
from typing import Any

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import find_registry_ids, id_registry
from cartatlas.model import ArmGroup, Intervention, SecondaryId, Sponsor, Trial
from cartatlas.normalise import who
from cartatlas.normalise.formats import FormatSpec, register_format
from cartatlas.normalise.phases import normalise_phases
from cartatlas.normalise.places import sponsor_country
from cartatlas.sources.who import clean_text, one_line, refreshed_on, register_short_name_for, row_fields, trial_id_of

_CTGOV_TYPE = re.compile(
    r"^(drug|biological|device|procedure|procedure/surgery|behavioral|radiation|genetic|dietary supplement|"
    r"combination product|diagnostic test|other)\s*:\s*(.+)$",
    re.I,
)
_NUMBERED_INTERVENTION = re.compile(r"(?:^|\s)Intervention\s+\d+\s*:\s*", re.I)
_EU_PRODUCT = re.compile(r"(?im)^\s*Product Name\s*:")
_EU_FIELD = re.compile(
    r"(?im)^\s*(Trade Name|Product Name|Product Code|INN or Proposed INN|Other descriptive name)\s*:\s*(.*)$"
)
_CONDITION_NOISE = re.compile(
    r"^(MedDRA version|Level|Classification code|System Organ Class|Therapeutic area)\b\s*:?", re.I
)
_NAME_LIMIT = 160


def identity_ids(registry: str, trial_id: str) -> list[SecondaryId]:
    """Ids written inside an ICTRP trial id: EUCTR2020-001162-12-FR holds EudraCT 2020-001162-12,
    JPRN-UMIN000039686 holds UMIN000039686.  Linking needs them; ICTRP only writes the prefixed form."""
    out: list[SecondaryId] = []
    if registry == "euctr":
        m = re.search(r"\d{4}-\d{6}-\d{2}", trial_id)
        if m:
            out.append(SecondaryId(id=m[0], type="EUDRACT_NUMBER", domain="EU CTR", registry="eudract"))
    elif registry == "jprn" and "-" in trial_id:
        inner = trial_id.split("-", 1)[1]
        reg = id_registry(inner)
        if reg and reg != "jprn":
            out.append(SecondaryId(id=inner, type="REGISTRY_ID", domain="JPRN", registry=reg))
    return out


def secondary_ids(fields: dict[str, str], registry: str, trial_id: str) -> list[SecondaryId]:
    out = identity_ids(registry, trial_id)
    seen = {trial_id.casefold(), *(s["id"].casefold() for s in out)}
    for item in who.split_list(fields.get("secondary id"), separators=";,"):
        found = find_registry_ids(item)
        ids: list[tuple[str | None, str]] = [(reg, i) for reg, i in found] or [(id_registry(item), item)]
        for reg, sid in ids:
            if sid.casefold() in seen:
                continue
            seen.add(sid.casefold())
            out.append(SecondaryId(id=sid, type=None, domain=None, registry=reg))
    return out


def _short_name(text: str) -> tuple[str, str | None]:
    """A name for an intervention given as prose: the first sentence, the full text as description."""
    if len(text) <= _NAME_LIMIT and "\n" not in text:
        return text, None
    first = re.split(r"(?<=[.;:])\s|\n", text, maxsplit=1)[0].strip()
    if len(first) > _NAME_LIMIT:
        first = first[:_NAME_LIMIT].rsplit(" ", 1)[0] + "…"
    return first, text


def _eu_products(text: str) -> list[Intervention]:
    blocks = _EU_PRODUCT.split(text)
    out: list[Intervention] = []
    for block in blocks[1:]:
        values: dict[str, str] = {}
        for key, value in _EU_FIELD.findall("Product Name:" + block):
            value = value.strip()
            if value and key.casefold() not in values:
                values[key.casefold()] = value
        name = values.get("product name") or values.get("inn or proposed inn") or values.get("trade name")
        if not name:
            continue
        others = [
            v
            for k in ("inn or proposed inn", "trade name", "product code", "other descriptive name")
            if (v := values.get(k)) and v.casefold() != name.casefold()
        ]
        out.append(Intervention(type="DRUG", name=name, other_names=others, description=None))
    return out


def interventions_and_arms(text: str | None, registry: str) -> tuple[list[Intervention], list[ArmGroup]]:
    """Interventions (and ChiCTR's arms) from ICTRP's one free-text Intervention column."""
    cleaned = clean_text(text)
    if not cleaned:
        return [], []
    if registry == "euctr" and _EU_PRODUCT.search(cleaned):
        return _eu_products(cleaned), []
    interventions: list[Intervention] = []
    arms: list[ArmGroup] = []
    if _NUMBERED_INTERVENTION.search(cleaned):
        parts = [p.strip() for p in _NUMBERED_INTERVENTION.split(cleaned) if p.strip()]
    else:
        parts = who.split_list(cleaned)
    for part in parts:
        m = _CTGOV_TYPE.match(part)
        if m:
            kind = m[1].upper().replace(" ", "_").replace("/SURGERY", "")
            interventions.append(Intervention(type=kind, name=m[2].strip(), other_names=[], description=None))
            continue
        if registry == "chictr" and ":" in part:
            group, _, given = part.partition(":")
            group, given = group.strip(), given.strip()
            names = [] if who.is_empty_value(given) else [given]
            arms.append(ArmGroup(label=group, type=None, description=None, intervention_names=names))
            if names and all(i["name"] != given for i in interventions):
                interventions.append(Intervention(type=None, name=given, other_names=[], description=None))
            continue
        name, description = _short_name(part)
        interventions.append(Intervention(type=None, name=name, other_names=[], description=description))
    return interventions, arms


def conditions(text: str | None) -> list[str]:
    out: list[str] = []
    for item in who.split_list(text):
        if _CONDITION_NOISE.match(item):
            continue
        if item.casefold().startswith("term:"):
            item = item[5:].strip()
        if item and item.casefold() not in {c.casefold() for c in out}:
            out.append(item)
    return out


def eligibility(inclusion: str | None, exclusion: str | None) -> str | None:
    parts = [t for t in (clean_text(inclusion), clean_text(exclusion)) if t]
    return "\n\n".join(parts) or None


def design_text(value: str | None) -> str | None:
    text = clean_text(value)
    if not text or who.is_empty_value(text):
        return None
    return "; ".join(line.strip().rstrip(",;") for line in text.split("\n") if line.strip())


def _results(value: str | None) -> bool | None:
    text = (one_line(value) or "").casefold()
    return True if text == "yes" else False if text == "no" else None


def normalise_ictrp(payload: Any, source_format: str = "ictrp_csv") -> Trial:
    """One ICTRP row (a CSV row as a dict, or a ``<Trial>`` element's XML) as a normalised trial."""
    return trial_from_fields(row_fields(payload), source_format)


def trial_from_fields(f: dict[str, str], source_format: str) -> Trial:
    """A trial from WHO data-set fields keyed by ICTRP's column names (see ``row_fields``).

    ChiCTR's WHO-format XML carries the same data set under other tag names;
    its reader renames them and comes here too.
    """
    trial_id = trial_id_of(f)
    if trial_id is None:
        raise ValueError("ICTRP record has no TrialID")
    source_register = one_line(f.get("source register"))
    registry = register_short_name_for(f, trial_id)
    sids = secondary_ids(f, registry, trial_id)
    nct = trial_id if registry == "ctgov" else next((s["id"] for s in sids if s["registry"] == "ctgov"), None)
    interventions, arms = interventions_and_arms(f.get("intervention"), registry)
    phase_text = clean_text(f.get("phase"))
    countries = who.country_codes(f.get("countries"))
    brief_title = one_line(f.get("public title"))
    official_title = one_line(f.get("scientific title"))
    collaborators = [Sponsor(name=name, sponsor_class=None) for name in who.split_list(f.get("secondary sponsor"))]
    registered = parse_date(one_line(f.get("date registration"))) or parse_date(one_line(f.get("date registration3")))
    return Trial(
        trial_id=trial_id,
        registry=registry,
        nct_id=nct,
        org_study_id=None,
        secondary_ids=sids,
        brief_title=brief_title,
        official_title=official_title,
        acronym=one_line(f.get("acronym")),
        overall_status=who.status(f.get("recruitment status")),
        study_type=who.study_type(f.get("study type")),
        phases=normalise_phases([phase_text]) if phase_text else [],
        first_submitted=None,
        first_posted=registered,
        start_date=parse_date(one_line(f.get("date enrollement"))),
        primary_completion_date=None,
        completion_date=parse_date(one_line(f.get("results date completed"))),
        last_update_posted=refreshed_on(f),
        lead_sponsor=one_line(f.get("primary sponsor")),
        lead_sponsor_class=None,
        collaborators=collaborators,
        conditions=conditions(f.get("condition")),
        keywords=[],
        mesh_terms=[],
        interventions=interventions,
        arm_groups=arms,
        brief_summary=None,
        detailed_description=None,
        eligibility_criteria=eligibility(f.get("inclusion criteria"), f.get("exclusion criteria")),
        sex=who.sex(f.get("inclusion gender")),
        minimum_age=who.age(f.get("inclusion agemin")),
        maximum_age=who.age(f.get("inclusion agemax")),
        enrollment=who.target_size(f.get("target size")),
        enrollment_type="ESTIMATED" if who.target_size(f.get("target size")) is not None else None,
        primary_outcomes=who.split_list(f.get("primary outcome")),
        sites=[],
        countries=countries,
        has_results=_results(f.get("results yes no")),
        source_format=source_format,
        language=who.language_of(brief_title, official_title),
        source_register=source_register,
        web_address=one_line(f.get("web address")),
        phase_text=phase_text,
        study_design=design_text(f.get("study design")),
        secondary_outcomes=who.split_list(f.get("secondary outcome")),
        results_first_posted=parse_date(one_line(f.get("results date posted"))),
        sponsor_country=sponsor_country(one_line(f.get("primary sponsor"))),
    )


#: Below every ClinicalTrials.gov format but RSS: an ICTRP copy of a record never hides the register's own
#: version of the same date.
ICTRP_RANK = 8
register_format(FormatSpec("ictrp_csv", "ictrp", ICTRP_RANK, True, lambda p: normalise_ictrp(p, "ictrp_csv")))
register_format(FormatSpec("ictrp_xml", "ictrp", ICTRP_RANK, False, lambda p: normalise_ictrp(p, "ictrp_xml")))
