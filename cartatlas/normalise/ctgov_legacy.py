"""ClinicalTrials.gov's older formats rewritten into the API v2 layout.

The classic API JSON, the legacy per-study XML, the website CSV downloads and
the old RSS feeds all describe the same registry record with other names and
other spellings.  Each is translated here, key by key, into the API v2 module
layout so that ``normalise_ctgov`` interprets every field in one place; a
converter only renames and respells, it never decides what a field means.
Absent values are left out rather than written as empty, as API v2 does.

The stored payload stays in its original format, so a better converter can
re-derive every trial later (``cartatlas rebuild``).
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import orjson
import pycountry
from lxml import etree

from cartatlas.model import Trial
from cartatlas.normalise.countries import country_code
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.normalise.dates import parse_date
from cartatlas.normalise.formats import FormatSpec, register_format, strip_download_header
from cartatlas.normalise.phases import normalise_phases
from cartatlas.sources.ctgov.identity import NCT_IN_TEXT as NCT_IN_TEXT
from cartatlas.sources.ctgov.identity import _all, _get, _items, _text
from cartatlas.sources.ctgov.identity import classic_nct_aliases as classic_nct_aliases
from cartatlas.sources.ctgov.identity import classic_nct_id as classic_nct_id
from cartatlas.sources.ctgov.identity import classic_record_updated as classic_record_updated
from cartatlas.sources.ctgov.identity import clean as clean
from cartatlas.sources.ctgov.identity import csv_record_updated as csv_record_updated
from cartatlas.sources.ctgov.identity import keep_entity_references as keep_entity_references
from cartatlas.sources.ctgov.identity import rss_item_id as rss_item_id
from cartatlas.sources.ctgov.identity import xml_nct_aliases as xml_nct_aliases
from cartatlas.sources.ctgov.identity import xml_nct_id as xml_nct_id
from cartatlas.sources.ctgov.identity import xml_parser as xml_parser
from cartatlas.sources.ctgov.identity import xml_record_updated as xml_record_updated

V2 = dict[str, Any]

# -- values ------------------------------------------------------------------------------------------


_MONTH_ONLY = re.compile(r"^(?:[A-Za-z]+\.?,?\s+\d{4}|\d{4}[-/.]\d{1,2})$")
_YEAR_ONLY = re.compile(r"^\d{4}$")


def iso_date(value: Any) -> str | None:
    """A registry date in the API v2 spelling, keeping its precision ("2021-03" stays a month).

    A date that cannot be read is kept as written: the normaliser then yields
    no date, but the v2 view still shows what the record said.
    """
    text = clean(value)
    if text is None:
        return None
    date = parse_date(text)
    if date is None:
        return text
    if _YEAR_ONLY.match(text):
        return f"{date.year:04d}"
    if _MONTH_ONLY.match(text):
        return f"{date.year:04d}-{date.month:02d}"
    return date.isoformat()


def _enum_token(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


def _v2_enum(value: Any, table: Mapping[str, str | None] | None = None, *, na: str | None = None) -> str | None:
    """An enum value in API v2 spelling: known old spellings by table, the rest by rule.

    "N/A" means no value, except where v2 has a value for it (``na``, e.g. allocation "NA").
    """
    text = clean(value)
    if text is None:
        return na if na is not None and _text(value) is not None else None
    if table is not None:
        key = text.casefold()
        if key in table:
            return table[key]
    return _enum_token(text)


#: Old spellings that the rule (upper case, "_" for the rest) would get wrong; the rule does the others.
_STATUS = {"unknown status": "UNKNOWN"}
_SPONSOR_CLASS = {
    "u.s. fed": "FED",
    "us fed": "FED",
    "other u.s. federal agency": "FED",
    "other gov": "OTHER_GOV",
    "individual": "INDIV",
    "ambiguous": "AMBIG",
}
_DATE_TYPE = {"anticipated": "ESTIMATED", "estimate": "ESTIMATED", "estimated": "ESTIMATED", "actual": "ACTUAL"}
_STUDY_TYPE = {"observational [patient registry]": "OBSERVATIONAL"}
_SEX = {"both": "ALL", "all": "ALL", "female": "FEMALE", "male": "MALE"}
_INTERVENTION_TYPE = {"procedure/surgery": "PROCEDURE", "gene transfer": "GENETIC"}
INTERVENTION_TYPES = frozenset(
    {
        "DRUG",
        "DEVICE",
        "BIOLOGICAL",
        "PROCEDURE",
        "RADIATION",
        "BEHAVIORAL",
        "GENETIC",
        "DIETARY_SUPPLEMENT",
        "COMBINATION_PRODUCT",
        "DIAGNOSTIC_TEST",
        "OTHER",
    }
)
_SECONDARY_ID_TYPE = {
    "u.s. nih grant/contract": "NIH",
    "u.s. fda grant/contract": "FDA",
    "u.s. ahrq grant/contract": "AHRQ",
    "u.s. samhsa grant/contract": "SAMHSA",
    "other grant/funding number": "OTHER_GRANT",
    "eudract number": "EUDRACT_NUMBER",
    "other identifier": "OTHER",
    "registry identifier": "REGISTRY",
}
_PRIMARY_PURPOSE = {"educational/counseling/training": "ECT"}
_WHO_MASKED = {"subject": "PARTICIPANT", "caregiver": "CARE_PROVIDER"}


def v2_status(value: Any) -> str | None:
    return _v2_enum(value, _STATUS)


def v2_sponsor_class(value: Any) -> str | None:
    return _v2_enum(value, _SPONSOR_CLASS)


def v2_date_type(value: Any) -> str | None:
    return _v2_enum(value, _DATE_TYPE)


def v2_study_type(value: Any) -> str | None:
    """The 2018 website CSV names the kind of expanded access after a colon; v2 has one type for all."""
    text = clean(value)
    return None if text is None else _v2_enum(text.split(":")[0], _STUDY_TYPE)


def v2_sex(value: Any) -> str | None:
    return _v2_enum(value, _SEX)


def v2_intervention_type(value: Any) -> str | None:
    return _v2_enum(value, _INTERVENTION_TYPE)


def v2_phases(values: Iterable[Any]) -> list[str]:
    """Phase lists in v2 form; here "N/A" is a value (NA, not applicable), not an absence."""
    return normalise_phases(_text(v) for v in values)


def v2_age(value: Any) -> str | None:
    """Ages are already written "18 Years" in every format; "N/A" means no limit."""
    return clean(value)


def v2_bool(value: Any) -> bool | None:
    text = clean(value)
    if text is None:
        return None
    key = text.casefold()
    if key in {"yes", "true", "accepts healthy volunteers", "has results"}:
        return True
    if key in {"no", "false", "no results available"}:
        return False
    return None


def date_struct(date: Any, kind: Any = None) -> dict[str, str] | None:
    iso = iso_date(date)
    if iso is None:
        return None
    out = {"date": iso}
    if (t := v2_date_type(kind)) is not None:
        out["type"] = t
    return out


_LIST_ITEM = re.compile(r"^(?:[-*•o]\s|\d{1,3}[.)]\s|[a-zA-Z][.)]\s|\(\w{1,4}\)\s)")


def textblock(value: Any) -> str | None:
    """Legacy XML indents and hard-wraps long text at about 100 columns; both are layout.

    Wrapped lines are joined again so that a phrase split across lines
    ("chimeric antigen / receptor") reads as it does in the other formats;
    blank lines and list items keep their breaks.
    """
    if value is None:
        return None
    lines = textwrap.dedent(str(value).replace("\r\n", "\n").strip("\n")).split("\n")
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if out and out[-1].strip() and stripped and not _LIST_ITEM.match(stripped):
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        else:
            out.append(line.rstrip())
    return _text("\n".join(out))


def _pruned(value: Any) -> Any:
    """The value pruned, or None when nothing of it is left."""
    cls = value.__class__
    if cls is dict or cls is list:
        value = prune(value)
        return value or None
    return None if value is None or value == "" else value


def prune(obj: Any) -> Any:
    """Drop None, empty strings, empty lists and empty dicts, recursively, as API v2 omits them."""
    if obj.__class__ is dict:
        out = {}
        for key, value in obj.items():
            if (kept := _pruned(value)) is not None:
                out[key] = kept
        return out
    if obj.__class__ is list:
        return [kept for value in obj if (kept := _pruned(value)) is not None]
    return obj


# -- design ------------------------------------------------------------------------------------------

_MASK_LEVELS = ("none", "open label", "single", "double", "triple", "quadruple")


def masking_info(value: Any) -> dict[str, Any] | None:
    """ "Double (Participant, Investigator)" or "Double Blind (Subject, Investigator)" as v2 maskingInfo."""
    text = clean(value)
    if text is None:
        return None
    head, _, rest = text.partition("(")
    level_text = head.strip().casefold()
    level = None
    for name in _MASK_LEVELS:
        if level_text.startswith(name):
            level = "NONE" if name in ("none", "open label") else name.upper()
            break
    who = [_v2_enum(w, _WHO_MASKED) for w in rest.rstrip(")").split(",")] if rest and level != "NONE" else []
    return {"masking": level or _enum_token(head), "whoMasked": [w for w in who if w]}


def intervention_model(value: Any) -> str | None:
    text = clean(value)
    return None if text is None else _enum_token(re.sub(r"\s+Assignment$", "", text, flags=re.I))


_DESIGN_ITEM = re.compile(r"([A-Z][A-Za-z ]+):\s*(.*?)(?=,\s*[A-Z][A-Za-z ]+:\s|$)")


def design_from_text(text: Any, separator: str | None = None) -> dict[str, Any]:
    """The free-text design summary of old XML and the 2018 CSV as v2 designInfo.

    Written "Allocation: Randomized, Masking: Double (Subject, Investigator), Primary
    Purpose: Treatment" (XML before 2017) or with "|" between items (website CSV).
    """
    s = clean(text)
    if s is None:
        return {}
    items: dict[str, str] = {}
    parts = s.split(separator) if separator else [m.group(0) for m in _DESIGN_ITEM.finditer(s)]
    for part in parts:
        key, sep, val = part.partition(":")
        if sep:
            items[key.strip().casefold()] = val.strip()
    return design_info(
        allocation=items.get("allocation"),
        model=items.get("intervention model"),
        purpose=items.get("primary purpose"),
        masking=items.get("masking"),
        observational=items.get("observational model"),
        perspective=items.get("time perspective"),
    )


def design_info(
    *,
    allocation: Any = None,
    model: Any = None,
    model_description: Any = None,
    purpose: Any = None,
    masking: Any = None,
    masking_description: Any = None,
    who_masked: Iterable[Any] = (),
    observational: Any = None,
    perspective: Any = None,
) -> dict[str, Any]:
    mask = masking_info(masking) or {}
    if who := [w for w in (_v2_enum(x, _WHO_MASKED) for x in who_masked) if w]:
        mask["whoMasked"] = who
    if masking_description is not None:
        mask["maskingDescription"] = _text(masking_description)
    return {
        "allocation": _v2_enum(allocation, na="NA"),
        "interventionModel": intervention_model(model),
        "interventionModelDescription": _text(model_description),
        "primaryPurpose": _v2_enum(purpose, _PRIMARY_PURPOSE),
        "observationalModel": _v2_enum(observational),
        "timePerspective": _v2_enum(perspective),
        "maskingInfo": mask,
    }


def _arm_intervention_name(kind: Any, name: Any) -> str | None:
    """API v2 names an arm's interventions "Drug: LBS-007", with the type as displayed."""
    n = _text(name)
    if n is None:
        return None
    k = clean(kind)
    return f"{k}: {n}" if k else n


