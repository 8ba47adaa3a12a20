"""The one look of every figure: page geometry, type, the colour of each country group, axes and titles.

Every builder of :mod:`cartatlas.report.figures` (Fig. 1, Fig. 2 and the
report's other views) draws through the helpers here and ends with
:func:`finish` or :func:`empty`, which put :func:`theme_config` on the chart;
so a group has one colour everywhere (China the same vermillion in Fig. 1 and
Fig. 2), and a style change is made once.

Design rules, and why:

* Sizes are set in points: one Vega pixel is one typographic point, so a
  chart drawn 241 px wide is 85 mm (a journal's single column) when printed,
  and the fonts set to 7-9 px are 7-9 pt on paper.  ``save_figure`` renders
  the PNG at 300 ppi (scale 300/72) and records 300 dpi in the file.
* Colours come from the Okabe-Ito palette (safe for the common colour-vision
  deficiencies), and a country group has the same colour in every figure, so
  a reader learns it once.  Single-series bars are neutral grey unless they
  show one group's trials (or articles), in which case they take that group's
  colour.
* The font is Liberation Sans, which vl-convert bundles (so the PNG renders
  the same on any machine, offline); SVG names it with metric-compatible
  fallbacks (Arial, Helvetica) because an SVG cannot carry a font without
  bloating every file.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

from cartatlas.analysis.landscape import NO_LOCATION, Landscape
from cartatlas.analysis.publications import UNKNOWN as NO_COUNTRY

# -- page geometry and type ------------------------------------------------------------

PT_PER_MM = 72 / 25.4
#: Total figure width (points = Vega pixels) of a single-column (85 mm) and double-column (174 mm) figure.
SINGLE_COLUMN = round(85 * PT_PER_MM)
DOUBLE_COLUMN = round(174 * PT_PER_MM)
#: PNG resolution: 300 ppi at the printed size above (a 241 pt figure is 1004 px wide).
PNG_PPI = 300

FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
LABEL_SIZE = 7
AXIS_TITLE_SIZE = 8
TITLE_SIZE = 9
SUBTITLE_SIZE = 7
INK = "#222222"
SOFT_INK = "#555555"
#: Height of a row of horizontal bars (points).
BAR_STEP = 11

# -- colours ---------------------------------------------------------------------------

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with any common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
GREY = "#999999"
NEUTRAL = "#5A5A5A"

#: Fixed colours of the country groups used by the shipped schemes; the same group, the same colour, everywhere.
GROUP_COLOURS: dict[str, str] = {
    "China": OKABE_ITO["vermillion"],
    "China (mainland)": OKABE_ITO["vermillion"],
    "United States": OKABE_ITO["blue"],
    "Other countries": OKABE_ITO["bluish_green"],
    NO_LOCATION: GREY,
    NO_COUNTRY: GREY,  # an article whose reporting institution's country is not known (Fig. 2a)
}
#: Colours for groups a user defines (in the order the scheme lists them), chosen to differ from the fixed ones.
EXTRA_GROUP_COLOURS = (
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
)
SPONSOR_TYPE_COLOURS = {
    "Industry": OKABE_ITO["orange"],
    "Academic / hospital": OKABE_ITO["sky_blue"],
    "Government": OKABE_ITO["reddish_purple"],
}
#: What a builder returns: a chart, a layer of charts or small multiples, any of which a notebook displays as is.
FigureChart = alt.Chart | alt.LayerChart | alt.FacetChart


def theme_config() -> dict[str, Any]:
    """The one style every figure shares: small but legible type at print size, no frame, light grid."""
    axis = {
        "labelFont": FONT,
        "titleFont": FONT,
        "labelFontSize": LABEL_SIZE,
        "titleFontSize": AXIS_TITLE_SIZE,
        "titleFontWeight": "normal",
        "labelColor": INK,
        "titleColor": INK,
        "domainColor": SOFT_INK,
        "tickColor": SOFT_INK,
        "domainWidth": 0.6,
        "tickWidth": 0.6,
        "tickSize": 3,
        "labelPadding": 2,
        "titlePadding": 5,
        "gridColor": "#E4E4E4",
        "gridWidth": 0.5,
    }
    return {
        "font": FONT,
        "background": "white",
        "padding": 4,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "view": {"stroke": None, "continuousHeight": 150},
        "axis": axis,
        "axisBand": {"grid": False, "ticks": False, "domain": False, "labelPadding": 3},
        "axisY": {"titleAngle": -90},
        "legend": {
            "labelFont": FONT,
            "titleFont": FONT,
            "labelFontSize": LABEL_SIZE,
            "titleFontSize": LABEL_SIZE,
            "titleFontWeight": "normal",
            "labelColor": INK,
            "symbolSize": 40,
            "symbolStrokeWidth": 0,
            "rowPadding": 2,
            "columnPadding": 8,
            "padding": 0,
        },
        "title": {
            "font": FONT,
            "subtitleFont": FONT,
            "fontSize": TITLE_SIZE,
            "subtitleFontSize": SUBTITLE_SIZE,
            "fontWeight": "bold",
            "color": INK,
            "subtitleColor": SOFT_INK,
            "anchor": "start",
            "frame": "bounds",
            "offset": 6,
            "subtitlePadding": 2,
        },
        "text": {"font": FONT, "fontSize": LABEL_SIZE, "color": INK},
        "bar": {"color": NEUTRAL},
        "line": {"strokeWidth": 1.5},
        "point": {"size": 18, "filled": True},
    }


@alt.theme.register("cartatlas", enable=False)
def cartatlas_theme() -> alt.theme.ThemeConfig:
    """The same style as an Altair theme, for a notebook's own charts (``alt.theme.enable("cartatlas")``)."""
    return alt.theme.ThemeConfig(config=theme_config())  # type: ignore[typeddict-item]


