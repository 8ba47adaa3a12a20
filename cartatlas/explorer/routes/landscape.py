"""The landscape page: every count and figure of the report, for the counting options and filters in the URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas.analysis.landscape import NO_LOCATION, PHASE_ORDER, Landscape
from cartatlas.explorer import charts
from cartatlas.explorer.query import BadQuery, View
from cartatlas.explorer.web import error, explorer, render_cached, view_of
from cartatlas.knowledge import labels

router = APIRouter()

#: The report's tables as the page shows them: title and a line on how they count.
TABLES: dict[str, tuple[str, str]] = {
    "phase_by_group": ("Phase by country group", "The lowest phase of each trial (a phase 1/2 trial is phase 1)."),
    "phase_by_group_active": ("Phase of active trials", "Recruiting, not yet recruiting or active on the date."),
    "status_by_group": (
        "Active or not",
        "Status as the registry showed it on the date, where a stored version allows.",
    ),
    "sponsor_type_by_group": ("Sponsor type by group", "From the registry's sponsor class."),
    "platforms": ("Platforms", "A trial of several platforms counts under each."),
    "branch": ("Branch", "Disease branch of each trial."),
    "product_source": ("Cell source", "Autologous, allogeneic or in vivo."),
    "focus_targets_heme": ("Targets in the focus group: haematological", "Alone: the trial's only target."),
    "focus_targets_solid": ("Targets in the focus group: solid tumours", "Alone: the trial's only target."),
    "focus_regions": ("Provinces / states in the focus group", "A trial with sites in several counts in each."),
    "focus_phase": ("Phase in the focus group", ""),
    "top_sponsors": ("Top sponsors", "Ties at the cut are all shown."),
    "top_focus_sponsors": ("Top sponsors in the focus group", "Ties at the cut are all shown."),
    "top_sites": ("Top sites", "Facilities as the registries spell them."),
    "top_focus_sites": ("Top sites in the focus country", ""),
    "registries": ("Registries", "Registrations and trials per registry."),
    "focus_registry_overlap": ("Where focus-group trials are registered", ""),
    "focus_registry_phases": ("Phase per registry in the focus group", "As each registry states it."),
    "pub_fig2a": ("Published clinical reports per year", "PubMed articles (not filtered by the trial filters)."),
    "pub_fig2b": ("Published clinical reports per target", "PubMed articles (not filtered by the trial filters)."),
    "pub_fig2c": ("Published clinical reports per region", "PubMed articles (not filtered by the trial filters)."),
    "pub_table1": ("Clinical reports from the focus group", "PubMed articles (not filtered by the trial filters)."),
}
# The count tables declared with a label (knowledge/labels.py) that the page does not word itself.
TABLES.update(
    {la.name: (la.display, la.description) for la in labels.LABELS if la.count_column and la.name not in TABLES}
)
#: Which list of ids stands behind a count column.
ID_COLUMNS = {"n": "trial_ids", "alone": "alone_ids", "in_combination": "combination_ids", "trials": "trial_ids"}
HIDDEN = {"trial_ids", "alone_ids", "combination_ids", "pmids"}


@dataclass
class Cell:
    text: str
    href: str | None = None
    numeric: bool = False


@dataclass
class TableModel:
    name: str
    title: str
    note: str
    headers: list[str]
    numeric: list[bool]
    rows: list[list[Cell]] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:,}" if isinstance(value, int) else str(value)


def cell_href(view: View, table: str, row: int, column: str) -> str:
    return f"/trials?{view.query(cell=f'{table}:{row}:{column}')}"


def table_model(name: str, frame: pd.DataFrame, view: View) -> TableModel:
    """A landscape table with its counts linked to the trials behind them."""
    title, note = TABLES.get(name, (name.replace("_", " ").capitalize(), ""))
    columns = [c for c in frame.columns if c not in HIDDEN]
    numeric = [pd.api.types.is_integer_dtype(frame[c]) for c in columns]
    model = TableModel(name, title, note, [c.replace("_", " ") for c in columns], numeric)
    for i, row in enumerate(frame.to_dict("records")):
        cells = []
        for c, is_num in zip(columns, numeric, strict=True):
            ids = ID_COLUMNS.get(c)
            href = cell_href(view, name, i, ids) if ids and ids in frame.columns and row[c] else None
            cells.append(Cell(_text(row[c]), href, is_num))
        model.rows.append(cells)
    return model


def pivot(land: Landscape, name: str, column: str, order: tuple[str, ...], view: View) -> TableModel:
    """A group x category table (phase by group...), each cell linked to its trials."""
    frame = land.tables[name]
    title, note = TABLES.get(name, (name, ""))
    groups = [*land.options.groups.names, NO_LOCATION]
    present = list(dict.fromkeys(frame[column]))
    cats = [c for c in order if c in present] + sorted(c for c in present if c not in order)
    model = TableModel(name, title, note, ["group", *cats, "all"], [False, *[True] * (len(cats) + 1)])
    index = {(r[0], r[1]): i for i, r in enumerate(zip(frame["group"], frame[column], strict=True))}
    for g in groups:
        cells = [Cell(g)]
        total = 0
        for c in cats:
            i = index.get((g, c))
            n = int(frame["n"].iloc[i]) if i is not None else 0
            total += n
            cells.append(Cell(f"{n:,}", cell_href(view, name, i, "trial_ids") if i is not None else None, True))
        if total or g != NO_LOCATION:
            cells.append(Cell(f"{total:,}", None, True))
            model.rows.append(cells)
    return model


def landscape_context(request: Request, view: View) -> dict[str, Any]:
    ex = explorer(request)
    land = ex.landscape(view.counting, view.where)
    facets = ex.facets(view.counting, view.where)
    totals = land.facts["totals"]
    cumulative = land.tables["cumulative_by_year"]
    series = {
        str(g): [(int(y), int(n)) for y, n in zip(part["year"], part["n"], strict=True)]
        for g, part in cumulative.groupby("group", sort=False)
        if part["n"].iloc[-1] or g != NO_LOCATION
    }

    def target_bars(name: str) -> charts.Bar | Any:
        frame = land.tables[name].head(15)
        return charts.bars(
            [
                charts.Bar(str(t), int(n), f"/trials?{view.query(cell=f'{name}:{i}:trial_ids')}")
                for i, (t, n) in enumerate(zip(frame["target"], frame["n"], strict=True))
            ],
            title=TABLES[name][0],
        )

    def simple_bars(name: str, column: str, limit: int = 15) -> Any:
        frame = land.tables[name].sort_values("n", ascending=False).head(limit)
        return charts.bars(
            [
                charts.Bar(str(v), int(n), cell_href(view, name, int(i), "trial_ids"))
                for i, v, n in zip(frame.index, frame[column], frame["n"], strict=True)
            ],
            title=TABLES[name][0],
        )

    pivots = [
        pivot(land, "phase_by_group", "phase_category", PHASE_ORDER, view),
        pivot(land, "phase_by_group_active", "phase_category", PHASE_ORDER, view),
        pivot(land, "status_by_group", "status_group", ("Active", "Not active"), view),
        pivot(land, "sponsor_type_by_group", "sponsor_type", ("Industry", "Academic / hospital", "Government"), view),
    ]
    listed = [
        "focus_targets_heme", "focus_targets_solid", "focus_regions", "focus_phase", "top_sponsors",
        "top_focus_sponsors", "top_sites", "top_focus_sites", "registries", "focus_registry_overlap",
        "focus_registry_phases",
    ]  # fmt: skip
    tables = [table_model(name, land.tables[name], view) for name in listed]
    publications = [table_model(n, land.tables[n], view) for n in ("pub_fig2a", "pub_fig2b", "pub_table1")]
    target_facts = sorted(
        land.facts["targets"].items(), key=lambda kv: (-kv[1]["focus_trials"], -kv[1]["trials"], kv[0])
    )[:12]
    return {
        "view": view,
        "land": land,
        "totals": totals,
        "facets": facets,
        "cumulative": charts.lines(series, title="Trials registered, cumulative, per group"),
        "heme_bars": target_bars("focus_targets_heme"),
        "solid_bars": target_bars("focus_targets_solid"),
        "platform_bars": simple_bars("platforms", "platform"),
        "branch_bars": simple_bars("branch", "branch"),
        "source_bars": simple_bars("product_source", "product_source"),
        "region_bars": simple_bars("focus_regions", "region", 20),
        "pivots": pivots,
        "tables": tables,
        "publications": [t for t in publications if t.rows],
        "target_facts": target_facts,
        "strategy": land.facts.get("focus_target_strategy", {}),
    }


@router.get("/")
def landscape_page(request: Request) -> Response:
    try:
        view = view_of(request)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    return render_cached(
        request,
        "landscape.html.j2",
        request.url.query,
        lambda: {"page": "landscape", **landscape_context(request, view)},
    )
