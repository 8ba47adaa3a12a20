"""The report's figures as Altair charts, and their export to PNG and SVG without a browser.

Each builder takes a :class:`~cartatlas.analysis.landscape.Landscape` and
returns an ``altair.Chart`` (or layer), so a notebook shows exactly the figure
the report writes.  The figures follow Wei et al., Cell Mol Immunol 2021
(Fig. 1a cumulative registrations per group and its phase inset, Fig. 1b/1c
targets of the focus country's trials) and add the report's other views.

Design rules, and why:

* Sizes are set in points: one Vega pixel is one typographic point, so a
  chart drawn 241 px wide is 85 mm (a journal's single column) when printed,
  and the fonts set to 7-9 px are 7-9 pt on paper.  ``save_figure`` renders
  the PNG at 300 ppi (scale 300/72) and records 300 dpi in the file.
* Colours come from the Okabe-Ito palette (safe for the common colour-vision
  deficiencies), and a country group has the same colour in every figure, so
  a reader learns it once.  Single-series bars are neutral grey unless they
  show one group's trials, in which case they take that group's colour.
* The font is Liberation Sans, which vl-convert bundles (so the PNG renders
  the same on any machine, offline); SVG names it with metric-compatible
  fallbacks (Arial, Helvetica) because an SVG cannot carry a font without
  bloating every file.  Nothing refers to a remote resource, and rendering is
  forbidden to load any URL.
* Vega-Lite data must be plain JSON: the landscape tables carry Python lists
  (``trial_ids`` and friends) for traceability, which are dropped here; the
  HTML report links counts to trials from the tables themselves.
* An empty table draws a titled chart saying there are no trials instead of
  failing, so a report for a narrow filter still renders.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from cartatlas.analysis.landscape import NO_LOCATION, PHASE_ORDER, TARGET_BRANCHES, UNKNOWN_REGION, Landscape
from cartatlas.knowledge.registries import display_name
from cartatlas.normalise.countries import country_name
from cartatlas.report.caveats import as_of_caveat
from cartatlas.report.labels import BRANCH_LABELS, PRODUCT_SOURCE_LABELS, rank_key
from cartatlas.report.labels import label as token_label
from cartatlas.spreadsheet import xml_safe

# -- page geometry and style ----------------------------------------------------------

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


# -- helpers ---------------------------------------------------------------------------


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


def _by_rank(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Rows as the report's tables order them (``labels.rank_key``): most trials first, then by label."""
    order = sorted(range(len(frame)), key=lambda i: rank_key(int(frame["n"].iloc[i]), str(frame[label].iloc[i])))
    return frame.iloc[order].reset_index(drop=True)


def _table(landscape: Landscape, name: str) -> pd.DataFrame:
    frame = landscape.tables.get(name)
    if frame is None or frame.empty or "n" not in frame.columns:
        return pd.DataFrame()
    return frame[frame["n"] > 0]


def as_of(landscape: Landscape) -> dt.date:
    return landscape.options.as_of or dt.date.today()


