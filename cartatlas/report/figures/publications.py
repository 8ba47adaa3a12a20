"""Fig. 2a-2c: published clinical reports of CAR products, per year and country group, and the focus
country's reports per target and per region.

The counting is :mod:`cartatlas.analysis.publications` (tables with the PMIDs
behind every number, in the landscape as ``pub_fig2a``, ``pub_fig2b``,
``pub_fig2c``); this module only draws them, in the same style and the same
group colours as Fig. 1, so China is one colour in both.  The figures are drawn
only when the database holds clinical reports (``needs``).

Each figure is declared in :data:`FIGURES` at the end of this module, next to
its builder and caption.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures.bars import ranked_bars, region_bars
from cartatlas.report.figures.declare import Figure
from cartatlas.report.figures.layout import by_rank, nice_ceiling
from cartatlas.report.figures.theme import (
    GREY,
    NEUTRAL,
    SINGLE_COLUMN,
    FigureChart,
    category_colour,
    count_axis,
    empty,
    finish,
    focus_colour,
    group_order,
    group_scale,
    heading,
    legend_on_top,
    tint,
)
from cartatlas.report.figures.words import as_of_line, cap, focus_name

#: Fig. 2c's row for reports whose institution could not be placed in a region.
NO_REGION = "region not stated"
REPORTS_HEIGHT = 130


def _reports(landscape: Landscape, name: str) -> pd.DataFrame:
    """A publication table without its PMID lists, its count column (``reports``) as ``n``; empty if none count."""
    frame = landscape.tables.get(name)
    if frame is None or frame.empty or not (frame["reports"] > 0).any():
        return pd.DataFrame()
    return frame.drop(columns=["pmids"], errors="ignore").rename(columns={"reports": "n"})


def fig_publications_per_year(
    landscape: Landscape, *, width: int = SINGLE_COLUMN, cumulative: bool = False
) -> FigureChart:
    """Fig. 2a: published clinical reports per year, one bar per country group (or, ``cumulative``, a line).

    The groups are the landscape's, in its order and colours: a reader who
    learnt China's colour in Fig. 1a finds China's reports in it here.
    """
    title = "Published CAR clinical reports per year, by country group"
    subtitle = f"{cap(as_of_line(landscape, 'published'))}; country of the reporting institution"
    data = _reports(landscape, "pub_fig2a")
    if data.empty:
        return empty(title, subtitle, "No reports", width)
    data["year"] = data["year"].astype(int)
    groups = group_order(landscape, data["group"])
    value = "cumulative" if cumulative else "n"
    y_max = nice_ceiling(float(data[value].max()))
    axis_title = "Clinical reports (cumulative)" if cumulative else "Clinical reports (n)"
    years = list(range(int(data["year"].min()), int(data["year"].max()) + 1))
    step = next((s for s in (1, 2, 5, 10) if len(years) / s <= 8), 20)
    colour = alt.Color(
        "group:N",
        scale=group_scale(landscape, groups),
        sort=groups,
        legend=legend_on_top(),
    )
    tooltip = [
        alt.Tooltip("group:N", title="Group"),
        alt.Tooltip("year:O", title="Year of publication"),
        alt.Tooltip("n:Q", title="Clinical reports (n)", format="d"),
        alt.Tooltip("cumulative:Q", title="Up to that year (n)", format="d"),
    ]
    x = alt.X(
        "year:O",
        sort=years,
        scale=alt.Scale(domain=years, paddingInner=0.15),
        axis=alt.Axis(title="Year of publication", labelAngle=0, values=[y for y in years if y % step == 0]),
    )
    y = alt.Y(f"{value}:Q", scale=alt.Scale(domain=[0, y_max], nice=False), axis=count_axis(y_max, axis_title))
    base = alt.Chart(data)
    if cumulative:
        chart = base.mark_line(point=True).encode(x=x, y=y, color=colour, tooltip=tooltip)
    else:
        offset = alt.XOffset("group:N", sort=groups, scale=alt.Scale(paddingInner=0.05))
        chart = base.mark_bar().encode(x=x, xOffset=offset, y=y, color=colour, tooltip=tooltip)
    chart = chart.properties(title=heading(title, subtitle, width), height=REPORTS_HEIGHT)
    return finish(chart, width)


def fig_publications_per_target(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Fig. 2b: the focus group's clinical reports per target, shaded by disease branch in the group's colour."""
    focus = focus_name(landscape)
    title = f"{focus}: published CAR clinical reports, by target"
    subtitle = f"{cap(as_of_line(landscape, 'published'))}. A report on two targets counts under both"
    data = _reports(landscape, "pub_fig2b")
    if data.empty:
        return empty(title, subtitle, "No reports", width)
    data = by_rank(data, "target")
    colour_of_focus = focus_colour(landscape)
    shades = {
        "hematologic": colour_of_focus,
        "solid tumour": tint(colour_of_focus, 0.55),
        "other": NEUTRAL,
        "unknown": GREY,
    }
    colour = category_colour("branch", data["branch"], shades)
    return ranked_bars(
        data,
        "target",
        list(data["target"]),
        title,
        subtitle,
        category_title="Target",
        colour=colour,
        width=width,
        unit="Clinical reports",
        extra_tooltip=[alt.Tooltip("branch:N", title="Disease branch")],
    )


def fig_publications_per_region(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Fig. 2c: the focus group's clinical reports by region (province) of the reporting institution."""
    focus = focus_name(landscape)
    title = f"{focus}: published CAR clinical reports, by region of the reporting institution"
    subtitle = cap(as_of_line(landscape, "published"))
    data = _reports(landscape, "pub_fig2c")
    if data.empty:
        return empty(title, subtitle, "No reports", width)
    return region_bars(landscape, data, title, subtitle, not_placed=NO_REGION, width=width, unit="Clinical reports")


# -- captions ---------------------------------------------------------------------------


def _caption_per_year(landscape: Landscape) -> str:
    return (
        "Published clinical reports of CAR products (PubMed; kind decided from the abstract) per year of "
        "publication, by the country of the reporting institution (corresponding author, else first author). "
        "Compare Wei et al. 2021, Fig. 2a."
    )


def _caption_per_target(landscape: Landscape) -> str:
    return (
        f"{focus_name(landscape)}'s clinical reports per target antigen; a report on two targets counts for each. "
        "Compare Wei et al. 2021, Fig. 2b."
    )


def _caption_per_region(landscape: Landscape) -> str:
    return (
        f"{focus_name(landscape)}'s clinical reports by the region (province) of the reporting institution. "
        "Compare Wei et al. 2021, Fig. 2c."
    )


FIGURES = (
    Figure(
        "fig2a_reports_per_year",
        fig_publications_per_year,
        _caption_per_year,
        section="publications",
        needs="pub_fig2a",
    ),
    Figure(
        "fig2b_reports_per_target",
        fig_publications_per_target,
        _caption_per_target,
        section="publications",
        needs="pub_fig2a",
    ),
    Figure(
        "fig2c_reports_per_region",
        fig_publications_per_region,
        _caption_per_region,
        section="publications",
        needs="pub_fig2a",
    ),
)