def group_colours(landscape: Landscape) -> dict[str, str]:
    """Colour of each group of the landscape's scheme: fixed for known groups, then the spare palette in order."""
    names = [*landscape.options.groups.names, NO_LOCATION]
    spare = list(EXTRA_GROUP_COLOURS)
    colours: dict[str, str] = {}
    for name in names:
        if name in GROUP_COLOURS:
            colours[name] = GROUP_COLOURS[name]
    for name in names:
        if name not in colours:
            colours[name] = spare.pop(0) if spare else NEUTRAL
    return colours


def group_order(landscape: Landscape, present: Iterable[str]) -> list[str]:
    """The groups found, in the scheme's order (then any others, such as 'Country not stated', by name)."""
    found = set(present)
    names = [*landscape.options.groups.names, NO_LOCATION]
    return [g for g in names if g in found] + sorted(found - set(names))


def group_scale(landscape: Landscape, groups: Sequence[str]) -> alt.Scale:
    """A colour scale giving each group its colour of :func:`group_colours` (unknown names: the fixed ones)."""
    colours = group_colours(landscape)
    return alt.Scale(domain=list(groups), range=[colours.get(g) or GROUP_COLOURS.get(g, NEUTRAL) for g in groups])


def focus_colour(landscape: Landscape) -> str:
    """The colour of the focus country's group: bars that count only its trials (or articles) wear it."""
    group = landscape.options.groups.group_of_country(landscape.options.focus)
    return group_colours(landscape).get(group, NEUTRAL)


def tint(colour: str, amount: float) -> str:
    """``colour`` mixed with white; a lighter partner that stays distinguishable by lightness alone."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


# -- titles, axes, the finished chart ----------------------------------------------------


def wrap(text: str, width: float, size: float, em: float = 0.52) -> list[str]:
    """Lines of ``text`` that fit ``width`` points at ``size`` (Liberation Sans averages ~0.52 em a glyph)."""
    chars = max(12, int(width / (size * em)))
    return textwrap.wrap(text, chars) or [""]


def heading(text: str, subtitle: str, width: int) -> alt.TitleParams:
    """A title and subtitle wrapped to the figure's width."""
    return alt.TitleParams(text=wrap(text, width, TITLE_SIZE, em=0.56), subtitle=wrap(subtitle, width, SUBTITLE_SIZE))


def count_ticks(end: float, most: int = 6) -> list[int]:
    """Whole-number ticks from 0 to ``end`` in steps of 1, 2 or 5 x 10^k (Vega may put ticks at 0.5 otherwise)."""
    step = 1
    while end / step > most:
        for factor in (2, 5, 10):
            if end / (step * factor) <= most or factor == 10:
                step *= factor
                break
    return list(range(0, int(end) + 1, step))


def count_axis(end: float, title: str = "Trials (n)") -> alt.Axis:
    """An axis of counts ending at ``end``, ticked at whole numbers, with a grid."""
    return alt.Axis(title=title, format="d", values=count_ticks(end), grid=True)


def legend_on_top(**extra: Any) -> alt.Legend:
    """The legend of a bar chart: untitled, in a row above the plot, with square symbols."""
    return alt.Legend(title=None, orient="top", direction="horizontal", symbolType="square", offset=6, **extra)


def category_colour(field: str, present: Iterable[str], colours: Mapping[str, str]) -> alt.Color:
    """Colour by a category (sponsor type, disease branch): the known ones in ``colours``' order and colour,
    any others after them by name and grey; the legend on top."""
    found = set(present)
    kinds = [k for k in colours if k in found] + sorted(found - set(colours))
    return alt.Color(
        f"{field}:N",
        scale=alt.Scale(domain=kinds, range=[colours.get(k, GREY) for k in kinds]),
        sort=kinds,
        legend=legend_on_top(),
    )


def finish(chart: alt.TopLevelMixin, width: int) -> FigureChart:
    """Total width in points and the shared style (the config must sit on the top-level chart)."""
    return chart.properties(width=width).configure(**theme_config())


def empty(title_text: str, subtitle: str, message: str, width: int = SINGLE_COLUMN) -> FigureChart:
    """A titled placeholder, so that a report with nothing to show in a figure still renders and says why."""
    data = pd.DataFrame({"message": [message]})
    chart = (
        alt.Chart(data, title=heading(title_text, subtitle, width))
        .mark_text(fontSize=AXIS_TITLE_SIZE, color=SOFT_INK)
        .encode(text="message:N")
        .properties(height=60)
    )
    return finish(chart, width)
