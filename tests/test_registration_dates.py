"""Registration dates a reviewer can trust (issue 12, part 1), on the whole sample.

The sample's 2,587 reconstructed ClinicalTrials.gov records carry no
registration date; their dates are estimated from the NCT number.  Before this
issue the calibration (anchors up to NCT06171568, December 2023) was
extrapolated along a straight line, which dated the newest trials in 2027:
after the day the report was made, after their own last update.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.analysis import registration as reg
from tests.full_sample import TODAY, full_sample_db

ROOT = Path(__file__).resolve().parents[1]

CAR_TRIALS = """
SELECT count(DISTINCT coalesce(k.cluster_id, t.trial_id)) AS n
FROM trials t JOIN classifications c USING (registry, trial_id) LEFT JOIN trial_clusters k USING (registry, trial_id)
WHERE c.relation IN ('therapy', 'follow_up')
"""


@pytest.fixture(scope="module")
def atlas() -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(full_sample_db(), read_only=True) as a:
        yield a


def test_todays_report_counts_every_car_trial(atlas: cartatlas.Atlas) -> None:
    """Before: 2,362 of 2,412 counted; the 50 newest were dated in February-March 2027."""
    land = atlas.landscape(TODAY)
    assert land.facts["totals"]["units"] == atlas.sql(CAR_TRIALS)["n"][0]
    newest = land.units.set_index("unit_id").loc["NCT07779018"]
    assert newest["registration_date_source"] == "extrapolated_from_id"
    # Its only version was last updated on 2026-08-21: it was registered by then.
    assert newest["registration_date"] <= dt.date(2026, 8, 21) == newest["last_update_posted"]
    assert land.notes["dates_may_be_earlier"] == []


def test_no_date_falls_after_the_records_last_update(atlas: cartatlas.Atlas) -> None:
    """Before: 596 CAR registrations were dated after their own last update."""
    units = atlas.landscape("2100-01-01", per="registration").units
    late = units[[bool(u is not None and not pd.isna(u) and d > u) for d, u in
                  zip(units["registration_date"], units["last_update_posted"], strict=True)]]  # fmt: skip
    assert list(late["trial_id"]) == []


def test_every_date_respects_every_stored_version(atlas: cartatlas.Atlas) -> None:
    """Never after any version's last update, results date or fetch; inside the interval it reports."""
    broken = atlas.sql(
        """
        WITH versions AS (
            SELECT registry, record_id AS trial_id, min(record_updated) AS updated,
                   CAST(min(timezone('UTC', fetched_at)) AS DATE) AS fetched
            FROM raw_records GROUP BY ALL)
        SELECT d.trial_id FROM registration_dates d JOIN trials t USING (registry, trial_id)
        JOIN versions v USING (registry, trial_id)
        WHERE d.registration_date > least(v.updated, v.fetched, t.results_first_submitted, t.results_first_posted)
           OR d.registration_date < d.registration_date_earliest OR d.registration_date > d.registration_date_latest
        """
    )
    assert list(broken["trial_id"]) == []
    assert atlas.sql("SELECT count(*) AS n FROM registration_dates WHERE registration_date IS NULL")["n"][0] == 0


def test_dates_beyond_the_calibration_are_marked_and_grow_with_the_number(atlas: cartatlas.Atlas) -> None:
    frame = atlas.sql(
        "SELECT trial_id, registration_date, registration_date_source FROM registration_dates "
        "WHERE trial_id LIKE 'NCT%' ORDER BY trial_id"
    )
    anchors = frame[frame["registration_date_source"].isin(["first_posted", "other_version"])]
    beyond = frame[frame["registration_date_source"] == "extrapolated_from_id"]
    assert len(beyond) == 1199  # every NCT number above the newest dated one (NCT06171568)
    assert beyond["trial_id"].min() > anchors["trial_id"].max() == "NCT06171568"
    days = list(beyond["registration_date"].dt.date)
    assert days == sorted(days), "extrapolated dates are monotone in the NCT number"
    assert days[0] >= anchors["registration_date"].max().date() and days[-1] <= dt.date(2026, 8, 21)


def test_a_date_from_another_version_says_so(atlas: cartatlas.Atlas) -> None:
    """NCT01593696's current (reconstructed) record has no date; the 2018 website CSV of the same trial has one."""
    row = atlas.sql("SELECT * FROM trial_landscape WHERE trial_id = 'NCT01593696'").iloc[0]
    assert row["registration_date_source"] == "other_version"
    assert row["registration_date"].date() == dt.date(2012, 5, 8)


