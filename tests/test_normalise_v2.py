"""Normalisation of API v2 records, checked field by field against what the real record says."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cartatlas.normalise.ctgov import normalise_ctgov
from tests.conftest import CTGOV


def _study(path: Path, nct: str) -> dict[str, Any]:
    for study in json.loads(path.read_text()):
        if study["protocolSection"]["identificationModule"]["nctId"] == nct:
            return study  # type: ignore[no-any-return]
    raise AssertionError(f"{nct} not in {path}")


@pytest.fixture(scope="module")
def lbs007() -> dict[str, Any]:
    return _study(CTGOV / "api_v2" / "leukemia_query_100.json", "NCT05756322")


def test_identity_titles_status(lbs007: dict[str, Any]) -> None:
    t = normalise_ctgov(lbs007)
    assert t["trial_id"] == t["nct_id"] == "NCT05756322"
    assert t["registry"] == "ctgov"
    assert t["org_study_id"] == "LBS-007-CT01"
    assert t["brief_title"] == (
        "The Safety and Tolerability of LBS-007 in Patients With Relapsed or Resistant Acute Leukaemias"
    )
    assert t["official_title"] is not None and t["official_title"].startswith("A Phase 1/2, Open-label")
    assert t["overall_status"] == "RECRUITING"
    assert t["study_type"] == "INTERVENTIONAL"
    assert t["phases"] == ["PHASE1", "PHASE2"]


def test_dates_are_dates(lbs007: dict[str, Any]) -> None:
    t = normalise_ctgov(lbs007)
    assert t["first_submitted"] == dt.date(2022, 10, 20)
    assert t["first_posted"] == dt.date(2023, 3, 6)
    assert t["start_date"] == dt.date(2023, 7, 20)
    assert t["primary_completion_date"] == dt.date(2025, 12, 15)
    assert t["completion_date"] == dt.date(2025, 12, 15)
    assert t["last_update_posted"] == dt.date(2023, 10, 23)


def test_sponsors_conditions_interventions(lbs007: dict[str, Any]) -> None:
    t = normalise_ctgov(lbs007)
    assert t["lead_sponsor"] == "Lin BioScience, Inc"
    assert t["lead_sponsor_class"] == "INDUSTRY"
    assert t["collaborators"] == [{"name": "Lin BioScience Pty Ltd", "sponsor_class": "UNKNOWN"}]
    assert t["conditions"] == ["Relapsed or Resistant Acute Leukaemias"]
    assert t["keywords"] == ["CDC7 inhibitor"]
    assert t["mesh_terms"][:2] == ["Leukemia", "Acute Disease"]
    assert t["interventions"] == [{"type": "DRUG", "name": "LBS-007", "other_names": [], "description": "Open Label."}]
    assert t["arm_groups"][0]["label"] == "Dose Finding and Expansion Phase"
    assert t["arm_groups"][0]["intervention_names"] == ["Drug: LBS-007"]
    assert t["enrollment"] == 60 and t["enrollment_type"] == "ESTIMATED"


def test_sites_keep_taiwan_apart_from_china(lbs007: dict[str, Any]) -> None:
    t = normalise_ctgov(lbs007)
    assert len(t["sites"]) == 5
    first = t["sites"][0]
    assert first["facility"] == "Wollongong Private Hospital"
    assert first["city"] == "Wollongong" and first["state"] == "New South Wales"
    assert first["country"] == "Australia" and first["country_code"] == "AU"
    assert first["status"] == "RECRUITING"
    assert first["lat"] == pytest.approx(-34.424) and first["lon"] == pytest.approx(150.89345)
    taiwan = next(s for s in t["sites"] if s["city"] == "Taipei")
    assert taiwan["country"] == "Taiwan" and taiwan["country_code"] == "TW"
    assert t["countries"] == ["AU", "TW"]


def test_every_sample_study_normalises_consistently() -> None:
    """For every real v2 record: ids, counts of lists and dates agree with the raw JSON."""
    n = 0
    for path in sorted((CTGOV / "api_v2").glob("*.json")):
        for study in json.loads(path.read_text()):
            ps = study["protocolSection"]
            t = normalise_ctgov(study)
            n += 1
            assert t["nct_id"] == ps["identificationModule"]["nctId"]
            arms = ps.get("armsInterventionsModule", {})
            assert len(t["interventions"]) == len(arms.get("interventions", []))
            assert len(t["arm_groups"]) == len(arms.get("armGroups", []))
            locs = ps.get("contactsLocationsModule", {}).get("locations", [])
            assert len(t["sites"]) == len(locs)
            assert all(s["country_code"] is not None for s in t["sites"] if s["country"])
            posted = ps["statusModule"].get("studyFirstPostDateStruct", {}).get("date")
            assert (t["first_posted"].isoformat() if t["first_posted"] else None) == posted
            assert set(t["phases"]) == set(ps.get("designModule", {}).get("phases", [])) - (
                {"NA"} if len(ps.get("designModule", {}).get("phases", [])) > 1 else set()
            )
    assert n == 161


def test_missing_nct_id_is_an_error() -> None:
    with pytest.raises(ValueError, match="no NCT id"):
        normalise_ctgov({"protocolSection": {"identificationModule": {"briefTitle": "x"}}})