# -- classic API JSON ----------------------------------------------------------------------------------


def _dicts(obj: Any, *path: str) -> list[dict[str, Any]]:
    return [v for v in _items(obj, *path) if isinstance(v, dict)]


def classic_to_v2(study: dict[str, Any]) -> V2:
    """One classic API ``Study`` object (PascalCase keys, ``...List`` wrappers) as a v2 study."""
    ps = study.get("ProtocolSection") or {}
    ident = ps.get("IdentificationModule") or {}
    status = ps.get("StatusModule") or {}
    spons = ps.get("SponsorCollaboratorsModule") or {}
    desc = ps.get("DescriptionModule") or {}
    cond = ps.get("ConditionsModule") or {}
    design = ps.get("DesignModule") or {}
    dinfo = design.get("DesignInfo") or {}
    arms = ps.get("ArmsInterventionsModule") or {}
    outcomes = ps.get("OutcomesModule") or {}
    elig = ps.get("EligibilityModule") or {}
    contacts = ps.get("ContactsLocationsModule") or {}
    derived = study.get("DerivedSection") or {}

    def when(struct: str, field: str) -> dict[str, str] | None:
        s = status.get(struct) or {}
        return date_struct(s.get(field), s.get(field + "Type"))

    def outcome_list(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "measure": _text(o.get(f"{kind}OutcomeMeasure")),
                "description": _text(o.get(f"{kind}OutcomeDescription")),
                "timeFrame": _text(o.get(f"{kind}OutcomeTimeFrame")),
            }
            for o in _dicts(outcomes, f"{kind}OutcomeList", f"{kind}Outcome")
        ]

    def browse(module: str, prefix: str) -> dict[str, Any]:
        m = derived.get(module) or {}
        return {
            "meshes": [
                {"id": clean(x.get(f"{prefix}MeshId")), "term": clean(x.get(f"{prefix}MeshTerm"))}
                for x in _dicts(m, f"{prefix}MeshList", f"{prefix}Mesh")
            ],
            "ancestors": [
                {"id": clean(x.get(f"{prefix}AncestorId")), "term": clean(x.get(f"{prefix}AncestorTerm"))}
                for x in _dicts(m, f"{prefix}AncestorList", f"{prefix}Ancestor")
            ],
            "browseLeaves": [
                {
                    "id": clean(x.get(f"{prefix}BrowseLeafId")),
                    "name": clean(x.get(f"{prefix}BrowseLeafName")),
                    "asFound": clean(x.get(f"{prefix}BrowseLeafAsFound")),
                    "relevance": _v2_enum(x.get(f"{prefix}BrowseLeafRelevance")),
                }
                for x in _dicts(m, f"{prefix}BrowseLeafList", f"{prefix}BrowseLeaf")
            ],
            "browseBranches": [
                {
                    "abbrev": clean(x.get(f"{prefix}BrowseBranchAbbrev")),
                    "name": clean(x.get(f"{prefix}BrowseBranchName")),
                }
                for x in _dicts(m, f"{prefix}BrowseBranchList", f"{prefix}BrowseBranch")
            ],
        }

    enrol = design.get("EnrollmentInfo") or {}
    mask = dinfo.get("DesignMaskingInfo") or {}
    lead = spons.get("LeadSponsor") or {}
    org = ident.get("Organization") or {}
    expanded = status.get("ExpandedAccessInfo") or {}
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {
                "nctId": clean(ident.get("NCTId")),
                "nctIdAliases": [clean(a) for a in _items(ident, "NCTIdAliasList", "NCTIdAlias")],
                "orgStudyIdInfo": {"id": _text(_get(ident, "OrgStudyIdInfo", "OrgStudyId"))},
                "secondaryIdInfos": [
                    {
                        "id": _text(s.get("SecondaryId")),
                        "type": _v2_enum(s.get("SecondaryIdType"), _SECONDARY_ID_TYPE),
                        "domain": _text(s.get("SecondaryIdDomain")),
                        "link": _text(s.get("SecondaryIdLink")),
                    }
                    for s in _dicts(ident, "SecondaryIdInfoList", "SecondaryIdInfo")
                ],
                "organization": {
                    "fullName": _text(org.get("OrgFullName")),
                    "class": v2_sponsor_class(org.get("OrgClass")),
                },
                "briefTitle": _text(ident.get("BriefTitle")),
                "officialTitle": _text(ident.get("OfficialTitle")),
                "acronym": _text(ident.get("Acronym")),
            },
            "statusModule": {
                "statusVerifiedDate": iso_date(status.get("StatusVerifiedDate")),
                "overallStatus": v2_status(status.get("OverallStatus")),
                "lastKnownStatus": v2_status(status.get("LastKnownStatus")),
                "whyStopped": _text(status.get("WhyStopped")),
                "expandedAccessInfo": {"hasExpandedAccess": v2_bool(expanded.get("HasExpandedAccess"))},
                "startDateStruct": when("StartDateStruct", "StartDate"),
                "primaryCompletionDateStruct": when("PrimaryCompletionDateStruct", "PrimaryCompletionDate"),
                "completionDateStruct": when("CompletionDateStruct", "CompletionDate"),
                "studyFirstSubmitDate": iso_date(status.get("StudyFirstSubmitDate")),
                "studyFirstSubmitQcDate": iso_date(status.get("StudyFirstSubmitQCDate")),
                "studyFirstPostDateStruct": when("StudyFirstPostDateStruct", "StudyFirstPostDate"),
                "resultsFirstSubmitDate": iso_date(status.get("ResultsFirstSubmitDate")),
                "resultsFirstPostDateStruct": when("ResultsFirstPostDateStruct", "ResultsFirstPostDate"),
                "lastUpdateSubmitDate": iso_date(status.get("LastUpdateSubmitDate")),
                "lastUpdatePostDateStruct": when("LastUpdatePostDateStruct", "LastUpdatePostDate"),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {
                    "name": _text(lead.get("LeadSponsorName")),
                    "class": v2_sponsor_class(lead.get("LeadSponsorClass")),
                },
                "collaborators": [
                    {"name": _text(c.get("CollaboratorName")), "class": v2_sponsor_class(c.get("CollaboratorClass"))}
                    for c in _dicts(spons, "CollaboratorList", "Collaborator")
                ],
            },
            "descriptionModule": {
                "briefSummary": _text(desc.get("BriefSummary")),
                "detailedDescription": _text(desc.get("DetailedDescription")),
            },
            "conditionsModule": {
                "conditions": [_text(c) for c in _items(cond, "ConditionList", "Condition")],
                "keywords": [_text(k) for k in _items(cond, "KeywordList", "Keyword")],
            },
            "designModule": {
                "studyType": v2_study_type(design.get("StudyType")),
                "patientRegistry": v2_bool(design.get("PatientRegistry")),
                "phases": v2_phases(_items(design, "PhaseList", "Phase")),
                "designInfo": design_info(
                    allocation=dinfo.get("DesignAllocation"),
                    model=dinfo.get("DesignInterventionModel"),
                    model_description=dinfo.get("DesignInterventionModelDescription"),
                    purpose=dinfo.get("DesignPrimaryPurpose"),
                    masking=mask.get("DesignMasking"),
                    masking_description=mask.get("DesignMaskingDescription"),
                    who_masked=_items(mask, "DesignWhoMaskedList", "DesignWhoMasked"),
                    observational=next(
                        iter(_items(dinfo, "DesignObservationalModelList", "DesignObservationalModel")), None
                    ),
                    perspective=next(iter(_items(dinfo, "DesignTimePerspectiveList", "DesignTimePerspective")), None),
                ),
                "enrollmentInfo": {
                    "count": _int(enrol.get("EnrollmentCount")),
                    "type": v2_date_type(enrol.get("EnrollmentType")),
                },
            },
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": _text(a.get("ArmGroupLabel")),
                        "type": _v2_enum(a.get("ArmGroupType")),
                        "description": _text(a.get("ArmGroupDescription")),
                        "interventionNames": [
                            _text(n) for n in _items(a, "ArmGroupInterventionList", "ArmGroupInterventionName")
                        ],
                    }
                    for a in _dicts(arms, "ArmGroupList", "ArmGroup")
                ],
                "interventions": [
                    {
                        "type": v2_intervention_type(i.get("InterventionType")),
                        "name": _text(i.get("InterventionName")),
                        "description": _text(i.get("InterventionDescription")),
                        "armGroupLabels": [
                            _text(x) for x in _items(i, "InterventionArmGroupLabelList", "InterventionArmGroupLabel")
                        ],
                        "otherNames": [
                            _text(x) for x in _items(i, "InterventionOtherNameList", "InterventionOtherName")
                        ],
                    }
                    for i in _dicts(arms, "InterventionList", "Intervention")
                ],
            },
            "outcomesModule": {
                "primaryOutcomes": outcome_list("Primary"),
                "secondaryOutcomes": outcome_list("Secondary"),
                "otherOutcomes": outcome_list("Other"),
            },
            "eligibilityModule": {
                "eligibilityCriteria": _text(elig.get("EligibilityCriteria")),
                "healthyVolunteers": v2_bool(elig.get("HealthyVolunteers")),
                "sex": v2_sex(elig.get("Gender")),
                "genderBased": v2_bool(elig.get("GenderBased")),
                "genderDescription": _text(elig.get("GenderDescription")),
                "minimumAge": v2_age(elig.get("MinimumAge")),
                "maximumAge": v2_age(elig.get("MaximumAge")),
                "stdAges": [_v2_enum(a) for a in _items(elig, "StdAgeList", "StdAge")],
                "studyPopulation": _text(elig.get("StudyPopulation")),
                "samplingMethod": _v2_enum(elig.get("SamplingMethod")),
            },
            "contactsLocationsModule": {
                "overallOfficials": [
                    {
                        "name": _text(o.get("OverallOfficialName")),
                        "affiliation": _text(o.get("OverallOfficialAffiliation")),
                        "role": _v2_enum(o.get("OverallOfficialRole")),
                    }
                    for o in _dicts(contacts, "OverallOfficialList", "OverallOfficial")
                ],
                "locations": [
                    {
                        "facility": _text(loc.get("LocationFacility")),
                        "status": v2_status(loc.get("LocationStatus")),
                        "city": _text(loc.get("LocationCity")),
                        "state": _text(loc.get("LocationState")),
                        "zip": _text(loc.get("LocationZip")),
                        "country": _text(loc.get("LocationCountry")),
                    }
                    for loc in _dicts(contacts, "LocationList", "Location")
                ],
            },
        },
        "derivedSection": {
            "conditionBrowseModule": browse("ConditionBrowseModule", "Condition"),
            "interventionBrowseModule": browse("InterventionBrowseModule", "Intervention"),
        },
        "hasResults": "ResultsSection" in study,
    }
    return prune(v2)


