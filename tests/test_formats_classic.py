"""The classic ClinicalTrials.gov API JSON (``FullStudiesResponse``), read and normalised field by field.

Expected values are read off the sample files themselves (classic_api/), in
the classic spelling, and checked in the API v2 spelling the normaliser gives.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import RawRecord, Reject
from cartatlas.normalise import format_spec
from cartatlas.normalise.ctgov_classic import classic_to_v2
from cartatlas.sources.base import Input
from cartatlas.sources.files import read_input, read_path
from tests.conftest import CTGOV

CLASSIC = CTGOV / "classic_api"


def _classic_study(path: Path, nct: str) -> dict[str, Any]:
    for full in json.loads(path.read_text())["FullStudiesResponse"]["FullStudies"]:
        if full["Study"]["ProtocolSection"]["IdentificationModule"]["NCTId"] == nct:
            return full["Study"]
    raise AssertionError(f"{nct} not in {path}")


def _records(path: Path) -> list[RawRecord]:
    items = list(read_path(path))
    assert not [i for i in items if isinstance(i, Reject)]
    return [i for i in items if isinstance(i, RawRecord)]


@pytest.fixture(scope="module")
def gucy2c_cart() -> RawRecord:
    """NCT04780529, a GUCY2C CAR-T trial: rank 19 of results_1.json."""
    (rec,) = [r for r in _records(CLASSIC / "results_1.json") if r.record_id == "NCT04780529"]
    return rec


@pytest.fixture(scope="module")
def arrow() -> RawRecord:
    """NCT02028676 (ARROW), a completed trial with results, as a one-study response."""
    (rec,) = _records(CLASSIC / "NCT02028676.json")
    return rec


def test_record_is_the_study_as_received(gucy2c_cart: RawRecord) -> None:
    assert gucy2c_cart.format == "ctgov_classic"
    assert gucy2c_cart.registry == "ctgov"
    assert gucy2c_cart.locator == "FullStudies[18]"
    assert gucy2c_cart.payload == _classic_study(CLASSIC / "results_1.json", "NCT04780529")
    # "LastUpdatePostDate": "March 3, 2021"
    assert gucy2c_cart.record_updated == dt.date(2021, 3, 3)


def test_cart_trial_fields(gucy2c_cart: RawRecord) -> None:
    t = format_spec("ctgov_classic").to_trial(gucy2c_cart.payload)
    assert t["trial_id"] == t["nct_id"] == "NCT04780529"
    assert t["source_format"] == "ctgov_classic"
    assert t["org_study_id"] == "ICT-GC"
    assert t["brief_title"] == "CART Therapy in Digestive System Tumors"
    assert t["official_title"] == (
        "Chimeric Antigen Receptor T Cells (CART) Therapy in GUCY2C Positive Digestive System Tumors"
    )
    assert t["acronym"] is None
    assert t["overall_status"] == "NOT_YET_RECRUITING"  # "Not yet recruiting"
    assert t["study_type"] == "INTERVENTIONAL"
    assert t["phases"] == ["NA"]  # "Not Applicable"
    assert t["first_submitted"] == dt.date(2021, 2, 28)
    assert t["first_posted"] == dt.date(2021, 3, 3)
    assert t["start_date"] == dt.date(2021, 3, 1)  # "March 2021"
    assert t["primary_completion_date"] == dt.date(2022, 4, 1)
    assert t["completion_date"] == dt.date(2026, 3, 1)
    assert t["last_update_posted"] == dt.date(2021, 3, 3)
    assert t["lead_sponsor"] == "Innovative Cellular Therapeutics Co., Ltd."
    assert t["lead_sponsor_class"] == "OTHER"
    assert t["collaborators"] == [{"name": "Anhui Provincial Cancer Hospital", "sponsor_class": "OTHER"}]
    assert t["conditions"] == ["Malignant Neoplasms of Digestive Organs"]
    assert t["keywords"] == []
    assert t["mesh_terms"] == ["Neoplasms", "Digestive System Neoplasms", "Gastrointestinal Neoplasms"]
    assert t["interventions"] == [
        {
            "type": "BIOLOGICAL",
            "name": "gucy2c cart cells",
            "other_names": [],
            "description": "Patients with advanced malignant gastrointestinal tumors were injected with CART cells",
        }
    ]
    (arm,) = t["arm_groups"]
    assert arm["label"] == "Patients with late malignant digestive tract tumor"
    assert arm["type"] == "EXPERIMENTAL"
    assert arm["intervention_names"] == ["Biological: gucy2c cart cells"]
    assert t["eligibility_criteria"] is not None and t["eligibility_criteria"].startswith("Inclusion Criteria:")
    assert t["sex"] == "ALL"
    assert (t["minimum_age"], t["maximum_age"]) == ("18 Years", "70 Years")
    assert (t["enrollment"], t["enrollment_type"]) == (20, "ESTIMATED")  # "Anticipated"
    assert t["primary_outcomes"] == [
        "Number of participants with CAR-T treatment-related adverse events as assessed by CTCAE v4.03 "
        "[ Time Frame: 24 months ]"
    ]
    (site,) = t["sites"]
    assert (site["facility"], site["city"], site["state"]) == ("Anhui provincial cancer hospital", "Hefei", "Anhui")
    assert (site["country"], site["country_code"]) == ("China", "CN")
    assert t["countries"] == ["CN"]
    assert t["has_results"] is False


def test_v2_layout_keeps_precision_and_v2_enums(gucy2c_cart: RawRecord) -> None:
    ps = classic_to_v2(gucy2c_cart.payload)["protocolSection"]
    status = ps["statusModule"]
    assert status["startDateStruct"] == {"date": "2021-03", "type": "ESTIMATED"}
    assert status["studyFirstPostDateStruct"] == {"date": "2021-03-03", "type": "ESTIMATED"}  # "Estimate"
    assert status["studyFirstSubmitDate"] == "2021-02-28"
    assert status["statusVerifiedDate"] == "2021-02"
    design = ps["designModule"]
    assert design["designInfo"] == {
        "allocation": "NA",
        "interventionModel": "SINGLE_GROUP",
        "primaryPurpose": "TREATMENT",
        "maskingInfo": {"masking": "NONE"},
    }
    assert ps["eligibilityModule"]["stdAges"] == ["ADULT", "OLDER_ADULT"]
    assert ps["eligibilityModule"]["healthyVolunteers"] is False
    assert ps["contactsLocationsModule"]["overallOfficials"] == [
        {"name": "Yifu he", "affiliation": "Anhui Provincial Cancer Hospital", "role": "PRINCIPAL_INVESTIGATOR"}
    ]


def test_trial_with_results_secondary_ids_and_classes(arrow: RawRecord) -> None:
    t = format_spec("ctgov_classic").to_trial(arrow.payload)
    assert t["acronym"] == "ARROW"
    assert t["overall_status"] == "COMPLETED"
    assert t["phases"] == ["PHASE4"]
    assert t["has_results"] is True
    assert t["lead_sponsor"] == "Medical Research Council"
    assert t["lead_sponsor_class"] == "OTHER_GOV"
    assert [c["name"] for c in t["collaborators"]] == [
        "Department for International Development, United Kingdom",
        "ViiV Healthcare",
        "GlaxoSmithKline",
    ]
    assert [c["sponsor_class"] for c in t["collaborators"]] == ["OTHER_GOV", "INDUSTRY", "INDUSTRY"]
    # "Registry Identifier" and "Other Grant/Funding Number" in the classic spelling.
    assert [(s["id"], s["type"], s["domain"]) for s in t["secondary_ids"]] == [
        ("24791884", "REGISTRY", "ISRCTN"),
        ("G0300400", "OTHER_GRANT", "UK Medical Research Council"),
    ]
    assert (t["enrollment"], t["enrollment_type"]) == (1206, "ACTUAL")
    assert (t["minimum_age"], t["maximum_age"]) == ("3 Months", "17 Years")
    assert len(t["sites"]) == 4
    assert t["countries"] == ["UG", "ZW"]
    assert arrow.record_updated == dt.date(2014, 6, 6)


def test_nct_aliases_become_secondary_ids(gucy2c_cart: RawRecord) -> None:
    study = copy.deepcopy(gucy2c_cart.payload)
    study["ProtocolSection"]["IdentificationModule"]["NCTIdAliasList"] = {"NCTIdAlias": ["NCT04780000"]}
    t = format_spec("ctgov_classic").to_trial(study)
    assert {"id": "NCT04780000", "type": "NCT_ALIAS", "domain": None, "registry": "ctgov"} in t["secondary_ids"]


def test_every_classic_sample_normalises(atlas: cartatlas.Atlas) -> None:
    stats = atlas.import_files([CLASSIC / "results_1.json", CLASSIC / "covid-19-search.json"])
    assert (stats.seen, stats.rejected) == (200, 0)
    enums = atlas.sql(
        "SELECT list(DISTINCT overall_status) AS status, list(DISTINCT study_type) AS types, "
        "list(DISTINCT sex) AS sexes FROM trials"
    ).iloc[0]
    allowed_status = {
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
        "ENROLLING_BY_INVITATION",
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "SUSPENDED",
        "TERMINATED",
        "WITHDRAWN",
        "UNKNOWN",
    }
    assert set(enums["status"]) <= allowed_status
    assert set(enums["types"]) <= {"INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"}
    # One observational study (NCT05384886) gives no Gender at all.
    assert set(enums["sexes"]) == {"ALL", "FEMALE", "MALE", None}


# -- broken input --------------------------------------------------------------------------------------


def _response(studies: list[Any]) -> dict[str, Any]:
    return {"FullStudiesResponse": {"APIVrs": "1.01.05", "NStudiesReturned": len(studies), "FullStudies": studies}}


def test_study_without_id_is_rejected_by_place(tmp_path: Path, gucy2c_cart: RawRecord) -> None:
    nameless = copy.deepcopy(gucy2c_cart.payload)
    del nameless["ProtocolSection"]["IdentificationModule"]["NCTId"]
    path = tmp_path / "search.json"
    path.write_bytes(
        orjson.dumps(_response([{"Rank": 1, "Study": gucy2c_cart.payload}, {"Rank": 2, "Study": nameless}]))
    )
    items = list(read_path(path))
    assert [type(i).__name__ for i in items] == ["RawRecord", "Reject"]
    reject = items[1]
    assert isinstance(reject, Reject)
    assert reject.source == str(path) and reject.locator == "FullStudies[1]"
    assert "no NCT id" in reject.problem


def test_single_study_file_named_for_another_id_is_rejected(tmp_path: Path, gucy2c_cart: RawRecord) -> None:
    path = tmp_path / "NCT01234567.json"
    path.write_bytes(orjson.dumps(_response([{"Rank": 1, "Study": gucy2c_cart.payload}])))
    (reject,) = read_path(path)
    assert isinstance(reject, Reject)
    assert "NCT01234567" in reject.problem and "NCT04780529" in reject.problem
    assert reject.record_id == "NCT04780529"


def test_empty_response_is_no_records(tmp_path: Path) -> None:
    path = tmp_path / "nothing.json"
    path.write_text('{"FullStudiesResponse": {"APIVrs": "1.01.05", "NStudiesFound": 0}}')
    assert list(read_path(path)) == []


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_classic_json_is_a_reject_naming_the_input(cut: int) -> None:
    data = (CLASSIC / "NCT04780763.json").read_bytes()
    part = data[: cut * len(data) // 10_000]
    items = list(read_input(Input.from_bytes("cut.json", part), strict=True))
    if len(part) == len(data):
        assert [type(i) for i in items] == [RawRecord]
        return
    assert len(items) == 1
    assert isinstance(items[0], Reject) and items[0].source == "cut.json" and items[0].problem


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
_CLASSIC_KEYS = st.sampled_from(
    ["ProtocolSection", "IdentificationModule", "NCTId", "StatusModule", "LocationList", "Location", "Study"]
)


@settings(max_examples=60, deadline=None)
@given(
    study=st.dictionaries(_CLASSIC_KEYS, _JSON | st.dictionaries(_CLASSIC_KEYS, _JSON, max_size=4), max_size=4),
)
def test_malformed_classic_studies_never_raise(study: dict[str, Any]) -> None:
    """Garbage shaped like a classic response: each study is a record or a Reject, never an exception."""
    data = orjson.dumps(_response([{"Rank": 1, "Study": study}, {"Rank": 2, "Study": study}]))
    for item in read_input(Input.from_bytes("odd.json", data)):
        if isinstance(item, Reject):
            assert item.source == "odd.json" and item.locator.startswith("FullStudies[") and item.problem
        else:
            assert isinstance(item, RawRecord) and item.record_id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ident=st.dictionaries(st.sampled_from(["NCTId", "BriefTitle", "NCTIdAliasList"]), _JSON, max_size=3),
    status=_JSON,
)
def test_odd_classic_records_store_whole_or_not_at_all(
    atlas: cartatlas.Atlas, tmp_path: Path, ident: dict[str, Any], status: Any
) -> None:
    study = {"ProtocolSection": {"IdentificationModule": ident, "StatusModule": status}}
    path = tmp_path / "odd.json"
    path.write_bytes(orjson.dumps(_response([{"Rank": 1, "Study": study}])))
    stats = atlas.import_files([path])
    # One study in, so one record read or one Reject (a record the normaliser refuses is both).
    assert stats.seen == 1 or stats.rejected == 1
    for reject in stats.rejects:
        assert str(path) in str(reject)
    # Whatever was stored has its normalised row; nothing was stored half.
    missing = atlas.sql(
        "SELECT count(*) AS n FROM raw_records r LEFT JOIN trials t "
        "ON t.registry = r.registry AND t.trial_id = r.record_id WHERE t.trial_id IS NULL"
    )["n"][0]
    assert missing == 0
