"""Geography of the focus country: provinces/states and cities as tables, and China's provinces as a tile map."""

from __future__ import annotations

from collections import Counter, defaultdict

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas.explorer import charts
from cartatlas.explorer.query import BadQuery
from cartatlas.explorer.web import error, explorer, render_cached, view_of
from cartatlas.normalise.places import region_of

router = APIRouter()


@router.get("/geo")
def geo_page(request: Request) -> Response:
    try:
        view = view_of(request)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    ex = explorer(request)

    def context() -> dict[str, object]:
        land = ex.landscape(view.counting, view.where)
        regions = land.tables["focus_regions"]
        counts = {str(r): int(n) for r, n in zip(regions["region"], regions["n"], strict=True)}
        hrefs = {str(r): f"/trials?{view.only(region=str(r)).query()}" for r in regions["region"]}
        focus = view.counting.focus

        def cities() -> list[tuple[str, str, int]]:
            units = ex.counted(view.counting).select(view.where)
            found: dict[tuple[str, str], set[str]] = defaultdict(set)
            spellings: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
            for sites, unit in zip(units["sites"], units["unit_id"], strict=True):
                for site in sites or []:
                    city = str(site.get("city") or "").strip()
                    if site.get("country_code") == focus and city:
                        region = region_of(focus, site.get("state"), city, site.get("facility"))
                        key = (city.casefold(), region[1] if region else "")
                        found[key].add(unit)
                        spellings[key][city] += 1
            rows = [(spellings[k].most_common(1)[0][0], k[1], len(v)) for k, v in found.items()]
            return sorted(rows, key=lambda r: (-r[2], r[0]))[:100]

        city_rows = ex.cached(("cities", view.counting, view.where), cities)
        tile_map = charts.tile_map(counts, hrefs, title="Trials per province") if focus == "CN" else None
        return {
            "page": "geo",
            "title": "Geography",
            "view": view,
            "regions": list(zip(regions["region"], regions["n"], strict=True)),
            "hrefs": hrefs,
            "cities": city_rows,
            "tile_map": tile_map,
            "facets": ex.facets(view.counting, view.where),
            "totals": land.facts["totals"],
        }

    return render_cached(request, "geo.html.j2", request.url.query, context)
