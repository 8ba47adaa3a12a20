"""The search page: one box over ids (any registry's, secondary ids too), titles, sponsors, products, sites."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cartatlas.explorer.web import explorer, render

router = APIRouter()

MAX_QUERY = 200


@router.get("/search")
def search_page(request: Request, q: str = "", limit: int = 50) -> Response:
    text = q.strip()[:MAX_QUERY]
    limit = max(1, min(limit, 500))
    hits = explorer(request).search_index().search(text, limit + 1) if text else []
    # One hit that is exactly the id asked for: go straight to the trial ("NCT04332380" in the box).
    if len(hits) == 1 and hits[0].trial_id.casefold() == text.casefold():
        return RedirectResponse(f"/trial/{hits[0].trial_id}", status_code=303)
    return render(
        request,
        "search.html.j2",
        page="search",
        title=f"Search: {text}" if text else "Search",
        search_text=text,
        hits=hits[:limit],
        more=len(hits) > limit,
        limit=limit,
    )
