"""A local stand-in for NCBI's E-utilities, on 127.0.0.1, with faults on demand.

It serves what the real service serves, in its formats: ``esearch.fcgi``
answers JSON (``retmode=json``) or eSearchResult XML with a ``WebEnv`` and
``query_key`` when ``usehistory=y``; ``efetch.fcgi`` answers a
``PubmedArticleSet`` built from the real sample articles in
``../shared/data/pubmed`` (the efetch sample as it is, the baseline file's
``MedlineCitation`` records wrapped in ``PubmedArticle`` as efetch wraps them).
Publication-date ranges in the term (``"YYYY/MM/DD"[dp] : "YYYY/MM/DD"[dp]``)
and ``mindate`` with ``datetype=mdat`` filter the set; a search larger than
``window`` can be counted but not read past the window, as in PubMed.

Faults are queued per endpoint and consumed one request each:
``("status", 429, {"Retry-After": "7"})``, ``("status", 500)``, ``("reset",)``
(the connection is closed without an answer), ``("truncate", n)`` (the body is
cut to n bytes, with a Content-Length that matches, so only the XML parser can
tell), ``("expire",)`` (every WebEnv issued so far is forgotten and efetch says
so with status 200, as NCBI does), ``("pass",)`` (no fault).  The server and
the faults themselves are the shared test plumbing of ``http_faults.py``; this
module gives the E-utilities' routes, the real articles and the queues.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from http_faults import Fault, FaultServer, Reply, Request
from lxml import etree

from tests.conftest import DATA

PUBMED = DATA / "pubmed"


@dataclass
class Article:
    pmid: str
    xml: str
    year: int
    revised: dt.date
    published: dt.date


def _ymd(el: etree._Element | None) -> dt.date:
    if el is None:
        return dt.date(2000, 1, 1)
    return dt.date(int(el.findtext("Year") or 2000), int(el.findtext("Month") or 1), int(el.findtext("Day") or 1))


def _article(elem: etree._Element) -> Article:
    cit = elem if elem.tag == "MedlineCitation" else elem.find("MedlineCitation")
    assert cit is not None
    if elem.tag == "MedlineCitation":
        wrapper = etree.Element("PubmedArticle")
        wrapper.append(elem)
        data = etree.SubElement(wrapper, "PubmedData")
        etree.SubElement(data, "PublicationStatus").text = "ppublish"
        elem = wrapper
    year_text = (
        cit.findtext("Article/Journal/JournalIssue/PubDate/Year")
        or (cit.findtext("Article/Journal/JournalIssue/PubDate/MedlineDate") or "2000")[:4]
    )
    revised = _ymd(cit.find("DateRevised") if cit.find("DateRevised") is not None else cit.find("DateCreated"))
    pub = cit.find("Article/Journal/JournalIssue/PubDate")
    month_text = (pub.findtext("Month") if pub is not None else None) or (
        pub.findtext("MedlineDate") or "    Jan" if pub is not None else "    Jan"
    )[5:8]
    month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text[:3].lower(), 1)
    day = int(pub.findtext("Day") or 1) if pub is not None else 1
    published = dt.date(int(year_text), month, day)
    return Article(
        cit.findtext("PMID") or "", etree.tostring(elem, encoding="unicode"), int(year_text), revised, published
    )


_MONTHS = {m: i for i, m in enumerate(re.findall(r"\w+", "jan feb mar apr may jun jul aug sep oct nov dec"), start=1)}


def sample_articles(baseline: int = 40) -> list[Article]:
    """Real sample records as efetch serves them: 1 + 4 efetch articles and ``baseline`` baseline citations."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    out: list[Article] = []
    for path in (PUBMED / "pubmed-29768149.xml", PUBMED / "test_current_medline.xml.gz"):
        raw = path.read_bytes()
        root = etree.fromstring(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw, parser)
        out.extend(_article(el) for el in root.findall("PubmedArticle"))
    root = etree.fromstring(gzip.decompress((PUBMED / "medline16n0902.xml.gz").read_bytes()), parser)
    out.extend(_article(el) for el in root.findall("MedlineCitation")[:baseline])
    return out


_DP = re.compile(r'"(\d{4})/(\d{2})/(\d{2})"\[dp\]\s*:\s*"(\d{4})/(\d{2})/(\d{2})"\[dp\]')


