"""When a trial was registered, for counting trials "as of" a date.

A trial counts from its registration date: ``first_posted`` (the registration
date for registries other than ClinicalTrials.gov).  Records that lack it are
dated by the best documented fallback, never dropped, and the fallback used is
kept with the date (``registration_date_source``):

``first_posted``
    the record's own registration date;
``other_version``
    the first-posted (or first-submitted) date of another stored version of the
    same record (registration dates never change; a record re-imported from a
    source without dates, such as the monitors' reconstructed corpus, keeps
    the date an earlier download had);
``first_submitted``
    submission precedes posting by a few days;
``estimated_from_id``
    ClinicalTrials.gov issues NCT numbers in order of first submission, so the
    number maps monotonically onto registration dates.  The map is calibrated
    on the records in the same database that carry both an NCT id and a
    registration date (isotonic fit, linear interpolation between anchors);
``extrapolated_from_id``
    an NCT number beyond the calibrated range.  Registration dates grow with
    the number, so a record registered no later than each of its own bounds
    (below) also bounds every smaller number: the upper bounds of the records
    beyond the range, taken as a running minimum from the newest number down,
    form a non-decreasing staircase.  The estimate interpolates linearly in the
    NCT number between the calibration's last point and the corners of that
    staircase (the records whose own bound is the binding one), so it is
    monotone in the number, never after any bound of the record or of a later
    number, and marked as extrapolated;
``year_from_id``
    ChiCTR ids carry their registration year (dated at mid-year, within it);
``start_date``, ``last_update_posted``
    last resorts.

Every date is then held inside what the stored versions say about the record
(``registration_date_earliest`` .. ``registration_date_latest``): never after
its earliest last-update date, its results submission or posting, or the day
any version was fetched; never before the start of its id's year (ChiCTR).
For estimates the interval also reflects the NCT neighbours: the calibration
anchors on either side of the number, and for extrapolated numbers the
staircase above.  A report uses the interval to say how many trials an
estimated date could move across its as-of date.

The dates of every trial are kept in the derived table ``registration_dates``
(with the ``trial_landscape`` view over it), recomputed whenever the trials or
their stored versions change (a fingerprint in ``settings`` says when).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from cartatlas.normalise import format_spec
from cartatlas.store.db import Store, rollback
from cartatlas.store.export import EXPORT_EXTENSIONS

log = logging.getLogger(__name__)

_NCT = re.compile(r"^NCT(\d{8})$")
_CHICTR = re.compile(r"^ChiCTR(?:-[A-Za-z]{2,4}-)?(\d{2})\d{6,8}$", re.I)

#: Every value of ``registration_date_source``, best first.
FALLBACK_ORDER = (
    "first_posted",
    "other_version",
    "first_submitted",
    "estimated_from_id",
    "extrapolated_from_id",
    "year_from_id",
    "start_date",
    "last_update_posted",
)
#: Sources that are not a registration date stated by the registry.
ESTIMATED_SOURCES = frozenset(FALLBACK_ORDER[3:])

#: Changes whenever the method changes, so that stored dates are recomputed.
DATING_METHOD = "2"
_SETTING = "registration_dates"

OUTPUT_COLUMNS = [
    "registry",
    "trial_id",
    "registration_date",
    "registration_date_source",
    "registration_date_earliest",
    "registration_date_latest",
]


def nct_number(trial_id: str | None) -> int | None:
    m = _NCT.match(trial_id or "")
    return int(m[1]) if m else None


def chictr_year(trial_id: str | None) -> int | None:
    m = _CHICTR.match(trial_id or "")
    return 2000 + int(m[1]) if m else None


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

    @property
    def first(self) -> tuple[int, dt.date]:
        return int(self.numbers[0]), _day(self.ordinals[0])

    @property
    def last(self) -> tuple[int, dt.date]:
        return int(self.numbers[-1]), _day(self.ordinals[-1])

    def covers(self, number: int) -> bool:
        return bool(self.numbers[0] <= number <= self.numbers[-1])

    def estimate(self, number: int) -> dt.date:
        """The interpolated date (inside the range); beyond it, the slope of the nearest tenth of the anchors.

        Dating uses the slope only when no record beyond the range gives an
        upper bound (see the module doc).
        """
        x, y = self.numbers, self.ordinals
        if number < x[0] or number > x[-1]:
            k = max(2, len(x) // 10)
            xs, ys = (x[:k], y[:k]) if number < x[0] else (x[-k:], y[-k:])
            slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0]) if xs[-1] != xs[0] else 0.0
            base_x, base_y = (xs[0], ys[0]) if number < x[0] else (xs[-1], ys[-1])
            value = base_y + slope * (number - base_x)
        else:
            value = float(np.interp(number, x, y))
        return _day(value)

    def neighbours(self, number: int) -> tuple[dt.date | None, dt.date | None]:
        """The fitted dates of the anchors at or below and at or above ``number``."""
        i = int(np.searchsorted(self.numbers, number, side="right"))
        below = _day(self.ordinals[i - 1]) if i > 0 else None
        j = int(np.searchsorted(self.numbers, number, side="left"))
        above = _day(self.ordinals[j]) if j < len(self.numbers) else None
        return below, above


def _day(ordinal: float) -> dt.date:
    return dt.date.fromordinal(round(float(ordinal)))


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value is not pd.NaT


def _as_date(value: object) -> dt.date | None:
    if not _present(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    assert isinstance(value, dt.date)
    return value


def _clamp(day: dt.date, low: dt.date | None, high: dt.date | None) -> dt.date:
    """``day`` inside [low, high]; the upper bound wins when the bounds contradict each other."""
    if low is not None and day < low:
        day = low
    if high is not None and day > high:
        day = high
    return day


def _max(*days: dt.date | None) -> dt.date | None:
    present = [d for d in days if d is not None]
    return max(present) if present else None


def _min(*days: dt.date | None) -> dt.date | None:
    present = [d for d in days if d is not None]
    return min(present) if present else None


def calibration_of(frame: pd.DataFrame) -> IdDateCalibration | None:
    """NCT number -> registration date, fitted on every record whose registration (posting) date is known."""
    anchors = []
    for trial_id, posted, other in zip(frame["trial_id"], frame["first_posted"], frame["other_posted"], strict=True):
        n = nct_number(trial_id)
        day = _as_date(posted) or _as_date(other)
        if n is not None and day is not None:
            anchors.append((n, day))
    return IdDateCalibration.fit(anchors)


def date_registrations(frame: pd.DataFrame, calibration: IdDateCalibration | None = None) -> pd.DataFrame:
    """Registration date, its source and the interval the evidence allows, for each record.

    ``frame`` has ``registry``, ``trial_id``, ``first_posted``,
    ``first_submitted``, ``other_posted``, ``other_submitted`` (from other
    stored versions), ``start_date``, ``last_update_posted`` and the record's
    own bounds ``not_before`` and ``not_after`` (None where nothing is known).
    The calibration defaults to one fitted on ``frame`` itself.
    """
    cal = calibration if calibration is not None else calibration_of(frame)
    n = len(frame)
    dates: list[dt.date | None] = [None] * n
    sources = ["none"] * n
    earliest: list[dt.date | None] = [None] * n
    latest: list[dt.date | None] = [None] * n
    low = [_as_date(v) for v in frame["not_before"]]
    high = [_as_date(v) for v in frame["not_after"]]
    ids = list(frame["trial_id"])
    beyond: list[int] = []  # rows with an NCT number past the calibrated range

    stated = (
        ("first_posted", "first_posted"),
        ("other_posted", "other_version"),
        ("first_submitted", "first_submitted"),
        ("other_submitted", "other_version"),
    )
    columns = {name: list(frame[name]) for name, _ in stated}
    fallbacks = {name: list(frame[name]) for name in ("start_date", "last_update_posted")}
    for i in range(n):
        for column, source in stated:
            day = _as_date(columns[column][i])
            if day is not None:
                dates[i], sources[i], earliest[i], latest[i] = day, source, day, day
                break
        else:
            number = nct_number(ids[i])
            year = chictr_year(ids[i])
            if number is not None and cal is not None and cal.covers(number):
                below, above = cal.neighbours(number)
                lo, hi = _max(low[i], below), _min(high[i], above)
                dates[i] = _clamp(cal.estimate(number), low[i], high[i])
                sources[i], earliest[i], latest[i] = "estimated_from_id", _min(lo, dates[i]), _max(hi, dates[i])
            elif number is not None and cal is not None and number < cal.first[0]:
                # Numbered below every anchor (the registry's first records): the first anchor's date, at most.
                dates[i] = _clamp(cal.first[1], low[i], high[i])
                sources[i], earliest[i], latest[i] = "extrapolated_from_id", low[i], _min(high[i], cal.first[1])
            elif number is not None and cal is not None:
                beyond.append(i)
            elif year is not None:
                lo, hi = _max(low[i], dt.date(year, 1, 1)), _min(high[i], dt.date(year, 12, 31))
                dates[i] = _clamp(dt.date(year, 7, 1), lo, hi)
                sources[i], earliest[i], latest[i] = "year_from_id", _min(lo, dates[i]), _max(hi, dates[i])
            else:
                for column in ("start_date", "last_update_posted"):
                    day = _as_date(fallbacks[column][i])
                    if day is not None:
                        dates[i] = _clamp(day, low[i], high[i])
                        sources[i], earliest[i], latest[i] = column, low[i], high[i]
                        break
    if beyond and cal is not None:
        _extrapolate(beyond, ids, low, high, cal, dates, sources, earliest, latest)
    out = frame[["registry", "trial_id"]].copy()
    out["registration_date"] = pd.Series(dates, index=frame.index, dtype="object")
    out["registration_date_source"] = sources
    out["registration_date_earliest"] = pd.Series(earliest, index=frame.index, dtype="object")
    out["registration_date_latest"] = pd.Series(latest, index=frame.index, dtype="object")
    return out


def _extrapolate(
    rows: list[int],
    ids: list[str],
    low: list[dt.date | None],
    high: list[dt.date | None],
    cal: IdDateCalibration,
    dates: list[dt.date | None],
    sources: list[str],
    earliest: list[dt.date | None],
    latest: list[dt.date | None],
) -> None:
    """Dates for NCT numbers past the calibrated range: between the last anchor and the bounds' staircase."""
    rows = sorted(rows, key=lambda i: (nct_number(ids[i]) or 0, ids[i]))
    numbers = [float(nct_number(ids[i]) or 0) for i in rows]
    last_n, last_day = cal.last
    # Running minimum of the upper bounds from the newest number down: a bound of every smaller number too.
    ceiling: list[dt.date | None] = [None] * len(rows)
    running: dt.date | None = None
    for k in range(len(rows) - 1, -1, -1):
        running = _min(running, high[rows[k]])
        ceiling[k] = running
    knots_n, knots_o = [float(last_n)], [float(last_day.toordinal())]
    for k, i in enumerate(rows):
        bound = ceiling[k]
        if bound is not None and bound == high[i] and numbers[k] > knots_n[-1]:
            knots_n.append(numbers[k])
            knots_o.append(float(max(bound, last_day).toordinal()))
    for k, i in enumerate(rows):
        if len(knots_n) > 1 and numbers[k] <= knots_n[-1]:
            estimate = _day(float(np.interp(numbers[k], knots_n, knots_o)))
        else:  # no bound above this number: the slope of the last anchors, never before the last corner
            estimate = max(cal.estimate(int(numbers[k])), _day(knots_o[-1]))
        lo = _max(low[i], last_day)
        dates[i] = _clamp(_clamp(estimate, lo, ceiling[k]), low[i], high[i])
        sources[i] = "extrapolated_from_id"
        earliest[i] = _min(lo, dates[i])
        latest[i] = _max(ceiling[k], dates[i]) if ceiling[k] is not None else None