def _int(value: Any) -> int | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return int(float(text.replace(",", "")))
    except ValueError:
        return None


# -- legacy per-study XML ------------------------------------------------------------------------------

_XML_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")


def parse_xml_text(text: str) -> etree._Element:
    """Parse stored XML text; its declaration names the original byte encoding, which no longer applies."""
    return keep_entity_references(
        etree.fromstring(_XML_DECLARATION.sub("", text, count=1).encode("utf-8"), xml_parser())
    )


def _findtext(el: etree._Element, path: str) -> str | None:
    return _text(el.findtext(path))


def _xml_date(el: etree._Element, path: str) -> dict[str, str] | None:
    node = el.find(path)
    if node is None:
        return None
    return date_struct(node.text, node.get("type"))


def _xml_design(root: etree._Element) -> dict[str, Any]:
    info = root.find("study_design_info")
    if info is None:
        return design_from_text(root.findtext("study_design"))
    masking = info.findtext("masking")
    return design_info(
        allocation=info.findtext("allocation"),
        model=info.findtext("intervention_model"),
        model_description=info.findtext("intervention_model_description"),
        purpose=info.findtext("primary_purpose"),
        masking=masking,
        masking_description=info.findtext("masking_description"),
        observational=info.findtext("observational_model"),
        perspective=info.findtext("time_perspective"),
    )


