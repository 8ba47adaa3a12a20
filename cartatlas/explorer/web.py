"""What every page handler shares: templates, the explorer's state, the view from the URL, errors."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Hashable
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from cartatlas.analysis.filters import FACETS, TABLE_COLUMNS
from cartatlas.explorer import query
from cartatlas.explorer.security import CSRF_FIELD
from cartatlas.explorer.state import Explorer
from cartatlas.normalise.countries import country_name
from cartatlas.report.html import registry_url


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cartatlas.explorer", "templates"),
        autoescape=True,  # every template, whatever its name: registry text is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    env.filters["country"] = lambda code: country_name(code) or code
    env.filters["urlencode_pairs"] = urlencode
    env.globals["FACETS"] = FACETS
    env.globals["TABLE_COLUMNS"] = TABLE_COLUMNS
    env.globals["registry_url"] = registry_url
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return env


TEMPLATES = _environment()


CURATOR_COOKIE = "cartatlas_curator"


def curator_name(request: Request) -> str:
    """The name this browser last curated under (kept URL-quoted in a cookie: names are often not ASCII)."""
    return unquote(request.cookies.get(CURATOR_COOKIE, ""))


def remember_curator(response: Response, name: str) -> None:
    response.set_cookie(CURATOR_COOKIE, quote(name), httponly=True, samesite="strict", max_age=365 * 86400)


def explorer(request: Request) -> Explorer:
    state: Explorer = request.app.state.explorer
    return state


def view_of(request: Request) -> query.View:
    """The view the URL describes (BadQuery for a parameter that cannot be used)."""
    return query.parse(request.query_params.multi_items())


def _page(request: Request, template: str, context: dict[str, Any], per_request: dict[str, str]) -> str:
    ex = explorer(request)
    return TEMPLATES.get_template(template).render(
        request=request,
        read_only=ex.settings.read_only,
        needs_token=ex.settings.token is not None,
        data_version=ex.version,
        db_name=ex.settings.db.name,
        today=dt.date.today(),
        **per_request,
        **context,
    )


def _per_request(request: Request) -> dict[str, str]:
    """What differs between two visitors of the same page: the script nonce, the CSRF token, the curator's name."""
    return {
        "nonce": request.state.nonce,
        "csrf": request.state.csrf,
        "curator": curator_name(request),
    }


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("curator", curator_name(request))
    per_request = _per_request(request)
    per_request.pop("curator")
    return HTMLResponse(_page(request, template, context, per_request), status_code=status)


#: Stand-ins for the per-visitor parts of a cached page; random per process, so no registry text can hold one.
_MARKS = {name: f"cartatlas-{name}-{secrets.token_hex(12)}" for name in ("nonce", "csrf", "curator")}


def render_cached(
    request: Request, template: str, key: Hashable, context: Callable[[], dict[str, Any]]
) -> HTMLResponse:
    """A page that depends only on the data version and its URL: rendered once, then served from the cache.

    It is rendered with stand-ins for the nonce, the CSRF token and the
    curator's name, which are put in for each visitor (the name escaped).
    """
    ex = explorer(request)

    def build() -> str:
        return _page(request, template, context(), dict(_MARKS))

    html = ex.page((template, key, dt.date.today()), build)
    own = _per_request(request)
    for name, mark in _MARKS.items():
        html = html.replace(mark, str(escape(own[name])))
    return HTMLResponse(html)


def error(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html.j2", status=status, title=f"{status}", message=message)
