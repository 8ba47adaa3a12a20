"""Ranked bars of the report's other views: the focus country's regions, cell platforms, product sources and
the most active lead sponsors.

Each figure is declared in :data:`FIGURES` at the end of this module, next to
its builder and caption.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import altair as alt
import numpy as np
import pandas as pd

from cartatlas.analysis.landscape import UNKNOWN_REGION, Landscape
from cartatlas.report.figures.bars import ranked_bars, region_bars
from cartatlas.report.figures.declare import Figure
from cartatlas.report.figures.layout import by_rank, counted_rows, percent, plain_frame
from cartatlas.report.figures.theme import (
    DOUBLE_COLUMN,
    GREY,
    NEUTRAL,
    SINGLE_COLUMN,
    SPONSOR_TYPE_COLOURS,
    FigureChart,
    category_colour,
    empty,
)
from cartatlas.report.figures.words import as_of_line, as_of_text, cap, focus_name, no_trials, subject, units_total
from cartatlas.report.labels import PRODUCT_SOURCE_LABELS
from cartatlas.report.labels import label as token_label

#: Whose sponsors: all trials', or the focus country's.
Scope = Literal["all", "focus"]


def fig_regions(landscape: Landscape, top: int = 40, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """The focus country's trials per region (province, state) with a site there, ranked.

    A trial with sites in several regions counts in each; trials whose sites
    could not be placed in a region are shown last, in grey.
    """
    focus = focus_name(landscape)
    title = f"{focus}: {subject(landscape)} by region of the trial sites"
    subtitle = f"{cap(as_of_line(landscape))}. A trial with sites in several regions counts in each"
    table = counted_rows(landscape, "focus_regions")
    if table.empty:
        return empty(title, subtitle, f"No trials with a site in {focus} {as_of_line(landscape)}", width)
    return region_bars(landscape, plain_frame(table), title, subtitle, not_placed=UNKNOWN_REGION, width=width, top=top)


def fig_platforms(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Cell platforms (CAR-T, CAR-NK, ...); a trial testing two platforms counts under both."""

    def arrange(data: pd.DataFrame) -> tuple[pd.DataFrame, str, list[str], alt.Color | str]:
        data["platform_label"] = data["platform"].map(lambda p: token_label("platform", p))
        data = by_rank(data, "platform_label")
        return data, "platform_label", list(data["platform_label"]), NEUTRAL

    return _share_bars(landscape, "platforms", "cell platform", "Platform", arrange, width)


def fig_product_source(landscape: Landscape, *, width: int = SINGLE_COLUMN) -> FigureChart:
    """Where the cells come from: the patient (autologous), a donor (allogeneic), or made in the body (in vivo)."""

    def arrange(data: pd.DataFrame) -> tuple[pd.DataFrame, str, list[str], alt.Color | str]:
        data["source"] = data["product_source"].map(lambda s: token_label("product_source", s))
        known = list(PRODUCT_SOURCE_LABELS.values())
        order = [s for s in known if s in set(data["source"])] + sorted(set(data["source"]) - set(known))
        data["kind"] = np.where(data["product_source"] == "unknown", "Not stated", "Stated")
        stated = alt.Scale(domain=["Stated", "Not stated"], range=[NEUTRAL, GREY])
        colour = alt.Color("kind:N", scale=stated, legend=None)
        return data.set_index("source").loc[order].reset_index(), "source", order, colour

    return _share_bars(landscape, "product_source", "source of the cell product", "Product source", arrange, width)


def _share_bars(
    landscape: Landscape,
    table_name: str,
    what: str,
    category_title: str,
    arrange: Callable[[pd.DataFrame], tuple[pd.DataFrame, str, list[str], alt.Color | str]],
    width: int,
) -> FigureChart:
    """All trials by ``what`` (one table's rows), labelled with the count and its share of all trials ("12 (5%)").

    ``arrange`` turns the table's plain rows into (rows, category column, its order, colour).
    """
    total = units_total(landscape)
    title = f"{cap(subject(landscape))} by {what}"
    subtitle = f"{cap(as_of_line(landscape))}. Label: trials (share of all {total})"
    table = counted_rows(landscape, table_name)
    if table.empty:
        return empty(title, subtitle, no_trials(landscape), width)
    data, category, order, colour = arrange(plain_frame(table))
    data["percent"] = percent(data["n"], total)
    data["label"] = [
        f"{n:d} ({p:.0f}%)" if p >= 1 or p == 0 else f"{n:d} (<1%)"
        for n, p in zip(data["n"], data["percent"], strict=True)
    ]
    extra = [alt.Tooltip("percent:Q", title=f"Share of all {total} trials (%)", format=".1f")]
    return ranked_bars(
        data,
        category,
        order,
        title,
        subtitle,
        category_title=category_title,
        colour=colour,
        width=width,
        label="label",
        extra_tooltip=extra,
    )


