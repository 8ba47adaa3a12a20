"""ClinicalTrials.gov records (API v2 layout) to normalised trials.

Every ClinicalTrials.gov format that cartatlas reads (classic API JSON, legacy
XML, website CSV) is first rewritten into the API v2 module layout by its
parser in ``cartatlas.sources.ctgov``; this one function then reads them all,
so a field is interpreted in exactly one place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import id_registry
from cartatlas.model import ArmGroup, Intervention, SecondaryId, Site, Sponsor, Trial
from cartatlas.normalise.countries import normalise_country
from cartatlas.normalise.phases import normalise_phases
from cartatlas.normalise.places import site_place, sponsor_country
from cartatlas.sources.ctgov.identity import _EMPTY, _date_of


def _s(value: Any) -> str | None:
    """A clean string or None: registries pad, and some write empty strings."""
    if value is None:
        return None
    if value.__class__ is not str:
        value = str(value)
    return value.strip() or None


def _strs(values: Any) -> list[str]:
    if not values:
        return []
    return [t for v in values if (t := _s(v)) is not None]


def _enum(value: Any) -> str | None:
    """Enum-like values in the API v2 spelling (RECRUITING, NOT_YET_RECRUITING...)."""
    if value is None:
        return None
    return _enum_text(value if value.__class__ is str else str(value))


@lru_cache(maxsize=4096)
def _enum_text(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    return text.upper().replace(",", "").replace(" ", "_").replace("-", "_")


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None or value.__class__ is float:
        return value
    try:
        return None if value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _secondary_ids(ident: dict[str, Any]) -> list[SecondaryId]:
    out: list[SecondaryId] = []
    seen: set[str] = set()
    for info in ident.get("secondaryIdInfos") or ():
        sid = _s(info.get("id"))
        if sid is None or sid in seen:
            continue
        seen.add(sid)
        out.append(
            SecondaryId(
                id=sid,
                type=_s(info.get("type")),
                domain=_s(info.get("domain")),
                registry=id_registry(sid),
            )
        )
    for alias in ident.get("nctIdAliases") or ():
        sid = _s(alias)
        if sid and sid not in seen:
            seen.add(sid)
            out.append(SecondaryId(id=sid, type="NCT_ALIAS", domain=None, registry="ctgov"))
    return out


def _sites(locations: Any) -> tuple[list[Site], list[str]]:
    # Hot loop (a trial can list hundreds of sites): kept flat on purpose.
    sites: list[Site] = []
    codes: list[str] = []
    for loc in locations or ():
        get = loc.get
        country, code = normalise_country(get("country"))
        geo = get("geoPoint") or _EMPTY
        facility, city, state = _s(get("facility")), _s(get("city")), _s(get("state"))
        region_code, region, city_normalised = site_place(code, state, city, facility)
        sites.append(
            {
                "facility": facility,
                "city": city,
                "state": state,
                "country": country,
                "country_code": code,
                "zip": _s(get("zip")),
                "status": _enum(get("status")),
                "lat": _float(geo.get("lat")),
                "lon": _float(geo.get("lon")),
                "region_code": region_code,
                "region": region,
                "city_normalised": city_normalised,
            }
        )
        if code and code not in codes:
            codes.append(code)
    return sites, codes


def _mesh_terms(derived: dict[str, Any]) -> list[str]:
    terms: list[str] = []
    for module in ("conditionBrowseModule", "interventionBrowseModule"):
        for mesh in (derived.get(module) or _EMPTY).get("meshes") or ():
            term = _s(mesh.get("term"))
            if term and term not in terms:
                terms.append(term)
    return terms


def normalise_ctgov(study: dict[str, Any], source_format: str = "ctgov_v2") -> Trial:
    """One API v2 study (``protocolSection`` ...) as a normalised trial.

    Raises ``ValueError`` when the study has no NCT id: such a record cannot be
    versioned or linked, and the importer reports it rather than guessing.
    """
    ps = study.get("protocolSection") or _EMPTY
    ident = ps.get("identificationModule") or _EMPTY
    nct = _s(ident.get("nctId"))
    if nct is None:
        raise ValueError("record has no NCT id (protocolSection.identificationModule.nctId)")
    status = ps.get("statusModule") or _EMPTY
    sponsors = ps.get("sponsorCollaboratorsModule") or _EMPTY
    lead = sponsors.get("leadSponsor") or _EMPTY
    desc = ps.get("descriptionModule") or _EMPTY
    cond = ps.get("conditionsModule") or _EMPTY
    design = ps.get("designModule") or _EMPTY
    enrol = design.get("enrollmentInfo") or _EMPTY
    arms = ps.get("armsInterventionsModule") or _EMPTY
    elig = ps.get("eligibilityModule") or _EMPTY
    outcomes = ps.get("outcomesModule") or _EMPTY
    sites, countries = _sites((ps.get("contactsLocationsModule") or _EMPTY).get("locations"))

    interventions = [
        Intervention(
            type=_enum(i.get("type")),
            name=_s(i.get("name")) or "",
            other_names=_strs(i.get("otherNames")),
            description=_s(i.get("description")),
        )
        for i in arms.get("interventions") or ()
    ]
    arm_groups = [
        ArmGroup(
            label=_s(a.get("label")) or "",
            type=_enum(a.get("type")),
            description=_s(a.get("description")),
            intervention_names=_strs(a.get("interventionNames")),
        )
        for a in arms.get("armGroups") or ()
    ]
    collaborators = [
        Sponsor(name=name, sponsor_class=_enum(c.get("class")))
        for c in sponsors.get("collaborators") or ()
        if (name := _s(c.get("name")))
    ]
    return Trial(
        trial_id=nct,
        registry="ctgov",
        nct_id=nct,
        org_study_id=_s((ident.get("orgStudyIdInfo") or _EMPTY).get("id")),
        secondary_ids=_secondary_ids(ident),
        brief_title=_s(ident.get("briefTitle")),
        official_title=_s(ident.get("officialTitle")),
        acronym=_s(ident.get("acronym")),
        overall_status=_enum(status.get("overallStatus")),
        study_type=_enum(design.get("studyType")),
        phases=normalise_phases(design.get("phases") or ()),
        first_submitted=parse_date(status.get("studyFirstSubmitDate")),
        first_posted=_date_of(status.get("studyFirstPostDateStruct")),
        start_date=_date_of(status.get("startDateStruct")),
        primary_completion_date=_date_of(status.get("primaryCompletionDateStruct")),
        completion_date=_date_of(status.get("completionDateStruct")),
        last_update_posted=_date_of(status.get("lastUpdatePostDateStruct")),
        lead_sponsor=_s(lead.get("name")),
        lead_sponsor_class=_enum(lead.get("class")),
        collaborators=collaborators,
        conditions=_strs(cond.get("conditions")),
        keywords=_strs(cond.get("keywords")),
        mesh_terms=_mesh_terms(study.get("derivedSection") or _EMPTY),
        interventions=interventions,
        arm_groups=arm_groups,
        brief_summary=_s(desc.get("briefSummary")),
        detailed_description=_s(desc.get("detailedDescription")),
        eligibility_criteria=_s(elig.get("eligibilityCriteria")),
        sex=_enum(elig.get("sex")),
        minimum_age=_s(elig.get("minimumAge")),
        maximum_age=_s(elig.get("maximumAge")),
        enrollment=_int(enrol.get("count")),
        enrollment_type=_enum(enrol.get("type")),
        primary_outcomes=_strs(o.get("measure") for o in outcomes.get("primaryOutcomes") or ()),
        sites=sites,
        countries=countries,
        has_results=study.get("hasResults") if isinstance(study.get("hasResults"), bool) else None,
        source_format=source_format,
        results_first_submitted=parse_date(status.get("resultsFirstSubmitDate")),
        results_first_posted=_date_of(status.get("resultsFirstPostDateStruct")),
        sponsor_country=sponsor_country(_s(lead.get("name"))),
    )


def screening_view(study: dict[str, Any]) -> Trial:
    """The fields of ``normalise_ctgov``'s trial that the screening reads, and nothing else (issue 16).

    Text (titles, interventions, arms, summaries, conditions, keywords, primary outcomes, eligibility),
    sponsors and study type, taken exactly as ``normalise_ctgov`` takes them (``tests/test_prefilter.py``
    compares the classifications of every sample study); dates, sites and ids are left out, which is
    most of the cost of normalising.  Raises ``ValueError`` like ``normalise_ctgov`` without an NCT id.
    """
    ps = study.get("protocolSection") or _EMPTY
    ident = ps.get("identificationModule") or _EMPTY
    nct = _s(ident.get("nctId"))
    if nct is None:
        raise ValueError("record has no NCT id (protocolSection.identificationModule.nctId)")
    sponsors = ps.get("sponsorCollaboratorsModule") or _EMPTY
    lead = sponsors.get("leadSponsor") or _EMPTY
    desc = ps.get("descriptionModule") or _EMPTY
    cond = ps.get("conditionsModule") or _EMPTY
    arms = ps.get("armsInterventionsModule") or _EMPTY
    outcomes = ps.get("outcomesModule") or _EMPTY
    view: dict[str, Any] = {
        "trial_id": nct,
        "registry": "ctgov",
        "brief_title": _s(ident.get("briefTitle")),
        "official_title": _s(ident.get("officialTitle")),
        "acronym": _s(ident.get("acronym")),
        "study_type": _enum((ps.get("designModule") or _EMPTY).get("studyType")),
        "lead_sponsor": _s(lead.get("name")),
        "collaborators": [{"name": name} for c in sponsors.get("collaborators") or () if (name := _s(c.get("name")))],
        "conditions": _strs(cond.get("conditions")),
        "keywords": _strs(cond.get("keywords")),
        "interventions": [
            {
                "name": _s(i.get("name")) or "",
                "other_names": _strs(i.get("otherNames")),
                "description": _s(i.get("description")),
            }
            for i in arms.get("interventions") or ()
        ],
        "arm_groups": [
            {"label": _s(a.get("label")) or "", "description": _s(a.get("description"))}
            for a in arms.get("armGroups") or ()
        ],
        "brief_summary": _s(desc.get("briefSummary")),
        "detailed_description": _s(desc.get("detailedDescription")),
        "eligibility_criteria": _s((ps.get("eligibilityModule") or _EMPTY).get("eligibilityCriteria")),
        "primary_outcomes": _strs(o.get("measure") for o in outcomes.get("primaryOutcomes") or ()),
    }
    return cast(Trial, view)