_EMPTY_ELEMENT = etree.Element("empty")


def _xml_location(loc: etree._Element) -> dict[str, Any]:
    facility = loc.find("facility")
    fac = facility if facility is not None else _EMPTY_ELEMENT
    address = fac.find("address")
    addr = address if address is not None else _EMPTY_ELEMENT
    return {
        "facility": _text(fac.findtext("name")),
        "status": v2_status(loc.findtext("status")),
        "city": _text(addr.findtext("city")),
        "state": _text(addr.findtext("state")),
        "zip": _text(addr.findtext("zip")),
        "country": _text(addr.findtext("country")),
    }


def xml_study_to_v2(root: etree._Element) -> V2:
    """A parsed ``<clinical_study>`` (as in AllPublicXML) as a v2 study.

    Files written before 2017 use older date element names (``firstreceived_date``,
    ``lastchanged_date``) and a one-line ``study_design``; both spellings are read.
    """
    interventions = []
    arm_names: dict[str, list[str]] = {}
    for i in root.iterfind("intervention"):
        kind, name = i.findtext("intervention_type"), i.findtext("intervention_name")
        labels = _all(i, "arm_group_label")
        for label in labels:
            if (display := _arm_intervention_name(kind, name)) is not None:
                arm_names.setdefault(label, []).append(display)
        interventions.append(
            {
                "type": v2_intervention_type(kind),
                "name": _text(name),
                "description": _text(i.findtext("description")),
                "armGroupLabels": labels,
                "otherNames": _all(i, "other_name"),
            }
        )

    def outcomes(tag: str) -> list[dict[str, Any]]:
        return [
            {
                "measure": _findtext(o, "measure"),
                "description": _findtext(o, "description"),
                "timeFrame": _findtext(o, "time_frame"),
            }
            for o in root.iterfind(tag)
        ]

    def sponsor(el: etree._Element) -> dict[str, Any]:
        return {"name": _findtext(el, "agency"), "class": v2_sponsor_class(el.findtext("agency_class"))}

    lead = root.find("sponsors/lead_sponsor")
    study_type = root.findtext("study_type")
    enrollment = root.find("enrollment")
    elig = root.find("eligibility")
    e: etree._Element = elig if elig is not None else etree.Element("eligibility")
    expanded = clean(root.findtext("has_expanded_access"))
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {
                "nctId": xml_nct_id(root),
                "nctIdAliases": xml_nct_aliases(root),
                "orgStudyIdInfo": {"id": _findtext(root, "id_info/org_study_id")},
                "secondaryIdInfos": [{"id": sid} for sid in _all(root, "id_info/secondary_id")],
                "briefTitle": _findtext(root, "brief_title"),
                "officialTitle": _findtext(root, "official_title"),
                "acronym": _findtext(root, "acronym"),
            },
            "statusModule": {
                "statusVerifiedDate": iso_date(root.findtext("verification_date")),
                "overallStatus": v2_status(root.findtext("overall_status")),
                "lastKnownStatus": v2_status(root.findtext("last_known_status")),
                "whyStopped": _findtext(root, "why_stopped"),
                "expandedAccessInfo": {"hasExpandedAccess": v2_bool(expanded)},
                "startDateStruct": _xml_date(root, "start_date"),
                "primaryCompletionDateStruct": _xml_date(root, "primary_completion_date"),
                "completionDateStruct": _xml_date(root, "completion_date"),
                "studyFirstSubmitDate": iso_date(
                    root.findtext("study_first_submitted") or root.findtext("firstreceived_date")
                ),
                "studyFirstSubmitQcDate": iso_date(root.findtext("study_first_submitted_qc")),
                "studyFirstPostDateStruct": _xml_date(root, "study_first_posted"),
                "resultsFirstSubmitDate": iso_date(
                    root.findtext("results_first_submitted") or root.findtext("firstreceived_results_date")
                ),
                "resultsFirstPostDateStruct": _xml_date(root, "results_first_posted"),
                "lastUpdateSubmitDate": iso_date(
                    root.findtext("last_update_submitted") or root.findtext("lastchanged_date")
                ),
                "lastUpdatePostDateStruct": _xml_date(root, "last_update_posted"),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": sponsor(lead) if lead is not None else None,
                "collaborators": [sponsor(c) for c in root.iterfind("sponsors/collaborator")],
            },
            "descriptionModule": {
                "briefSummary": textblock(root.findtext("brief_summary/textblock")),
                "detailedDescription": textblock(root.findtext("detailed_description/textblock")),
            },
            "conditionsModule": {"conditions": _all(root, "condition"), "keywords": _all(root, "keyword")},
            "designModule": {
                "studyType": v2_study_type(study_type),
                "patientRegistry": True if "patient registry" in (study_type or "").casefold() else None,
                "expandedAccessTypes": {
                    "individual": v2_bool(root.findtext("expanded_access_info/expanded_access_type_individual")),
                    "intermediate": v2_bool(root.findtext("expanded_access_info/expanded_access_type_intermediate")),
                    "treatment": v2_bool(root.findtext("expanded_access_info/expanded_access_type_treatment")),
                },
                "phases": v2_phases(x.text for x in root.iterfind("phase")),
                "designInfo": _xml_design(root),
                "enrollmentInfo": {
                    "count": _int(enrollment.text) if enrollment is not None else None,
                    "type": v2_date_type(enrollment.get("type")) if enrollment is not None else None,
                },
            },
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": _findtext(a, "arm_group_label"),
                        "type": _v2_enum(a.findtext("arm_group_type")),
                        "description": _findtext(a, "description"),
                        "interventionNames": arm_names.get(_findtext(a, "arm_group_label") or "", []),
                    }
                    for a in root.iterfind("arm_group")
                ],
                "interventions": interventions,
            },
            "outcomesModule": {
                "primaryOutcomes": outcomes("primary_outcome"),
                "secondaryOutcomes": outcomes("secondary_outcome"),
                "otherOutcomes": outcomes("other_outcome"),
            },
            "eligibilityModule": {
                "eligibilityCriteria": textblock(e.findtext("criteria/textblock")),
                "healthyVolunteers": v2_bool(e.findtext("healthy_volunteers")),
                "sex": v2_sex(e.findtext("gender")),
                "genderBased": v2_bool(e.findtext("gender_based")),
                "genderDescription": _findtext(e, "gender_description"),
                "minimumAge": v2_age(e.findtext("minimum_age")),
                "maximumAge": v2_age(e.findtext("maximum_age")),
                "studyPopulation": textblock(e.findtext("study_pop/textblock")),
                "samplingMethod": _v2_enum(e.findtext("sampling_method")),
            },
            "contactsLocationsModule": {
                "overallOfficials": [
                    {
                        "name": _findtext(o, "last_name"),
                        "affiliation": _findtext(o, "affiliation"),
                        "role": _v2_enum(o.findtext("role")),
                    }
                    for o in root.iterfind("overall_official")
                ],
                "locations": [_xml_location(loc) for loc in root.iterfind("location")],
            },
        },
        "derivedSection": {
            "conditionBrowseModule": {"meshes": [{"term": t} for t in _all(root, "condition_browse/mesh_term")]},
            "interventionBrowseModule": {"meshes": [{"term": t} for t in _all(root, "intervention_browse/mesh_term")]},
        },
        "hasResults": root.find("clinical_results") is not None,
    }
    return prune(v2)


