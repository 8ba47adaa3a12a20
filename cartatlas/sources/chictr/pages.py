"""ChiCTR's web pages read with lxml: a trial's detail page, a search result list, and WAF answers.

A detail page (``showproj.html?proj=N``) is a set of label/value tables, each
label given in Chinese (``p.cn``) and English (``p.en``), sometimes as two rows
(``tr.cn`` then ``tr.en``), sometimes in one cell.  Repeating structures
(intervention groups, sites, outcomes, samples, secondary sponsors) are nested
tables of the same label/value kind.  The page is read generically into
``{"fields": [...], "blocks": [...]}``, keeping both languages and every label,
so the stored payload is the page's content without its markup (a 400 KB page
becomes ~30 KB of JSON) and a later cartatlas can map a field this one ignores.

ChiCTR sits behind Alibaba Cloud's web application firewall, which answers
automated clients with HTTP 405 or a JavaScript challenge page (it sets the
``acw_sc__v2`` cookie from script) instead of the page.  ``waf_answer`` says when
a response is such an answer, so that it is reported, never stored as a trial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree, html

PAGE_KIND = "chictr_detail"
LIST_KIND = "chictr_list"

_COLON = re.compile(r"[：:]\s*$")
_WS = re.compile(r"\s+")
_REGNO = re.compile(r"ChiCTR(?:-[A-Z]{2,4}-)?\d{8,10}", re.I)
_PROJ = re.compile(r"[?&]proj=(\d+)")
#: Stands for a <br> while whitespace is collapsed (a private-use character no page contains).
_BR_MARK = "\ue000"
_BR_RUN = re.compile(r"\s*\ue000\s*")

#: What Alibaba Cloud WAF pages contain: the challenge script sets the acw_sc__v2 cookie from ``arg1``;
#: the block page (served with 405) says the URL was judged a threat; the slider asks to "verify".
_WAF_MARKERS = (
    ("acw_sc__v2", "a JavaScript challenge (acw_sc__v2)"),
    ("aliyunwaf", "a JavaScript challenge (aliyunwaf)"),
    ("var arg1=", "a JavaScript challenge (arg1)"),
    ("您的访问被阻断", "a block page ('您的访问被阻断': access blocked)"),
    ("访问被拒绝", "a block page ('访问被拒绝': access denied)"),
    ("nc_1_wrapper", "a slider CAPTCHA"),
    ("滑动验证", "a slider CAPTCHA ('滑动验证')"),
    ("_waf_", "a WAF challenge page"),
)

#: The registry name of every ChiCTR record (``knowledge/registries.csv``).
REGISTRY = "chictr"


def norm(text: str | None, *, lines: bool = False) -> str:
    """Whitespace collapsed, non-breaking spaces and the trailing colon of a label removed.

    Page source is indented, so its own newlines mean nothing; a ``<br>`` is
    kept as a line break when ``lines`` is set (criteria, objectives).
    """
    if not text:
        return ""
    text = _WS.sub(" ", text.replace("\u00a0", " "))
    text = _BR_RUN.sub("\n" if lines else " ", text).strip()
    return _COLON.sub("", text).strip()


def _text(el: Any, *, lines: bool = False) -> str:
    return norm(el.text_content(), lines=lines) if el is not None else ""


def _lang_text(el: Any, lang: str, *, lines: bool = False) -> str:
    """Text of the descendants of ``el`` marked ``class="cn"`` or ``class="en"`` (outermost ones only)."""
    parts: list[str] = []

    def visit(node: Any) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            if lang in (child.get("class") or "").split():
                parts.append(child.text_content())
            else:
                visit(child)

    visit(el)
    return norm(" ".join(parts), lines=lines)


def _parse_html(text: str | bytes) -> Any:
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not data.strip():
        raise ValueError("empty page")
    parser = html.HTMLParser(encoding="utf-8", remove_comments=True, no_network=True)
    root = html.document_fromstring(data, parser=parser)
    for bad in list(root.iter("script", "style", "noscript")):
        parent = bad.getparent()
        if parent is not None:
            # Keep the text after the element (drop_tree does; lxml's stubs only know _Element).
            if bad.tail:
                prev = bad.getprevious()
                if prev is not None:
                    prev.tail = (prev.tail or "") + bad.tail
                else:
                    parent.text = (parent.text or "") + bad.tail
            parent.remove(bad)
    for br in root.iter("br"):
        br.tail = _BR_MARK + (br.tail or "")
    return root


# -- WAF and challenge pages ----------------------------------------------------------


def waf_answer(status: int, text: str) -> str | None:
    """Why a response is the firewall speaking rather than ChiCTR, or None when it is a page."""
    lowered = text[:200_000].lower()
    for marker, what in _WAF_MARKERS:
        if marker.lower() in lowered:
            return f"HTTP {status} with {what}"
    if status == 405:
        return "HTTP 405 (Method Not Allowed), which ChiCTR's firewall uses to refuse automated clients"
    return None


# -- detail page ----------------------------------------------------------------------


def is_detail_page(text: str) -> bool:
    return "left_title" in text and ("Registration number" in text or "注册号" in text)


def _value_entry(cn: str, en: str, cell: Any) -> dict[str, str]:
    entry = {"cn": cn, "en": en, "value": _text(cell, lines=True)}
    value_cn, value_en = _lang_text(cell, "cn", lines=True), _lang_text(cell, "en", lines=True)
    if value_cn:
        entry["value_cn"] = value_cn
    if value_en:
        entry["value_en"] = value_en
    return entry


def _nested_records(cell: Any) -> list[dict[str, str]]:
    """Label/value pairs of the tables inside a value cell, grouped into one dict per repeated item."""
    pairs: list[tuple[str, str]] = []
    for row in cell.iter("tr"):
        cells = [c for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")]
        if any(c.find(".//table") is not None for c in cells):
            continue  # an outer row of a doubly nested table: its inner rows are visited themselves
        if cells and not _COLON.search(_WS.sub(" ", cells[0].text_content()).strip()):
            # A row without labels ("Min age | 18 | years"): first cell names it, the rest is the value.
            label = _lang_text(cells[0], "en") or _text(cells[0])
            rest = " ".join(_lang_text(c, "en") or _text(c) for c in cells[1:])
            if label:
                pairs.append((label, norm(rest)))
            continue
        i = 0
        while i < len(cells):
            label_text = _WS.sub(" ", cells[i].text_content()).strip()
            if _COLON.search(label_text):
                value = ""
                if i + 1 < len(cells) and not _COLON.search(_WS.sub(" ", cells[i + 1].text_content()).strip()):
                    value = _text(cells[i + 1], lines=True)
                    i += 1
                pairs.append((norm(label_text), value))
            i += 1
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for label, value in pairs:
        if label in current:
            records.append(current)
            current = {}
        current[label] = value
    if current:
        records.append(current)
    return records


def parse_detail_page(text: str | bytes) -> dict[str, Any]:
    """The content of a trial's detail page as ``{"kind", "pid", "title", "fields", "blocks"}``.

    Raises ``ValueError`` when the page is not a ChiCTR trial page (a WAF
    answer, an error page, another site).
    """
    root = _parse_html(text)
    labels = root.xpath("//td[contains(concat(' ', normalize-space(@class), ' '), ' left_title ')]")
    if not labels:
        raise ValueError("not a ChiCTR trial page (no label cells)")
    fields: list[dict[str, str]] = []
    blocks: list[dict[str, Any]] = []
    for label_cell in labels:
        if any(a.tag == "td" for a in label_cell.iterancestors()):
            continue
        cn, en = _lang_text(label_cell, "cn"), _lang_text(label_cell, "en")
        if not cn and not en:
            cn = _text(label_cell)
        value_cell = label_cell.getnext()
        while value_cell is not None and not (isinstance(value_cell.tag, str) and value_cell.tag == "td"):
            value_cell = value_cell.getnext()
        if value_cell is None:
            fields.append({"cn": cn, "en": en, "value": ""})
            continue
        if value_cell.find(".//table") is not None:
            blocks.append({"cn": cn, "en": en, "records": _nested_records(value_cell)})
        else:
            fields.append(_value_entry(cn, en, value_cell))
    pid = root.xpath("string(//input[@name='pid']/@value)").strip()
    titles = [_text(t) for t in root.xpath("//div[contains(@class, 'project-tit')]") if _text(t)]
    page: dict[str, Any] = {"kind": PAGE_KIND, "pid": pid or None, "title": titles[0] if titles else None}
    page["fields"] = fields
    page["blocks"] = blocks
    if not registration_number(page):
        raise ValueError("ChiCTR page without a registration number")
    return page


def field_value(page: dict[str, Any], *labels: str, lang: str | None = None, whole: bool = False) -> str | None:
    """The value for the first label found (Chinese or English).

    A cell under both labels that holds a Chinese and an English part answers
    with the part of the label asked for (or of ``lang``); ``whole`` gives the
    cell's whole text instead (date ranges, whose parts are only "from"/"to").
    """
    wanted = [norm(label) for label in labels]
    for label in wanted:
        for entry in page.get("fields") or ():
            if not isinstance(entry, dict):
                continue
            side = "cn" if entry.get("cn") == label else "en" if entry.get("en") == label else None
            if side is None:
                continue
            pick = lang or side
            both = entry.get("cn") and entry.get("en")
            if whole:
                value = entry.get("value")
            elif both and f"value_{pick}" in entry:
                value = entry[f"value_{pick}"]
            elif not both and f"value_{side}" in entry:
                value = entry[f"value_{side}"]
            else:
                value = entry.get("value")
            value = value.strip() if isinstance(value, str) else None
            if value:
                return value
    return None


def block_records(page: dict[str, Any], *labels: str) -> list[dict[str, str]]:
    wanted = {norm(label) for label in labels}
    for block in page.get("blocks") or ():
        if isinstance(block, dict) and (block.get("cn") in wanted or block.get("en") in wanted):
            records = block.get("records")
            return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    return []


def registration_number(page: dict[str, Any]) -> str | None:
    value = field_value(page, "Registration number", "注册号")
    m = _REGNO.search(value or "")
    return m[0] if m else None


# -- search result list -----------------------------------------------------------------


@dataclass(slots=True)
class ListRow:
    """One trial as a search result list shows it."""

    registration_number: str
    proj: str | None
    title: str | None
    sponsor: str | None
    study_type: str | None
    registered: str | None

    def as_payload(self) -> dict[str, Any]:
        return {
            "kind": LIST_KIND,
            "registration_number": self.registration_number,
            "proj": self.proj,
            "title": self.title,
            "sponsor": self.sponsor,
            "study_type": self.study_type,
            "registered": self.registered,
        }


@dataclass(slots=True)
class SearchPage:
    rows: list[ListRow] = field(default_factory=list)
    #: "共检索到 N 个符合检索条件的试验": trials matching the query, over all pages.
    total: int | None = None
    #: Rows that could not be read, as (row number, problem).
    problems: list[tuple[int, str]] = field(default_factory=list)


def is_search_page(text: str) -> bool:
    return "historyversionpub" in text or ('id="data-total"' in text and "table1" in text)


def parse_search_page(text: str | bytes) -> SearchPage:
    """Rows and total count of a search result page (``searchproj.html``)."""
    root = _parse_html(text)
    tables = root.xpath("//table[contains(concat(' ', normalize-space(@class), ' '), ' table1 ')]")
    total_text = root.xpath("string(//*[@id='data-total'])").strip()
    if not tables and not total_text:
        raise ValueError("not a ChiCTR search result page (no result table)")
    page = SearchPage(total=int(total_text) if total_text.isdigit() else None)
    for n, row in enumerate(tables[0].iter("tr") if tables else (), start=1):
        cells = [c for c in row if isinstance(c.tag, str) and c.tag == "td"]
        if not cells:
            continue  # the header row
        if len(cells) < 5:
            page.problems.append((n, f"{len(cells)} cells where 5 were expected"))
            continue
        regno_match = _REGNO.search(_text(cells[1]))
        if regno_match is None:
            page.problems.append((n, f"no registration number in {_text(cells[1])[:40]!r}"))
            continue
        link = cells[2].find(".//a")
        href = link.get("href") if link is not None else None
        proj = _PROJ.search(href or "")
        title = (link.get("title") or _text(link)) if link is not None else None
        sponsor_el = cells[2].find(".//p")
        page.rows.append(
            ListRow(
                registration_number=regno_match[0],
                proj=proj[1] if proj else None,
                title=norm(title) or None,
                sponsor=_text(sponsor_el) or None,
                study_type=_text(cells[3]) or None,
                registered=_text(cells[4]) or None,
            )
        )
    return page


def parse_error(exc: Exception) -> str:
    """A short reason for a page that lxml could not read."""
    if isinstance(exc, etree.ParserError | etree.XMLSyntaxError):
        return f"unreadable HTML: {exc}"
    return str(exc)
