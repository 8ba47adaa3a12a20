"""ClinicalTrials.gov's classic API JSON (``FullStudiesResponse`` study objects) in the API v2 layout."""

from __future__ import annotations

from typing import Any

from cartatlas.model import Trial
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.normalise.ctgov_v2_values import (
    V2,
    date_struct,
    design_info,
    iso_date,
    prune,
    v2_age,
    v2_bool,
    v2_date_type,
    v2_enum,
    v2_int,
    v2_intervention_type,
    v2_phases,
    v2_sex,
    v2_sponsor_class,
    v2_status,
    v2_study_type,
)
from cartatlas.normalise.formats import FormatSpec, register_format
from cartatlas.sources.ctgov.identity import (
    _get,
    _items,
    _text,
    clean,
)

#: Old secondary id types the rule (upper case, "_" for the rest) would get wrong.
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
                    "relevance": v2_enum(x.get(f"{prefix}BrowseLeafRelevance")),
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
                        "type": v2_enum(s.get("SecondaryIdType"), _SECONDARY_ID_TYPE),
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
                    "count": v2_int(enrol.get("EnrollmentCount")),
                    "type": v2_date_type(enrol.get("EnrollmentType")),
                },
            },
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": _text(a.get("ArmGroupLabel")),
                        "type": v2_enum(a.get("ArmGroupType")),
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
                "stdAges": [v2_enum(a) for a in _items(elig, "StdAgeList", "StdAge")],
                "studyPopulation": _text(elig.get("StudyPopulation")),
                "samplingMethod": v2_enum(elig.get("SamplingMethod")),
            },
            "contactsLocationsModule": {
                "overallOfficials": [
                    {
                        "name": _text(o.get("OverallOfficialName")),
                        "affiliation": _text(o.get("OverallOfficialAffiliation")),
                        "role": v2_enum(o.get("OverallOfficialRole")),
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


def _classic_trial(payload: Any) -> Trial:
    return normalise_ctgov(classic_to_v2(payload), "ctgov_classic")


register_format(FormatSpec("ctgov_classic", "ctgov", 30, True, _classic_trial))