def test_estimates_from_the_staircase_are_close_on_records_whose_date_is_known(atlas: cartatlas.Atlas) -> None:
    """Hide the dates of every dated record above NCT03000000 and estimate them again: the method's accuracy."""
    inputs = reg._inputs(atlas.store)
    numbers = inputs["trial_id"].map(reg.nct_number)
    truth = [
        reg._as_date(p) or reg._as_date(o) for p, o in zip(inputs["first_posted"], inputs["other_posted"], strict=True)
    ]
    known = inputs[numbers.notna() & pd.Series([t is not None for t in truth], index=inputs.index)].copy()
    hidden = known["trial_id"].map(reg.nct_number) > 3_000_000
    for column in ("first_posted", "other_posted", "first_submitted", "other_submitted"):
        known.loc[hidden, column] = None
    dated = reg.date_registrations(known)
    errors = np.array(
        [
            (d - t).days
            for d, t, h in zip(dated["registration_date"], (truth[i] for i in known.index), hidden, strict=True)
            if h
        ]
    )
    assert len(errors) == 1100
    assert set(dated.loc[hidden, "registration_date_source"]) == {"extrapolated_from_id"}
    # A straight line from the calibration missed these by a median 85 days (90th percentile 316).
    assert np.median(np.abs(errors)) <= 5 and np.percentile(np.abs(errors), 90) <= 20
    outside = [
        tid
        for tid, e, t, lt, h in zip(
            dated["trial_id"],
            dated["registration_date_earliest"],
            (truth[i] for i in known.index),
            dated["registration_date_latest"],
            hidden,
            strict=True,
        )
        if h and not e <= t <= lt
    ]
    # Only ids out of order fall outside their interval: both records' dates are earlier than those of
    # smaller numbers (NCT03892213 states 2014-08-20, NCT03041766 2016-11-16, below anchors of December 2016).
    assert sorted(outside) == ["NCT03041766", "NCT03892213"]


def test_estimates_inside_the_calibration_are_close_on_held_out_records(atlas: cartatlas.Atlas) -> None:
    """A random tenth of the dated records (seed 0), dated again from their neighbours' NCT numbers."""
    inputs = reg._inputs(atlas.store)
    truth = pd.Series(
        [
            reg._as_date(p) or reg._as_date(o)
            for p, o in zip(inputs["first_posted"], inputs["other_posted"], strict=True)
        ],
        index=inputs.index,
    )
    numbers = inputs["trial_id"].map(reg.nct_number)
    known = inputs[numbers.notna() & truth.notna()].copy()
    n = known["trial_id"].map(reg.nct_number)
    hidden = pd.Series(np.random.default_rng(0).random(len(known)) < 0.1, index=known.index)
    hidden &= (n > n.min()) & (n < n.max())
    for column in ("first_posted", "other_posted", "first_submitted", "other_submitted"):
        known.loc[hidden, column] = None
    dated = reg.date_registrations(known)
    errors = np.abs([(d - truth[i]).days for i, d in dated.loc[hidden, "registration_date"].items()])
    assert len(errors) == 220 and set(dated.loc[hidden, "registration_date_source"]) == {"estimated_from_id"}
    assert np.median(errors) <= 1 and np.percentile(errors, 90) <= 25


def _headline_sql() -> str:
    """The worked example of docs/schema.md: trials per country group as of a date, from trial_landscape."""
    doc = (ROOT / "docs" / "schema.md").read_text()
    block = re.search(r"<!-- headline-counts -->\s*```sql\n(.*?)```", doc, re.S)
    assert block is not None, "docs/schema.md lost its worked example"
    return block.group(1)


@pytest.mark.parametrize("as_of", ["2015-01-01", "2020-06-30", TODAY])
def test_the_documented_sql_gives_the_reports_headline_counts(atlas: cartatlas.Atlas, as_of: str) -> None:
    query = _headline_sql().replace("DATE '2020-06-30'", f"DATE '{as_of}'")
    by_sql = {r["country_group"]: int(r["trials"]) for r in atlas.sql(query).to_dict("records")}
    land = atlas.landscape(as_of)
    assert by_sql == {g: n for g, n in land.facts["totals"]["by_group"].items() if n}
    total = atlas.sql(
        "SELECT count(DISTINCT cluster_id) AS n FROM trial_landscape "
        f"WHERE relation IN ('therapy', 'follow_up') AND registration_date <= DATE '{as_of}'"
    )
    assert total["n"][0] == land.facts["totals"]["units"]


