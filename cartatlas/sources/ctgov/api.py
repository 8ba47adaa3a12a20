"""ClinicalTrials.gov API v2: a polite, resumable, incremental harvest.

``CtgovClient`` asks ``/studies`` for one page at a time and survives what a
long harvest meets on the way: throttling (429 with ``Retry-After``), server
errors, dropped connections, bodies cut short, proxy error pages instead of
JSON.  It spaces its requests to a fixed rate, far under the ~50 requests a
minute the registry tolerates from one address, because a harvest of the whole
CAR landscape is a few pages and nothing is gained by hurrying.

The client only fetches and splits pages into records (``page_records``);
the pass that stores them and checkpoints is the pipeline's
(``cartatlas.pipeline.harvest.ctgov``).

Clock, sleep and random source are parameters so that tests can replay faults
deterministically without waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from cartatlas.sources.base import Item
from cartatlas.sources.ctgov.json_files import v2_study_record
from cartatlas.sources.http import RETRY_STATUSES, Answer, PoliteClient, PoliteSource, Retry, excerpt

log = logging.getLogger(__name__)

REGISTRY = "ctgov"
DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
#: The API's own ceiling for pageSize.
MAX_PAGE_SIZE = 1000
#: Requests per second; the registry tolerates about 50 a minute (0.83/s) per address.
DEFAULT_RATE = 0.5
DOCUMENTED_RATE = 50 / 60
DEFAULT_MAX_RETRIES = 6
#: Days subtracted from the start of the last complete pass when counting an incremental one from it:
#: LastUpdatePostDate is a US date and is posted with some lag, so a margin costs little and misses nothing.
SINCE_OVERLAP_DAYS = 3

#: Names under which CAR-based cell therapies are registered.  Each is a phrase
#: search, so "CAR T" also finds "CAR T-cell" and "CAR T cells".
DEFAULT_TERMS: tuple[str, ...] = (
    "chimeric antigen receptor",
    "CAR-T",
    "CAR T",
    "CART",
    "CAR-NK",
    "CAR NK",
    "CAR-NKT",
    "CAR-iNKT",
    "CAAR-T",
    "CAR-Treg",
    "CAR Treg",
    "CAR-M",
    "CAR macrophage",
)


def essie_or(terms: tuple[str, ...] | list[str]) -> str:
    """An Essie OR of quoted phrases; quotes inside a term would end the phrase, so they are dropped."""
    phrases = []
    for term in terms:
        clean = " ".join(term.replace('"', " ").split())
        if clean:
            phrases.append(f'"{clean}"')
    if not phrases:
        raise ValueError("no search terms")
    return " OR ".join(phrases)


DEFAULT_QUERY = essie_or(DEFAULT_TERMS)
#: The query that stands for every study in the registry: sent without ``query.term``, checkpointed as "*".
ALL_STUDIES = "*"


def since_filter(since: dt.date) -> str:
    """The Essie filter for records whose last update was posted on or after ``since``."""
    return f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"


# -- errors --------------------------------------------------------------------------


class ApiError(RuntimeError):
    """The registry API could not be used; the message says what it answered."""


class RetriesExhausted(ApiError):
    """A request kept failing in ways worth retrying until the retry budget ran out."""


class PageTokenRejected(ApiError):
    """The server refused a page token (they expire); the pass has to start again."""


# -- the client ------------------------------------------------------------------------


@dataclass(slots=True)
class Page:
    """One page of ``/studies`` as received."""

    studies: list[Any]
    next_page_token: str | None
    total_count: int | None
    #: The request URL, page token included: where the records came from.
    url: str
    page_token: str | None


class CtgovClient(PoliteSource):
    """A ClinicalTrials.gov API v2 client that paces itself and retries what is worth retrying.

    ``rate`` is requests per second over every attempt, retries included.
    ``max_retries`` bounds the attempts per page (1 + max_retries); waits grow
    exponentially from ``backoff_base`` up to ``backoff_max`` with jitter, or
    follow ``Retry-After`` up to ``max_wait``.  Each attempt is bounded by
    ``timeout`` per network wait and ``max_request_seconds`` in all, and a
    walk through pages by ``max_pages``: no loop here can run unbounded.  The
    pacing, retrying and bounding are ``cartatlas.sources.http.PoliteClient``'s;
    this class asks for pages and judges them.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        rate: float = DEFAULT_RATE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        page_size: int = MAX_PAGE_SIZE,
        timeout: float = 60.0,
        backoff_base: float = 2.0,
        backoff_max: float = 120.0,
        max_wait: float = 600.0,
        max_pages: int = 10_000,
        max_request_seconds: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        if rate > DOCUMENTED_RATE and base_url.rstrip("/") == DEFAULT_BASE_URL:
            log.warning(
                "rate %.2f requests/s is above what ClinicalTrials.gov tolerates (about %.2f/s); expect throttling",
                rate,
                DOCUMENTED_RATE,
            )
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages
        self.http = PoliteClient(
            name="ClinicalTrials.gov",
            rate=rate,
            max_retries=max_retries,
            timeout=timeout,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_wait=max_wait,
            max_request_seconds=max_request_seconds,
            headers={"Accept": "application/json"},
            retry_statuses=RETRY_STATUSES,
            refused=ApiError,
            exhausted=RetriesExhausted,
            logger=log,
            transport=transport,
            sleep=sleep,
            monotonic=monotonic,
            wall_clock=wall_clock,
            rng=rng,
        )

    # -- requests ----------------------------------------------------------------

    def studies_params(
        self, query: str, since: dt.date | None, page_token: str | None, *, count_total: bool
    ) -> dict[str, str]:
        params = {"format": "json", "pageSize": str(self.page_size)}
        if query != ALL_STUDIES:
            params["query.term"] = query
        if since is not None:
            params["filter.advanced"] = since_filter(since)
        if count_total:
            params["countTotal"] = "true"
        if page_token:
            params["pageToken"] = page_token
        return params

    def fetch_page(
        self, query: str, since: dt.date | None = None, page_token: str | None = None, *, count_total: bool = False
    ) -> Page:
        """One page, retried until it arrives whole or the retry budget is spent.

        A 400 to a request with a page token is the token refused (they
        expire), which the harvest answers by starting its pass again.
        """
        params = self.studies_params(query, since, page_token, count_total=count_total)

        def validate(answer: Answer) -> Page | Retry:
            if answer.status == 400:
                raise PageTokenRejected(f"{answer.url}: the server refused the page token: {excerpt(answer.body)}")
            return _parse(answer, page_token)

        return self.http.request(
            "GET",
            f"{self.base_url}/studies",
            validate,
            params=params,
            accept=(200, 400) if page_token else (200,),
        )

    def count(self, query: str | None = None, since: dt.date | None = None) -> int:
        """How many records a pass of ``query`` would read: one request for a page of one, with ``countTotal``."""
        params = self.studies_params(query or DEFAULT_QUERY, since, None, count_total=True)
        params["pageSize"] = "1"

        def validate(answer: Answer) -> int | Retry:
            page = _parse(answer, None)
            if isinstance(page, Retry):
                return page
            if page.total_count is None:
                return Retry("the answer has no totalCount")
            return page.total_count

        return self.http.request("GET", f"{self.base_url}/studies", validate, params=params)

    def fetch_pages(
        self, query: str | None = None, since: dt.date | None = None, page_token: str | None = None
    ) -> Iterator[Page]:
        """Every page of a query, from ``page_token`` (or the first page) to the last.

        The first page of a pass asks for the total count.  Bounded by
        ``max_pages`` and by a check that the server does not send a token
        already seen, so a confused server cannot keep a harvest going forever.
        """
        query = query or DEFAULT_QUERY
        seen: set[str] = set()
        token = page_token
        for _ in range(self.max_pages):
            page = self.fetch_page(query, since, token, count_total=token is None)
            yield page
            token = page.next_page_token
            if token is None:
                return
            if token in seen:
                raise ApiError(f"{page.url}: the server sent page token {token!r} twice; stopping")
            seen.add(token)
        raise ApiError(f"stopped after {self.max_pages:,} pages without reaching the last one")