# -- the database's registration dates -------------------------------------------------------------------


_INPUT_QUERY = """
SELECT t.registry, t.trial_id, t.first_posted, t.first_submitted, t.start_date, t.last_update_posted,
       t.version_id,
       least(t.last_update_posted, t.results_first_submitted, t.results_first_posted, v.updated, v.fetched) AS not_after
FROM trials t
LEFT JOIN (
    SELECT registry, record_id, min(record_updated) AS updated,
           CAST(min(timezone('UTC', fetched_at)) AS DATE) AS fetched
    FROM raw_records GROUP BY registry, record_id
) v ON v.registry = t.registry AND v.record_id = t.trial_id
"""


def _inputs(store: Store) -> pd.DataFrame:
    """Per record: the dates of its current version, of its other versions, and its own upper bound."""
    frame = store.arrow(_INPUT_QUERY).to_pandas(date_as_object=True)
    frame["other_posted"] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    frame["other_submitted"] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    frame["not_before"] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    missing = frame["first_posted"].isna() & frame["first_submitted"].isna()
    if missing.any():
        other = _other_versions(store, frame.loc[missing, ["registry", "trial_id", "version_id"]])
        if other:
            # Column lists, not ``frame.at`` per row: that cost 90 µs a row, 9 s for 50,000 undated records.
            registries, trial_ids = frame["registry"].tolist(), frame["trial_id"].tolist()
            posted_col, submitted_col = frame["other_posted"].tolist(), frame["other_submitted"].tolist()
            not_after = frame["not_after"].tolist()
            for pos in missing.to_numpy().nonzero()[0]:
                found = other.get((registries[pos], trial_ids[pos]))
                if found:
                    posted, submitted, bound = found
                    posted_col[pos], submitted_col[pos] = posted, submitted
                    not_after[pos] = _min(_as_date(not_after[pos]), bound)
            for name, values in (("other_posted", posted_col), ("other_submitted", submitted_col)):
                frame[name] = pd.Series(values, index=frame.index, dtype="object")
            frame["not_after"] = pd.Series(not_after, index=frame.index, dtype="object")
    return frame


