"""Counts as of a date say what was known on that date (issue 12, part 2), on the whole sample.

The sample holds one 2026 version of most records.  A report as of 2020-06-30
used to show every trial's 2026 status as its 2020 status ("40 active vs 318
not active in China"), with a caveat only in the Methods.  Of its 676 trials,
274 have a latest version updated before the date (current then), 38 an older
stored version current then, and 364 only versions updated after it; of the
312 current then, 222 show ClinicalTrials.gov's "unknown status", which the
registry assigns to records not verified for two years without updating them,
so their version fetched in 2026 does not show their 2020 status either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import cartatlas
from tests.full_sample import TODAY, full_sample_db

AS_OF = "2020-06-30"
NOT_KNOWN = "Not known at 2020-06-30"


@pytest.fixture(scope="module")
def atlas() -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(full_sample_db(), read_only=True) as a:
        yield a


def _status(land: cartatlas.api.Landscape, group: str) -> dict[str, int]:
    table = land.tables["status_by_group"]
    rows = table[table["group"] == group]
    return dict(zip(rows["status_group"], rows["n"], strict=True))


def test_status_from_a_later_version_is_not_known_on_the_date(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape(AS_OF)
    facts = land.facts["as_of"]
    assert (facts["current_version"], facts["stored_version"], facts["later_version"]) == (276, 40, 364)
    assert (facts["status_known"], facts["status_not_known"], facts["status_unknown_shown_later"]) == (96, 584, 220)
    # Before: {"Active": 42, "Not active": 316}, all from 2026 versions.  (Issue 13's screening counts 7 more
    # trials as of the date: 673 -> 680; China's 358 are the same trials, two more with a status known then.)
    assert _status(land, "China") == {"Active": 13, "Not active": 12, NOT_KNOWN: 333}
    units = land.units.set_index("unit_id")
    unknown = units[units["status_as_of"].isna()]
    assert len(unknown) == 584 and not unknown["status_known"].any()
    assert set(unknown["as_of_source"]) == {"later version", "latest"}
    assert set(unknown.loc[unknown["as_of_source"] == "latest", "status_latest"]) == {"UNKNOWN"}
    # A known status comes from a version updated on or before the date.
    known = units[units["status_known"]]
    assert set(known["as_of_source"]) == {"latest", "stored version"}
    active = land.tables["phase_by_group_active"]
    assert set().union(*active["trial_ids"]) <= set(known.index)


def test_latest_status_is_an_option_with_its_caveat(atlas: cartatlas.Atlas) -> None:
    land = atlas.landscape(AS_OF, latest_status=True)
    assert _status(land, "China") == {"Active": 42, "Not active": 316}
    assert land.facts["as_of"]["tables"]["status_by_group"] == {
        "trials": 680,
        "later_version": 364,
        "status_not_known": 584,
    }


def test_phase_is_kept_from_the_later_version_and_counted(atlas: cartatlas.Atlas) -> None:
    facts = atlas.landscape(AS_OF).facts["as_of"]
    assert facts["tables"]["phase_by_group"] == {"trials": 680, "later_version": 364, "status_not_known": 584}
    assert facts["tables"]["focus_registry_phases"]["later_version"] == 128
    # Where a version current on the date is stored beside a later one, the phase category never moved.
    assert facts["phase_changed_later"] == 0


@pytest.fixture(scope="module")
def pages(atlas: cartatlas.Atlas, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("asof")
    html = {}
    for name, options in (("2020", {"as_of": AS_OF}), ("today", {"as_of": TODAY})):
        atlas.report(out / name, figures=False, **options)
        html[name] = _text((out / name / "index.html").read_text(encoding="utf-8"))
    atlas.report(out / "latest", figures=False, as_of=AS_OF, latest_status=True)
    html["latest"] = _text((out / "latest" / "index.html").read_text(encoding="utf-8"))
    return html


def _text(page: str) -> str:
    """The page's visible text, one space between words."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page).replace("&ldquo;", "\u201c").replace("&rdquo;", "\u201d")
    return re.sub(r"\s+", " ", page.replace("&#34;", '"').replace("&#39;", "'"))


def test_every_status_and_phase_table_says_how_many_trials_use_a_later_version(pages: dict[str, str]) -> None:
    page = pages["2020"]
    assert (
        "The status on 2020-06-30 is known for 96 of these 680 trials; the other 584 are counted as "
        "\u201cNot known at 2020-06-30\u201d" in page
    )
    assert page.count("364 of these 680 trials take their phase from a version updated after 2020-06-30") == 1
    assert "128 of these 358 registrations take their phase from a version updated after 2020-06-30" in page
    assert "584 trials whose status on that date is not known are left out" in page
    latest = pages["latest"]
    assert "584 of these 680 trials are counted by their latest known status, which may not be their status" in latest


def test_the_header_says_what_the_data_covers(atlas: cartatlas.Atlas, pages: dict[str, str]) -> None:
    # The records were fetched when this test's database was built: the day the suite runs, read back from the store.
    fetched = atlas.sql("SELECT max(fetched_at)::DATE AS d FROM raw_records")["d"][0]
    coverage = (
        f"Data: the newest registry update in this database is 2026-08-21 (records fetched up to {fetched:%Y-%m-%d})."
    )
    assert coverage in pages["2020"] and coverage in pages["today"]
    warning = "The as-of date 2026-12-02 is later than the newest registry update in this database (2026-08-21)"
    assert warning in pages["today"] and "is later than the newest registry update" not in pages["2020"]


def test_the_publications_section_says_what_is_stored(pages: dict[str, str]) -> None:
    """Before: "No PubMed records in this database" although 609 are stored."""
    for page in pages.values():
        assert "No PubMed records in this database" not in page
        assert "609 PubMed records stored; none is a clinical report of a CAR product" in page


def test_the_trials_table_keeps_the_latest_status_beside_the_dated_one(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    result = atlas.report(tmp_path / "r", figures=False, as_of=AS_OF)
    trials = pd.read_csv(result.out / "tables" / "trials.csv", keep_default_na=False, dtype=str)
    later = trials[trials["as_of_source"] == "later version"]
    assert len(later) == 364 and (later["status_as_of"] == "").all()
    # Their latest known status stays beside the empty dated one (COMPLETED 91, ACTIVE_NOT_RECRUITING 74, ...).
    assert (later["status_latest"] != "").all() and (later["status_latest"] == "COMPLETED").sum() == 91