def fig_top_sponsors(landscape: Landscape, scope: Scope = "all", *, width: int = DOUBLE_COLUMN) -> FigureChart:
    """The most active lead sponsors, coloured by sponsor type (industry / academic / government).

    Double-column width: sponsor names are long, and a cut-off name is no use
    to a reader.
    """
    focus = focus_name(landscape)
    where = "" if scope == "all" else f" in {focus}"
    table = counted_rows(landscape, "top_sponsors" if scope == "all" else "top_focus_sponsors")
    title = f"Lead sponsors with the most {subject(landscape)}{where}"
    subtitle = f"{cap(as_of_line(landscape))}. Colour: sponsor type"
    if table.empty:
        return empty(title, subtitle, no_trials(landscape) + where, width)
    data = by_rank(plain_frame(table), "lead_sponsor")
    title = f"The {len(data)} lead sponsors with the most {subject(landscape)}{where}"
    types: dict[str, str] = {}
    units = landscape.units
    if {"lead_sponsor", "sponsor_type"} <= set(units.columns):
        types = dict(zip(units["lead_sponsor"], units["sponsor_type"], strict=True))
    data["sponsor_type"] = data["lead_sponsor"].map(lambda s: types.get(s, "Not known"))
    colour = category_colour("sponsor_type", data["sponsor_type"], SPONSOR_TYPE_COLOURS)
    return ranked_bars(
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


# -- captions ---------------------------------------------------------------------------


def _caption_regions(landscape: Landscape) -> str:
    focus = focus_name(landscape)
    return (
        f"{cap(subject(landscape))} with a site in {focus}, registered by {as_of_text(landscape)}, "
        f"per region (province or state) of the sites. A trial with sites in several regions counts in each; "
        f"'{UNKNOWN_REGION}' (grey) counts trials whose site in {focus} could not be placed in a region."
    )


def _caption_platforms(landscape: Landscape) -> str:
    return (
        f"Cell platform of {subject(landscape)} registered by {as_of_text(landscape)} "
        f"({units_total(landscape)} trials in all). A trial testing two platforms counts under both, so shares "
        "can add up to more than 100%."
    )


def _caption_product_source(landscape: Landscape) -> str:
    return (
        f"Source of the cell product in {subject(landscape)} registered by {as_of_text(landscape)} "
        f"({units_total(landscape)} trials in all): autologous (the patient's own cells), allogeneic (donor cells), "
        "or in vivo (the CAR is made inside the patient). 'Not stated' (grey): the record does not say."
    )


def _caption_sponsors(landscape: Landscape, scope: str) -> str:
    where = "" if scope == "all" else f" with a site in {focus_name(landscape)}"
    return (
        f"Lead sponsors with the most {subject(landscape)}{where}, registered by "
        f"{as_of_text(landscape)}. Sponsor names as registered (the same sponsor spelt differently counts "
        "separately); colour: sponsor type as the registry classes it."
    )


#: The sponsors figure of each scope: (name, scope).
_SPONSOR_FIGURES: tuple[tuple[str, Scope], ...] = (("fig_top_sponsors", "all"), ("fig_top_focus_sponsors", "focus"))

FIGURES = (
    Figure("fig_focus_regions", fig_regions, _caption_regions, section="regions"),
    Figure("fig_platforms", fig_platforms, _caption_platforms, section="platforms"),
    Figure("fig_product_source", fig_product_source, _caption_product_source, section="platforms"),
    *(
        Figure(
            name,
            functools.partial(fig_top_sponsors, scope=scope),
            functools.partial(_caption_sponsors, scope=scope),
            section="sponsors",
            width=DOUBLE_COLUMN,
        )
        for name, scope in _SPONSOR_FIGURES
    ),
)