def _other_versions(store: Store, keys: pd.DataFrame) -> dict[tuple[str, str], tuple[Any, Any, dt.date | None]]:
    """(first posted, first submitted, earliest results date) from the other stored versions of these records."""
    rows = store.con.execute(
        """
        SELECT registry, record_id, format, payload FROM raw_records
        WHERE (registry, record_id) IN (SELECT (UNNEST(?), UNNEST(?))) AND version_id NOT IN (SELECT UNNEST(?))
        ORDER BY version_id
        """,
        [list(keys["registry"]), list(keys["trial_id"]), [int(v) for v in keys["version_id"]]],
    ).fetchall()
    found: dict[tuple[str, str], tuple[Any, Any, dt.date | None]] = {}
    for registry, record_id, fmt, payload in rows:
        spec = format_spec(fmt)
        try:
            trial = spec.to_trial(orjson.loads(payload) if spec.is_json else payload)
        except Exception:  # an old version that no longer normalises adds nothing
            log.debug("cannot normalise an old version of %s", record_id)
            continue
        posted, submitted, bound = found.get((registry, record_id), (None, None, None))
        results = _min(_as_date(trial.get("results_first_submitted")), _as_date(trial.get("results_first_posted")))
        found[(registry, record_id)] = (
            posted or trial.get("first_posted"),
            submitted or trial.get("first_submitted"),
            _min(bound, results),
        )
    return found