def _parse(answer: Answer, page_token: str | None) -> Page | Retry:
    """A page of studies, or why the body is not one (a proxy's HTML, JSON cut short: worth asking again)."""
    body = answer.body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        content_type = answer.headers.get("content-type", "")
        return Retry(f"invalid or truncated JSON ({len(body):,} bytes, {content_type or 'no type'}: {exc})")
    if not isinstance(data, dict) or not isinstance(data.get("studies"), list):
        keys = ", ".join(list(data)[:5]) if isinstance(data, dict) else type(data).__name__
        return Retry(f"JSON is not a page of studies (top level: {keys})")
    token = data.get("nextPageToken")
    total = data.get("totalCount")
    if token is not None and (not isinstance(token, str) or not token):
        return Retry(f"nextPageToken is not a string: {token!r}")
    if total is not None and not isinstance(total, int):
        return Retry(f"totalCount is not a number: {total!r}")
    return Page(
        studies=data["studies"], next_page_token=token, total_count=total, url=answer.url, page_token=page_token
    )


def page_records(page: Page, page_no: int) -> list[Item]:
    """The records of one page, stored with the request URL as their source."""
    return [
        v2_study_record(study, page.url, f"page {page_no} studies[{i}]", source_kind="api")
        for i, study in enumerate(page.studies)
    ]
