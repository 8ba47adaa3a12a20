"""Harvesting ChiCTR's web site: search result pages, then each trial's page.

ChiCTR has no API.  ``cartatlas sync chictr --query Q`` asks the public search
(``searchproj.html?title=Q&page=N``) for one result page at a time and fetches
every trial page it lists (``showproj.html?proj=ID``), slowly: one request every
five seconds by default, because the site is run for people and its firewall
refuses clients that hurry.

What it survives: server errors and throttling (retried with backoff, honouring
``Retry-After``), dropped connections and pages cut short (retried), a trial page
that never reads (that trial is rejected, the rest go on).  What stops it: the
firewall.  Alibaba Cloud's WAF in front of ChiCTR answers automated clients with
HTTP 405 or a JavaScript challenge page; waiting does not change that, so the
harvest stops at once and says so plainly, keeping its checkpoint.  The WHO
ICTRP export (``cartatlas import``), which carries ChiCTR's records, is the
dependable route for bulk ChiCTR data.

Resumable like the ClinicalTrials.gov sync (the pass that stores and checkpoints is the
pipeline's, ``cartatlas.pipeline.harvest.chictr``): after each trial page is committed,
``sync_state`` records the result page and row to continue from (token
``"page:row"``), so an interrupted harvest re-reads one result page and goes on.
Every pass walks the whole query (ChiCTR offers no "updated since" search);
unchanged trial pages are recognised by content and stored once.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.chictr import page_record
from cartatlas.sources.chictr.pages import SearchPage, parse_search_page, waf_answer
from cartatlas.sources.http import RETRY_STATUSES, Answer, PoliteClient, PoliteSource, Retry

log = logging.getLogger(__name__)

REGISTRY = "chictr"
DEFAULT_BASE_URL = "https://www.chictr.org.cn"
#: Requests per second: one every five seconds, as a person reading result pages would.
DEFAULT_RATE = 0.2
DEFAULT_MAX_RETRIES = 4
#: A search result page holds ten trials; no query of CAR trials needs more pages than this.
DEFAULT_MAX_PAGES = 500
#: Text every whole ChiCTR page ends with; a page without it was cut short.
_PAGE_END = "</html>"


class ChictrError(RuntimeError):
    """ChiCTR could not be harvested; the message says what it answered."""


class WafBlocked(ChictrError):
    """ChiCTR's web application firewall answered instead of the site."""


class RetriesExhausted(ChictrError):
    """A request kept failing in ways worth retrying until the retry budget ran out."""


@dataclass(slots=True)
class Fetched:
    url: str
    status: int
    text: str


def waf_message(url: str, what: str) -> str:
    return (
        f"{url}: ChiCTR's web application firewall answered with {what} instead of the page. "
        "ChiCTR refuses automated clients this way and waiting does not change it; nothing from this "
        "answer was stored. For bulk ChiCTR records import a WHO ICTRP export (XML or CSV from "
        "trialsearch.who.int) with 'cartatlas import'."
    )


class ChictrClient(PoliteSource):
    """ChiCTR's search and trial pages over HTTP, paced and retried.

    ``rate`` is requests per second over every attempt, retries included;
    ``max_retries`` bounds the attempts per page (1 + max_retries).  Clock,
    sleep and random source are parameters so that tests replay faults without
    waiting.  The pacing, retrying and bounding are
    ``cartatlas.sources.http.PoliteClient``'s; this class builds the page URLs,
    recognises the firewall and judges whether a page arrived whole.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        rate: float = DEFAULT_RATE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = 60.0,
        backoff_base: float = 5.0,
        backoff_max: float = 300.0,
        max_wait: float = 900.0,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_request_seconds: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
    ) -> None:
        if rate > 1.0 and base_url.rstrip("/") == DEFAULT_BASE_URL:
            log.warning("rate %.2f requests/s: ChiCTR's firewall blocks clients that hurry", rate)
        self.base_url = base_url.rstrip("/")
        self.max_pages = max_pages
        self.http = PoliteClient(
            name="ChiCTR",
            rate=rate,
            max_retries=max_retries,
            timeout=timeout,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_wait=max_wait,
            max_request_seconds=max_request_seconds,
            headers={"Accept": "text/html,application/xhtml+xml", "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"},
            retry_statuses=RETRY_STATUSES,
            screen=_refuse_firewall,
            refused=ChictrError,
            exhausted=RetriesExhausted,
            logger=log,
            transport=transport,
            sleep=sleep,
            monotonic=monotonic,
            wall_clock=wall_clock,
            rng=rng,
        )

    # -- requests ----------------------------------------------------------------------

    def search_url(self, query: str, page: int) -> str:
        return f"{self.base_url}/searchproj.html?" + urlencode({"title": query, "page": page, "btngo": "btn"})

    def detail_url(self, proj: str) -> str:
        return f"{self.base_url}/showproj.html?" + urlencode({"proj": proj})

    def get(self, url: str, *, expect: Callable[[str], bool]) -> Fetched:
        """A page that ``expect`` accepts, or a 404; retried while the answer is worth retrying.

        Raises ``WafBlocked`` at once on a firewall answer, ``RetriesExhausted``
        when the budget is spent.
        """

        def validate(answer: Answer) -> Fetched | Retry:
            text = answer.text
            if answer.status == 404:
                return Fetched(url, answer.status, text)
            if _PAGE_END not in text[-4096:].lower():
                return Retry(f"page cut short ({len(answer.body):,} bytes, no closing </html>)")
            if not expect(text):
                return Retry(f"not the page expected ({len(answer.body):,} bytes: {' '.join(text.split())[:120]!r})")
            return Fetched(url, answer.status, text)

        return self.http.request("GET", url, validate, accept=(200, 404))

    def search(self, query: str, page: int) -> tuple[SearchPage, str]:
        from cartatlas.sources.chictr.pages import is_search_page

        url = self.search_url(query, page)
        fetched = self.get(url, expect=is_search_page)
        if fetched.status == 404:
            raise ChictrError(f"{url}: HTTP 404: the search page is not where it was expected")
        try:
            return parse_search_page(fetched.text), url
        except ValueError as exc:
            raise ChictrError(f"{url}: {exc}") from exc

    def detail(self, proj: str) -> Fetched:
        from cartatlas.sources.chictr.pages import is_detail_page

        return self.get(self.detail_url(proj), expect=is_detail_page)


def _refuse_firewall(answer: Answer) -> None:
    """Stop at once when the firewall answers, whatever the status: waiting does not lift it."""
    blocked = waf_answer(answer.status, answer.text)
    if blocked is not None:
        raise WafBlocked(waf_message(answer.url, blocked))


def _trial_item(client: ChictrClient, regno: str, proj: str | None, list_url: str, index: int) -> RawRecord | Reject:
    where = f"row {index + 1}"
    if not proj:
        return Reject(list_url, where, "the result list gives no link to the trial page", regno)
    try:
        fetched = client.detail(proj)
    except RetriesExhausted as exc:
        return Reject(client.detail_url(proj), "", str(exc), regno)
    if fetched.status == 404:
        return Reject(fetched.url, "", "HTTP 404: the trial page listed in the results does not exist", regno)
    item = page_record(fetched.text, fetched.url, url=fetched.url, kind="api")
    if isinstance(item, RawRecord) and item.record_id != regno:
        log.warning("%s: the result list says %s, the trial page says %s", fetched.url, regno, item.record_id)
    if isinstance(item, Reject):
        item.record_id = regno
    return item
