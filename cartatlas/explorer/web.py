"""What every page handler shares: templates, the explorer's state, the view from the URL, errors."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import jinja2
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


def explorer(request: Request) -> Explorer:
    state: Explorer = request.app.state.explorer
    return state


def view_of(request: Request) -> query.View:
    """The view the URL describes (BadQuery for a parameter that cannot be used)."""
    return query.parse(request.query_params.multi_items())


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    ex = explorer(request)
    page = TEMPLATES.get_template(template).render(
        request=request,
        nonce=request.state.nonce,
        csrf=request.state.csrf,
        read_only=ex.settings.read_only,
        needs_token=ex.settings.token is not None,
        data_version=ex.version,
        db_name=ex.settings.db.name,
        today=dt.date.today(),
        **context,
    )
    return HTMLResponse(page, status_code=status)


def error(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html.j2", status=status, title=f"{status}", message=message)
