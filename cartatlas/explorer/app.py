"""The explorer's web application: pages over the Python API, served by uvicorn.

``create_app(Settings(db=...))`` opens the database once and serves
server-rendered pages (they work without JavaScript; a small script of the
explorer's own adds keyboard shortcuts and conveniences).  Nothing is
loaded from the network: styles, script and charts are the explorer's own.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from cartatlas import __version__
from cartatlas.explorer.routes import changes, curate, geo, landscape, review, search, table, trial
from cartatlas.explorer.security import TOKEN_COOKIE, SecurityMiddleware, WriteRefused, check_write
from cartatlas.explorer.state import Explorer, Settings
from cartatlas.explorer.web import error, explorer, render

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, warm: bool = True) -> FastAPI:
    """The explorer for one database; ``warm`` computes the default landscape in the background at start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            app.state.explorer.warm()
        yield
        app.state.explorer.close()

    app = FastAPI(
        title="cartatlas explorer",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.explorer = Explorer(settings)
    app.add_middleware(SecurityMiddleware, loopback=settings.loopback)
    static = Path(str(resources.files("cartatlas.explorer").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    for module in (landscape, search, table, trial, curate, review, changes, geo):
        app.include_router(module.router)

    @app.exception_handler(WriteRefused)
    async def refused(request: Request, exc: WriteRefused) -> Response:
        return error(request, exc.status, str(exc))

    @app.get("/help")
    def help_page(request: Request) -> Response:
        return render(request, "help.html.j2", page="help", title="Keys and help")

    @app.get("/login")
    def login_form(request: Request, token: str | None = None) -> Response:
        ex = explorer(request)
        if token is not None:
            return _login(request, token, ex.settings.token)
        return render(request, "login.html.j2", page="login", title="Log in", message=None)

    @app.post("/login")
    async def login_post(request: Request) -> Response:
        form = await request.form()
        ex = explorer(request)
        # The login form needs no CSRF token of its own: it only ever sets this browser's own cookie.
        return _login(request, str(form.get("token") or ""), ex.settings.token)

    return app


def _login(request: Request, given: str, token: str | None) -> Response:
    if token is None:
        return RedirectResponse("/", status_code=303)
    if not hmac.compare_digest(given.encode(), token.encode()):
        return render(request, "login.html.j2", status=403, page="login", title="Log in", message="Wrong token.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict", path="/")
    return response


__all__ = ["Settings", "check_write", "create_app"]
