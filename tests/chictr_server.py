"""A local stand-in for ChiCTR's web site that serves the REAL pages in ``../shared/data/chictr``.

Pages served (read in place, never copied):

- ``/searchproj.html?title=Q&page=N``: the real search result page
  (``search_results_page.html``) with its ten real result rows dealt out
  ``rows_per_page`` to a page, and ``data-total`` set to the number of rows, so
  that a harvest has several pages to walk.  Everything else in the page is
  served byte for byte.  With ``include_real_detail`` an eleventh row (a copy of
  the first row's markup naming the real trial of ``trial_detail_page.html``)
  is added at the end.
- ``/showproj.html?proj=P``: for the real trial's ``proj`` (173420), the real
  trial page byte for byte; for a listed trial, the real trial page with its
  registration number and ``pid`` replaced by the listed ones (the samples hold
  one trial page; the others are derived from it).

Faults are scripted by request number (1-based, counted over the server's
life), so that tests are deterministic; see ``Fault``.  The server, its
request log and the faults are the shared test plumbing of ``http_faults.py``;
this module gives the site's routes and its real pages.  The firewall pages are
the one thing not taken from the samples: they are small constructed pages
with the markers that ChiCTR's Alibaba Cloud WAF pages carry (``acw_sc__v2`` and
``arg1`` in the challenge script, "您的访问被阻断" on the block page), as the notes
of the chictr-mcp-server project describe them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import http_faults
from http_faults import FaultServer, Reply, Request

CHICTR = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chictr").resolve()
SEARCH_PAGE = CHICTR / "search_results_page.html"
DETAIL_PAGE = CHICTR / "trial_detail_page.html"
#: The real trial page's registration number and project id.
REAL_REGNO = "ChiCTR2400084905"
REAL_PROJ = "173420"

_ROW = re.compile(r"\s*<tr>\s*<td>\s*<a href=\"historyversionpub\.html\?regno=.*?</tr>", re.S)
_TOTAL = re.compile(r'(<span id="data-total">)\d+(</span>)')
_ROW_ID = re.compile(r"ChiCTR\d{8,10}")
_ROW_PROJ = re.compile(r"proj=(\d+)")

CHALLENGE_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
    "<script>var arg1='FC0C2D8AD5673C5FB8B9EF3180ECC395B9A5F944';"
    "function setCookie(name,value){document.cookie=name+'='+value+';max-age=3600;path=/';}"
    "function reload(x){setCookie('acw_sc__v2', x);document.location.reload();}</script>"
    "<script name='aliyunwaf_6a6f5ea8'>var _0x4818=['constructed test page'];</script>"
    "</body></html>"
)
BLOCK_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>405</title></head><body>"
    "<p>很抱歉，由于您访问的URL有可能对网站造成安全威胁，您的访问被阻断。</p></body></html>"
)


_HTML = "text/html; charset=utf-8"


class Fault(http_faults.Fault):
    """What to do instead of answering one request; see ``http_faults.Fault``."""

    @classmethod
    def error(cls, status: int = 503, retry_after: str | None = None) -> Fault:
        return cls.answer("status", status, b"<html><body>Service Unavailable</body></html>", _HTML, retry_after)

    @classmethod
    def challenge(cls) -> Fault:
        """200 with the WAF's JavaScript challenge page instead of the page asked for."""
        return cls.answer("challenge", 200, CHALLENGE_PAGE.encode("utf-8"), _HTML)

    @classmethod
    def blocked(cls) -> Fault:
        """HTTP 405 with the WAF's block page."""
        return cls.answer("blocked", 405, BLOCK_PAGE.encode("utf-8"), _HTML)

    @classmethod
    def reset(cls, keep: float = 1 / 3) -> Fault:
        """Headers and part of the body, then a TCP reset."""
        return super().reset(keep)


def _real_rows() -> tuple[str, list[str], str]:
    """(text before the rows, the rows' markup, text after) of the real search page."""
    text = SEARCH_PAGE.read_text(encoding="utf-8")
    rows = list(_ROW.finditer(text))
    if not rows:
        raise RuntimeError(f"{SEARCH_PAGE}: no result rows found")
    return text[: rows[0].start()], [m.group(0) for m in rows], text[rows[-1].end() :]


def _real_detail_title() -> str:
    text = DETAIL_PAGE.read_text(encoding="utf-8")
    m = re.search(r'<div class="project-tit">(.*?)</div>', text, re.S)
    return m.group(1).strip() if m else REAL_REGNO


@dataclass
class ChictrServer(FaultServer):
    """Serve the pages on 127.0.0.1 at an ephemeral port; use as a context manager."""

    rows_per_page: int = 4
    include_real_detail: bool = True
    #: Serve only the first ``limit`` real result rows (tests that need fewer trial pages run faster).
    limit: int | None = None
    #: Detail pages answered 404 (by proj).
    missing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._head, rows, self._tail = _real_rows()
        rows = rows[: self.limit] if self.limit is not None else rows
        if self.include_real_detail:
            title = _real_detail_title()
            extra = _ROW_ID.sub(REAL_REGNO, rows[0])
            extra = _ROW_PROJ.sub(f"proj={REAL_PROJ}", extra)
            extra = re.sub(r'title="[^"]*"', f'title="{title}"', extra, count=1)
            rows = [*rows, extra]
        self.rows = rows
        self.listed = [(_ROW_ID.search(r).group(0), _ROW_PROJ.search(r).group(1)) for r in rows]  # type: ignore[union-attr]
        self._detail = DETAIL_PAGE.read_bytes()

    @property
    def url(self) -> str:
        return self.root

    # -- content -------------------------------------------------------------------

    def search_page(self, page: int) -> bytes:
        start = (page - 1) * self.rows_per_page
        shown = self.rows[start : start + self.rows_per_page] if page >= 1 else []
        head = _TOTAL.sub(rf"\g<1>{len(self.rows)}\g<2>", self._head)
        return (head + "".join(shown) + self._tail).encode("utf-8")

    def detail_page(self, proj: str) -> bytes | None:
        if proj == REAL_PROJ:
            return self._detail
        for regno, listed_proj in self.listed:
            if listed_proj == proj:
                text = self._detail.decode("utf-8").replace(REAL_REGNO, regno)
                return text.replace(f'name="pid" value="{REAL_PROJ}"', f'name="pid" value="{proj}"').encode("utf-8")
        return None

    def paths(self) -> list[str]:
        return [f"{r.path}?{'&'.join(f'{k}={v}' for k, v in r.params.items())}" for r in self.requests]

    # -- answering -------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.path.endswith("/searchproj.html"):
            try:
                page = int(request.params.get("page", "1"))
            except ValueError:
                return Reply(400, b"<html><body>bad page</body></html>", _HTML)
            return Reply(200, self.search_page(page), _HTML)
        if request.path.endswith("/showproj.html"):
            proj = request.params.get("proj", "")
            body = None if proj in self.missing else self.detail_page(proj)
            if body is not None:
                return Reply(200, body, _HTML)
        return Reply(404, b"<html><body>404 page not found</body></html>", _HTML)
