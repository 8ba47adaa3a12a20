"""Data and space for a chart: tables made plain JSON, rows in the report's order, axis ends, labels apart.

Vega-Lite data must be plain JSON: the landscape tables carry Python lists
(``trial_ids`` and friends) for traceability, which are dropped here; the
HTML report links counts to trials from the tables themselves.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures.theme import LABEL_SIZE
from cartatlas.report.labels import rank_key


def _is_listlike(value: Any) -> bool:
    return isinstance(value, list | tuple | dict | set | frozenset | np.ndarray)


def plain_frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The table without its list columns (``trial_ids``, ...) and with dates as ISO text.

    Vega-Lite data must be JSON records; lists of ids would bloat every spec
    and are not what a chart shows.
    """
    if frame is None:
        return pd.DataFrame()
    keep = [c for c in frame.columns if not frame[c].map(_is_listlike).any()]
    out = frame[keep].copy().reset_index(drop=True)
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
    return out


def by_rank(frame: pd.DataFrame, label: str, count: str = "n") -> pd.DataFrame:
    """Rows as the report's tables order them (``labels.rank_key``): most first, then by label."""
    order = sorted(range(len(frame)), key=lambda i: rank_key(int(frame[count].iloc[i]), str(frame[label].iloc[i])))
    return frame.iloc[order].reset_index(drop=True)


def counted_rows(landscape: Landscape, name: str, count: str = "n") -> pd.DataFrame:
    """The landscape table ``name``'s rows that count something (empty when there are none)."""
    frame = landscape.tables.get(name)
    if frame is None or frame.empty or count not in frame.columns:
        return pd.DataFrame()
    return frame[frame[count] > 0]


def nice_ceiling(value: float) -> float:
    """The next round number at or above ``value`` (1, 1.2, 1.5, 2, ... 8 x 10^k): an axis end to plan labels on."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    end = next((step * power for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if value <= step * power), 10 * power)
    # Counts: a whole number, and at least 2 so that an axis of 0-1 trials does not tick at 0.5.
    return float(max(math.ceil(end), 2))


def dodge(values: Sequence[float], gap: float, low: float) -> list[float]:
    """Label positions near ``values`` but at least ``gap`` apart and not below ``low``: no overlapping labels.

    Top-down, each label moves down only as far as the one above requires;
    then bottom-up, labels pushed below ``low`` move back up, again only as
    far as needed, so labels away from a crowd stay beside their points.
    """
    order = sorted(range(len(values)), key=lambda i: -values[i])
    placed = {i: float(values[i]) for i in order}
    for above, below in itertools.pairwise(order):
        placed[below] = min(placed[below], placed[above] - gap)
    floor = low
    for i in reversed(order):
        placed[i] = max(placed[i], floor)
        floor = placed[i] + gap
    return [placed[i] for i in range(len(values))]


def text_width(text: str, size: float = LABEL_SIZE) -> float:
    """Rough printed width of ``text`` in points (Liberation Sans: ~0.55 em for digits and capitals)."""
    narrow = sum(ch in " .,:;()|/-'ijlrtf1" for ch in text)
    return size * (0.56 * (len(text) - narrow) + 0.3 * narrow)


def axis_end_for_labels(
    values: Iterable[float],
    labels: Iterable[str],
    *,
    width: float,
    categories: Iterable[str],
    label_limit: float,
    minimum: float = 0.0,
) -> float:
    """An axis end so that the label printed after the longest bar stays inside the figure.

    The plot's width is the figure's minus the category labels on the left;
    a bar of value v ends at v / end of it, and its label needs a few points
    more.  Rounded up to a number the axis can tick.
    """
    axis_width = min(label_limit, max((text_width(c) for c in categories), default=0.0)) + 12
    plot = max(width - axis_width - 8, 40.0)
    need = minimum
    for value, label in zip(values, labels, strict=True):
        room = plot - text_width(str(label)) - 6
        need = max(need, value * plot / max(room, plot / 4))
    return nice_ceiling(need) if need > 0 else 1.0


def percent(n: pd.Series, total: float) -> pd.Series:
    return (100 * n / total).round(1) if total else n * 0.0
