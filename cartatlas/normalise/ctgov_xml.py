"""ClinicalTrials.gov's legacy per-study XML (AllPublicXML, ``<clinical_study>``) in the API v2 layout."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from lxml import etree

from cartatlas.model import Trial
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.normalise.ctgov_v2_values import (
    V2,
    date_struct,
    design_from_text,
    design_info,
    findtext,
    iso_date,
    parse_xml_text,
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
from cartatlas.normalise.formats import FormatSpec, register_format, strip_download_header
from cartatlas.sources.ctgov.identity import (
    _all,
    _text,
    clean,
    xml_nct_aliases,
    xml_nct_id,
)

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


def _arm_intervention_name(kind: Any, name: Any) -> str | None:
    """API v2 names an arm's interventions "Drug: LBS-007", with the type as displayed."""
    n = _text(name)
    if n is None:
        return None
    k = clean(kind)
    return f"{k}: {n}" if k else n


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
                "measure": findtext(o, "measure"),
                "description": findtext(o, "description"),
                "timeFrame": findtext(o, "time_frame"),
            }
            for o in root.iterfind(tag)
        ]

    def sponsor(el: etree._Element) -> dict[str, Any]:
        return {"name": findtext(el, "agency"), "class": v2_sponsor_class(el.findtext("agency_class"))}

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
                "orgStudyIdInfo": {"id": findtext(root, "id_info/org_study_id")},
                "secondaryIdInfos": [{"id": sid} for sid in _all(root, "id_info/secondary_id")],
                "briefTitle": findtext(root, "brief_title"),
                "officialTitle": findtext(root, "official_title"),
                "acronym": findtext(root, "acronym"),
            },
            "statusModule": {
                "statusVerifiedDate": iso_date(root.findtext("verification_date")),
                "overallStatus": v2_status(root.findtext("overall_status")),
                "lastKnownStatus": v2_status(root.findtext("last_known_status")),
                "whyStopped": findtext(root, "why_stopped"),
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
                    "count": v2_int(enrollment.text) if enrollment is not None else None,
                    "type": v2_date_type(enrollment.get("type")) if enrollment is not None else None,
                },
            },
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": findtext(a, "arm_group_label"),
                        "type": v2_enum(a.findtext("arm_group_type")),
                        "description": findtext(a, "description"),
                        "interventionNames": arm_names.get(findtext(a, "arm_group_label") or "", []),
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
                "genderDescription": findtext(e, "gender_description"),
                "minimumAge": v2_age(e.findtext("minimum_age")),
                "maximumAge": v2_age(e.findtext("maximum_age")),
                "studyPopulation": textblock(e.findtext("study_pop/textblock")),
                "samplingMethod": v2_enum(e.findtext("sampling_method")),
            },
            "contactsLocationsModule": {
                "overallOfficials": [
                    {
                        "name": findtext(o, "last_name"),
                        "affiliation": findtext(o, "affiliation"),
                        "role": v2_enum(o.findtext("role")),
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


def _xml_trial(payload: Any) -> Trial:
    return normalise_ctgov(xml_to_v2(payload), "ctgov_xml")


register_format(FormatSpec("ctgov_xml", "ctgov", 20, False, _xml_trial, xml_hash_view))
