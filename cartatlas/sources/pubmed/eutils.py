"""NCBI E-utilities: the client of a polite, resumable PubMed harvest (``cartatlas.pipeline.harvest.pubmed``).

How the E-utilities are used, and why:

- ``esearch`` with ``usehistory=y`` posts the result set to NCBI's history
  server and answers with its ``WebEnv`` and ``query_key``; ``efetch`` then
  reads the set in batches (``retstart``/``retmax``) as PubMed XML.  No PMID
  list travels over the wire, and a batch can be asked for again.
- PubMed serves only the first 10,000 records of one search.  A larger
  search is cut into publication-date ranges (``"YYYY/MM/DD"[dp] :
  "YYYY/MM/DD"[dp]`` added to the term), halved until each has at most
  ``window`` records.
- ``--since`` is ``datetype=mdat&mindate=...``: records NLM modified since
  the date, which includes new records and revised ones.
- Every request carries ``tool`` and ``email`` (NCBI's usage policy asks for
  both so it can contact a user before blocking one) and, when the user has
  one, ``api_key`` (``NCBI_API_KEY``).  Requests are spaced to the documented
  rates: 3 per second without a key, 10 with.  The key and the e-mail address
  are kept out of logs and out of the stored source URLs.
- Throttling (429, honouring ``Retry-After``), server errors, dropped
  connections and bodies cut short (XML that does not parse) are retried with
  exponential backoff and jitter; a history set that expired (NCBI keeps them
  for hours, not days) is searched again.

The pass (``cartatlas.pipeline.harvest.pubmed.harvest``) checkpoints in ``sync_state`` after each committed batch (the
page token is a small JSON document: the date ranges still to do and, for the
current one, its WebEnv, query_key, count and next retstart), so an
interrupted harvest continues where it stopped.  Sleep, clock and random
source are parameters so tests replay faults without waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from lxml import etree

from cartatlas.sources.base import Item
from cartatlas.sources.http import RETRY_STATUSES, PoliteClient, PoliteSource, Retry, excerpt
from cartatlas.sources.pubmed.xml_files import record_from_element

log = logging.getLogger(__name__)

REGISTRY = "pubmed"
DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
TOOL = "cartatlas"
#: NCBI's documented ceilings: requests per second without and with an API key.
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0
#: PubMed answers only the first 10,000 records of a search (retstart + retmax <= 10,000).
SEARCH_WINDOW = 9_999
DEFAULT_BATCH = 500
MAX_BATCH = 10_000
DEFAULT_MAX_RETRIES = 6
SINCE_OVERLAP_DAYS = 3
#: Query strings longer than this are POSTed (NCBI recommends POST for long terms).
POST_ABOVE = 1500
#: Parameters never written to logs or stored source URLs.
PRIVATE_PARAMS = frozenset({"api_key", "email"})

#: The default search: the MeSH heading for CAR receptors plus the text words
#: reports used before (and besides) the heading existed.
DEFAULT_TERMS: tuple[str, ...] = (
    '"Receptors, Chimeric Antigen"[MeSH]',
    '"chimeric antigen receptor"[tiab]',
    '"chimeric antigen receptors"[tiab]',
    '"CAR-T"[tiab]',
    '"CAR T"[tiab]',
    '"CAR T cell*"[tiab]',
    '"CAR-T cell*"[tiab]',
    '"CART cell*"[tiab]',
    '"CAR-NK"[tiab]',
    '"CAR NK"[tiab]',
    '"CAR-NKT"[tiab]',
    '"CAR-M"[tiab]',
    '"CAR macrophage*"[tiab]',
    '"CAR-Treg*"[tiab]',
    '"CAAR-T"[tiab]',
    '"chimeric autoantibody receptor"[tiab]',
)
DEFAULT_QUERY = " OR ".join(DEFAULT_TERMS)


# -- errors ----------------------------------------------------------------------------


class EutilsError(RuntimeError):
    """The E-utilities could not be used; the message says what NCBI answered."""


class RetriesExhausted(EutilsError):
    """A request kept failing in ways worth retrying until the retry budget ran out."""


class HistoryExpired(EutilsError):
    """NCBI no longer holds the WebEnv/query_key set; the search must be run again."""


T = TypeVar("T")


def public_url(url: str) -> str:
    """The URL without the API key and e-mail address (for logs and stored sources)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PRIVATE_PARAMS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


