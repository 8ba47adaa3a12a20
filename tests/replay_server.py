"""A local stand-in for ClinicalTrials.gov API v2 ``/api/v2/studies`` that replays REAL records.

The studies served are the real ClinicalTrials.gov records in ``../shared/data/ctgov``
(the 2,587-study reconstructed CAR-T monitor corpus and the ``api_v2/*.json``
samples), read in place, never copied.  Tests may change a study (to stand for
a registry update) or add one derived from a real study (a broken record);
everything else is served as published.

It answers the way the live API does where a harvest depends on it:

- ``query.term`` is accepted and not interpreted: the whole set stands for
  the result of the CAR query;
- ``filter.advanced`` ``AREA[LastUpdatePostDate]RANGE[from,to]`` (``MIN``/``MAX``)
  filters by the study's last-update-posted date; any other expression is a 400;
- ``pageSize`` (default 10, coerced down to 1000), an opaque ``nextPageToken``
  absent on the last page, ``totalCount`` on the first page when
  ``countTotal=true``; an unknown or expired ``pageToken`` is a 400.

Faults are scripted by request number (1-based, counted across the server's
life) so that tests are deterministic: see ``Fault``.  Every request is logged
with its parameters, status and fault.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import gzip
import re
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

CTGOV = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ctgov").resolve()
RECONSTRUCTED = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
API_V2 = CTGOV / "api_v2"

#: Longest a "slow" fault holds a request, whatever a test asks: no test can hang on the server.
MAX_HOLD = 60.0


def nct_id(study: dict[str, Any]) -> str:
    return str(study["protocolSection"]["identificationModule"]["nctId"])


def last_update(study: dict[str, Any]) -> str:
    status = study.get("protocolSection", {}).get("statusModule", {})
    return str((status.get("lastUpdatePostDateStruct") or {}).get("date") or "")


@functools.cache
def _real_studies_json() -> bytes:
    """Every real study once, by NCT id (the latest update wins), as JSON: parsed once per session."""
    by_id: dict[str, dict[str, Any]] = {}

    def offer(study: dict[str, Any]) -> None:
        key = nct_id(study)
        if key not in by_id or last_update(study) > last_update(by_id[key]):
            by_id[key] = study

    with gzip.open(RECONSTRUCTED, "rb") as fh:
        for line in fh:
            if line.strip():
                offer(orjson.loads(line))
    for path in sorted(API_V2.glob("*.json")):
        for study in orjson.loads(path.read_bytes()):
            offer(study)
    return orjson.dumps([by_id[k] for k in sorted(by_id)])


@functools.cache
def _first_studies_json(limit: int) -> bytes:
    return orjson.dumps(orjson.loads(_real_studies_json())[:limit])


def real_studies(limit: int | None = None) -> list[dict[str, Any]]:
    """Fresh copies of the real studies in NCT order (all, or the first ``limit``)."""
    studies: list[dict[str, Any]] = orjson.loads(_real_studies_json() if limit is None else _first_studies_json(limit))
    return studies


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering one request."""

    kind: str
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def throttle(cls, retry_after: str | None) -> Fault:
        """429 Too Many Requests, with ``Retry-After`` as given (seconds or an HTTP date)."""
        return cls("status", 429, retry_after)

    @classmethod
    def error(cls, status: int = 500, retry_after: str | None = None) -> Fault:
        return cls("status", status, retry_after)

    @classmethod
    def reset(cls) -> Fault:
        """Headers and half the body, then a TCP reset."""
        return cls("reset")

    @classmethod
    def truncated(cls) -> Fault:
        """A well-formed HTTP response whose JSON body stops halfway."""
        return cls("truncated")

    @classmethod
    def html(cls) -> Fault:
        """A 200 with a proxy's HTML error page instead of JSON."""
        return cls("html")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` (or as soon as the test calls ``release``)."""
        return cls("slow", seconds=seconds)

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """The whole answer, but dribbled out in small pieces over ``seconds``."""
        return cls("trickle", seconds=seconds)

    @classmethod
    def expired_token(cls) -> Fault:
        """400 as for an expired page token."""
        return cls("expired", 400)


@dataclass
class LoggedRequest:
    number: int
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    fault: str | None = None
    returned: int = 0


_RANGE = re.compile(r"AREA\[LastUpdatePostDate\]RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]")


def _date_range(expression: str) -> tuple[str, str] | None:
    match = _RANGE.fullmatch(expression.strip())
    if match is None:
        return None
    low, high = match.groups()
    return ("" if low.upper() == "MIN" else low, "9999-99-99" if high.upper() == "MAX" else high)


@dataclass
class _Token:
    fingerprint: tuple[str, str]
    offset: int


@dataclass
class ReplayServer:
    """Serve ``studies`` on 127.0.0.1 at an ephemeral port; use as a context manager."""

    studies: list[dict[str, Any]]
    faults: dict[int, Fault] = field(default_factory=dict)
    #: (first request number, fault) applied to every request from then on.
    fault_from: tuple[int, Fault] | None = None
    requests: list[LoggedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_id = {nct_id(s): s for s in self.studies}
        self._order = sorted(self._by_id)
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._count = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifetime ----------------------------------------------------------------

    def start(self) -> ReplayServer:
        server = self

        class Handler(_Handler):
            replay = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="replay-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root to give a client as its base URL."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/v2"

    # -- what tests change -------------------------------------------------------

    def update(self, record_id: str, change: Callable[[dict[str, Any]], None], posted: str) -> None:
        """A registry update: ``change`` edits a copy of the study, posted on date ``posted``."""
        with self._lock:
            study = copy.deepcopy(self._by_id[record_id])
            change(study)
            status = study["protocolSection"].setdefault("statusModule", {})
            status["lastUpdatePostDateStruct"] = {"date": posted}
            self._by_id[record_id] = study

    def add(self, study: dict[str, Any], key: str) -> None:
        """Serve one more study (``key`` orders it; it need not have an NCT id)."""
        with self._lock:
            self._by_id[key] = study
            self._order = sorted(self._by_id)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def release(self) -> None:
        """Let held ("slow") requests answer now."""
        self._release.set()

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.fault_from = None
        self.release()

    def current(self, record_id: str) -> dict[str, Any]:
        return self._by_id[record_id]

    def served(self) -> list[dict[str, Any]]:
        return [self._by_id[k] for k in self._order]

    def study_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == "/api/v2/studies"]

    # -- answering ---------------------------------------------------------------

    def _next(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[LoggedRequest, Fault | None]:
        with self._lock:
            self._count += 1
            entry = LoggedRequest(self._count, path, params, headers)
            self.requests.append(entry)
            fault = self.faults.get(self._count)
            if fault is None and self.fault_from is not None and self._count >= self.fault_from[0]:
                fault = self.fault_from[1]
            if fault is not None and fault.kind in ("slow", "trickle"):
                self._release.clear()
            entry.fault = fault.kind if fault else None
            return entry, fault

    def _page(self, params: dict[str, str]) -> tuple[int, bytes, int]:
        """(status, body, records) for a studies request without faults."""
        expression = params.get("filter.advanced", "")
        bounds = ("", "9999-99-99")
        if expression:
            parsed = _date_range(expression)
            if parsed is None:
                return 400, f"filter.advanced: unsupported expression {expression!r}".encode(), 0
            bounds = parsed
        try:
            size = int(params.get("pageSize", "10") or 10)
        except ValueError:
            return 400, b"pageSize: not a number", 0
        size = min(size or 10, 1000)
        if size < 0:
            return 400, b"pageSize: must not be negative", 0
        fingerprint = (params.get("query.term", ""), expression)
        with self._lock:
            matching = [
                self._by_id[k] for k in self._order if bounds[0] <= last_update(self._by_id[k])[:10] <= bounds[1]
            ]
            offset = 0
            token = params.get("pageToken")
            if token:
                found = self._tokens.get(token)
                if found is None or found.fingerprint != fingerprint:
                    return 400, f"pageToken: invalid or expired value {token!r}".encode(), 0
                offset = found.offset
            chunk = matching[offset : offset + size]
            answer: dict[str, Any] = {}
            if params.get("countTotal", "").lower() == "true" and not token:
                answer["totalCount"] = len(matching)
            answer["studies"] = chunk
            if offset + size < len(matching):
                next_token = secrets.token_urlsafe(12)
                self._tokens[next_token] = _Token(fingerprint, offset + size)
                answer["nextPageToken"] = next_token
        return 200, orjson.dumps(answer), len(chunk)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or reset leave broken sockets behind; that is the point, not an error."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replay: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the replay server keeps its own request log."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        entry, fault = self.replay._next(parts.path, params, {k.lower(): v for k, v in self.headers.items()})
        if parts.path != "/api/v2/studies":
            entry.status = 404
            self._send(404, b"not found", "text/plain")
            return
        if fault is not None and fault.kind == "slow":
            self.replay._release.wait(min(fault.seconds, MAX_HOLD))
            fault = None
        if fault is not None and fault.kind in ("status", "expired"):
            entry.status = fault.status
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, f"replayed fault: HTTP {fault.status}".encode(), "text/plain", headers)
            return
        if fault is not None and fault.kind == "html":
            entry.status = 200
            self._send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            return
        status, body, records = self.replay._page(params)
        entry.status = status
        entry.returned = records if status == 200 else 0
        if status != 200:
            self._send(status, body, "text/plain")
            return
        if fault is not None and fault.kind == "truncated":
            entry.returned = 0
            self._send(200, body[: len(body) // 2], "application/json")
            return
        if fault is not None and fault.kind == "trickle":
            self._trickle(body, min(fault.seconds, MAX_HOLD))
            return
        if fault is not None and fault.kind == "reset":
            entry.returned = 0
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # SO_LINGER with a zero timeout makes close() send RST rather than FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self._send(200, body, "application/json")

    def _trickle(self, body: bytes, seconds: float, pieces: int = 50) -> None:
        step = -(-len(body) // pieces)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if self.replay._release.wait(seconds / pieces):
                    break
            else:
                return
            self.wfile.write(body[start + step :])
        except OSError:
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The client gave up (a timeout test): nothing to answer.
            self.close_connection = True


def http_date(when: dt.datetime) -> str:
    """An HTTP date, as a Retry-After header carries it."""
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


def iter_params(requests: Iterable[LoggedRequest], name: str) -> Iterator[str | None]:
    for r in requests:
        yield r.params.get(name)
