"""Shares within each country group: the phases of its trials (the inset of Fig. 1a) and who sponsors them.

Each figure is declared in :data:`FIGURES` at the end of this module, next to
its builder and caption.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

from cartatlas.analysis.landscape import PHASE_ORDER, Landscape
from cartatlas.report.caveats import as_of_caveat
from cartatlas.report.figures.declare import Figure
from cartatlas.report.figures.layout import axis_end_for_labels, counted_rows, plain_frame
from cartatlas.report.figures.theme import (
    SINGLE_COLUMN,
    SOFT_INK,
    FigureChart,
    empty,
    finish,
    group_order,
    group_scale,
    heading,
    legend_on_top,
)
from cartatlas.report.figures.words import as_of_line, as_of_text, cap, no_trials, subject

# -- shares within each group (phase, sponsor type) ----------------------------------------


def _shares_by_group(
    landscape: Landscape,
    table_name: str,
    column: str,
    order: Sequence[str],
    title: str,
    subtitle: str,
    width: int,
) -> FigureChart:
    """Horizontal grouped bars: one row per category, one bar per group, length = the group's share.

    Shares, not counts, because the groups differ several-fold in size; the
    count is printed at the bar's end and both are in the tooltip.
    """
    table = counted_rows(landscape, table_name)
    if table.empty:
        return empty(title, subtitle, no_trials(landscape), width)
    data = plain_frame(table)
    data["group_total"] = data.groupby("group")["n"].transform("sum")
    data["percent"] = (100 * data["n"] / data["group_total"]).round(1)
    data["label"] = data["n"].map(lambda n: f"{n:d}")
    groups = group_order(landscape, data["group"])
    present = set(data[column])
    categories = [c for c in order if c in present] + sorted(present - set(order))
    y = alt.Y(f"{column}:N", sort=categories, title=None, axis=alt.Axis(labelLimit=110))
    offset = alt.YOffset("group:N", sort=groups, scale=alt.Scale(paddingInner=0.1))
    x_end = axis_end_for_labels(
        data["percent"], data["label"], width=width, categories=categories, label_limit=110, minimum=100
    )
    x = alt.X(
        "percent:Q",
        scale=alt.Scale(domain=[0, max(x_end, 100)], nice=False),  # room for the count printed after a 100% bar
        axis=alt.Axis(title="Share of the group's trials (%)", values=[0, 25, 50, 75, 100], domain=False),
    )
    tooltip = [
        alt.Tooltip("group:N", title="Group"),
        alt.Tooltip(f"{column}:N", title=cap(column.replace("_", " "))),
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
        alt.Tooltip("group_total:Q", title="Trials in group (n)", format="d"),
        alt.Tooltip("percent:Q", title="Share (%)", format=".1f"),
    ]
    base = alt.Chart(data).encode(y=y, yOffset=offset, x=x)
    bars = base.mark_bar().encode(
        color=alt.Color(
            "group:N",
            scale=group_scale(landscape, groups),
            legend=legend_on_top(columns=3 if len(groups) <= 3 else 2),
        ),
        tooltip=tooltip,
    )
    text = base.mark_text(align="left", baseline="middle", dx=2, fontSize=6.5, color=SOFT_INK).encode(
        text="label:N", tooltip=tooltip
    )
    step = 7 if len(groups) > 2 else 9
    chart = alt.layer(bars, text, title=heading(title, subtitle, width)).properties(
        height={"step": step, "for": "offset"}
    )
    return finish(chart, width)


def fig_phase_by_group(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Fig. 1a inset: the phases of each group's trials (a phase 1/2 trial counts as phase 1, as in the review)."""
    title = f"Phase of {subject(landscape)}, by country group"
    subtitle = f"Bar length: share of the group's trials; label: trials (n). {cap(as_of_line(landscape))}"
    return _shares_by_group(landscape, "phase_by_group", "phase_category", PHASE_ORDER, title, subtitle, width)


def fig_sponsor_type_by_group(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Who sponsors the trials in each group (industry, academic / hospital, government)."""
    title = f"Lead sponsor of {subject(landscape)}, by country group"
    subtitle = f"Bar length: share of the group's trials; label: trials (n). {cap(as_of_line(landscape))}"
    order = ["Industry", "Academic / hospital", "Government"]
    return _shares_by_group(landscape, "sponsor_type_by_group", "sponsor_type", order, title, subtitle, width)


# -- captions ---------------------------------------------------------------------------


def _caption_phase(landscape: Landscape) -> str:
    caveat = as_of_caveat(landscape, "phase_by_group") if "as_of" in landscape.facts else ""
    return (
        f"Phase of {subject(landscape)} registered by {as_of_text(landscape)}, as a share of each country "
        "group's trials (numbers at the bars: trials). A trial spanning two phases (phase 1/2) counts in the lower "
        "one, as reviews count; 'Not applicable' covers trials that state no phase. Phase is taken from the "
        f"version current on the cut-off date where one is stored, else from the latest record. {caveat} "
        "Compare Wei et al. 2021, Fig. 1a inset."
    )


def _caption_sponsor_type(landscape: Landscape) -> str:
    return (
        f"Type of lead sponsor of {subject(landscape)} registered by {as_of_text(landscape)}, as a share of "
        "each country group's trials (numbers at the bars: trials). Type as the registry classes the sponsor: "
        "industry; government (for ClinicalTrials.gov: NIH, other federal, other government); academic / hospital "
        "(universities, hospitals, networks, individuals, and sponsors the registry does not class)."
    )


FIGURES = (
    Figure("fig1a_inset_phase_by_group", fig_phase_by_group, _caption_phase, section="phase"),
    Figure("fig_sponsor_type_by_group", fig_sponsor_type_by_group, _caption_sponsor_type, section="sponsors"),
)
