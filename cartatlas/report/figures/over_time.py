"""Trials over time: Fig. 1a (cumulative registrations per country group), the same view per disease branch,
and the focus country's most frequent targets year by year (small multiples).

Each figure is declared in :data:`FIGURES` at the end of this module, next to
its builder and caption.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import altair as alt
import pandas as pd

from cartatlas.analysis.landscape import NO_LOCATION, TARGET_BRANCHES, Landscape
from cartatlas.report.figures.declare import Figure
from cartatlas.report.figures.layout import dodge, nice_ceiling, plain_frame
from cartatlas.report.figures.theme import (
    AXIS_TITLE_SIZE,
    DOUBLE_COLUMN,
    FONT,
    GREY,
    INK,
    LABEL_SIZE,
    SINGLE_COLUMN,
    SOFT_INK,
    FigureChart,
    count_axis,
    empty,
    finish,
    focus_colour,
    group_order,
    group_scale,
    heading,
    theme_config,
)
from cartatlas.report.figures.words import (
    as_of,
    as_of_line,
    as_of_text,
    branch_words,
    cap,
    date_sources_text,
    date_text,
    focus_name,
    groups_text,
    no_trials,
    subject,
)

# -- Fig. 1a: cumulative registrations per group -------------------------------------------

CUMULATIVE_HEIGHT = 150


def _branch_years(landscape: Landscape, branch: str) -> pd.DataFrame | None:
    """One branch's rows of ``branch_by_year``, from the year before its first trial (so lines start at zero)."""
    table = landscape.tables.get("branch_by_year")
    if table is None or table.empty:
        return None
    rows = table[table["branch"] == TARGET_BRANCHES[branch]]
    started = rows.loc[rows["n"] > 0, "year"]
    if started.empty:
        return rows.iloc[0:0]
    return rows[rows["year"] >= int(started.min()) - 1]


