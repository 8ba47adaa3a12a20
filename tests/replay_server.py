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
with its parameters, status and fault.  The server, its request log and the
faults are the shared test plumbing of ``http_faults.py``; this module gives
the API's routes and the real records.
"""

from __future__ import annotations

import copy
import functools
import gzip
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import http_faults
import orjson
from http_faults import MAX_HOLD as MAX_HOLD
from http_faults import FaultServer, Reply, Request
from http_faults import http_date as http_date

CTGOV = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ctgov").resolve()
RECONSTRUCTED = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
API_V2 = CTGOV / "api_v2"


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


class Fault(http_faults.Fault):
    """What to do instead of (or before) answering one request; see ``http_faults.Fault``."""

    @classmethod
    def throttle(cls, retry_after: str | None) -> Fault:
        """429 Too Many Requests, with ``Retry-After`` as given (seconds or an HTTP date)."""
        return cls.error(429, retry_after)

    @classmethod
    def html(cls) -> Fault:
        """A 200 with a proxy's HTML error page instead of JSON."""
        return cls.answer("html", 200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")

    @classmethod
    def expired_token(cls) -> Fault:
        """400 as for an expired page token."""
        return cls.answer("expired", 400, b"replayed fault: HTTP 400", "text/plain")


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
class ReplayServer(FaultServer):
    """Serve ``studies`` on 127.0.0.1 at an ephemeral port; use as a context manager."""

    studies: list[dict[str, Any]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self._by_id = {nct_id(s): s for s in self.studies}
        self._order = sorted(self._by_id)
        self._tokens: dict[str, _Token] = {}

    @property
    def url(self) -> str:
        """The API root to give a client as its base URL."""
        return f"{self.root}/api/v2"

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

    def current(self, record_id: str) -> dict[str, Any]:
        return self._by_id[record_id]

    def served(self) -> list[dict[str, Any]]:
        return [self._by_id[k] for k in self._order]

    def study_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/v2/studies"]

    # -- answering ---------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.path != "/api/v2/studies":
            return Reply(404, b"not found", "text/plain")
        status, body, records = self._page(request.params)
        return Reply(status, body, "application/json" if status == 200 else "text/plain", records=records)

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


def iter_params(requests: Iterable[Request], name: str) -> Iterator[str | None]:
    for r in requests:
        yield r.params.get(name)