@dataclass
class EutilsState:
    articles: list[Article]
    window: int = 9999
    faults: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    histories: dict[str, list[Article]] = field(default_factory=dict)
    #: (endpoint, method, params) of every request, in order.
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_env: int = 1

    def fault(self, endpoint: str, *fault: Any) -> None:
        self.faults.setdefault(endpoint, []).append(tuple(fault))

    def calls(self, endpoint: str) -> list[dict[str, str]]:
        return [p for e, _, p in self.requests if e == endpoint]

    def search(self, params: dict[str, str]) -> list[Article]:
        found = list(self.articles)
        m = _DP.search(params.get("term", ""))
        if m:
            lo = dt.date(int(m[1]), int(m[2]), int(m[3]))
            hi = dt.date(int(m[4]), int(m[5]), int(m[6]))
            found = [a for a in found if lo <= a.published <= hi]
        if params.get("datetype") == "mdat" and params.get("mindate"):
            since = dt.datetime.strptime(params["mindate"], "%Y/%m/%d").date()
            found = [a for a in found if a.revised >= since]
        return found


_JSON = "application/json"


def _endpoint(request: Request) -> str:
    return request.path.rsplit("/", 1)[-1]


@dataclass(kw_only=True)
class _Server(FaultServer):
    """The E-utilities' two endpoints over ``state``, with faults from its per-endpoint queues."""

    state: EutilsState

    def fault_for(self, request: Request) -> Fault | None:
        """Log the request in ``state`` and take its endpoint's next fault, as the E-utilities tests script them."""
        state = self.state
        endpoint = _endpoint(request)
        with state.lock:
            state.requests.append((endpoint, request.method, request.params))
            queue = state.faults.get(endpoint) or []
            queued = queue.pop(0) if queue else None
            if queued is not None and queued[0] == "expire":
                state.histories.clear()
        if queued is None or queued[0] in ("expire", "pass"):
            return None
        if queued[0] == "reset":
            return Fault.hang_up()
        if queued[0] == "status":
            headers = queued[2] if len(queued) > 2 else {}
            return Fault.answer("status", queued[1], b'{"error":"API rate limit exceeded"}', _JSON, headers=headers)
        if queued[0] == "truncate":
            return Fault.truncated(size=queued[1])
        raise ValueError(f"unknown fault {queued!r}")

    def route(self, request: Request) -> Reply:
        endpoint = _endpoint(request)
        if endpoint == "esearch.fcgi":
            return Reply(200, *self._esearch(request.params))
        if endpoint == "efetch.fcgi":
            return Reply(200, *self._efetch(request.params))
        return Reply(404, b"not found", "text/plain")

    def _esearch(self, params: dict[str, str]) -> tuple[bytes, str]:
        state = self.state
        found = state.search(params)
        with state.lock:
            env = f"MCID_{state.next_env:06d}"
            state.next_env += 1
            state.histories[env] = found
        if params.get("retmode") == "json":
            result = {
                "header": {"type": "esearch", "version": "0.3"},
                "esearchresult": {
                    "count": str(len(found)),
                    "retmax": "0",
                    "retstart": "0",
                    "querykey": "1",
                    "webenv": env,
                    "idlist": [],
                    "translationset": [],
                    "querytranslation": params.get("term", ""),
                },
            }
            return json.dumps(result).encode(), "application/json; charset=UTF-8"
        xml = (
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN"'
            ' "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
            f"<eSearchResult><Count>{len(found)}</Count><RetMax>0</RetMax><RetStart>0</RetStart>"
            f"<QueryKey>1</QueryKey><WebEnv>{env}</WebEnv><IdList/><TranslationSet/>"
            "<QueryTranslation>q</QueryTranslation></eSearchResult>"
        )
        return xml.encode(), "text/xml; charset=UTF-8"

    def _efetch(self, params: dict[str, str]) -> tuple[bytes, str]:
        state = self.state
        env = params.get("WebEnv", "")
        with state.lock:
            found = state.histories.get(env)
        if found is None or params.get("query_key") != "1":
            return (
                b'<?xml version="1.0" encoding="UTF-8" ?>\n<eFetchResult>\n'
                b"\t<ERROR>Unable to obtain query #1</ERROR>\n</eFetchResult>\n",
                "text/xml; charset=UTF-8",
            )
        start, size = int(params.get("retstart", 0)), int(params.get("retmax", 20))
        if start + size > state.window + 1:
            return (
                b"<eFetchResult><ERROR>Search Backend failed: Exception: 'retstart' cannot be larger than 9998."
                b"</ERROR></eFetchResult>",
                "text/xml",
            )
        chunk = found[start : start + size]
        body = (
            '<?xml version="1.0" ?>\n'
            '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN"'
            ' "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">\n<PubmedArticleSet>\n'
            + "\n".join(a.xml for a in chunk)
            + "\n</PubmedArticleSet>"
        )
        return body.encode(), "text/xml; charset=UTF-8"


@contextmanager
def eutils_server(state: EutilsState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1 (a free port); yields the base URL."""
    with _Server(state=state) as server:
        yield f"{server.root}/entrez/eutils"


def sample_state(**kwargs: Any) -> EutilsState:
    return EutilsState(articles=sample_articles(), **kwargs)


__all__ = ["Article", "EutilsState", "Path", "eutils_server", "sample_articles", "sample_state"]
