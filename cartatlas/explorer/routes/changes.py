"""What changed between two dates, saved views, and their feeds (Atom and JSON Feed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cartatlas.dates import parse_date
from cartatlas.explorer import changes, views
from cartatlas.explorer.query import BadQuery, View, parse
from cartatlas.explorer.security import CSRF_FIELD, check_write
from cartatlas.explorer.web import error, explorer, render, view_of

router = APIRouter()


def describe(view: View) -> str:
    """A view in words, for feed titles: "CAR trials · Target BCMA or GPRC5D · Country China"."""
    from cartatlas.analysis.filters import FACETS

    parts = ["CAR trials"]
    for name, facet in FACETS.items():
        values = view.where.chosen(name)
        if values:
            parts.append(f"{facet.label} {' or '.join(facet.describe(v) for v in values)}")
    if view.where.registered_from or view.where.registered_to:
        parts.append(f"registered {view.where.registered_from or '…'} to {view.where.registered_to or '…'}")
    return " · ".join(parts)


def _dates(request: Request, view: View) -> tuple[dt.date, dt.date]:
    until_text, since_text = request.query_params.get("until"), request.query_params.get("since")
    until = parse_date(until_text) if until_text else view.counting.effective_as_of()
    if until is None:
        raise BadQuery(f"until={until_text!r} is not a date (use YYYY-MM-DD)")
    since = parse_date(since_text) if since_text else until.replace(year=until.year - 1)
    if since is None:
        raise BadQuery(f"since={since_text!r} is not a date (use YYYY-MM-DD)")
    if since >= until:
        raise BadQuery(f"since ({since}) must be before until ({until})")
    return since, until


@router.get("/changes")
def changes_page(request: Request) -> Response:
    try:
        view = view_of(request)
        since, until = _dates(request, view)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    ex = explorer(request)

    def compute() -> dict[str, Any]:
        start = ex.counted(replace(view.counting, as_of=since))
        end = ex.counted(replace(view.counting, as_of=until))
        return changes.compare(start, end, view.where, ex.reader().store)

    result = ex.cached(("changes", view.counting, view.where, since, until), compute)
    return render(
        request,
        "changes.html.j2",
        page="changes",
        title="What changed",
        view=view,
        since=since,
        until=until,
        diff=result,
        changed_rows=changes.changed_rows,
        description=describe(view),
        facets=ex.facets(view.counting, view.where),
    )


def _feed(request: Request, view: View, title: str, fmt: str, self_path: str) -> Response:
    ex = explorer(request)
    entries = changes.feed_entries(ex.counted(view.counting), view.where)
    base = str(request.base_url).rstrip("/")
    page = f"{base}/trials?{view.query()}"
    trial_url = base + "/trial/{id}"
    self_url = base + self_path
    if fmt == "atom":
        return Response(changes.atom(title, self_url, page, trial_url, entries), media_type="application/atom+xml")
    if fmt == "json":
        return Response(
            changes.json_feed(title, self_url, page, trial_url, entries), media_type="application/feed+json"
        )
    return error(request, 404, f"no feed as {fmt!r}: use atom or json")


@router.get("/changes/feed.{fmt}")
def changes_feed(request: Request, fmt: str) -> Response:
    try:
        view = view_of(request)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    path = f"/changes/feed.{fmt}" + (f"?{request.url.query}" if request.url.query else "")
    return _feed(request, view, describe(view), fmt, path)


# -- saved views ----------------------------------------------------------------------------------


@router.get("/views")
def views_page(request: Request) -> Response:
    saved = []
    for v in views.load(explorer(request).reader()):
        try:
            description = describe(parse(_pairs(v.query)))
        except BadQuery as exc:
            description = f"no longer a valid view: {exc}"
        saved.append((v, description))
    return render(request, "views.html.j2", page="views", title="Saved views", saved=saved)


@router.post("/views")
async def save_view(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    ex = explorer(request)
    check_write(request, form.get(CSRF_FIELD), read_only=ex.settings.read_only, token=ex.settings.token)
    query = form.get("query", "")
    try:
        parse(_pairs(query))
        saved = ex.write(lambda atlas: views.save(atlas, form.get("name", ""), query, form.get("curator", "")))
    except (BadQuery, ValueError) as exc:
        return error(request, 400, str(exc))
    return RedirectResponse(f"/views#{saved.slug}", status_code=303)


@router.post("/views/{slug}/delete")
async def delete_view(request: Request, slug: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    ex = explorer(request)
    check_write(request, form.get(CSRF_FIELD), read_only=ex.settings.read_only, token=ex.settings.token)
    if not ex.write(lambda atlas: views.delete(atlas, slug)):
        return error(request, 404, f"no saved view {slug!r}")
    return RedirectResponse("/views", status_code=303)


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=False)


@router.get("/views/{slug}")
def open_view(request: Request, slug: str) -> Response:
    saved = views.find(explorer(request).reader(), slug)
    if saved is None:
        return error(request, 404, f"no saved view {slug!r}")
    return RedirectResponse(f"/?{saved.query}", status_code=303)


@router.get("/views/{slug}/feed.{fmt}")
def view_feed(request: Request, slug: str, fmt: str) -> Response:
    saved = views.find(explorer(request).reader(), slug)
    if saved is None:
        return error(request, 404, f"no saved view {slug!r}")
    try:
        view = parse(_pairs(saved.query))
    except BadQuery as exc:
        return error(request, 400, f"saved view {slug!r} no longer parses: {exc}")
    return _feed(request, view, saved.name, fmt, f"/views/{slug}/feed.{fmt}")