def xml_to_v2(text: str) -> V2:
    root = parse_xml_text(text)
    if root.tag != "clinical_study":
        raise ValueError(f"expected <clinical_study>, found <{root.tag}>")
    return xml_study_to_v2(root)


# -- RSS search feeds ----------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_RSS_FIELD = re.compile(r"<b>\s*([^<]+?)\s*</b>\s*:?\s*(.*?)(?=<br\s*/?>|$)", re.S | re.I)


def _rss_date(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    try:
        return parsedate_to_datetime(text.strip()).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return iso_date(text)


def _rss_description(html: str | None) -> dict[str, Any]:
    """The fields the feed writes into an item's HTML description: conditions,
    interventions, sponsors, and the status as a final bold word."""
    out: dict[str, Any] = {}
    if not html:
        return out
    for label, value in _RSS_FIELD.findall(html):
        parts = [p.strip() for p in _TAG.sub("", value).split(";") if p.strip()]
        key = label.casefold()
        if key in ("condition", "conditions"):
            out["conditions"] = parts
        elif key in ("intervention", "interventions"):
            out["interventions"] = parts
        elif key in ("sponsor", "sponsors"):
            out["sponsors"] = parts
        elif not parts:
            out["status"] = label
    return out


def rss_item_to_v2(text: str) -> V2:
    """One ``<item>`` of the old website's RSS feed: a minimal record (id, title, first-posted date).

    The feed's item date is the study's first-posted date (checked against the
    legacy XML of the same studies); the last-update date is not given.
    """
    item = parse_xml_text(text)
    info = _rss_description(item.findtext("description"))
    interventions = [split_intervention(entry) for entry in info.get("interventions", [])]
    sponsors = info.get("sponsors", [])
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {"nctId": rss_item_id(item), "briefTitle": _findtext(item, "title")},
            "statusModule": {
                "overallStatus": v2_status(info.get("status")),
                "studyFirstPostDateStruct": date_struct(_rss_date(item.findtext("pubDate"))),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {"name": sponsors[0]} if sponsors else None,
                "collaborators": [{"name": s} for s in sponsors[1:]],
            },
            "conditionsModule": {"conditions": info.get("conditions", [])},
            "armsInterventionsModule": {"interventions": interventions},
        }
    }
    return prune(v2)