def _date_text(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _focus_name(landscape: Landscape) -> str:
    return country_name(landscape.options.focus) or landscape.options.focus


def _cap(text: str) -> str:
    """First letter upper case, the rest untouched ('CAR trials', not 'Car trials')."""
    return text[:1].upper() + text[1:]


def _subject(landscape: Landscape) -> str:
    """What is counted, in the figure's words: 'CAR-T trials', 'CAR trials', 'CAR-T and CAR-NK registrations'."""
    platforms = sorted(landscape.options.platforms or ())
    noun = "registrations" if landscape.options.per == "registration" else "trials"
    if not platforms:
        return f"CAR {noun}"
    if len(platforms) <= 2:
        return f"{' and '.join(platforms)} {noun}"
    return f"CAR {noun} ({', '.join(platforms)})"


def _registry_text(landscape: Landscape) -> str:
    registries = landscape.options.registries
    if not registries:
        return ""
    return ", ".join(display_name(r) for r in registries)


def _as_of_line(landscape: Landscape, verb: str = "registered") -> str:
    parts = [f"{verb} by {_date_text(as_of(landscape))}"]
    registries = _registry_text(landscape)
    if registries:
        parts.append(registries)
    return "; ".join(parts)


def _wrap(text: str, width: float, size: float, em: float = 0.52) -> list[str]:
    """Lines of ``text`` that fit ``width`` points at ``size`` (Liberation Sans averages ~0.52 em a glyph)."""
    chars = max(12, int(width / (size * em)))
    return textwrap.wrap(text, chars) or [""]


def _title(text: str, subtitle: str, width: int) -> alt.TitleParams:
    return alt.TitleParams(
        text=_wrap(text, width, TITLE_SIZE, em=0.56),
        subtitle=_wrap(subtitle, width, SUBTITLE_SIZE),
    )


def group_colours(landscape: Landscape) -> dict[str, str]:
    """Colour of each group of the landscape's scheme: fixed for known groups, then the spare palette in order."""
    names = [*landscape.options.groups.names, NO_LOCATION]
    spare = [c for c in EXTRA_GROUP_COLOURS]
    colours: dict[str, str] = {}
    for name in names:
        if name in GROUP_COLOURS:
            colours[name] = GROUP_COLOURS[name]
    for name in names:
        if name not in colours:
            colours[name] = spare.pop(0) if spare else NEUTRAL
    return colours


def _group_order(landscape: Landscape, present: Iterable[str]) -> list[str]:
    found = set(present)
    names = [*landscape.options.groups.names, NO_LOCATION]
    return [g for g in names if g in found] + sorted(found - set(names))


def _group_scale(landscape: Landscape, groups: Sequence[str]) -> alt.Scale:
    colours = group_colours(landscape)
    return alt.Scale(domain=list(groups), range=[colours.get(g, NEUTRAL) for g in groups])


def _focus_colour(landscape: Landscape) -> str:
    group = landscape.options.groups.group_of_country(landscape.options.focus)
    return group_colours(landscape).get(group, NEUTRAL)


def _tint(colour: str, amount: float) -> str:
    """``colour`` mixed with white; a lighter partner that stays distinguishable by lightness alone."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


def _finish(chart: alt.TopLevelMixin, width: int) -> FigureChart:
    """Total width in points and the shared style (the config must sit on the top-level chart)."""
    return chart.properties(width=width).configure(**theme_config())


def _empty(title: str, subtitle: str, message: str, width: int = SINGLE_COLUMN) -> FigureChart:
    """A titled placeholder, so that a report with nothing to show in a figure still renders and says why."""
    data = pd.DataFrame({"message": [message]})
    chart = (
        alt.Chart(data, title=_title(title, subtitle, width))
        .mark_text(fontSize=AXIS_TITLE_SIZE, color=SOFT_INK)
        .encode(text="message:N")
        .properties(height=60)
    )
    return _finish(chart, width)


def _no_trials(landscape: Landscape) -> str:
    return f"No {_subject(landscape)} {_as_of_line(landscape)}"


def _nice_ceiling(value: float) -> float:
    """The next round number at or above ``value`` (1, 1.2, 1.5, 2, ... 8 x 10^k): an axis end to plan labels on."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    end = next((step * power for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if value <= step * power), 10 * power)
    # Counts: a whole number, and at least 2 so that an axis of 0-1 trials does not tick at 0.5.
    return float(max(math.ceil(end), 2))


def _dodge(values: Sequence[float], gap: float, low: float) -> list[float]:
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


def _text_width(text: str, size: float = LABEL_SIZE) -> float:
    """Rough printed width of ``text`` in points (Liberation Sans: ~0.55 em for digits and capitals)."""
    narrow = sum(ch in " .,:;()|/-'ijlrtf1" for ch in text)
    return size * (0.56 * (len(text) - narrow) + 0.3 * narrow)


def _axis_end_for_labels(
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
    axis_width = min(label_limit, max((_text_width(c) for c in categories), default=0.0)) + 12
    plot = max(width - axis_width - 8, 40.0)
    need = minimum
    for value, label in zip(values, labels, strict=True):
        room = plot - _text_width(str(label)) - 6
        need = max(need, value * plot / max(room, plot / 4))
    return _nice_ceiling(need) if need > 0 else 1.0


def count_ticks(end: float, most: int = 6) -> list[int]:
    """Whole-number ticks from 0 to ``end`` in steps of 1, 2 or 5 x 10^k (Vega may put ticks at 0.5 otherwise)."""
    step = 1
    while end / step > most:
        for factor in (2, 5, 10):
            if end / (step * factor) <= most or factor == 10:
                step *= factor
                break
    return list(range(0, int(end) + 1, step))


def _count_axis(end: float, title: str = "Trials (n)") -> alt.Axis:
    return alt.Axis(title=title, format="d", values=count_ticks(end), grid=True)


def _percent(n: pd.Series, total: float) -> pd.Series:
    return (100 * n / total).round(1) if total else n * 0.0


def _units_total(landscape: Landscape) -> int:
    totals = landscape.facts.get("totals", {}) if isinstance(landscape.facts, dict) else {}
    if isinstance(totals, dict) and isinstance(totals.get("units"), int):
        return int(totals["units"])
    return len(landscape.units)


# -- Fig. 1a: cumulative registrations per group -------------------------------------------

CUMULATIVE_HEIGHT = 150


def _branch_words(branch: str) -> str:
    """'haematological malignancies', 'solid tumours', 'autoimmune diseases' (the labels, in a sentence)."""
    return BRANCH_LABELS[TARGET_BRANCHES[branch]].lower()


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


def fig_cumulative(landscape: Landscape, branch: str | None = None) -> FigureChart:
    """Fig. 1a: trials registered up to the end of each year, one line per country group.

    With ``branch`` (heme, solid, autoimmune), the same view of that branch's
    trials (``branch_by_year``).  The x axis is time, not a list of years:
    each point sits at the date it counts up to (31 December, and the as-of
    date for the last one), so a half-year cut is drawn half a year after the
    last year end, and the tick "2015" marks the count "by January 2015" as
    the review states it.  A dashed rule labels the cut; end values are
    printed (nudged apart) so the totals can be read without a tooltip.
    """
    width = SINGLE_COLUMN
    cut = as_of(landscape)
    if branch is None:
        title = f"{_cap(_subject(landscape))} registered, by country group"
        table = landscape.tables.get("cumulative_by_year")
    else:
        title = f"{_cap(_subject(landscape))} in {_branch_words(branch)} registered, by country group"
        table = _branch_years(landscape, branch)
    subtitle = f"Cumulative count; {_as_of_line(landscape)}"
    if table is None or table.empty or table["n"].max() <= 0:
        return _empty(title, subtitle, _no_trials(landscape), width)
    data = plain_frame(table)
    keep = data.groupby("group")["n"].transform("max") > 0
    data = data[keep].reset_index(drop=True)
    data["year"] = data["year"].astype(int)
    data["up_to"] = data["up_to"].astype(str)
    groups = _group_order(landscape, data["group"])
    first, last = int(data["year"].min()), int(data["year"].max())
    last_cut = dt.date.fromisoformat(str(data.loc[data["year"] == last, "up_to"].iloc[0]))
    y_max = _nice_ceiling(float(data["n"].max()) * 1.05)

    # End labels: the count at the cut, nudged apart by one label height.
    ends = data[data["year"] == last].set_index("group").reindex(groups).reset_index()
    ends["label_y"] = _dodge(list(ends["n"].astype(float)), gap=8.5 * y_max / CUMULATIVE_HEIGHT, low=0.0)
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
        axis=_count_axis(y_max, "Trials registered (cumulative)"),
    )
    colour_scale = _group_scale(landscape, groups)
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
    note = pd.DataFrame({"up_to": [cut.isoformat()], "label": [_date_text(cut)]})
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
    chart = alt.layer(rule, rule_text, lines, points, labels, title=_title(title, subtitle, width))
    return _finish(chart.properties(height=CUMULATIVE_HEIGHT), width)


# -- shares within each group (phase, sponsor type) ----------------------------------------


def _shares_by_group(
    landscape: Landscape,
    table_name: str,
    column: str,
    order: Sequence[str],
    title: str,
    subtitle: str,
) -> FigureChart:
    """Horizontal grouped bars: one row per category, one bar per group, length = the group's share.

    Shares, not counts, because the groups differ several-fold in size; the
    count is printed at the bar's end and both are in the tooltip.
    """
    width = SINGLE_COLUMN
    table = _table(landscape, table_name)
    if table.empty:
        return _empty(title, subtitle, _no_trials(landscape), width)
    data = plain_frame(table)
    data["group_total"] = data.groupby("group")["n"].transform("sum")
    data["percent"] = (100 * data["n"] / data["group_total"]).round(1)
    data["label"] = data["n"].map(lambda n: f"{n:d}")
    groups = _group_order(landscape, data["group"])
    present = set(data[column])
    categories = [c for c in order if c in present] + sorted(present - set(order))
    y = alt.Y(f"{column}:N", sort=categories, title=None, axis=alt.Axis(labelLimit=110))
    offset = alt.YOffset("group:N", sort=groups, scale=alt.Scale(paddingInner=0.1))
    x_end = _axis_end_for_labels(
        data["percent"], data["label"], width=width, categories=categories, label_limit=110, minimum=100
    )
    x = alt.X(
        "percent:Q",
        scale=alt.Scale(domain=[0, max(x_end, 100)], nice=False),  # room for the count printed after a 100% bar
        axis=alt.Axis(title="Share of the group's trials (%)", values=[0, 25, 50, 75, 100], domain=False),
    )
    tooltip = [
        alt.Tooltip("group:N", title="Group"),
        alt.Tooltip(f"{column}:N", title=_cap(column.replace("_", " "))),
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
        alt.Tooltip("group_total:Q", title="Trials in group (n)", format="d"),
        alt.Tooltip("percent:Q", title="Share (%)", format=".1f"),
    ]
    base = alt.Chart(data).encode(y=y, yOffset=offset, x=x)
    bars = base.mark_bar().encode(
        color=alt.Color(
            "group:N",
            scale=_group_scale(landscape, groups),
            legend=alt.Legend(
                title=None,
                orient="top",
                direction="horizontal",
                columns=3 if len(groups) <= 3 else 2,
                symbolType="square",
                offset=6,
            ),
        ),
        tooltip=tooltip,
    )
    text = base.mark_text(align="left", baseline="middle", dx=2, fontSize=6.5, color=SOFT_INK).encode(
        text="label:N", tooltip=tooltip
    )
    step = 7 if len(groups) > 2 else 9
    chart = alt.layer(bars, text, title=_title(title, subtitle, width)).properties(
        height={"step": step, "for": "offset"}
    )
    return _finish(chart, width)


def fig_phase_by_group(landscape: Landscape) -> FigureChart:
    """Fig. 1a inset: the phases of each group's trials (a phase 1/2 trial counts as phase 1, as in the review)."""
    title = f"Phase of {_subject(landscape)}, by country group"
    subtitle = f"Bar length: share of the group's trials; label: trials (n). {_cap(_as_of_line(landscape))}"
    return _shares_by_group(landscape, "phase_by_group", "phase_category", PHASE_ORDER, title, subtitle)


def fig_sponsor_type_by_group(landscape: Landscape) -> FigureChart:
    """Who sponsors the trials in each group (industry, academic / hospital, government)."""
    title = f"Lead sponsor of {_subject(landscape)}, by country group"
    subtitle = f"Bar length: share of the group's trials; label: trials (n). {_cap(_as_of_line(landscape))}"
    order = ["Industry", "Academic / hospital", "Government"]
    return _shares_by_group(landscape, "sponsor_type_by_group", "sponsor_type", order, title, subtitle)


# -- Fig. 1b/1c: targets of the focus country's trials --------------------------------------

TOP_TARGETS = 20
BAR_STEP = 11


def _partners_text(partners: Any, k: int = 5) -> str:
    if not isinstance(partners, dict) or not partners:
        return "none"
    items = sorted(partners.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{t} ({n})" for t, n in items[:k])
    return text + (f", +{len(items) - k} more" if len(items) > k else "")


def fig_focus_targets(
    landscape: Landscape, branch: Literal["heme", "solid", "autoimmune"] = "heme", top: int = TOP_TARGETS
) -> FigureChart:
    """Fig. 1b (haematological) / 1c (solid tumours), and autoimmune diseases: the focus country's trials per target.

    Each bar splits into trials where the target is the only one and trials
    that target it with other antigens; a two-target trial is counted under
    both targets, as in the review, so bars add up to more than the trials.
    """
    width = SINGLE_COLUMN
    focus = _focus_name(landscape)
    kind = _branch_words(branch)
    title = f"{focus}: {_subject(landscape)} in {kind}, by target"
    table = _table(landscape, f"focus_targets_{branch}")
    n_targets = len(table)
    shown = min(top, n_targets)
    scope = f"top {shown} of {n_targets} targets; " if n_targets > top else ""
    subtitle = f"{_cap(scope + _as_of_line(landscape))}. Two-target trials count under both targets"
    if table.empty:
        return _empty(title, subtitle, f"No trials in {focus} {_as_of_line(landscape)}", width)
    table = _by_rank(table, "target").head(top)
    data = plain_frame(table.assign(partners_text=table["partners"].map(_partners_text)))
    data = data[["target", "n", "alone", "in_combination", "partners_text"]]
    targets = list(data["target"])
    colour = _focus_colour(landscape)
    parts = ["Target alone", "In combination"]
    tooltip = [
        alt.Tooltip("target:N", title="Target"),
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
        alt.Tooltip("alone:Q", title="Target alone (n)", format="d"),
        alt.Tooltip("in_combination:Q", title="With other targets (n)", format="d"),
        alt.Tooltip("partners_text:N", title="Other targets (n)"),
    ]
    x_max = _axis_end_for_labels(
        data["n"].astype(float), data["n"].astype(str), width=width, categories=targets, label_limit=90
    )
    x_scale = alt.Scale(domain=[0, x_max], nice=False)
    y = alt.Y("target:N", sort=targets, title=None, axis=alt.Axis(labelLimit=90), scale=alt.Scale(paddingInner=0.2))
    base = alt.Chart(data).encode(y=y)
    bars = (
        base.transform_fold(["alone", "in_combination"], as_=["part_key", "count"])
        .transform_calculate(
            part="datum.part_key === 'alone' ? 'Target alone' : 'In combination'",
            part_order="datum.part_key === 'alone' ? 0 : 1",
        )
        .mark_bar()
        .encode(
            x=alt.X("count:Q", stack="zero", scale=x_scale, axis=_count_axis(x_max)),
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=parts, range=[colour, _tint(colour, 0.6)]),
                sort=parts,
                legend=alt.Legend(title=None, orient="top", direction="horizontal", symbolType="square", offset=6),
            ),
            order=alt.Order("part_order:Q"),
            tooltip=tooltip,
        )
    )
    totals = base.mark_text(align="left", baseline="middle", dx=2, color=SOFT_INK).encode(
        x=alt.X("n:Q", scale=x_scale), text=alt.Text("n:Q", format="d"), tooltip=tooltip
    )
    chart = alt.layer(bars, totals, title=_title(title, subtitle, width)).properties(height={"step": BAR_STEP})
    return _finish(chart, width)