_PRIVATE_IN_TEXT = re.compile(r"\b(api_key|email)=[^&\s\"']+")


class _RedactPrivate(logging.Filter):
    """Keeps the API key and e-mail address out of httpx's request log lines (and this module's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message or "email=" in message:
            record.msg = _PRIVATE_IN_TEXT.sub(r"\1=(hidden)", message)
            record.args = ()
        return True


def _install_redaction() -> None:
    for name in ("httpx", "httpcore", __name__):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactPrivate) for f in logger.filters):
            logger.addFilter(_RedactPrivate())


# -- the client ------------------------------------------------------------------------


@dataclass(slots=True)
class Search:
    """An esearch result held on NCBI's history server."""

    term: str
    count: int
    webenv: str
    query_key: str
    url: str


@dataclass(slots=True)
class Batch:
    """One efetch answer: its records (and rejects) and where they came from."""

    items: list[Item]
    retstart: int
    url: str

    @property
    def size(self) -> int:
        return len(self.items)


_HISTORY_ERRORS = ("unable to obtain query", "webenv", "query_key", "history", "cannot retrieve query")


class EutilsClient(PoliteSource):
    """PubMed through the E-utilities, paced to NCBI's rates and retrying what is worth retrying.

    ``api_key`` and ``email`` default to ``$NCBI_API_KEY`` and ``$NCBI_EMAIL``.
    ``rate`` defaults to the documented ceiling for the key situation (3/s or
    10/s) and may only be lowered.  ``max_retries`` bounds the attempts per
    request (1 + max_retries).  The pacing, retrying and bounding are
    ``cartatlas.sources.http.PoliteClient``'s; this class builds the
    E-utilities requests and judges their answers.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        email: str | None = None,
        tool: str = TOOL,
        rate: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        batch_size: int = DEFAULT_BATCH,
        window: int = SEARCH_WINDOW,
        timeout: float = 120.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait: float = 600.0,
        max_request_seconds: float = 600.0,
        use_env: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
    ) -> None:
        if use_env:
            api_key = api_key or os.environ.get("NCBI_API_KEY") or None
            email = email or os.environ.get("NCBI_EMAIL") or None
        ceiling = RATE_WITH_KEY if api_key else RATE_WITHOUT_KEY
        if rate is None:
            rate = ceiling
        if rate > ceiling:
            raise ValueError(
                f"rate {rate}/s is above NCBI's limit of {ceiling:g}/s "
                + ("with an API key" if api_key else "without an API key (set NCBI_API_KEY for 10/s)")
            )
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be between 1 and {MAX_BATCH}, not {batch_size}")
        _install_redaction()
        if not email:
            log.warning("no e-mail address for NCBI (--email or NCBI_EMAIL): NCBI asks for one to contact users")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.email = email
        self.tool = tool
        self.batch_size = batch_size
        self.window = window
        self.http = PoliteClient(
            name="PubMed",
            rate=rate,
            max_retries=max_retries,
            timeout=timeout,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_wait=max_wait,
            max_request_seconds=max_request_seconds,
            retry_statuses=RETRY_STATUSES,
            public_url=public_url,
            refused=EutilsError,
            exhausted=RetriesExhausted,
            logger=log,
            transport=transport,
            sleep=sleep,
            monotonic=monotonic,
            wall_clock=wall_clock,
            rng=rng,
        )

    # -- requests ------------------------------------------------------------------

    def _common(self) -> dict[str, str]:
        params = {"db": "pubmed", "tool": self.tool}
        if self.email:
            params["email"] = self.email
        if self.api_key:
            params["api_key"] = self.api_key
        return params

    def esearch(self, term: str, *, since: dt.date | None = None) -> Search:
        """Post a search to the history server; returns its count, WebEnv and query_key."""
        params = {**self._common(), "term": term, "usehistory": "y", "retmax": "0", "retmode": "json"}
        if since is not None:
            params.update({"datetype": "mdat", "mindate": since.strftime("%Y/%m/%d"), "maxdate": "3000/12/31"})
        return self._call("esearch.fcgi", params, lambda body, url: _parse_esearch(body, url, term))

    def efetch(self, search: Search, retstart: int, retmax: int | None = None) -> Batch:
        """One batch of the search's records as PubMed XML."""
        params = {
            **self._common(),
            "WebEnv": search.webenv,
            "query_key": search.query_key,
            "retstart": str(retstart),
            "retmax": str(retmax or self.batch_size),
            "retmode": "xml",
        }
        return self._call("efetch.fcgi", params, lambda body, url: _parse_efetch(body, url, retstart))

    def _call(self, endpoint: str, params: dict[str, str], parse: Callable[[bytes, str], T | Retry]) -> T:
        """One E-utility, GET or (for long terms, as NCBI recommends) POST; ``parse`` gets the body and its URL."""
        url = f"{self.base_url}/{endpoint}"
        post = len(urlencode(params)) > POST_ABOVE
        return self.http.request(
            "POST" if post else "GET",
            url,
            lambda answer: parse(answer.body, answer.shown),
            params=None if post else params,
            data=params if post else None,
            label=endpoint,
            what=f"PubMed {endpoint}",
        )


