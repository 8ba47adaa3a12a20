"""When a trial was registered, for counting trials "as of" a date.

A trial counts from its first-posted date (the registration date for
registries other than ClinicalTrials.gov).  Records that lack it are dated by
the best documented fallback, never dropped, and the fallback used is kept
with the date so that a report can say how many dates are estimated:

1. ``first_posted``;
2. ``first_submitted`` (a few days earlier than posting);
3. ``estimated_from_id``: ClinicalTrials.gov issues NCT numbers in order of
   first submission, so the number maps monotonically onto registration
   dates.  The mapping is calibrated on the records in the same database that
   carry both an NCT id and a first-posted date (isotonic fit, linear
   interpolation, linear extrapolation beyond the calibrated range);
   ChiCTR ids carry their registration year (date placed at mid-year);
4. ``start_date`` and then ``last_update_posted`` as last resorts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_NCT = re.compile(r"^NCT(\d{8})$")
_CHICTR = re.compile(r"^ChiCTR(?:-[A-Za-z]{2,4}-)?(\d{2})\d{6,8}$", re.I)

FALLBACK_ORDER = ("first_posted", "first_submitted", "estimated_from_id", "start_date", "last_update_posted")


def nct_number(trial_id: str | None) -> int | None:
    m = _NCT.match(trial_id or "")
    return int(m[1]) if m else None


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the closest non-decreasing sequence (a few ids are out of order)."""
    values: list[float] = []
    weights: list[int] = []
    for v in y.astype(float):
        values.append(v)
        weights.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            values[-2:] = [merged]
            weights[-2:] = [w]
    return np.repeat(values, weights)


@dataclass(frozen=True)
class IdDateCalibration:
    """A monotone map from NCT number to registration date, fitted on anchors."""

    numbers: np.ndarray
    ordinals: np.ndarray

    @classmethod
    def fit(cls, anchors: list[tuple[int, dt.date]]) -> IdDateCalibration | None:
        if len(anchors) < 2:
            return None
        frame = pd.DataFrame(anchors, columns=["n", "d"]).sort_values("n")
        frame["o"] = [d.toordinal() for d in frame["d"]]
        frame = frame.groupby("n")["o"].median().reset_index()
        return cls(frame["n"].to_numpy(dtype=float), _isotonic(frame["o"].to_numpy()))

    @property
    def anchors(self) -> int:
        return len(self.numbers)

    def estimate(self, number: int) -> dt.date:
        x, y = self.numbers, self.ordinals
        if number < x[0] or number > x[-1]:
            # Extrapolate along the slope of the nearest tenth of the anchors.
            k = max(2, len(x) // 10)
            xs, ys = (x[:k], y[:k]) if number < x[0] else (x[-k:], y[-k:])
            slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0]) if xs[-1] != xs[0] else 0.0
            base_x, base_y = (xs[0], ys[0]) if number < x[0] else (xs[-1], ys[-1])
            value = base_y + slope * (number - base_x)
        else:
            value = float(np.interp(number, x, y))
        return dt.date.fromordinal(round(value))


def chictr_year(trial_id: str | None) -> int | None:
    m = _CHICTR.match(trial_id or "")
    return 2000 + int(m[1]) if m else None


def assign_registration_dates(frame: pd.DataFrame, calibration: IdDateCalibration | None) -> pd.DataFrame:
    """Add ``registration_date`` and ``registration_date_source`` columns (see module doc)."""
    dates: list[dt.date | None] = []
    sources: list[str] = []
    for row in frame.itertuples(index=False):
        date, source = _resolve(row, calibration)
        dates.append(date)
        sources.append(source)
    out = frame.copy()
    out["registration_date"] = pd.Series(dates, index=frame.index, dtype="object")
    out["registration_date_source"] = sources
    return out


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value is not pd.NaT


def _as_date(value: object) -> dt.date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    assert isinstance(value, dt.date)
    return value


def _resolve(row: object, calibration: IdDateCalibration | None) -> tuple[dt.date | None, str]:
    for field in ("first_posted", "first_submitted"):
        value = getattr(row, field, None)
        if _present(value):
            return _as_date(value), field
    trial_id = str(getattr(row, "trial_id", ""))
    number = nct_number(trial_id)
    if number is not None and calibration is not None:
        return calibration.estimate(number), "estimated_from_id"
    year = chictr_year(trial_id)
    if year is not None:
        return dt.date(year, 7, 1), "estimated_from_id"
    for field in ("start_date", "last_update_posted"):
        value = getattr(row, field, None)
        if _present(value):
            return _as_date(value), field
    return None, "none"