# -- per-target timelines: small multiples ---------------------------------------------------

TIMELINE_COLUMNS = 4
TIMELINE_PANEL_HEIGHT = 60
TIMELINE_SPACING = 10


def fig_focus_target_timelines(landscape: Landscape) -> FigureChart:
    """New trials per registration year for the focus group's most frequent targets, one small panel each.

    Small multiples on one shared y scale rather than one line per target:
    eight overlapping lines cannot be told apart, and a shared scale keeps the
    panels comparable (a target with few trials shows as short bars, not as
    a stretched copy of CD19's curve).  The panel title carries each target's
    total; the last year counts only up to the as-of date, as the subtitle says.
    """
    width = DOUBLE_COLUMN
    focus = _focus_name(landscape)
    table = landscape.tables.get("focus_target_years")
    cut = as_of(landscape)
    title = f"{focus}: new {_subject(landscape)} per year, for the most frequent targets"
    subtitle = (
        f"{_cap(_as_of_line(landscape))}; by year of registration ({cut.year}: up to {_date_text(cut)}). "
        "A trial with two targets counts under both"
    )
    if table is None or table.empty or table["n"].sum() <= 0:
        return _empty(title, subtitle, f"No trials in {focus} {_as_of_line(landscape)}", width)
    data = plain_frame(table)
    totals = data.groupby("target")["n"].sum()
    order = list(data.sort_values(["rank", "year"])["target"].drop_duplicates())
    title = f"{focus}: new {_subject(landscape)} per year, for the {len(order)} most frequent targets"
    panels = {t: f"{t} ({int(totals[t])} trials)" for t in order}
    data["panel"] = data["target"].map(panels)
    columns = min(TIMELINE_COLUMNS, len(order))
    axis_room = 34  # the shared y axis, its labels and title on the left of each row
    panel_width = math.floor((width - axis_room - TIMELINE_SPACING * (columns - 1)) / columns)
    years = sorted(int(y) for y in data["year"].unique())
    step = next((s for s in (1, 2, 5, 10) if len(years) / s <= 5), 20)
    y_max = _nice_ceiling(float(data["n"].max()))
    colour = _focus_colour(landscape)
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
            y=alt.Y("n:Q", scale=alt.Scale(domain=[0, y_max], nice=False), axis=_count_axis(y_max, "New trials (n)")),
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
        title=_title(title, subtitle, width),
    )
    # Small multiples size their panels themselves: Vega-Lite cannot fit a facet to a total width.
    return chart.configure(**{**theme_config(), "autosize": {"type": "pad", "contains": "padding"}})


