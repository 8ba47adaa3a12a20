"""Fig. 1b and 1c, and the same for autoimmune diseases: the focus country's trials per target antigen.

Each figure is declared in :data:`FIGURES` at the end of this module, next to
its builder and caption.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import altair as alt

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures.declare import Figure
from cartatlas.report.figures.layout import axis_end_for_labels, by_rank, counted_rows, plain_frame
from cartatlas.report.figures.theme import (
    BAR_STEP,
    SINGLE_COLUMN,
    SOFT_INK,
    FigureChart,
    count_axis,
    empty,
    finish,
    focus_colour,
    heading,
    legend_on_top,
    tint,
)
from cartatlas.report.figures.words import as_of_line, as_of_text, branch_words, cap, focus_name, subject

# -- Fig. 1b/1c: targets of the focus country's trials --------------------------------------

TOP_TARGETS = 20
Branch = Literal["heme", "solid", "autoimmune"]


def _partners_text(partners: Any, k: int = 5) -> str:
    if not isinstance(partners, dict) or not partners:
        return "none"
    items = sorted(partners.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{t} ({n})" for t, n in items[:k])
    return text + (f", +{len(items) - k} more" if len(items) > k else "")


def fig_focus_targets(
    landscape: Landscape,
    branch: Branch = "heme",
    top: int = TOP_TARGETS,
    *,
    width: int = SINGLE_COLUMN,
) -> FigureChart:
    """Fig. 1b (haematological) / 1c (solid tumours), and autoimmune diseases: the focus country's trials per target.

    Each bar splits into trials where the target is the only one and trials
    that target it with other antigens; a two-target trial is counted under
    both targets, as in the review, so bars add up to more than the trials.
    """
    focus = focus_name(landscape)
    kind = branch_words(branch)
    title = f"{focus}: {subject(landscape)} in {kind}, by target"
    table = counted_rows(landscape, f"focus_targets_{branch}")
    n_targets = len(table)
    shown = min(top, n_targets)
    scope = f"top {shown} of {n_targets} targets; " if n_targets > top else ""
    subtitle = f"{cap(scope + as_of_line(landscape))}. Two-target trials count under both targets"
    if table.empty:
        return empty(title, subtitle, f"No trials in {focus} {as_of_line(landscape)}", width)
    table = by_rank(table, "target").head(top)
    data = plain_frame(table.assign(partners_text=table["partners"].map(_partners_text)))
    data = data[["target", "n", "alone", "in_combination", "partners_text"]]
    targets = list(data["target"])
    colour = focus_colour(landscape)
    parts = ["Target alone", "In combination"]
    tooltip = [
        alt.Tooltip("target:N", title="Target"),
        alt.Tooltip("n:Q", title="Trials (n)", format="d"),
        alt.Tooltip("alone:Q", title="Target alone (n)", format="d"),
        alt.Tooltip("in_combination:Q", title="With other targets (n)", format="d"),
        alt.Tooltip("partners_text:N", title="Other targets (n)"),
    ]
    x_max = axis_end_for_labels(
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
            x=alt.X("count:Q", stack="zero", scale=x_scale, axis=count_axis(x_max)),
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=parts, range=[colour, tint(colour, 0.6)]),
                sort=parts,
                legend=legend_on_top(),
            ),
            order=alt.Order("part_order:Q"),
            tooltip=tooltip,
        )
    )
    totals = base.mark_text(align="left", baseline="middle", dx=2, color=SOFT_INK).encode(
        x=alt.X("n:Q", scale=x_scale), text=alt.Text("n:Q", format="d"), tooltip=tooltip
    )
    chart = alt.layer(bars, totals, title=heading(title, subtitle, width)).properties(height={"step": BAR_STEP})
    return finish(chart, width)


# -- captions ---------------------------------------------------------------------------


def _caption_targets(landscape: Landscape, branch: str) -> str:
    focus = focus_name(landscape)
    kind = branch_words(branch)
    compare = {"heme": " Compare Wei et al. 2021, Fig. 1b.", "solid": " Compare Wei et al. 2021, Fig. 1c."}
    return (
        f"{cap(subject(landscape))} in {kind} with a site in {focus}, registered by "
        f"{as_of_text(landscape)}, per target antigen (at most {TOP_TARGETS} targets, the most frequent). "
        "Dark: the target is the trial's only target; light: the trial also targets other antigens (a multi-"
        "specific CAR or co-administered CARs). A trial with two targets counts under each, so the bars add up to "
        "more than the number of trials; trials whose target is not disclosed are not shown. A trial of several "
        "disease branches counts in each branch its diseases belong to, with the targets known for that branch."
        + compare.get(branch, "")
    )


#: The figure of each disease branch: (name, branch); Fig. 1b and 1c keep the review's numbering in their names.
_BRANCH_FIGURES: tuple[tuple[str, Branch], ...] = (
    ("fig1b_focus_targets_heme", "heme"),
    ("fig1c_focus_targets_solid", "solid"),
    ("fig_focus_targets_autoimmune", "autoimmune"),
)

FIGURES = tuple(
    Figure(
        name,
        functools.partial(fig_focus_targets, branch=branch),
        functools.partial(_caption_targets, branch=branch),
        section=f"branch-{branch}",
    )
    for name, branch in _BRANCH_FIGURES
)
