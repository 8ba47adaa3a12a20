"""The ranked horizontal bar chart several figures share (regions, platforms, sponsors, Fig. 2b and 2c).

One builder for one shape: bars in a given order, the count printed at each
bar's end, long names wrapped rather than cut; and the focus country's
regions drawn alike whether they count trial sites or reporting institutions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures.layout import axis_end_for_labels, by_rank
from cartatlas.report.figures.theme import (
    BAR_STEP,
    GREY,
    LABEL_SIZE,
    SINGLE_COLUMN,
    SOFT_INK,
    FigureChart,
    count_axis,
    finish,
    focus_colour,
    heading,
)


def ranked_bars(
    data: pd.DataFrame,
    category: str,
    order: Sequence[str],
    title: str,
    subtitle: str,
    *,
    category_title: str,
    colour: alt.Color | str,
    width: int = SINGLE_COLUMN,
    label: str = "n",
    label_limit: int = 110,
    wrap_chars: int | None = None,
    extra_tooltip: Sequence[alt.Tooltip] = (),
    unit: str = "Trials",
) -> FigureChart:
    """Horizontal bars in the given order, of the column ``n``, with ``label`` printed at each bar's end.

    With ``wrap_chars``, a category name longer than that is broken onto two
    lines rather than cut off (the rows then get taller).  ``unit`` names what
    is counted, on the axis and in the tooltip ("Trials (n)").
    """
    step: float = BAR_STEP
    axis_extra: dict[str, Any] = {}
    name_field = category
    if wrap_chars:
        lines = {c: textwrap.wrap(str(c), wrap_chars) or [str(c)] for c in data[category]}
        if any(len(v) > 1 for v in lines.values()):
            wrapped = {c: "\n".join([v[0], " ".join(v[1:])] if len(v) > 1 else v) for c, v in lines.items()}
            data = data.assign(**{f"{category}_wrapped": data[category].map(wrapped)})
            order = [wrapped[c] for c in order]
            category = f"{category}_wrapped"
            line_height = LABEL_SIZE + 1.5
            # Vega puts a two-line label's first line on the row's middle; lift those half a line to centre them.
            axis_extra = {
                "labelExpr": "split(datum.label, '\\n')",
                "labelLineHeight": line_height,
                "labelOffset": {
                    "condition": {"test": "indexof(datum.value, '\\n') >= 0", "value": -line_height / 2},
                    "value": 0,
                },
            }
            step = 2 * (LABEL_SIZE + 1.5) + 3
    x_max = axis_end_for_labels(
        data["n"].astype(float),
        data[label].astype(str),
        width=width,
        categories=[line for c in data[category].astype(str) for line in c.split("\n")],
        label_limit=label_limit,
    )
    x_scale = alt.Scale(domain=[0, x_max], nice=False)
    y = alt.Y(
        f"{category}:N",
        sort=list(order),
        title=None,
        axis=alt.Axis(labelLimit=label_limit, **axis_extra),
        scale=alt.Scale(paddingInner=0.2),
    )
    tooltip = [
        alt.Tooltip(f"{name_field}:N", title=category_title),
        alt.Tooltip("n:Q", title=f"{unit} (n)", format="d"),
        *extra_tooltip,
    ]
    base = alt.Chart(data).encode(y=y, tooltip=tooltip)
    bars = base.mark_bar().encode(
        x=alt.X("n:Q", scale=x_scale, axis=count_axis(x_max, f"{unit} (n)")),
        color=colour if isinstance(colour, alt.Color) else alt.value(colour),
    )
    text = base.mark_text(align="left", baseline="middle", dx=2, color=SOFT_INK).encode(
        x=alt.X("n:Q", scale=x_scale), text=f"{label}:N"
    )
    chart = alt.layer(bars, text, title=heading(title, subtitle, width)).properties(height={"step": step})
    return finish(chart, width)


def region_bars(
    landscape: Landscape,
    data: pd.DataFrame,
    title: str,
    subtitle: str,
    *,
    not_placed: str,
    width: int,
    unit: str = "Trials",
    top: int | None = None,
) -> FigureChart:
    """The focus country's counts per region (``region``, ``n``), ranked, in its group's colour.

    The row of what could not be placed in a region (``not_placed``) comes
    last and grey, whatever its count: it is not a region to rank.
    """
    data = by_rank(data, "region")
    data = data.sort_values("region", key=lambda region: region == not_placed, kind="stable")
    data = data.head(top).reset_index(drop=True) if top is not None else data.reset_index(drop=True)
    data["kind"] = np.where(data["region"] == not_placed, "Not placed", "Region")
    colour = alt.Color(
        "kind:N",
        scale=alt.Scale(domain=["Region", "Not placed"], range=[focus_colour(landscape), GREY]),
        legend=None,
    )
    return ranked_bars(
        data,
        "region",
        list(data["region"]),
        title,
        subtitle,
        category_title="Region",
        colour=colour,
        width=width,
        unit=unit,
    )