# -- simple ranked bars ----------------------------------------------------------------


def _ranked_bars(
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
) -> FigureChart:
    """Horizontal bars in the given order with the value printed at each bar's end.

    With ``wrap_chars``, a category name longer than that is broken onto two
    lines rather than cut off (the rows then get taller).
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
    x_max = _axis_end_for_labels(
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
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
        *extra_tooltip,
    ]
    base = alt.Chart(data).encode(y=y, tooltip=tooltip)
    bars = base.mark_bar().encode(
        x=alt.X("n:Q", scale=x_scale, axis=_count_axis(x_max)),
        color=colour if isinstance(colour, alt.Color) else alt.value(colour),
    )
    text = base.mark_text(align="left", baseline="middle", dx=2, color=SOFT_INK).encode(
        x=alt.X("n:Q", scale=x_scale), text=f"{label}:N"
    )
    chart = alt.layer(bars, text, title=_title(title, subtitle, width)).properties(height={"step": step})
    return _finish(chart, width)


def fig_regions(landscape: Landscape, top: int = 40) -> FigureChart:
    """The focus country's trials per region (province, state) with a site there, ranked.

    A trial with sites in several regions counts in each; trials whose sites
    could not be placed in a region are shown last, in grey.
    """
    focus = _focus_name(landscape)
    title = f"{focus}: {_subject(landscape)} by region of the trial sites"
    subtitle = f"{_cap(_as_of_line(landscape))}. A trial with sites in several regions counts in each"
    table = _table(landscape, "focus_regions")
    if table.empty:
        return _empty(title, subtitle, f"No trials with a site in {focus} {_as_of_line(landscape)}")
    data = plain_frame(table)
    data["unknown"] = data["region"] == UNKNOWN_REGION
    data = _by_rank(data, "region")
    data = data.sort_values("unknown", kind="stable").head(top).reset_index(drop=True)
    data = data.drop(columns=["unknown"])
    focus_colour = _focus_colour(landscape)
    colour = alt.Color(
        "kind:N",
        scale=alt.Scale(domain=["Region", "Not placed"], range=[focus_colour, GREY]),
        legend=None,
    )
    data["kind"] = np.where(data["region"] == UNKNOWN_REGION, "Not placed", "Region")
    return _ranked_bars(data, "region", list(data["region"]), title, subtitle, category_title="Region", colour=colour)


def fig_platforms(landscape: Landscape) -> FigureChart:
    """Cell platforms (CAR-T, CAR-NK, ...); a trial testing two platforms counts under both."""
    title = f"{_cap(_subject(landscape))} by cell platform"
    subtitle = f"{_cap(_as_of_line(landscape))}. Label: trials (share of all {_units_total(landscape)})"
    table = _table(landscape, "platforms")
    if table.empty:
        return _empty(title, subtitle, _no_trials(landscape))
    data = plain_frame(table)
    data["platform_label"] = data["platform"].map(lambda p: token_label("platform", p))
    data = _by_rank(data, "platform_label")
    order = list(data["platform_label"])
    return _share_bars(landscape, data, "platform_label", order, title, subtitle, "Platform", NEUTRAL)


def _share_bars(
    landscape: Landscape,
    data: pd.DataFrame,
    category: str,
    order: Sequence[str],
    title: str,
    subtitle: str,
    category_title: str,
    colour: alt.Color | str,
) -> FigureChart:
    total = _units_total(landscape)
    data = data.copy()
    data["percent"] = _percent(data["n"], total)
    data["label"] = [
        f"{n:d} ({p:.0f}%)" if p >= 1 or p == 0 else f"{n:d} (<1%)"
        for n, p in zip(data["n"], data["percent"], strict=True)
    ]
    extra = [alt.Tooltip("percent:Q", title=f"Share of all {total} trials (%)", format=".1f")]
    return _ranked_bars(
        data,
        category,
        order,
        title,
        subtitle,
        category_title=category_title,
        colour=colour,
        label="label",
        extra_tooltip=extra,
    )


def fig_product_source(landscape: Landscape) -> FigureChart:
    """Where the cells come from: the patient (autologous), a donor (allogeneic), or made in the body (in vivo)."""
    title = f"{_cap(_subject(landscape))} by source of the cell product"
    subtitle = f"{_cap(_as_of_line(landscape))}. Label: trials (share of all {_units_total(landscape)})"
    table = _table(landscape, "product_source")
    if table.empty:
        return _empty(title, subtitle, _no_trials(landscape))
    data = plain_frame(table)
    data["source"] = data["product_source"].map(lambda s: token_label("product_source", s))
    known = list(PRODUCT_SOURCE_LABELS.values())
    order = [s for s in known if s in set(data["source"])] + sorted(set(data["source"]) - set(known))
    data["kind"] = np.where(data["product_source"] == "unknown", "Not stated", "Stated")
    colour = alt.Color("kind:N", scale=alt.Scale(domain=["Stated", "Not stated"], range=[NEUTRAL, GREY]), legend=None)
    data = data.set_index("source").loc[order].reset_index()
    return _share_bars(landscape, data, "source", order, title, subtitle, "Product source", colour)


def fig_top_sponsors(landscape: Landscape, scope: Literal["all", "focus"] = "all") -> FigureChart:
    """The most active lead sponsors, coloured by sponsor type (industry / academic / government).

    Double-column width: sponsor names are long, and a cut-off name is no use
    to a reader.
    """
    width = DOUBLE_COLUMN
    focus = _focus_name(landscape)
    where = "" if scope == "all" else f" in {focus}"
    table = _table(landscape, "top_sponsors" if scope == "all" else "top_focus_sponsors")
    title = f"Lead sponsors with the most {_subject(landscape)}{where}"
    subtitle = f"{_cap(_as_of_line(landscape))}. Colour: sponsor type"
    if table.empty:
        return _empty(title, subtitle, _no_trials(landscape) + where, width)
    data = _by_rank(plain_frame(table), "lead_sponsor")
    title = f"The {len(data)} lead sponsors with the most {_subject(landscape)}{where}"
    types: dict[str, str] = {}
    units = landscape.units
    if {"lead_sponsor", "sponsor_type"} <= set(units.columns):
        types = dict(zip(units["lead_sponsor"], units["sponsor_type"], strict=True))
    data["sponsor_type"] = data["lead_sponsor"].map(lambda s: types.get(s, "Not known"))
    kinds = [k for k in SPONSOR_TYPE_COLOURS if k in set(data["sponsor_type"])]
    kinds += sorted(set(data["sponsor_type"]) - set(kinds))
    colour = alt.Color(
        "sponsor_type:N",
        scale=alt.Scale(domain=kinds, range=[SPONSOR_TYPE_COLOURS.get(k, GREY) for k in kinds]),
        sort=kinds,
        legend=alt.Legend(title=None, orient="top", direction="horizontal", symbolType="square", offset=6),
    )
    return _ranked_bars(
        data,
        "lead_sponsor",
        list(data["lead_sponsor"]),
        title,
        subtitle,
        category_title="Lead sponsor",
        colour=colour,
        width=width,
        label_limit=230,
        wrap_chars=60,
        extra_tooltip=[alt.Tooltip("sponsor_type:N", title="Sponsor type")],
    )


# -- registry of figures, captions, export ---------------------------------------------------

FIGURES: dict[str, Callable[[Landscape], FigureChart]] = {
    "fig1a_cumulative": fig_cumulative,
    "fig1a_inset_phase_by_group": fig_phase_by_group,
    "fig1b_focus_targets_heme": functools.partial(fig_focus_targets, branch="heme"),
    "fig1c_focus_targets_solid": functools.partial(fig_focus_targets, branch="solid"),
    "fig_focus_targets_autoimmune": functools.partial(fig_focus_targets, branch="autoimmune"),
    "fig_over_time_heme": functools.partial(fig_cumulative, branch="heme"),
    "fig_over_time_solid": functools.partial(fig_cumulative, branch="solid"),
    "fig_over_time_autoimmune": functools.partial(fig_cumulative, branch="autoimmune"),
    "fig_focus_target_timelines": fig_focus_target_timelines,
    "fig_focus_regions": fig_regions,
    "fig_sponsor_type_by_group": fig_sponsor_type_by_group,
    "fig_platforms": fig_platforms,
    "fig_product_source": fig_product_source,
    "fig_top_sponsors": fig_top_sponsors,
    "fig_top_focus_sponsors": functools.partial(fig_top_sponsors, scope="focus"),
}


def _pub_table(landscape: Landscape, name: str) -> pd.DataFrame:
    """A publication table without its PMID lists (their count column is ``reports``, not ``n``)."""
    frame = landscape.tables.get(name)
    if frame is None or frame.empty or not (frame["reports"] > 0).any():
        return pd.DataFrame()
    return frame.drop(columns=["pmids"], errors="ignore")


def fig_publications_per_year(landscape: Landscape) -> FigureChart:
    """Fig. 2a: published clinical reports per year, focus group vs the United States vs others."""
    from cartatlas.analysis.publications import chart_fig2a

    data = _pub_table(landscape, "pub_fig2a")
    if data.empty:
        return _empty("Published CAR clinical reports per year", _as_of_line(landscape, "published"), "No reports")
    return chart_fig2a(data)


def fig_publications_per_target(landscape: Landscape) -> FigureChart:
    """Fig. 2b: the focus group's clinical reports per target."""
    from cartatlas.analysis.publications import chart_fig2b

    data = _pub_table(landscape, "pub_fig2b")
    if data.empty:
        return _empty("Clinical reports by target", _as_of_line(landscape, "published"), "No reports")
    return chart_fig2b(data, _focus_name(landscape))


