"""Website CSV downloads (2018 layout and the current one), read and normalised field by field.

Expected values are read off the rows of website_csv/ with the csv module.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import RawRecord, Reject, Trial
from cartatlas.normalise import format_spec
from cartatlas.normalise.ctgov_csv import csv_row_to_v2, parse_age, parse_location
from cartatlas.sources.base import Input
from cartatlas.sources.files import read_input, read_path
from tests.conftest import CTGOV

SITE_2018 = CTGOV / "website_csv" / "legacy_site_b_cell_query_2018.csv"
EXPORT_A = CTGOV / "website_csv" / "new_site_export_a.csv"
EXPORT_B = CTGOV / "website_csv" / "new_site_export_b.csv"


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def records_2018() -> dict[str, RawRecord]:
    items = list(read_path(SITE_2018))
    assert not [i for i in items if isinstance(i, Reject)]
    return {i.record_id: i for i in items if isinstance(i, RawRecord)}


def _trial(rec: RawRecord) -> Trial:
    return format_spec(rec.format).to_trial(rec.payload)


def test_rows_are_stored_by_header_name(records_2018: dict[str, RawRecord]) -> None:
    header, first = _rows(SITE_2018)[:2]
    rec = records_2018["NCT02266147"]
    assert rec.format == "ctgov_csv" and rec.locator == "line 2"
    assert rec.payload == dict(zip(header, first, strict=True))
    assert rec.record_updated == dt.date(2018, 3, 1)  # "Last Update Posted": "March 1, 2018"
    assert len(records_2018) == len(_rows(SITE_2018)) - 1


def test_2018_row_fields(records_2018: dict[str, RawRecord]) -> None:
    t = _trial(records_2018["NCT02266147"])
    assert t["source_format"] == "ctgov_csv"
    assert t["brief_title"] == (
        "Study of SD-101 in Combination With Localized Low-dose Radiation in Patients With Untreated "
        "Low-grade B-cell Lymphoma"
    )
    assert t["org_study_id"] == "DV3-LYM-01"
    assert t["overall_status"] == "COMPLETED"
    assert t["study_type"] == "INTERVENTIONAL"
    assert t["phases"] == ["PHASE1", "PHASE2"]  # "Phase 1|Phase 2"
    assert t["first_posted"] == dt.date(2014, 10, 16)  # "First Posted": "October 16, 2014"
    assert t["start_date"] == dt.date(2014, 10, 1)
    assert t["primary_completion_date"] == t["completion_date"] == dt.date(2017, 4, 1)
    assert t["last_update_posted"] == dt.date(2018, 3, 1)
    assert (t["lead_sponsor"], t["lead_sponsor_class"]) == ("Dynavax Technologies Corporation", "INDUSTRY")
    assert t["conditions"] == ["B-cell Lymphoma"]
    assert [(i["type"], i["name"]) for i in t["interventions"]] == [
        ("DRUG", "SD-101"),
        ("RADIATION", "Radiation therapy"),
    ]
    assert t["sex"] == "ALL"
    assert (t["minimum_age"], t["maximum_age"]) == ("18 Years", None)  # "18 Years and older  (Adult, Older Adult)"
    assert (t["enrollment"], t["enrollment_type"]) == (29, None)  # the 2018 export gives no type
    assert t["has_results"] is False
    assert [(s["facility"], s["city"], s["state"], s["country_code"]) for s in t["sites"]] == [
        ("Stanford University School of Medicine", "Stanford", "California", "US"),
        ("Northwestern University", "Chicago", "Illinois", "US"),
        ("University of Iowa Hospitals and Clinics", "Iowa City", "Iowa", "US"),
        ("Washington University School of Medicine", "Saint Louis", "Missouri", "US"),
        ("University of Rochester Medical Center", "Rochester", "New York", "US"),
    ]
    assert t["countries"] == ["US"]


def test_2018_row_sponsor_classes_and_european_sites(records_2018: dict[str, RawRecord]) -> None:
    t = _trial(records_2018["NCT02055924"])
    assert t["acronym"] == "BIBLOS"
    assert t["first_posted"] == dt.date(2014, 2, 5)
    # "Sponsor/Collaborators" and "Funded Bys": "Other|Industry", one class each, lead first.
    assert (t["lead_sponsor"], t["lead_sponsor_class"]) == ("The Lymphoma Academic Research Organisation", "OTHER")
    assert t["collaborators"] == [{"name": "Janssen Pharmaceutica N.V., Belgium", "sponsor_class": "INDUSTRY"}]
    assert (t["minimum_age"], t["maximum_age"]) == ("18 Years", "70 Years")
    assert len(t["sites"]) == 15
    assert t["countries"] == ["BE", "FR"]
    assert t["sites"][1] == {
        "facility": "CHU de Liège",
        "city": "Liège",
        "state": None,
        "country": "Belgium",
        "country_code": "BE",
        "zip": None,
        "status": None,
        "lat": None,
        "lon": None,
        # Belgium's first-level subdivisions are its three regions; a city names none of them.
        "region_code": None,
        "region": None,
        "city_normalised": "Liège",
    }


def test_2018_countries_with_commas_and_results(records_2018: dict[str, RawRecord]) -> None:
    korea = _trial(records_2018["NCT02433795"])
    assert korea["countries"] == ["KR"]  # "Korea, Republic of"
    first = korea["sites"][0]
    assert (first["facility"], first["city"], first["state"]) == (
        "Chonbuk National University Hospital",
        "Jeonju",
        "Jeollabuk-do",
    )
    with_results = _trial(records_2018["NCT02531308"])
    assert with_results["has_results"] is True  # "Has Results"
    expanded = _trial(records_2018["NCT03153462"])
    assert (expanded["study_type"], expanded["overall_status"]) == ("EXPANDED_ACCESS", "AVAILABLE")


def test_every_2018_location_has_a_known_country(records_2018: dict[str, RawRecord]) -> None:
    """Checked against the country table: the only site without one names no place at all."""
    unknown = []
    for rec in records_2018.values():
        for site in _trial(rec)["sites"]:
            if site["country_code"] is None:
                unknown.append(site["facility"])
    assert unknown == ["Pfizer Investigational Site"]


def test_current_layout_fields() -> None:
    items = [i for i in read_path(EXPORT_B) if isinstance(i, RawRecord)]
    assert len(items) == len(_rows(EXPORT_B)) - 1
    by_id = {i.record_id: i for i in items}
    t = _trial(by_id["NCT07099989"])
    assert t["brief_title"] == "Pharmacokinetics of GATE-251 in Fasted or Fed State"
    assert t["overall_status"] == "RECRUITING"
    assert t["study_type"] == "INTERVENTIONAL"
    assert t["start_date"] == dt.date(2025, 7, 24)
    assert (t["lead_sponsor"], t["lead_sponsor_class"]) == ("Gate Neurosciences, Inc", None)
    assert t["collaborators"] == [{"name": "Dr. Vince Clinical Research", "sponsor_class": None}]
    assert [(i["type"], i["name"]) for i in t["interventions"]] == [
        ("DRUG", "Zelquistinel 3 mg"),
        ("DRUG", "Zelquistinel 10 mg"),
    ]
    assert t["sex"] == "ALL"
    v2 = csv_row_to_v2(by_id["NCT07100054"].payload)["protocolSection"]
    assert v2["statusModule"]["overallStatus"] == "NOT_YET_RECRUITING"
    assert v2["statusModule"]["startDateStruct"] == {"date": "2025-09"}
    assert v2["eligibilityModule"] == {"sex": "FEMALE", "stdAges": ["ADULT", "OLDER_ADULT"]}
    assert by_id["NCT07100054"].record_updated is None  # these exports carry no update date


def test_two_exports_of_the_same_studies_agree(atlas: cartatlas.Atlas) -> None:
    a = {i.record_id: _trial(i) for i in read_path(EXPORT_A) if isinstance(i, RawRecord)}
    b = {i.record_id: _trial(i) for i in read_path(EXPORT_B) if isinstance(i, RawRecord)}
    assert a.keys() == b.keys()
    for nct in a:
        for field in ("brief_title", "overall_status", "study_type", "conditions", "interventions", "sex"):
            assert a[nct][field] == b[nct][field], (nct, field)
    stats = atlas.import_files([EXPORT_A, EXPORT_B])
    # Export b has two more columns than a, so each of its rows is a new version.
    assert (stats.new, stats.changed, stats.rejected) == (100, 100, 0)


def test_same_study_as_csv_and_api_v2(records_2018: dict[str, RawRecord]) -> None:
    """NCT02650414 (CART22) is in the 2018 CSV and in the API v2 sample (updated 2023)."""
    import json

    (study,) = [
        s
        for s in json.loads((CTGOV / "api_v2" / "leukemia_query_100.json").read_text())
        if s["protocolSection"]["identificationModule"]["nctId"] == "NCT02650414"
    ]
    v2 = format_spec("ctgov_v2").to_trial(study)
    row = _trial(records_2018["NCT02650414"])
    same: tuple[str, ...] = (
        "org_study_id",
        "brief_title",
        "overall_status",
        "study_type",
        "phases",
        "first_posted",
        "lead_sponsor",
    )
    same += ("lead_sponsor_class", "collaborators", "conditions", "interventions", "sex", "minimum_age", "countries")
    for field in same:
        assert row[field] == v2[field], field  # type: ignore[literal-required]
    assert [s["id"] for s in row["secondary_ids"]] == [s["id"] for s in v2["secondary_ids"]]
    assert [(s["facility"], s["city"], s["state"]) for s in row["sites"]] == [
        (s["facility"], s["city"], s["state"]) for s in v2["sites"]
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Boston, Massachusetts, United States", (None, "Boston", "Massachusetts", None, "United States")),
        ("Leicester, United Kingdom", (None, "Leicester", None, None, "United Kingdom")),
        (
            "Stanford Cancer Institute, Palo Alto, California, 94304, United States",
            ("Stanford Cancer Institute", "Palo Alto", "California", "94304", "United States"),
        ),
        ("Hôpital Saint Louis, Paris, France", ("Hôpital Saint Louis", "Paris", None, None, "France")),
        (
            "Tianjin Hematonosis Hospital, Tianjin, Tianjin, China",
            ("Tianjin Hematonosis Hospital", "Tianjin", "Tianjin", None, "China"),
        ),
        ("Pfizer Investigational Site", ("Pfizer Investigational Site", None, None, None, None)),
    ],
)
def test_location_parsing(text: str, expected: tuple[str | None, ...]) -> None:
    got = parse_location(text)
    assert (got["facility"], got["city"], got["state"], got["zip"], got["country"]) == expected


def test_age_parsing() -> None:
    assert parse_age("18 Years to 70 Years \xa0 (Adult, Older Adult)") == (
        "18 Years",
        "70 Years",
        ["ADULT", "OLDER_ADULT"],
    )
    assert parse_age("up to 18 Years \xa0 (Child)") == (None, "18 Years", ["CHILD"])
    assert parse_age("6 Months and older \xa0 (Child, Adult, Older Adult)")[:2] == ("6 Months", None)
    assert parse_age("Child, Adult, Older Adult") == (None, None, ["CHILD", "ADULT", "OLDER_ADULT"])
    assert parse_age("ADULT, OLDER_ADULT") == (None, None, ["ADULT", "OLDER_ADULT"])


# -- broken rows -----------------------------------------------------------------------------------------


def _sample_csv(extra: list[str]) -> bytes:
    lines = SITE_2018.read_bytes().decode("utf-8").splitlines(keepends=True)
    return "".join(lines[:4] + extra + lines[4:7]).encode("utf-8")


def test_broken_rows_are_rejects_naming_file_and_line(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        _sample_csv(['"1001","NCT09999999","Too short"\r\n', '"1002","","No id",' + '"",' * 23 + '""\r\n'])
    )
    stats = atlas.import_files([path])
    assert stats.seen == 6
    assert stats.new == 6
    assert [(r.source, r.locator) for r in stats.rejects] == [(str(path), "line 5"), (str(path), "line 6")]
    short, nameless = stats.rejects
    assert short.record_id == "NCT09999999" and "3 fields" in short.problem and "27" in short.problem
    assert nameless.record_id is None and "no NCT id" in nameless.problem
    assert "line 5" in str(short) and str(path) in str(short)


def test_tab_separated_and_bom(tmp_path: Path) -> None:
    rows = _rows(EXPORT_A)[:3]
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t").writerows(rows)
    path = tmp_path / "export.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    items = list(read_path(path))
    assert [i.record_id for i in items if isinstance(i, RawRecord)] == [rows[1][0], rows[2][0]]


def test_other_csv_files_are_not_claimed() -> None:
    labels = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.peer_labels.csv"
    (reject,) = read_path(labels)
    assert isinstance(reject, Reject) and "unrecognised format" in reject.problem


_HEADER = _rows(EXPORT_A)[0]
_GOOD = _rows(EXPORT_A)[1:6]
_CELL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=15)
_BAD_ROW = st.lists(_CELL, min_size=0, max_size=14)
_RAW_LINE = st.text(alphabet=st.sampled_from([*'ab,"\n\r\t|NCT0123', "\x00", "é"]), max_size=30)


@st.composite
def _broken_csv(draw: st.DrawFn) -> tuple[bytes, int]:
    """A current-layout export with broken rows and raw junk lines among real rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_HEADER)
    good = 0
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        kind = draw(st.sampled_from(["good", "bad", "raw"]))
        if kind == "good":
            writer.writerow(draw(st.sampled_from(_GOOD)))
            good += 1
        elif kind == "bad":
            writer.writerow(draw(_BAD_ROW))
        else:
            out.write(draw(_RAW_LINE) + "\r\n")
    data = out.getvalue().encode("utf-8")
    cut = draw(st.integers(min_value=len(data) // 2, max_value=len(data)))
    return data[:cut], good


@settings(max_examples=150, deadline=None)
@given(sample=_broken_csv())
def test_broken_csv_never_raises(sample: tuple[bytes, int]) -> None:
    data, _ = sample
    for item in read_input(Input.from_bytes("export.csv", data)):
        if isinstance(item, Reject):
            assert item.source == "export.csv" and item.problem
            assert item.locator.startswith(("line", "lines", "after line"))
        else:
            assert isinstance(item, RawRecord)
            assert list(item.payload) == _HEADER
            assert item.record_id.startswith("NCT") and len(item.record_id) == 11


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=_broken_csv())
def test_broken_csv_stores_whole_rows_only(atlas: cartatlas.Atlas, tmp_path: Path, sample: tuple[bytes, int]) -> None:
    data, _ = sample
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    stats = atlas.import_files([path])
    assert all(str(path) in str(r) for r in stats.rejects)
    rows = atlas.sql(
        "SELECT count(*) AS n, count(t.trial_id) AS normalised FROM raw_records r LEFT JOIN trials t "
        "ON t.registry = r.registry AND t.trial_id = r.record_id"
    ).iloc[0]
    assert rows["n"] == rows["normalised"]
    payload_keys = atlas.sql("SELECT DISTINCT json_keys(payload::JSON) AS k FROM raw_records")["k"]
    assert all(sorted(k) == sorted(_HEADER) for k in payload_keys)
