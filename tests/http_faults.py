"""Test plumbing: a real HTTP server on 127.0.0.1 that injects the faults a live harvest meets.

The local stand-ins for the registries (``replay_server.py`` for
ClinicalTrials.gov, ``chictr_server.py`` for ChiCTR, ``eutils_server.py`` for
NCBI's E-utilities) serve REAL records, read in place from ``../shared/data``;
what they have in common lives here: a threaded HTTP/1.1 server on an
ephemeral port of 127.0.0.1, a numbered log of every request, and faults
scripted per request number (1-based, counted over the server's life) so that
tests are deterministic.  Each stand-in keeps its own routes (``route``) and
its own fault vocabulary (a ``Fault`` subclass with the registry's pages).

Faults, applied between the route and the socket:

- an answer instead of the route's (a status with ``Retry-After``, a proxy's
  HTML page, a firewall's challenge page);
- ``truncated``: the route's answer with its body cut, and a Content-Length
  that matches, so that only the client's parser can tell;
- ``reset``: headers and part of the body (or nothing at all), then a TCP reset;
- ``slow``: the answer held for a while (or until the test calls ``release``);
- ``trickle``: the whole answer dribbled out in small pieces.

Every hold is capped by ``MAX_HOLD``: no test can hang on the server.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
import threading
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

#: Longest a "slow" or "trickle" fault holds a request, whatever a test asks.
MAX_HOLD = 60.0


def http_date(when: dt.datetime) -> str:
    """An HTTP date, as a Retry-After header carries it."""
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or to) the answer to one request.

    ``kind`` names the fault in the request log.  An answer fault (``status``
    set and ``replace``) is sent instead of the route's answer; the others
    change the route's answer on its way out.
    """

    kind: str
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    #: An answer fault's body and type.
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()
    replace: bool = False
    #: How much of the body a cut or reset answer keeps: a fraction, or ``size`` bytes.
    keep: float = 0.5
    size: int | None = None
    #: A reset before any byte of the answer (no status line at all).
    silent: bool = False

    @classmethod
    def answer(
        cls,
        kind: str,
        status: int,
        body: bytes,
        content_type: str,
        retry_after: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Self:
        """``status`` with ``body`` instead of what the route would answer."""
        return cls(
            kind,
            status,
            retry_after,
            body=body,
            content_type=content_type,
            headers=tuple((headers or {}).items()),
            replace=True,
        )

    @classmethod
    def error(cls, status: int = 500, retry_after: str | None = None) -> Self:
        return cls.answer("status", status, f"replayed fault: HTTP {status}".encode(), "text/plain", retry_after)

    @classmethod
    def reset(cls, keep: float = 0.5) -> Self:
        """Headers and ``keep`` of the body, then a TCP reset."""
        return cls("reset", keep=keep)

    @classmethod
    def hang_up(cls) -> Self:
        """A TCP reset before any answer."""
        return cls("reset", silent=True)

    @classmethod
    def truncated(cls, keep: float = 0.5, size: int | None = None) -> Self:
        """A well-formed response whose body stops at ``keep`` of its length (or after ``size`` bytes)."""
        return cls("truncated", keep=keep, size=size)

    @classmethod
    def slow(cls, seconds: float) -> Self:
        """Answer normally after ``seconds`` (or as soon as the test calls ``release``)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def trickle(cls, seconds: float) -> Self:
        """The whole answer, but dribbled out in small pieces over ``seconds``."""
        return cls("trickle", seconds=seconds)

    def cut(self, body: bytes) -> bytes:
        return body[: self.size] if self.size is not None else body[: int(len(body) * self.keep)]


@dataclass
class Request:
    """One request as the server saw it, and what it answered."""

    number: int
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    fault: str | None = None
    #: Records the route served (0 when a fault cut the answer); for servers that count them.
    returned: int = 0


@dataclass
class Reply:
    """A route's answer."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    #: How many records the body holds, for the request log.
    records: int = 0


@dataclass(kw_only=True)
class FaultServer:
    """The server: subclasses give ``route`` (and may choose faults otherwise in ``fault_for``).

    Use as a context manager; ``root`` is ``http://127.0.0.1:PORT``.
    """

    #: Faults by request number.
    faults: dict[int, Fault] = field(default_factory=dict)
    #: (first request number, fault) applied to every request from then on.
    fault_from: tuple[int, Fault] | None = None
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._count = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what subclasses give ------------------------------------------------------

    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def fault_for(self, request: Request) -> Fault | None:
        """The fault scripted for this request's number (called under the server's lock)."""
        fault = self.faults.get(request.number)
        if fault is None and self.fault_from is not None and request.number >= self.fault_from[0]:
            fault = self.fault_from[1]
        return fault

    # -- lifetime ----------------------------------------------------------------------

    def start(self) -> Self:
        server = self

        class Handler(_Handler):
            site = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def root(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what tests change ---------------------------------------------------------------

    def release(self) -> None:
        """Let held ("slow", "trickle") requests answer now."""
        self._release.set()

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fault_from = None
        self.release()

    # -- answering -----------------------------------------------------------------------

    def _arrive(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[Request, Fault | None]:
        with self._lock:
            self._count += 1
            request = Request(self._count, method, path, params, headers)
            self.requests.append(request)
            fault = self.fault_for(request)
            if fault is not None and fault.kind in ("slow", "trickle"):
                self._release.clear()
            request.fault = fault.kind if fault else None
            return request, fault


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or reset leave broken sockets behind; that is the point, not an error."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the server keeps its own request log."""

    def do_GET(self) -> None:
        self._serve("GET", urlsplit(self.path).query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve("POST", self.rfile.read(length).decode())

    def _serve(self, method: str, query: str) -> None:
        params = dict(parse_qsl(query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        request, fault = self.site._arrive(method, urlsplit(self.path).path, params, headers)
        if fault is not None and fault.kind == "slow":
            self.site._release.wait(min(fault.seconds, MAX_HOLD))
            fault = None
        if fault is not None and fault.silent:
            self._reset()
            return
        if fault is not None and fault.replace:
            request.status = fault.status
            extra = dict(fault.headers)
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            self._send(fault.status, fault.body, fault.content_type, extra)
            return
        reply = self.site.route(request)
        request.status = reply.status
        request.returned = reply.records
        if fault is None:
            self._send(reply.status, reply.body, reply.content_type, reply.headers)
        elif fault.kind == "truncated":
            request.returned = 0
            self._send(reply.status, fault.cut(reply.body), reply.content_type, reply.headers)
        elif fault.kind == "trickle":
            self._trickle(reply, min(fault.seconds, MAX_HOLD))
        elif fault.kind == "reset":
            request.returned = 0
            self._head(reply, len(reply.body))
            self.wfile.write(fault.cut(reply.body))
            self.wfile.flush()
            self._reset()
        else:  # pragma: no cover - a test asked for a fault this server does not know
            raise ValueError(f"unknown fault {fault.kind!r}")

    def _head(self, reply: Reply, length: int) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self._head(Reply(status, body, content_type, headers or {}), len(body))
            self.wfile.write(body)
        except OSError:
            # The client gave up (a timeout test): nothing to answer.
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST rather than FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _trickle(self, reply: Reply, seconds: float, pieces: int = 50) -> None:
        body = reply.body
        step = max(1, -(-len(body) // pieces))
        try:
            self._head(reply, len(body))
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if self.site._release.wait(seconds / pieces):
                    self.wfile.write(body[start + step :])
                    return
        except OSError:
            self.close_connection = True