def fig_publications_per_region(landscape: Landscape) -> FigureChart:
    """Fig. 2c: the focus group's clinical reports by region of the reporting institution."""
    from cartatlas.analysis.publications import chart_fig2c

    data = _pub_table(landscape, "pub_fig2c")
    if data.empty:
        return _empty("Clinical reports by region", _as_of_line(landscape, "published"), "No reports")
    return chart_fig2c(data, _focus_name(landscape))


#: Figures of published clinical reports (drawn only when the database holds PubMed records).
PUBLICATION_FIGURES: dict[str, Callable[[Landscape], FigureChart]] = {
    "fig2a_reports_per_year": fig_publications_per_year,
    "fig2b_reports_per_target": fig_publications_per_target,
    "fig2c_reports_per_region": fig_publications_per_region,
}
FIGURES.update(PUBLICATION_FIGURES)

#: Figures drawn at double-column width (174 mm); the others are single-column (85 mm).
DOUBLE_COLUMN_FIGURES = frozenset({"fig_top_sponsors", "fig_top_focus_sponsors", "fig_focus_target_timelines"})

DATE_SOURCE_WORDS = {
    "first_posted": "first-posted date",
    "other_version": "first-posted date of another stored version",
    "first_submitted": "first-submitted date",
    "estimated_from_id": "estimated from the registry number (marked as estimated)",
    "extrapolated_from_id": "extrapolated from the registry number beyond the newest dated record, within the "
    "record's own bounds (marked as extrapolated)",
    "year_from_id": "the year in the registry id",
    "start_date": "study start date (fallback)",
    "last_update_posted": "last-update date (last resort)",
}