def test_export_carries_the_reports_dates_clusters_and_places(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    out = tmp_path / "trials.csv"
    atlas.export("csv", out)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("trial_id")
    row = frame.loc["NCT04835519"]
    view = atlas.sql("SELECT * FROM trial_landscape WHERE trial_id = 'NCT04835519'").iloc[0]
    assert row["registration_date"] == view["registration_date"].date().isoformat()
    assert row["registration_date_source"] == view["registration_date_source"]
    assert row["cluster_id"] == "NCT04835519"
    assert "Beijing" in row["regions"].split("; ") and "Beijing" in row["cities"].split("; ")


def test_sites_have_their_province_and_city_in_one_spelling(atlas: cartatlas.Atlas) -> None:
    sites = atlas.sql("SELECT * FROM trial_sites")
    one = sites.set_index(["trial_id", "site_no"])

    def place(trial: str, state: str | None = None, city: str | None = None) -> tuple[str, str, str]:
        rows = sites[(sites["trial_id"] == trial)]
        if state is not None:
            rows = rows[rows["state"] == state]
        if city is not None:
            rows = rows[rows["city"] == city]
        r = rows.iloc[0]
        return r["region_code"], r["region"], r["city_normalised"]

    assert place("NCT04835519", state="Beijing Municipality") == ("CN-BJ", "Beijing", "Beijing")
    assert place("NCT06072989", state="China/Shanghai") == ("CN-SH", "Shanghai", "Shanghai")
    assert place("NCT02395250", city="Xuhui") == ("CN-SH", "Shanghai", "Shanghai")  # a district of Shanghai
    assert place("NCT02733380", city="ZhengZhou") == ("CN-HA", "Henan", "Zhengzhou")
    assert place("NCT06590246", city="Hanzhou") == ("CN-ZJ", "Zhejiang", "Hangzhou")
    assert place("NCT04833504", state="State...") == ("CN-ZJ", "Zhejiang", "Hangzhou")  # from the city
    assert place("NCT07298239", state="不限") == ("CN-BJ", "Beijing", "Beijing")  # "any": read from the city
    code, region, city = place("NCT03473457", city="Guangdong")
    assert (code, region) == ("CN-GD", "Guangdong") and pd.isna(city)  # a province is not a city
    assert place("ChiCTR2400084905", state="Tianjing") == ("CN-TJ", "Tianjin", "Tianjin")
    # Every Chinese region is one of the 31 canonical names; every US site is placed in a state.
    china = sites[sites["country_code"] == "CN"]
    canonical = {r["region"] for r in reg_rows() if r["country_code"] == "CN"}
    assert set(china["region"].dropna()) <= canonical and len(canonical) == 31
    us = sites[sites["country_code"] == "US"]
    assert us["region"].notna().all() and "California" in set(us["region"])
    assert not set(sites["region"].dropna()) & {"nan", "不限", "(Select)", "State...", "China", "Other (Non U.s.)"}
    assert one.index.is_unique


def reg_rows() -> list[dict[str, str]]:
    from cartatlas.knowledge import read_table

    return list(read_table("regions.csv"))


# -- the dating function itself ---------------------------------------------------------------------


_DAY0 = dt.date(2000, 1, 1)


@st.composite
def _records(draw: st.DrawFn) -> pd.DataFrame:
    """Made-up records (not sample data): NCT numbers, some with a posted date, each with its own bounds."""
    size = draw(st.integers(3, 40))
    numbers = sorted(draw(st.lists(st.integers(1, 9_999_999), min_size=size, max_size=size, unique=True)))
    rows = []
    for k, n in enumerate(numbers):
        posted = _DAY0 + dt.timedelta(days=n // 1000) if draw(st.booleans()) or k < 2 else None
        # A record's own bound: any day, or none (a stated date is the truth and needs none).
        bound = None if posted else draw(st.one_of(st.none(), st.integers(0, 12_000)))
        rows.append(
            {
                "registry": "ctgov",
                "trial_id": f"NCT{n:08d}",
                "first_posted": posted,
                "first_submitted": None,
                "other_posted": None,
                "other_submitted": None,
                "start_date": None,
                "last_update_posted": None,
                "not_before": None,
                "not_after": None if bound is None else _DAY0 + dt.timedelta(days=bound),
            }
        )
    return pd.DataFrame(rows)


@settings(max_examples=150, deadline=None)
@given(_records())
def test_dates_keep_inside_each_records_bounds_and_grow_beyond_the_calibration(frame: pd.DataFrame) -> None:
    out = reg.date_registrations(frame)
    for date, bound, low, high in zip(
        out["registration_date"], frame["not_after"], out["registration_date_earliest"],
        out["registration_date_latest"], strict=True,
    ):  # fmt: skip
        assert date is not None
        assert bound is None or date <= bound
        assert low is None or low <= date
        assert high is None or date <= high
    beyond = out[out["registration_date_source"] == "extrapolated_from_id"]
    stated = out[out["registration_date_source"] == "first_posted"]
    if len(beyond) and len(stated) and beyond["trial_id"].min() > stated["trial_id"].max():
        days = list(beyond.sort_values("trial_id")["registration_date"])
        bounds = [b for b in frame.set_index("trial_id").loc[beyond["trial_id"], "not_after"] if b is not None]
        if not bounds or min(bounds) >= stated["registration_date"].max():
            assert days == sorted(days)
