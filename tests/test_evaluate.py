"""The evaluation's numbers: Wilson score intervals for accuracy, precision and recall (issue 13)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cartatlas.classify.evaluate import FieldScore, wilson
from cartatlas.cli import app
from tests.conftest import DATA


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, table I (method 3, Wilson score without correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # The bounds at the ends and in the middle of ten trials.
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_interval_of_nothing_is_the_whole_range() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


@given(st.integers(min_value=1, max_value=5000), st.data())
def test_wilson_interval_holds_the_proportion_and_stays_in_range(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    # symmetric: the interval of the failures mirrors the interval of the successes
    lo2, hi2 = wilson(n - k, n)
    assert math.isclose(lo, 1 - hi2, abs_tol=1e-9) and math.isclose(hi, 1 - lo2, abs_tol=1e-9)


def test_field_score_intervals() -> None:
    s = FieldScore("relation", n=110, exact=105, tp=105, fp=5, fn=5)
    assert s.accuracy_interval == wilson(105, 110)
    assert s.precision_interval == wilson(105, 110)
    assert s.recall_interval == wilson(105, 110)
    lo, hi = s.accuracy_interval
    assert round(lo, 3) == 0.898 and round(hi, 3) == 0.980


def test_evaluate_prints_wilson_intervals(tmp_path: Path) -> None:
    # Two labelled trials of the leukaemia sample: one CAR trial, one hard negative (see test_classify_records).
    labels = tmp_path / "labels.csv"
    labels.write_text("trial_id,relation\nNCT05397184,therapy\nNCT05086315,none\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["evaluate", "--labels", str(labels), str(DATA / "ctgov" / "api_v2" / "leukemia_query_100.json")]
    )
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.output
    # relation: 2 of 2 right, Wilson 95% interval 0.342-1.000
    assert "0.342-1.000" in result.output
    assert "per label (Wilson 95% CI)" in result.output