def _groups_text(landscape: Landscape) -> str:
    """'China (China, Taiwan, ...), United States (United States) and Other countries' for captions."""
    groups = landscape.options.groups
    parts = []
    for name, members in groups.groups.items():
        countries = sorted(country_name(c) or c for c in members)
        parts.append(name if countries == [name] else f"{name} ({', '.join(countries)})")
    parts.append(f"{groups.other} (all others)")
    return "; ".join(parts)


def _date_sources_text(landscape: Landscape) -> str:
    sources = landscape.notes.get("date_sources") if isinstance(landscape.notes, dict) else None
    if not isinstance(sources, dict) or not sources:
        return ""
    items = sorted(sources.items(), key=lambda kv: -int(kv[1]))
    words = ", ".join(f"{DATE_SOURCE_WORDS.get(str(k), str(k))} for {int(v)}" for k, v in items)
    return f" Registration date: {words}."


def _caption_cumulative(landscape: Landscape) -> str:
    cut = _date_text(as_of(landscape))
    return (
        f"Cumulative number of {_subject(landscape)} registered by the end of each year, per country group; "
        f"the last point counts registrations up to {cut}. Groups: {_groups_text(landscape)}. "
        "A trial counts in every group where it has a site, and under its sponsor's country when it lists no "
        f"site ('{NO_LOCATION}' when neither is known)."
        + _date_sources_text(landscape)
        + " Compare Wei et al., Cell Mol Immunol 2021, Fig. 1a."
    )