def fig_cumulative(landscape: Landscape, branch: str | None = None, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Fig. 1a: trials registered up to the end of each year, one line per country group.

    With ``branch`` (heme, solid, autoimmune), the same view of that branch's
    trials (``branch_by_year``).  The x axis is time, not a list of years:
    each point sits at the date it counts up to (31 December, and the as-of
    date for the last one), so a half-year cut is drawn half a year after the
    last year end, and the tick "2015" marks the count "by January 2015" as
    the review states it.  A dashed rule labels the cut; end values are
    printed (nudged apart) so the totals can be read without a tooltip.
    """
    cut = as_of(landscape)
    if branch is None:
        title = f"{cap(subject(landscape))} registered, by country group"
        table = landscape.tables.get("cumulative_by_year")
    else:
        title = f"{cap(subject(landscape))} in {branch_words(branch)} registered, by country group"
        table = _branch_years(landscape, branch)
    subtitle = f"Cumulative count; {as_of_line(landscape)}"
    if table is None or table.empty or table["n"].max() <= 0:
        return empty(title, subtitle, no_trials(landscape), width)
    data = plain_frame(table)
    keep = data.groupby("group")["n"].transform("max") > 0
    data = data[keep].reset_index(drop=True)
    data["year"] = data["year"].astype(int)
    data["up_to"] = data["up_to"].astype(str)
    groups = group_order(landscape, data["group"])
    first, last = int(data["year"].min()), int(data["year"].max())
    last_cut = dt.date.fromisoformat(str(data.loc[data["year"] == last, "up_to"].iloc[0]))
    y_max = nice_ceiling(float(data["n"].max()) * 1.05)

    # End labels: the count at the cut, nudged apart by one label height.
    ends = data[data["year"] == last].set_index("group").reindex(groups).reset_index()
    ends["label_y"] = dodge(list(ends["n"].astype(float)), gap=8.5 * y_max / CUMULATIVE_HEIGHT, low=0.0)
    ends = ends[["group", "up_to", "n", "label_y"]]

    # Ticks on 1 January of round years (every 1, 2 or 5 years), inside the span the points cover.
    end_year = last + 1 if last_cut.month == 12 and last_cut.day == 31 else last
    span = end_year - first
    step = next((s for s in (1, 2, 5, 10) if span / s <= 6), 20)
    tick_years = [y for y in range(first + 1, end_year + 1) if y % step == 0] or [end_year]
    ticks = [alt.DateTime(year=y, month=1, date=1, utc=True) for y in tick_years]
    domain = [
        alt.DateTime(year=first, month=12, date=31, utc=True)
        if first < last
        else alt.DateTime(year=first, month=1, date=1, utc=True),
        alt.DateTime(year=last_cut.year, month=last_cut.month, date=last_cut.day, utc=True),
    ]
    x_scale = alt.Scale(type="utc", domain=domain, nice=False, padding=0)
    x = alt.X(
        "up_to:T",
        scale=x_scale,
        axis=alt.Axis(
            title="Year of registration", values=ticks, format="%Y", formatType="utc", grid=False, labelOverlap=False
        ),
    )
    y_scale = alt.Scale(domain=[0, y_max], nice=False)
    y = alt.Y(
        "n:Q",
        scale=y_scale,
        axis=count_axis(y_max, "Trials registered (cumulative)"),
    )
    colour_scale = group_scale(landscape, groups)
    colour = alt.Color(
        "group:N",
        scale=colour_scale,
        legend=alt.Legend(title=None, orient="top-left", offset=4, symbolType="stroke", symbolStrokeWidth=2),
    )
    tooltip = [
        alt.Tooltip("group:N", title="Group"),
        alt.Tooltip("up_to:T", title="Registered up to", format="%d %b %Y", formatType="utc"),
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
    ]
    base = alt.Chart(data).encode(x=x, y=y, color=colour)
    lines = base.mark_line(strokeWidth=1.5)
    points = base.mark_point(filled=True, size=16, opacity=1).encode(tooltip=tooltip)
    note = pd.DataFrame({"up_to": [cut.isoformat()], "label": [date_text(cut)]})
    rule = (
        alt.Chart(note)
        .mark_rule(strokeDash=[2, 2], color=GREY, strokeWidth=0.6)
        .encode(x=alt.X("up_to:T", scale=x_scale))
    )
    rule_text = (
        alt.Chart(note)
        .mark_text(align="right", baseline="top", dx=-3, dy=1, fontSize=LABEL_SIZE, color=SOFT_INK)
        .encode(x=alt.X("up_to:T", scale=x_scale), y=alt.value(0), text="label:N")
    )
    labels = (
        alt.Chart(ends)
        .mark_text(align="left", baseline="middle", dx=5, fontSize=LABEL_SIZE, fontWeight="bold")
        .encode(
            x=alt.X("up_to:T", scale=x_scale),
            y=alt.Y("label_y:Q", scale=y_scale),
            text=alt.Text("n:Q", format="d"),
            color=alt.Color("group:N", scale=colour_scale, legend=None),
        )
    )
    chart = alt.layer(rule, rule_text, lines, points, labels, title=heading(title, subtitle, width))
    return finish(chart.properties(height=CUMULATIVE_HEIGHT), width)


# -- per-target timelines: small multiples ---------------------------------------------------

TIMELINE_COLUMNS = 4
TIMELINE_PANEL_HEIGHT = 60
TIMELINE_SPACING = 10


def fig_focus_target_timelines(landscape: Landscape, *, width: int = DOUBLE_COLUMN) -> FigureChart:
    """New trials per registration year for the focus group's most frequent targets, one small panel each.

    Small multiples on one shared y scale rather than one line per target:
    eight overlapping lines cannot be told apart, and a shared scale keeps the
    panels comparable (a target with few trials shows as short bars, not as
    a stretched copy of CD19's curve).  The panel title carries each target's
    total; the last year counts only up to the as-of date, as the subtitle says.
    """
    focus = focus_name(landscape)
    table = landscape.tables.get("focus_target_years")
    cut = as_of(landscape)
    title = f"{focus}: new {subject(landscape)} per year, for the most frequent targets"
    subtitle = (
        f"{cap(as_of_line(landscape))}; by year of registration ({cut.year}: up to {date_text(cut)}). "
        "A trial with two targets counts under both"
    )
    if table is None or table.empty or table["n"].sum() <= 0:
        return empty(title, subtitle, f"No trials in {focus} {as_of_line(landscape)}", width)
    data = plain_frame(table)
    totals = data.groupby("target")["n"].sum()
    order = list(data.sort_values(["rank", "year"])["target"].drop_duplicates())
    title = f"{focus}: new {subject(landscape)} per year, for the {len(order)} most frequent targets"
    panels = {t: f"{t} ({int(totals[t])} trials)" for t in order}
    data["panel"] = data["target"].map(panels)
    columns = min(TIMELINE_COLUMNS, len(order))
    axis_room = 34  # the shared y axis, its labels and title on the left of each row
    panel_width = math.floor((width - axis_room - TIMELINE_SPACING * (columns - 1)) / columns)
    years = sorted(int(y) for y in data["year"].unique())
    step = next((s for s in (1, 2, 5, 10) if len(years) / s <= 5), 20)
    y_max = nice_ceiling(float(data["n"].max()))
    colour = focus_colour(landscape)
    tooltip = [
        alt.Tooltip("target:N", title="Target"),
        alt.Tooltip("year:O", title="Year of registration"),
        alt.Tooltip("n:Q", title="New trials (n)", format="d"),
    ]
    bars = (
        alt.Chart(data)
        .mark_bar(color=colour)
        .encode(
            x=alt.X(
                "year:O",
                sort=years,
                scale=alt.Scale(domain=years, paddingInner=0.15),
                axis=alt.Axis(title=None, labelAngle=0, values=[y for y in years if y % step == 0]),
            ),
            y=alt.Y("n:Q", scale=alt.Scale(domain=[0, y_max], nice=False), axis=count_axis(y_max, "New trials (n)")),
            tooltip=tooltip,
        )
        .properties(width=panel_width, height=TIMELINE_PANEL_HEIGHT)
    )
    chart = bars.facet(
        facet=alt.Facet(
            "panel:N",
            sort=[panels[t] for t in order],
            title=None,
            header=alt.Header(
                labelFont=FONT, labelFontSize=AXIS_TITLE_SIZE, labelColor=INK, labelAnchor="start", labelPadding=2
            ),
        ),
        columns=columns,
        spacing=TIMELINE_SPACING,
        title=heading(title, subtitle, width),
    )
    # Small multiples size their panels themselves: Vega-Lite cannot fit a facet to a total width.
    return chart.configure(**{**theme_config(), "autosize": {"type": "pad", "contains": "padding"}})


# -- captions ---------------------------------------------------------------------------


def _caption_cumulative(landscape: Landscape) -> str:
    cut = as_of_text(landscape)
    return (
        f"Cumulative number of {subject(landscape)} registered by the end of each year, per country group; "
        f"the last point counts registrations up to {cut}. Groups: {groups_text(landscape)}. "
        "A trial counts in every group where it has a site, and under its sponsor's country when it lists no "
        f"site ('{NO_LOCATION}' when neither is known)."
        + date_sources_text(landscape)
        + " Compare Wei et al., Cell Mol Immunol 2021, Fig. 1a."
    )


def _caption_over_time(landscape: Landscape, branch: str) -> str:
    return (
        f"Cumulative number of {subject(landscape)} in {branch_words(branch)} registered by the end of each year, "
        f"per country group; the last point counts registrations up to {as_of_text(landscape)}. A trial "
        "counts in every group where it has a site, and in each disease branch its diseases belong to. The table "
        "below gives the trials registered in each year and the running total."
    )


def _caption_timelines(landscape: Landscape) -> str:
    focus = focus_name(landscape)
    return (
        f"{cap(subject(landscape))} with a site in {focus} registered in each year, for the targets most often "
        f"named by {focus}'s trials (any disease branch; the number of trials in each panel's title). A trial "
        f"naming two targets counts under both; the last year counts up to {as_of_text(landscape)}."
    )


FIGURES = (
    Figure("fig1a_cumulative", fig_cumulative, _caption_cumulative, section="fig1a"),
    *(
        Figure(
            f"fig_over_time_{branch}",
            functools.partial(fig_cumulative, branch=branch),
            functools.partial(_caption_over_time, branch=branch),
            section=f"branch-{branch}/over-time",
        )
        for branch in ("heme", "solid", "autoimmune")
    ),
    Figure(
        "fig_focus_target_timelines",
        fig_focus_target_timelines,
        _caption_timelines,
        section="targets",
        width=DOUBLE_COLUMN,
    ),
)