def compute_registration_dates(store: Store) -> tuple[pd.DataFrame, int]:
    """Every trial's registration date (``OUTPUT_COLUMNS``) and the number of calibration anchors."""
    frame = _inputs(store)
    cal = calibration_of(frame)
    return date_registrations(frame, cal)[OUTPUT_COLUMNS], cal.anchors if cal else 0


def _fingerprint(store: Store) -> str:
    """Changes whenever a stored version or a trial's dates change (cheap: two aggregates)."""
    raw = store.con.execute("SELECT count(*), max(version_id) FROM raw_records").fetchone()
    trials = store.con.execute(
        "SELECT count(*), sum(hash(registry, trial_id, version_id, first_posted, first_submitted, start_date, "
        "last_update_posted, results_first_submitted, results_first_posted)) FROM trials"
    ).fetchone()
    return f"{DATING_METHOD}:{raw}:{trials}"


def _stored_state(store: Store) -> dict[str, Any] | None:
    row = store.con.execute("SELECT value FROM settings WHERE key = ?", [_SETTING]).fetchone()
    return orjson.loads(row[0]) if row else None


def _writable(store: Store) -> bool:
    row = store.con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()")
    found = row.fetchone()
    return not (found and found[0])


def refresh_registration_dates(store: Store, *, force: bool = False) -> bool:
    """Recompute the ``registration_dates`` table when the trials changed; True if it was rewritten."""
    fingerprint = _fingerprint(store)
    state = _stored_state(store)
    if not force and state is not None and state.get("fingerprint") == fingerprint:
        return False
    dates, anchors = compute_registration_dates(store)
    table = pa.Table.from_pandas(dates, preserve_index=False)
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_registration_dates", table)
        con.execute("DELETE FROM registration_dates")
        con.execute("INSERT INTO registration_dates BY NAME SELECT * FROM _registration_dates")
        con.unregister("_registration_dates")
        value = orjson.dumps({"fingerprint": fingerprint, "anchors": anchors}).decode()
        con.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [_SETTING, value])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return True


def _fresh(store: Store) -> bool:
    """Whether ``registration_dates`` holds the current trials' dates (refreshing them if the file is writable)."""
    if _writable(store):
        refresh_registration_dates(store)
        return True
    state = _stored_state(store)
    return state is not None and state.get("fingerprint") == _fingerprint(store)


def registration_dates(store: Store) -> tuple[pd.DataFrame, int]:
    """Every trial's registration date and the calibration's anchors: stored, refreshed if stale.

    A read-only database whose stored dates are stale gets them computed
    in memory (the same function, so the same dates).
    """
    if not _fresh(store):
        log.info("registration dates in %s are out of date; computed for this run only", store.path)
        return compute_registration_dates(store)
    state = _stored_state(store) or {}
    frame = store.arrow(f"SELECT {', '.join(OUTPUT_COLUMNS)} FROM registration_dates")
    return frame.to_pandas(date_as_object=True), int(state.get("anchors", 0))


def export_columns(store: Store) -> tuple[list[str], str] | None:
    """``trial_landscape``'s columns for ``cartatlas export``: the report's trial id, date and places."""
    if not _fresh(store):
        log.warning("registration dates in %s are out of date: open it once without read-only", store.path)
    cols = [
        "l.cluster_id",
        "l.registration_date",
        "l.registration_date_source",
        "l.registration_date_earliest",
        "l.registration_date_latest",
        "l.location_countries",
        "l.location_source",
        "l.region_codes",
        "l.regions",
        "l.cities",
    ]
    return cols, "LEFT JOIN trial_landscape l USING (registry, trial_id)"


EXPORT_EXTENSIONS["landscape"] = export_columns