_RSS_LINK_QUERY = re.compile(r"(<link>[^<?]*)\?[^<]*(</link>)")


def rss_hash_view(text: str) -> str:
    """The search that found an item is written into its link; the study is the same whichever search."""
    return _RSS_LINK_QUERY.sub(r"\1\2", text)


# -- website CSV downloads -----------------------------------------------------------------------------


def _split(value: Any, sep: str = "|") -> list[str]:
    text = clean(value)
    if text is None:
        return []
    return [p for p in (clean(x) for x in text.split(sep)) if p]


def _fold(text: str) -> str:
    if text.isascii():
        return text.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


_SUBDIVISION_SUFFIX = re.compile(
    r"\s+(?:sheng|shi|zizhiqu|huizu zizhiqu|uygur zizhiqu|zhuangzu zizhiqu|sar|province|state|region|prefecture)$"
    r"|-(?:do|si|gwangyeoksi|teukbyeolsi|teukbyeoljachisi|teukbyeoljachido|ken|to|fu)$"
)


@lru_cache(maxsize=512)
def _subdivision_names(code: str) -> frozenset[str]:
    names: set[str] = set()
    for sub in pycountry.subdivisions.get(country_code=code) or ():
        name = _fold(str(sub.name))
        names.add(name)
        names.add(_SUBDIVISION_SUFFIX.sub("", name))
    return frozenset(names)