def _parse_esearch(body: bytes, url: str, term: str) -> Search | Retry:
    """An esearch answer in JSON (asked for) or XML (what some proxies and mirrors send)."""
    text = body.lstrip()
    if text.startswith(b"{"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return Retry(f"invalid or truncated esearch JSON ({len(body):,} bytes: {exc})")
        if not isinstance(data, dict):
            return Retry("esearch JSON is not an object")
        if "error" in data and "esearchresult" not in data:
            return Retry(f"esearch error: {data['error']}")
        result = data.get("esearchresult")
        if not isinstance(result, dict):
            return Retry(f"esearch JSON has no esearchresult (keys: {', '.join(list(data)[:5])})")
        error = result.get("ERROR") or result.get("error")
        count, webenv, key = result.get("count"), result.get("webenv"), result.get("querykey")
    else:
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            return Retry(f"invalid or truncated esearch answer ({len(body):,} bytes: {exc})")
        error = root.findtext("ERROR")
        count, webenv, key = root.findtext("Count"), root.findtext("WebEnv"), root.findtext("QueryKey")
    if error:
        if "rate limit" in str(error).lower():
            return Retry(f"esearch: {error}")
        raise EutilsError(f"{url}: PubMed refused the search: {error}")
    if count is None or not str(count).isdigit():
        return Retry(f"esearch answer has no count ({count!r})")
    if not webenv or not key:
        return Retry("esearch answer has no WebEnv/query_key (history server unavailable?)")
    return Search(term=term, count=int(count), webenv=str(webenv), query_key=str(key), url=url)


def _parse_efetch(body: bytes, url: str, retstart: int) -> Batch | Retry:
    """An efetch answer: a whole PubmedArticleSet, or an error NCBI sends with status 200."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        return Retry(f"efetch XML is truncated or invalid ({len(body):,} bytes: {exc})")
    if root.tag != "PubmedArticleSet":
        message = " ".join(str(t) for t in root.itertext()).strip() or str(root.tag)
        if any(cue in message.lower() for cue in _HISTORY_ERRORS):
            raise HistoryExpired(f"{url}: {excerpt(message)}")
        if "rate limit" in message.lower():
            return Retry(f"efetch: {excerpt(message)}")
        raise EutilsError(f"{url}: efetch answered {root.tag}: {excerpt(message)}")
    items: list[Item] = []
    for i, elem in enumerate(el for el in root if el.tag in ("PubmedArticle", "PubmedBookArticle")):
        items.append(record_from_element(elem, url, f"retstart {retstart} item {i}", "api"))
    return Batch(items=items, retstart=retstart, url=url)


def iter_search(client: EutilsClient, term: str) -> Iterator[Batch]:
    """Every batch of one search (at most the PubMed window): for scripts that do not store."""
    search = client.esearch(term)
    limit = min(search.count, client.window)
    retstart = 0
    while retstart < limit:
        batch = client.efetch(search, retstart, min(client.batch_size, limit - retstart))
        if batch.size == 0:
            return
        yield batch
        retstart += batch.size
