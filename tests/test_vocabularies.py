"""Dates, phases, countries and registry ids: the small parsers every registry relies on."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import find_registry_ids, id_registry
from cartatlas.model import PHASES
from cartatlas.normalise.countries import normalise_country
from cartatlas.normalise.phases import normalise_phases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-07-20", dt.date(2023, 7, 20)),
        ("2016-01", dt.date(2016, 1, 1)),
        ("May 11, 2018", dt.date(2018, 5, 11)),
        ("October 2014", dt.date(2014, 10, 1)),
        ("Sept 3, 2019", dt.date(2019, 9, 3)),
        ("31/12/2019", dt.date(2019, 12, 31)),
        ("2020-02-30", None),
        ("null", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(text: str | None, expected: dt.date | None) -> None:
    assert parse_date(text) == expected


@given(st.text(max_size=40))
def test_parse_date_never_raises(text: str) -> None:
    result = parse_date(text)
    assert result is None or isinstance(result, dt.date)


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_parse_date_round_trips_iso_and_us_long_form(day: dt.date) -> None:
    assert parse_date(day.isoformat()) == day
    assert parse_date(f"{day:%B} {day.day}, {day.year}") == day


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["PHASE1", "PHASE2"], ["PHASE1", "PHASE2"]),
        (["Phase 1/Phase 2"], ["PHASE1", "PHASE2"]),
        (["Early Phase 1"], ["EARLY_PHASE1"]),
        (["N/A"], ["NA"]),
        (["Not Applicable"], ["NA"]),
        (["Phase I/II"], ["PHASE1", "PHASE2"]),
        (["1-2"], ["PHASE1", "PHASE2"]),
        (["0"], ["PHASE0"]),
        (["Phase 2|Phase 3"], ["PHASE2", "PHASE3"]),
        (["Phase 4"], ["PHASE4"]),
        (["Retrospective study"], []),
    ],
)
def test_normalise_phases(values: list[str], expected: list[str]) -> None:
    assert normalise_phases(values) == expected


@given(st.lists(st.text(max_size=30), max_size=4))
def test_phases_are_always_from_the_vocabulary_in_order(values: list[str]) -> None:
    out = normalise_phases(values)
    assert all(p in PHASES for p in out)
    assert out == sorted(set(out), key=PHASES.index)


@pytest.mark.parametrize(
    ("name", "display", "code"),
    [
        ("China", "China", "CN"),
        ("Taiwan", "Taiwan", "TW"),
        ("Hong Kong", "Hong Kong", "HK"),
        ("Macau", "Macao", "MO"),
        ("Korea, Republic of", "South Korea", "KR"),
        ("Turkey", "Türkiye", "TR"),
        ("Russian Federation", "Russia", "RU"),
        ("United States", "United States", "US"),
        ("Czech Republic", "Czechia", "CZ"),
        ("Atlantis", "Atlantis", None),
    ],
)
def test_countries(name: str, display: str, code: str | None) -> None:
    assert normalise_country(name) == (display, code)


def test_registry_ids() -> None:
    assert id_registry("NCT01234567") == "ctgov"
    assert id_registry("ChiCTR2000034346") == "chictr"
    assert id_registry("ChiCTR-ONC-17012345") == "chictr"
    assert id_registry("2019-001234-56") == "eudract"
    assert id_registry("2022-500123-12-00") == "ctis"
    assert id_registry("2023-A00386-39") is None
    found = find_registry_ids("Also registered as ChiCTR1800012345 (see NCT03290430).")
    assert found == [("chictr", "ChiCTR1800012345"), ("ctgov", "NCT03290430")]
    assert find_registry_ids("NCT012345678 is too long") == []


def test_a_subdivision_name_two_subdivisions_share_gives_one_answer_whatever_order_pycountry_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Taiwan's Hsinchu City and Hsinchu County are both "Hsinchu"; Hungary's Veszprém is a county
    and a city of county rank.  pycountry returns a country's subdivisions as a set of objects, whose
    order follows their memory addresses, so the one a name meant changed from one process to the next
    (a site's region code was TW-HSZ in one build of the sample and TW-HSQ in another)."""
    import pycountry

    from cartatlas.normalise import places

    real = pycountry.subdivisions.get
    answers = []
    for flip in (False, True):

        def get(*args: object, flip: bool = flip, **kwargs: object) -> list[object]:
            subs = sorted(real(*args, **kwargs) or [], key=lambda s: s.code)
            return subs[::-1] if flip else subs

        monkeypatch.setattr(pycountry.subdivisions, "get", get)
        places._subdivisions.cache_clear()
        places.region_of.cache_clear()
        answers.append((places.region_of("TW", "Hsinchu"), places.region_of("HU", "Veszprém")))
    places._subdivisions.cache_clear()
    places.region_of.cache_clear()
    assert answers[0] == answers[1]
    assert answers[0][0] is not None and answers[0][0][0] in ("TW-HSQ", "TW-HSZ")