#: Words that mark a part as an institution or a department rather than a city.
_INSTITUTION = re.compile(
    r"hospital|h[ôo]pital|ospedal|universit|clinic|klinik|krankenhaus|praxis|center|centre|centro|"
    r"[ie]n?stitut|medical|medicine|school|college|dept|department|division|foundation|fondazione|"
    r"research|laborator|onkolog|oncolog|h[äa]matolog|hematolog|ematolog|disease|studien|unit|"
    r"service|servizio|abteilung|team|\bchu\b|\bchru\b|\bap-hp\b|\bgbr\b|site|[/&]",
    re.I,
)


def _looks_like_place(text: str) -> bool:
    return len(text.split()) <= 4 and not _INSTITUTION.search(text) and not any(c.isdigit() for c in text)


_POSTCODE = re.compile(r"^(?=[^,]*\d)[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")


def parse_location(text: str) -> dict[str, str | None]:
    """A website CSV location ("Facility, City, State, Zip, Country") split as far as the text allows.

    The parts are joined with ", " and facility names contain commas too, so
    the string is read from the end: the country is the last part (or the last
    two, for "Korea, Republic of", whose last part alone is no country), checked
    against the country table; a
    postcode is recognised by its digits; a state only where the part is a
    known subdivision of that country and what precedes it reads like a city.
    Whatever is left before the city is the facility.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out: dict[str, str | None] = {"facility": None, "city": None, "state": None, "zip": None, "country": None}
    code = None
    if parts and (code := country_code(parts[-1])):
        out["country"] = parts[-1]
        parts = parts[:-1]
    elif len(parts) >= 2 and (code := country_code(", ".join(parts[-2:]))):
        out["country"] = ", ".join(parts[-2:])
        parts = parts[:-2]
    else:
        out["facility"] = _text(text)
        return out
    if len(parts) >= 2 and _POSTCODE.match(parts[-1]):
        out["zip"] = parts.pop()
    if len(parts) >= 2 and _fold(parts[-1]) in _subdivision_names(code):
        city = parts[-2]
        is_state = _looks_like_place(city) and (len(parts) >= 3 or code == "US" or _fold(city) == _fold(parts[-1]))
        if is_state:
            out["state"] = parts.pop()
    if parts:
        out["city"] = parts.pop()
    if parts:
        out["facility"] = ", ".join(parts)
    return out


_AGE_RANGE = re.compile(
    r"^\s*(?:(?P<min>\d+\s+\w+?)\s+(?:to\s+(?P<max>\d+\s+\w+)|and older)|up to\s+(?P<upto>\d+\s+\w+))"
    r"\s*(?:\((?P<std>[^)]*)\))?\s*$",
    re.I,
)


def parse_age(text: Any) -> tuple[str | None, str | None, list[str]]:
    """(minimum, maximum, std ages) from "18 Years to 70 Years   (Adult, Older Adult)"
    (2018 site), "up to 18 Years (Child)", or a bare "Child, Adult, Older Adult"
    / "ADULT, OLDER_ADULT" (the current site)."""
    s = clean(text)
    if s is None:
        return None, None, []
    s = re.sub(r"\s+", " ", s)
    m = _AGE_RANGE.match(s)
    if m:
        std = [a for a in (_v2_enum(x) for x in (m["std"] or "").split(",")) if a]
        return m["min"], m["max"] or m["upto"], std
    return None, None, [a for a in (_v2_enum(x) for x in s.split(",")) if a]


def split_intervention(entry: str) -> dict[str, Any]:
    """ "Drug: SD-101" as type and name; an entry without a known type prefix is all name."""
    kind, sep, name = entry.partition(":")
    if sep and (t := v2_intervention_type(kind)) in INTERVENTION_TYPES and name.strip():
        return {"type": t, "name": name.strip()}
    return {"name": entry.strip()}


def _csv_interventions(value: Any) -> list[dict[str, Any]]:
    return [split_intervention(entry) for entry in _split(value)]


def _csv_ids(value: Any) -> tuple[str | None, list[dict[str, Any]]]:
    ids = _split(value)
    return (ids[0] if ids else None), [{"id": i} for i in ids[1:]]


def _csv_outcomes(value: Any) -> list[dict[str, Any]]:
    """Current-site outcome cells: "measure, time frame" items joined by "|"; the measure is kept whole."""
    return [{"measure": m} for m in _split(value)]


def _csv_sponsors(row: Mapping[str, Any]) -> tuple[list[str], list[str | None]]:
    """Sponsor names, lead first, and the class of each where the row allows knowing it.

    The current site gives the lead sponsor's class ("Funder Type").  The 2018
    site's "Funded Bys" lists the distinct classes of all sponsors in order of
    first appearance, lead first (checked against API records of the same
    trials): a single class is everyone's, and as many classes as sponsors
    means one each, in order; otherwise only the lead's is known.
    """
    if "Sponsor" in row:
        sponsors = _split(row.get("Sponsor"))[:1] + _split(row.get("Collaborators"))
        known = [v2_sponsor_class(c) for c in _split(row.get("Funder Type"))][:1]
    else:
        sponsors = _split(row.get("Sponsor/Collaborators"))
        classes = [v2_sponsor_class(c) for c in _split(row.get("Funded Bys"))]
        if len(classes) == len(sponsors):
            known = classes
        elif len(set(classes)) == 1:
            known = classes[:1] * len(sponsors)
        else:
            known = classes[:1]
    return sponsors, (known + [None] * len(sponsors))[: len(sponsors)]


def csv_row_to_v2(row: Mapping[str, Any]) -> V2:
    """A website CSV row, old (2018: "Title", "Status", "Funded Bys") or current layout
    ("Study Title", "Study Status", "Funder Type"), as a v2 study.

    What a row does not say stays out: the 2018 layout gives enrollment without
    its type, and lists primary and secondary outcomes in one undivided cell, so
    it has no primary outcomes of its own here (the raw row keeps them).
    """

    def col(*names: str) -> Any:
        for name in names:
            if name in row:
                return row[name]
        return None

    sponsors, classes = _csv_sponsors(row)
    min_age, max_age, std_ages = parse_age(col("Age"))
    org_id, secondary = _csv_ids(col("Other IDs"))
    design = col("Study Designs", "Study Design")
    primary = col("Primary Outcome Measures")
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {
                "nctId": clean(col("NCT Number")),
                "orgStudyIdInfo": {"id": org_id},
                "secondaryIdInfos": secondary,
                "briefTitle": _text(col("Study Title", "Title")),
                "acronym": clean(col("Acronym")),
            },
            "statusModule": {
                "overallStatus": v2_status(col("Study Status", "Status")),
                "startDateStruct": date_struct(col("Start Date")),
                "primaryCompletionDateStruct": date_struct(col("Primary Completion Date")),
                "completionDateStruct": date_struct(col("Completion Date")),
                "studyFirstPostDateStruct": date_struct(col("First Posted")),
                "resultsFirstPostDateStruct": date_struct(col("Results First Posted")),
                "lastUpdatePostDateStruct": date_struct(col("Last Update Posted")),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {"name": sponsors[0], "class": classes[0]} if sponsors else None,
                "collaborators": [{"name": s, "class": c} for s, c in zip(sponsors[1:], classes[1:], strict=True)],
            },
            "descriptionModule": {"briefSummary": _text(col("Brief Summary"))},
            "conditionsModule": {"conditions": _split(col("Conditions"))},
            "designModule": {
                "studyType": v2_study_type(col("Study Type")),
                "phases": v2_phases(_split(col("Phases"))),
                "designInfo": design_from_text(design, "|"),
                "enrollmentInfo": {"count": _int(col("Enrollment"))},
            },
            "armsInterventionsModule": {"interventions": _csv_interventions(col("Interventions"))},
            "outcomesModule": {
                "primaryOutcomes": _csv_outcomes(primary),
                "secondaryOutcomes": _csv_outcomes(col("Secondary Outcome Measures")),
                "otherOutcomes": _csv_outcomes(col("Other Outcome Measures")),
            },
            "eligibilityModule": {
                "sex": v2_sex(col("Sex", "Gender")),
                "minimumAge": min_age,
                "maximumAge": max_age,
                "stdAges": std_ages,
            },
            "contactsLocationsModule": {"locations": [parse_location(x) for x in _split(col("Locations"))]},
        },
        "hasResults": v2_bool(col("Study Results")),
    }
    return prune(v2)


_VOLATILE_CSV_COLUMNS = ("Rank",)


def csv_hash_view(text: str) -> str:
    """A row's rank is its place in one search's results, not part of the study."""
    row = orjson.loads(text)
    if isinstance(row, dict):
        for name in _VOLATILE_CSV_COLUMNS:
            row.pop(name, None)
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


_XML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SEARCH_RANK = re.compile(r"(<clinical_study)\s+rank=\"[^\"]*\"")
_WHITESPACE = re.compile(r"\s+")


def xml_hash_view(text: str) -> str:
    """What of a study's XML is content: not the download stamp, nor what else varies by download.

    A study saved from a search carries its rank in that search; the generator's
    comments changed over the years; and text blocks were re-wrapped at other
    widths.  None of that is the record, so a study downloaded again unchanged
    is "unchanged" however it was downloaded.
    """
    view = _XML_COMMENT.sub("", strip_download_header(text))
    view = _SEARCH_RANK.sub(r"\1", view, count=1)
    return _WHITESPACE.sub(" ", view)


# -- registration --------------------------------------------------------------------------------------


def _classic_trial(payload: Any) -> Trial:
    return normalise_ctgov(classic_to_v2(payload), "ctgov_classic")


def _xml_trial(payload: Any) -> Trial:
    return normalise_ctgov(xml_to_v2(payload), "ctgov_xml")


def _csv_trial(payload: Any) -> Trial:
    return normalise_ctgov(csv_row_to_v2(payload), "ctgov_csv")


def _rss_trial(payload: Any) -> Trial:
    return normalise_ctgov(rss_item_to_v2(payload), "ctgov_rss")


register_format(FormatSpec("ctgov_classic", "ctgov", 30, True, _classic_trial))
register_format(FormatSpec("ctgov_xml", "ctgov", 20, False, _xml_trial, xml_hash_view))
register_format(FormatSpec("ctgov_csv", "ctgov", 10, True, _csv_trial, csv_hash_view))
register_format(FormatSpec("ctgov_rss", "ctgov", 5, False, _rss_trial, rss_hash_view))