def _caption_over_time(landscape: Landscape, branch: str) -> str:
    return (
        f"Cumulative number of {_subject(landscape)} in {_branch_words(branch)} registered by the end of each year, "
        f"per country group; the last point counts registrations up to {_date_text(as_of(landscape))}. A trial "
        "counts in every group where it has a site, and in each disease branch its diseases belong to. The table "
        "below gives the trials registered in each year and the running total."
    )


def _caption_timelines(landscape: Landscape) -> str:
    focus = _focus_name(landscape)
    return (
        f"{_cap(_subject(landscape))} with a site in {focus} registered in each year, for the targets most often "
        f"named by {focus}'s trials (any disease branch; the number of trials in each panel's title). A trial "
        f"naming two targets counts under both; the last year counts up to {_date_text(as_of(landscape))}."
    )


def _caption_phase(landscape: Landscape) -> str:
    caveat = as_of_caveat(landscape, "phase_by_group") if "as_of" in landscape.facts else ""
    return (
        f"Phase of {_subject(landscape)} registered by {_date_text(as_of(landscape))}, as a share of each country "
        "group's trials (numbers at the bars: trials). A trial spanning two phases (phase 1/2) counts in the lower "
        "one, as reviews count; 'Not applicable' covers trials that state no phase. Phase is taken from the "
        f"version current on the cut-off date where one is stored, else from the latest record. {caveat} "
        "Compare Wei et al. 2021, Fig. 1a inset."
    )


def _caption_targets(landscape: Landscape, branch: str) -> str:
    focus = _focus_name(landscape)
    kind = _branch_words(branch)
    compare = {"heme": " Compare Wei et al. 2021, Fig. 1b.", "solid": " Compare Wei et al. 2021, Fig. 1c."}
    return (
        f"{_cap(_subject(landscape))} in {kind} with a site in {focus}, registered by "
        f"{_date_text(as_of(landscape))}, per target antigen (at most {TOP_TARGETS} targets, the most frequent). "
        "Dark: the target is the trial's only target; light: the trial also targets other antigens (a multi-"
        "specific CAR or co-administered CARs). A trial with two targets counts under each, so the bars add up to "
        "more than the number of trials; trials whose target is not disclosed are not shown. A trial of several "
        "disease branches counts in each branch its diseases belong to, with the targets known for that branch."
        + compare.get(branch, "")
    )


def _caption_regions(landscape: Landscape) -> str:
    focus = _focus_name(landscape)
    return (
        f"{_cap(_subject(landscape))} with a site in {focus}, registered by {_date_text(as_of(landscape))}, "
        f"per region (province or state) of the sites. A trial with sites in several regions counts in each; "
        f"'{UNKNOWN_REGION}' (grey) counts trials whose site in {focus} could not be placed in a region."
    )


def _caption_sponsor_type(landscape: Landscape) -> str:
    return (
        f"Type of lead sponsor of {_subject(landscape)} registered by {_date_text(as_of(landscape))}, as a share of "
        "each country group's trials (numbers at the bars: trials). Type as the registry classes the sponsor: "
        "industry; government (for ClinicalTrials.gov: NIH, other federal, other government); academic / hospital "
        "(universities, hospitals, networks, individuals, and sponsors the registry does not class)."
    )


def _caption_platforms(landscape: Landscape) -> str:
    return (
        f"Cell platform of {_subject(landscape)} registered by {_date_text(as_of(landscape))} "
        f"({_units_total(landscape)} trials in all). A trial testing two platforms counts under both, so shares "
        "can add up to more than 100%."
    )


def _caption_product_source(landscape: Landscape) -> str:
    return (
        f"Source of the cell product in {_subject(landscape)} registered by {_date_text(as_of(landscape))} "
        f"({_units_total(landscape)} trials in all): autologous (the patient's own cells), allogeneic (donor cells), "
        "or in vivo (the CAR is made inside the patient). 'Not stated' (grey): the record does not say."
    )


