"""The explorer's protections: who may write, forged forms, hostile registry text, foreign pages.

* **Where it listens.**  127.0.0.1 by default.  On a loopback address,
  requests must name a loopback host (a page elsewhere cannot reach the
  explorer through a DNS name that points at 127.0.0.1).  On any other
  address the explorer starts only with a token (``--token`` or
  ``$CARTATLAS_TOKEN``) or ``--read-only``.
* **Who may write.**  With a token, every write must carry it: a cookie set
  by ``/login`` (a form, or ``/login?token=...`` once) or an
  ``Authorization: Bearer`` header.  ``--read-only`` opens the database
  read-only and refuses every write.
* **Forged forms (CSRF).**  Each browser gets a random token in a cookie
  (SameSite=Strict, HttpOnly); every form carries it in a hidden field, and a
  POST whose field does not match the cookie is refused.
* **Registry text** is escaped by Jinja2's autoescaping everywhere; pages
  carry a strict Content-Security-Policy (scripts only from the explorer
  itself or with the page's nonce, no inline styles, nothing from the
  network, no framing).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "cartatlas_csrf"
TOKEN_COOKIE = "cartatlas_token"
CSRF_FIELD = "csrf"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1", "testserver"})


class WriteRefused(Exception):
    """A write that may not happen: the status to answer with, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def host_name(header: str) -> str:
    """The host of a Host header, without its port ('[::1]:8765' -> '[::1]')."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class SecurityMiddleware:
    """Host check, a nonce and a CSRF token per request, and the security headers on every answer.

    A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and
    a stream per request, which shows when many pages are served at once).
    """

    def __init__(self, app: ASGIApp, *, loopback: bool) -> None:
        self.app = app
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.loopback and host_name(headers.get("host", "")).casefold() not in LOOPBACK_HOSTS:
            answer = PlainTextResponse("unexpected Host header: this explorer answers only on loopback", 400)
            await answer(scope, receive, send)
            return
        cookie = cookie_parser(headers.get("cookie", "")).get(CSRF_COOKIE, "")
        nonce = secrets.token_urlsafe(16)
        csrf = cookie if len(cookie) >= 32 else secrets.token_urlsafe(32)
        state = scope.setdefault("state", {})
        state["nonce"], state["csrf"] = nonce, csrf

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                if "content-security-policy" not in out:
                    out["Content-Security-Policy"] = content_security_policy(nonce)
                out["X-Content-Type-Options"] = "nosniff"
                out["X-Frame-Options"] = "DENY"
                out["Referrer-Policy"] = "same-origin"
                out["Cross-Origin-Opener-Policy"] = "same-origin"
                if csrf != cookie:
                    out.append("set-cookie", f"{CSRF_COOKIE}={csrf}; HttpOnly; Path=/; SameSite=strict")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def token_ok(request: Request, token: str | None) -> bool:
    """Whether the request carries the write token (always true when none is configured)."""
    if token is None:
        return True
    given = request.cookies.get(TOKEN_COOKIE, "")
    auth = request.headers.get("authorization", "")
    if auth.casefold().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), token.encode())


def check_write(request: Request, form_csrf: str | None, *, read_only: bool, token: str | None) -> None:
    """Refuse a write that is not allowed: read-only explorer, missing token, or a form not from this browser."""
    if read_only:
        raise WriteRefused(403, "This explorer was started with --read-only: nothing can be changed here.")
    if not token_ok(request, token):
        raise WriteRefused(403, "Writing needs the explorer's token: open /login and enter it.")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_csrf or not hmac.compare_digest(cookie.encode(), form_csrf.encode()):
        raise WriteRefused(
            403,
            "This form did not come from this browser's explorer page (missing or wrong CSRF token). "
            "Reload the page and submit again.",
        )
