"""The report's figures as Altair charts, declared once each, and their export to PNG and SVG without a browser.

Every figure is one :class:`Figure` record (name, builder, caption, width,
place on the page) standing next to its builder, in a module per kind of view:

* ``over_time.py``: Fig. 1a, cumulative registrations per country group, the
  same per disease branch, and the focus country's targets year by year;
* ``shares.py``: the inset of Fig. 1a (phases per group) and sponsor types per group;
* ``targets.py``: Fig. 1b/1c, the focus country's trials per target;
* ``ranked.py``: regions, platforms, product sources, the most active sponsors;
* ``publications.py``: Fig. 2a-2c, published clinical reports (drawn from the
  tables of ``analysis/publications.py``).

:data:`FIGURES` gathers the records; the report writes each one and its page
shows each one where its record says, the style of all of them is
``theme.py`` (one colour per country group everywhere), and a notebook gets
exactly the report's chart from ``Atlas.figure(name)`` or ``FIGURES[name].draw(landscape)``.
The figures follow Wei et al., Cell Mol Immunol 2021.  An empty table draws a
titled chart saying there is nothing to count instead of failing, so a report
for a narrow filter still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures import over_time, publications, ranked, shares, targets
from cartatlas.report.figures.declare import SECTIONS, Figure, declare
from cartatlas.report.figures.export import chart_title, save_figure
from cartatlas.report.figures.layout import plain_frame
from cartatlas.report.figures.over_time import fig_cumulative, fig_focus_target_timelines
from cartatlas.report.figures.publications import (
    fig_publications_per_region,
    fig_publications_per_target,
    fig_publications_per_year,
)
from cartatlas.report.figures.ranked import fig_platforms, fig_product_source, fig_regions, fig_top_sponsors
from cartatlas.report.figures.shares import fig_phase_by_group, fig_sponsor_type_by_group
from cartatlas.report.figures.targets import fig_focus_targets
from cartatlas.report.figures.theme import (
    DOUBLE_COLUMN,
    FONT,
    GROUP_COLOURS,
    PNG_PPI,
    SINGLE_COLUMN,
    FigureChart,
    cartatlas_theme,
    group_colours,
    theme_config,
)

#: Every figure of the report, by name, in the order the page shows them.
FIGURES = declare(over_time.FIGURES, shares.FIGURES, targets.FIGURES, ranked.FIGURES, publications.FIGURES)

__all__ = [
    "DOUBLE_COLUMN",
    "FIGURES",
    "FONT",
    "GROUP_COLOURS",
    "PNG_PPI",
    "SECTIONS",
    "SINGLE_COLUMN",
    "Figure",
    "FigureChart",
    "caption",
    "cartatlas_theme",
    "chart_title",
    "fig_cumulative",
    "fig_focus_target_timelines",
    "fig_focus_targets",
    "fig_phase_by_group",
    "fig_platforms",
    "fig_product_source",
    "fig_publications_per_region",
    "fig_publications_per_target",
    "fig_publications_per_year",
    "fig_regions",
    "fig_sponsor_type_by_group",
    "fig_top_sponsors",
    "figure_title",
    "group_colours",
    "plain_frame",
    "render_figures",
    "save_figure",
    "theme_config",
]


def caption(name: str, landscape: Landscape) -> str:
    """The caption the report prints under figure ``name``: what is counted and how, in words."""
    return FIGURES[name].caption(landscape)


def figure_title(name: str, landscape: Landscape) -> str:
    """Figure ``name``'s title and subtitle as one line (for a heading or alt text)."""
    return chart_title(FIGURES[name].draw(landscape))


def render_figures(
    landscape: Landscape, out_dir: str | Path, *, formats: Sequence[str] = ("png", "svg")
) -> dict[str, list[Path]]:
    """Every figure of :data:`FIGURES` the landscape has data for, written to ``out_dir``; name -> files."""
    return {
        name: save_figure(figure.draw(landscape), out_dir, name, formats=formats)
        for name, figure in FIGURES.items()
        if figure.drawn_for(landscape)
    }
