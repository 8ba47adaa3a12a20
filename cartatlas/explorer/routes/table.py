"""The trial table: the filtered trials, sortable, paginated, chosen columns; and the same rows as files."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas.analysis.filters import TABLE_COLUMNS
from cartatlas.explorer import downloads
from cartatlas.explorer.query import BadQuery, View
from cartatlas.explorer.routes.landscape import TABLES
from cartatlas.explorer.web import error, explorer, render_cached, view_of

router = APIRouter()


def resolve_cell(request: Request, view: View, cell: str | None) -> tuple[View, str | None]:
    """A count's trials (``cell=table:row:ids_column`` from the landscape page) as an id filter."""
    if not cell:
        return view, None
    try:
        name, row_text, column = cell.split(":", 2)
        row = int(row_text)
    except ValueError as exc:
        raise BadQuery(f"cell={cell!r}: expected table:row:column") from exc
    land = explorer(request).landscape(view.counting, view.where)
    frame = land.tables.get(name)
    if frame is None or column not in frame.columns or not 0 <= row < len(frame) or not column.endswith("_ids"):
        raise BadQuery(f"cell={cell!r}: no such count in this landscape (was the page built on other data?)")
    ids = frame[column].iloc[row]
    keys = [f"{c}={frame[c].iloc[row]}" for c in frame.columns[:2] if not c.endswith("_ids") and c != "n"]
    label = (
        f"{TABLES.get(name, (name, ''))[0]}: {', '.join(keys)} ({column.replace('_ids', '').replace('trial', 'all')})"
    )
    where = replace(view.where, ids=frozenset(ids))
    return replace(view, where=where), label


def _table(request: Request, view: View, *, limit: bool) -> tuple[int, pd.DataFrame]:
    counted = explorer(request).counted(view.counting)
    t = view.table
    return counted.table(
        view.where,
        t.columns,
        sort=t.sort,
        descending=t.descending,
        offset=(t.page - 1) * t.size if limit else 0,
        limit=t.size if limit else None,
    )


@router.get("/trials")
def table_page(request: Request) -> Response:
    try:
        view = view_of(request)
        view, cell_label = resolve_cell(request, view, request.query_params.get("cell"))
    except BadQuery as exc:
        return error(request, 400, str(exc))
    ex = explorer(request)

    def context() -> dict[str, object]:
        shown = view
        total, frame = _table(request, shown, limit=True)
        pages = max(1, math.ceil(total / shown.table.size))
        if shown.table.page > pages:
            shown = replace(shown, table=replace(shown.table, page=pages))
            total, frame = _table(request, shown, limit=True)
        return {
            "page": "trials",
            "title": "Trials",
            "view": shown,
            "facets": ex.facets(shown.counting, shown.where),
            "total": total,
            "frame": frame,
            "pages": pages,
            "keys": [c for c in shown.table.columns if c in TABLE_COLUMNS],
            "cell": request.query_params.get("cell") or "",
            "cell_label": cell_label,
        }

    return render_cached(request, "table.html.j2", request.url.query, context)


@router.get("/trials.{fmt}")
def table_download(request: Request, fmt: str) -> Response:
    if fmt not in downloads.MEDIA_TYPES:
        return error(request, 404, f"no download as {fmt!r}: use csv, xlsx or parquet")
    try:
        view = view_of(request)
        view, _ = resolve_cell(request, view, request.query_params.get("cell"))
    except BadQuery as exc:
        return error(request, 400, str(exc))
    _, frame = _table(request, view, limit=False)
    body = downloads.render(frame, fmt)
    name = f"cartatlas-trials-{view.counting.effective_as_of().isoformat()}.{fmt}"
    return Response(
        body,
        media_type=downloads.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
