"""Counting rules of the landscape, on real records whose right answers were worked out by hand.

The records are the CAR trials of ``api_v2/leukemia_query_100.json`` (real API v2
records with first-posted dates).  Their labels are pinned with a curation file
so that these tests check counting, not classification; the pinned values are
what the records say (read by hand):

=========== ============ ========== ============ ======================
trial       first posted sites      targets      note
=========== ============ ========== ============ ======================
NCT02349698 2015-01-29   CN         CD19         Phase 1/2
NCT02650414 2016-01-08   US         CD22
NCT03937544 2019-05-03   MY         CD19         Phase 2/3
NCT04100187 2019-09-24   (none)     CD19         sponsor Kecellitics: no country
NCT04265963 2020-02-12   CN         CD123
NCT04272125 2020-02-17   CN         CD123
NCT04835519 2021-04-08   CN         CD33
NCT05164042 2021-12-20   CN         CD19
NCT05309213 2022-04-04   (none)     CD19         sponsor "Beijing Immunochina": China
NCT05397184 2022-05-31   GB         CD7
NCT05480501 2022-07-29   CN         CD19         early phase 1
NCT05507827 2022-08-19   US         CD19, CD22   tandem CAR
NCT05942599 2023-07-12   GB         CD33
NCT05756322 2023-03-06   AU, TW     CD19         NOT a CAR trial: pinned as one here
                                                 only to test Taiwan and two-country counting
=========== ============ ========== ============ ======================
Every other record of the file is pinned to relation ``none``.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

import cartatlas
from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"

PINNED = {
    "NCT02349698": "CD19",
    "NCT02650414": "CD22",
    "NCT03937544": "CD19",
    "NCT04100187": "CD19",
    "NCT04265963": "CD123",
    "NCT04272125": "CD123",
    "NCT04835519": "CD33",
    "NCT05164042": "CD19",
    "NCT05309213": "CD19",
    "NCT05397184": "CD7",
    "NCT05480501": "CD19",
    "NCT05507827": "CD19;CD22",
    "NCT05942599": "CD33",
    "NCT05756322": "CD19",
}


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> cartatlas.Atlas:
    tmp = tmp_path_factory.mktemp("landscape")
    a = cartatlas.open(tmp / "l.duckdb")
    a.import_files([LEUKEMIA])
    curation = tmp / "curation.csv"
    with curation.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial_id", "field", "value", "reason", "curator", "date"])
        for tid in a.sql("SELECT trial_id FROM trials")["trial_id"]:
            if tid in PINNED:
                w.writerow([tid, "relation", "therapy", "pinned for counting tests", "test", "2026-01-01"])
                w.writerow([tid, "targets", PINNED[tid], "pinned for counting tests", "test", "2026-01-01"])
                w.writerow([tid, "branch", "heme-malignancy", "pinned for counting tests", "test", "2026-01-01"])
            else:
                w.writerow([tid, "relation", "none", "pinned for counting tests", "test", "2026-01-01"])
    outcomes = a.curate(curation)
    assert {o.status for o in outcomes} == {"applied"}
    return a


def ids(table: object, **where: object) -> list[str]:
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    rows = table
    for k, v in where.items():
        rows = rows[rows[k] == v]
    return sorted(i for r in rows["trial_ids"] for i in r)


def test_as_of_boundary_is_the_first_posted_day(atlas: cartatlas.Atlas) -> None:
    assert atlas.landscape("2015-01-28").units.empty
    land = atlas.landscape("2015-01-29")
    assert list(land.units["unit_id"]) == ["NCT02349698"]
    assert land.units["registration_date"][0] == dt.date(2015, 1, 29)
    assert land.units["registration_date_source"][0] == "first_posted"


def test_groups_as_of_2020_02_12(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape("2020-02-12")
    by_group = land.facts["totals"]["by_group"]
    assert by_group == {"China": 2, "United States": 1, "Other countries": 1, "No location given": 1}
    cumulative = land.tables["cumulative_by_year"]
    china = cumulative[cumulative["group"] == "China"].set_index("year")["n"]
    assert china[2014] == 0 and china[2015] == 1 and china[2019] == 1 and china[2020] == 2


def test_sponsor_country_used_only_without_sites(atlas: cartatlas.Atlas) -> None:
    units = atlas.landscape("2022-12-31").units.set_index("unit_id")
    assert units.loc["NCT05309213", "groups"] == ["China"]
    assert units.loc["NCT05309213", "location_source"] == "sponsor name"
    assert units.loc["NCT04100187", "groups"] == ["No location given"]


def test_a_trial_in_two_countries_counts_in_both_groups_and_taiwan_follows_the_scheme(
    atlas: cartatlas.Atlas,
) -> None:
    wei = atlas.landscape("2023-12-31").units.set_index("unit_id")
    assert wei.loc["NCT05756322", "groups"] == ["China", "Other countries"]
    mainland = atlas.landscape("2023-12-31", groups="mainland").units.set_index("unit_id")
    assert mainland.loc["NCT05756322", "groups"] == ["Other countries"]
    custom = atlas.landscape("2023-12-31", groups=["Greater China=CN,TW,HK,MO", "Oceania=AU,NZ"]).units
    custom = custom.set_index("unit_id")
    assert custom.loc["NCT05756322", "groups"] == ["Greater China", "Oceania"]
    totals = atlas.landscape("2023-12-31").facts["totals"]
    # 6 with mainland sites + NCT05309213 (sponsor in Beijing) + NCT05756322 (Taiwan)
    assert totals["by_group"] == {"China": 8, "United States": 2, "Other countries": 4, "No location given": 1}
    assert totals["focus_subregions"] == {"CN": 7, "HK": 0, "MO": 0, "TW": 1}


def test_two_targets_count_under_each_alone_vs_combination(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape("2023-12-31", focus="US")
    heme = land.tables["focus_targets_heme"].set_index("target")
    assert heme.loc["CD22", "n"] == 2 and heme.loc["CD22", "alone"] == 1 and heme.loc["CD22", "in_combination"] == 1
    assert heme.loc["CD19", "n"] == 1 and heme.loc["CD19", "alone"] == 0
    assert heme.loc["CD19", "partners"] == {"CD22": 1}
    assert heme.loc["CD19", "combination_ids"] == ["NCT05507827"]
    china = atlas.landscape("2023-12-31", focus="CN").tables["focus_targets_heme"].set_index("target")
    # NCT02349698, NCT05164042, NCT05309213, NCT05480501 in the mainland; NCT05756322 via Taiwan.
    assert china.loc["CD19", "alone"] == 5 and china.loc["CD19", "in_combination"] == 0
    assert china.loc["CD123", "n"] == 2 and china.loc["CD33", "n"] == 1


def test_phase_is_the_lowest_registered_phase(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape("2019-12-31")
    phases = land.tables["phase_by_group"]
    assert ids(phases, group="Other countries", phase_category="Phase 2") == ["NCT03937544"]
    assert ids(phases, group="China", phase_category="Phase 1") == ["NCT02349698"]


def test_every_count_lists_its_trials(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape("2023-12-31")
    for name, table in land.tables.items():
        if "n" in table.columns and "trial_ids" in table.columns:
            assert all(len(t) == n for t, n in zip(table["trial_ids"], table["n"], strict=True)), name


def test_per_registration_equals_per_trial_without_links(atlas: cartatlas.Atlas) -> None:
    a = atlas.landscape("2023-12-31", per="trial").facts["totals"]
    b = atlas.landscape("2023-12-31", per="registration").facts["totals"]
    assert a["by_group"] == b["by_group"]


def test_units_and_counts_api(atlas: cartatlas.Atlas) -> None:
    cd19 = atlas.units("2023-12-31", target="CD19")
    assert set(cd19["unit_id"]) == {k for k, v in PINNED.items() if "CD19" in v}
    by_target = atlas.counts("targets", "2023-12-31").set_index("targets")
    assert by_target.loc["CD19", "n"] == 8 and by_target.loc["CD123", "n"] == 2
    over_time = atlas.counts("groups", "2023-12-31", over_time=True)
    assert over_time[(over_time["year"] == 2020) & (over_time["groups"] == "China")]["n"].iloc[0] == 2
    with pytest.raises(TypeError):
        atlas.units("2023-12-31", colour="red")


def test_status_as_of_uses_the_stored_version_of_that_date(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    """A later version changes the status; a report as of an earlier date still shows the old one."""
    import json

    study = next(
        s
        for s in json.loads(LEUKEMIA.read_text())
        if s["protocolSection"]["identificationModule"]["nctId"] == "NCT02349698"
    )
    study["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2024-01-15", "type": "ACTUAL"}
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps([study]))
    atlas.import_files([newer])
    before = atlas.landscape("2020-01-01").units.set_index("unit_id")
    assert before.loc["NCT02349698", "status_as_of"] == "RECRUITING"
    assert before.loc["NCT02349698", "as_of_source"] == "stored version"
    after = atlas.landscape("2024-06-30").units.set_index("unit_id")
    assert after.loc["NCT02349698", "status_as_of"] == "COMPLETED"
    assert after.loc["NCT02349698", "as_of_source"] == "latest"
