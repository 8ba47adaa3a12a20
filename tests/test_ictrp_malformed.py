"""Malformed ICTRP and ChiCTR input: readers never raise, and every reject names its file and record."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartatlas.model import RawRecord, Reject, Skipped
from cartatlas.normalise.formats import format_spec
from cartatlas.sources.base import Input
from cartatlas.sources.files import read_input
from tests.ictrp_samples import CHICTR, CSV_FILES, XML_FILES

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _bytes(name: str) -> bytes:
    for path in [*CSV_FILES, *XML_FILES, *CHICTR.iterdir()]:
        if path.name == name:
            return path.read_bytes()
    raise FileNotFoundError(name)


def _check(name: str, data: bytes) -> list[Any]:
    """Read ``data`` as file ``name``; every item must be a record, a reject naming the file, or a skip."""
    items = list(read_input(Input.from_bytes(name, data), strict=True))
    for item in items:
        assert isinstance(item, RawRecord | Reject | Skipped)
        if isinstance(item, Reject):
            assert item.source.startswith(name)
            assert item.problem
        if isinstance(item, RawRecord):
            assert item.record_id.strip()
            # What was read must normalise, or fail with a message the importer turns into a reject.
            try:
                trial = format_spec(item.format).to_trial(item.payload)
            except ValueError:
                continue
            assert trial["trial_id"] == item.record_id
    return items


_HEADER = _bytes("COVID19-1135-trials.csv").split(b"\n", 1)[0] + b"\n"
_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@FAST
@given(st.lists(st.lists(_cell, max_size=45), max_size=6))
def test_csv_rows_of_any_shape(rows: list[list[str]]) -> None:
    body = "\n".join(",".join(cells) for cells in rows).encode("utf-8", "surrogatepass")
    items = _check("broken.csv", _HEADER + body)
    for item in items:
        if isinstance(item, Reject):
            assert item.locator.startswith(("row", "line"))


@FAST
@given(st.integers(min_value=0, max_value=400_000), st.binary(max_size=40))
def test_csv_cut_anywhere_or_spliced_with_garbage(cut: int, garbage: bytes) -> None:
    data = _bytes("COVID19-927-trials_7Apr2020.csv")
    _check("cut.csv", data[:cut] + garbage + data[cut : cut + 20_000])


def test_a_row_without_a_trial_id_is_rejected_by_row() -> None:
    good = _bytes("COVID19-1135-trials.csv").split(b"\n")
    data = _HEADER + b",17 February 2020,No id here\n"
    items = _check("noid.csv", data)
    assert len(good) > 2
    assert [type(i) for i in items] == [Reject]
    assert items[0].locator.startswith("row 1") and "TrialID" in items[0].problem


@FAST
@given(st.integers(min_value=0, max_value=300_000), st.binary(max_size=30))
def test_ictrp_xml_cut_anywhere_or_spliced_with_garbage(cut: int, garbage: bytes) -> None:
    data = _bytes("ICTRP-Results_18Mar2020.xml")
    items = _check("cut.xml", data[:cut] + garbage + data[cut : cut + 30_000])
    if cut > 100 and items:
        assert any(isinstance(i, Reject) for i in items) or all(isinstance(i, RawRecord) for i in items)


@FAST
@given(st.integers(min_value=0, max_value=4600), st.binary(max_size=20))
def test_chictr_xml_cut_anywhere(cut: int, garbage: bytes) -> None:
    data = _bytes("ChiCTR2000034346.xml")
    _check("ChiCTR-cut.xml", data[:cut] + garbage)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=443_000))
def test_chictr_trial_page_cut_anywhere(cut: int) -> None:
    data = _bytes("trial_detail_page.html")[:cut]
    items = _check("page.html", data)
    for item in items:
        if isinstance(item, RawRecord):
            assert item.record_id == "ChiCTR2400084905"


@FAST
@given(st.integers(min_value=0, max_value=43_000), st.binary(max_size=20))
def test_chictr_result_list_cut_anywhere(cut: int, garbage: bytes) -> None:
    data = _bytes("search_results_page.html")
    _check("list.html", data[:cut] + garbage + data[cut:])