def _caption_sponsors(landscape: Landscape, scope: str) -> str:
    where = "" if scope == "all" else f" with a site in {_focus_name(landscape)}"
    return (
        f"Lead sponsors with the most {_subject(landscape)}{where}, registered by "
        f"{_date_text(as_of(landscape))}. Sponsor names as registered (the same sponsor spelt differently counts "
        "separately); colour: sponsor type as the registry classes it."
    )


CAPTIONS: dict[str, Callable[[Landscape], str]] = {
    "fig1a_cumulative": _caption_cumulative,
    "fig1a_inset_phase_by_group": _caption_phase,
    "fig1b_focus_targets_heme": functools.partial(_caption_targets, branch="heme"),
    "fig1c_focus_targets_solid": functools.partial(_caption_targets, branch="solid"),
    "fig_focus_targets_autoimmune": functools.partial(_caption_targets, branch="autoimmune"),
    "fig_over_time_heme": functools.partial(_caption_over_time, branch="heme"),
    "fig_over_time_solid": functools.partial(_caption_over_time, branch="solid"),
    "fig_over_time_autoimmune": functools.partial(_caption_over_time, branch="autoimmune"),
    "fig_focus_target_timelines": _caption_timelines,
    "fig_focus_regions": _caption_regions,
    "fig_sponsor_type_by_group": _caption_sponsor_type,
    "fig_platforms": _caption_platforms,
    "fig_product_source": _caption_product_source,
    "fig_top_sponsors": functools.partial(_caption_sponsors, scope="all"),
    "fig_top_focus_sponsors": functools.partial(_caption_sponsors, scope="focus"),
    "fig2a_reports_per_year": lambda land: (
        "Published clinical reports of CAR products (PubMed; kind decided from the abstract) per year of "
        "publication, by the country of the reporting institution (corresponding author, else first author). "
        "Compare Wei et al. 2021, Fig. 2a."
    ),
    "fig2b_reports_per_target": lambda land: (
        f"{_focus_name(land)}'s clinical reports per target antigen; a report on two targets counts for each. "
        "Compare Wei et al. 2021, Fig. 2b."
    ),
    "fig2c_reports_per_region": lambda land: (
        f"{_focus_name(land)}'s clinical reports by the region (province) of the reporting institution. "
        "Compare Wei et al. 2021, Fig. 2c."
    ),
}


def caption(name: str, landscape: Landscape) -> str:
    """The caption the report prints under figure ``name``: what is counted and how, in words."""
    return CAPTIONS[name](landscape)


def chart_title(chart: alt.TopLevelMixin) -> str:
    """A chart's title (and subtitle) as one line of text, e.g. for an HTML heading or alt text."""
    title = getattr(chart, "title", alt.Undefined)
    if title is alt.Undefined:
        return ""
    if isinstance(title, str):
        return title
    if isinstance(title, list):
        return " ".join(title)
    text = getattr(title, "text", "")
    subtitle = getattr(title, "subtitle", alt.Undefined)
    line = " ".join(text) if isinstance(text, list) else str(text)
    if subtitle is not alt.Undefined:
        line += ". " + (" ".join(subtitle) if isinstance(subtitle, list) else str(subtitle))
    return line


def figure_title(name: str, landscape: Landscape) -> str:
    return chart_title(FIGURES[name](landscape))


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes, if vl-convert knows it (else vl-convert's own latest)."""
    wanted = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    return wanted if wanted in vlc.get_vegalite_versions() else None


def save_figure(
    chart: alt.TopLevelMixin,
    out_dir: str | Path,
    name: str,
    *,
    formats: Sequence[str] = ("png", "svg"),
    ppi: float = PNG_PPI,
    on_replaced: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``name.png`` (at ``ppi``, 300 by default, recorded in the file) and ``name.svg``; returns the paths.

    Rendered by vl-convert, with no browser and with every URL refused, so a
    figure can only show the data in its spec.  ``formats`` may add ``pdf``
    (fonts embedded, for journals that want vector files).  Characters an SVG
    cannot hold (control characters in a sponsor's name made vl-convert abort
    the whole process) are replaced with U+FFFD first; ``on_replaced`` hears
    how many strings of the spec changed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changed = [0]
    spec = _xml_safe(chart.to_dict(), changed)
    if on_replaced is not None and changed[0]:
        on_replaced(changed[0])
    version = _vl_version()
    paths: list[Path] = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        if fmt == "png":
            path.write_bytes(vlc.vegalite_to_png(spec, vl_version=version, ppi=ppi, allowed_base_urls=[]))
        elif fmt == "svg":
            svg = vlc.vegalite_to_svg(spec, vl_version=version, allowed_base_urls=[])
            path.write_text(svg, encoding="utf-8")
        elif fmt == "pdf":
            path.write_bytes(vlc.vegalite_to_pdf(spec, vl_version=version, allowed_base_urls=[]))
        else:
            raise ValueError(f"unknown figure format {fmt!r} (png, svg or pdf)")
        paths.append(path)
    return paths


def _xml_safe(value: Any, changed: list[int]) -> Any:
    """A chart spec with every string XML-safe; ``changed[0]`` counts the strings that were not."""
    if isinstance(value, str):
        safe = xml_safe(value)
        if safe != value:
            changed[0] += 1
        return safe
    if isinstance(value, dict):
        return {_xml_safe(k, changed): _xml_safe(v, changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_xml_safe(v, changed) for v in value]
    return value


def render_figures(
    landscape: Landscape, out_dir: str | Path, *, formats: Sequence[str] = ("png", "svg")
) -> dict[str, list[Path]]:
    """Every figure of :data:`FIGURES` written to ``out_dir``; name -> files."""
    return {name: save_figure(build(landscape), out_dir, name, formats=formats) for name, build in FIGURES.items()}
