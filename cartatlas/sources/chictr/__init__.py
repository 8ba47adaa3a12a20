"""ChiCTR (Chinese Clinical Trial Registry): file readers and the web-page harvester.

Files read, recognised by content: ChiCTR's WHO-format XML (``<trials>`` of
``<Triall>``), a saved trial page (``showproj.html``) and a saved search result
page (``searchproj.html``; each row becomes a stub record that any fuller
version of the trial replaces).  ``cartatlas.sources.chictr.sync`` harvests the
live site; it is imported only when used, so reading files needs no HTTP stack.

Importing this package registers the readers with ``cartatlas.sources.files``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import register_short_name
from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, Reader, register_reader
from cartatlas.sources.chictr.pages import (
    REGISTRY,
    field_value,
    is_detail_page,
    is_search_page,
    parse_detail_page,
    parse_error,
    parse_search_page,
    registration_number,
)
from cartatlas.sources.who import one_line, xml_fields

XML_FORMAT = "chictr_xml"
PAGE_FORMAT = "chictr_html"
LIST_FORMAT = "chictr_list"

_WHO_XML = re.compile(r"<\s*trials[\s>]")
_TRIAL_TAGS = ("Triall", "trial")
#: How much of an HTML file to look at before deciding whether it is a ChiCTR page.
_HTML_SNIFF = 1 << 18


def _is_html(inp: Input) -> bool:
    head = inp.text_head(512).lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head


def _is_chictr(text: str) -> bool:
    return "chictr" in text.lower() or "中国临床试验注册中心" in text


# -- WHO-format XML ---------------------------------------------------------------------------


def _claims_xml(inp: Input) -> bool:
    head = inp.text_head(4096)
    return _WHO_XML.search(head) is not None and ("<Triall" in head or "<trial_id>" in head)


def _read_xml(inp: Input) -> Iterator[Item]:
    count = 0
    stream = inp.open()
    try:
        for _, elem in etree.iterparse(
            stream, events=("end",), tag=_TRIAL_TAGS, huge_tree=True, resolve_entities=False, no_network=True
        ):
            count += 1
            locator = f"{elem.tag} {count}"
            text = etree.tostring(elem, encoding="unicode", with_tail=False)
            elem.clear()
            try:
                fields = xml_fields(text)
            except (etree.XMLSyntaxError, ValueError) as exc:
                yield Reject(inp.name, locator, f"unreadable trial element: {exc}")
                continue
            trial_id = one_line(fields.get("trialid"))
            if not trial_id:
                yield Reject(inp.name, locator, "trial has no trial_id")
                continue
            yield RawRecord(
                registry=register_short_name(one_line(fields.get("source register")), trial_id),
                record_id=trial_id,
                format=XML_FORMAT,
                payload=text,
                source=inp.name,
                locator=locator,
            )
    except etree.XMLSyntaxError as exc:
        where = f"after trial {count}" if count else "before the first trial"
        yield Reject(inp.name, where, f"XML is malformed or cut short ({exc})")
    finally:
        stream.close()
    if count == 0:
        yield Reject(inp.name, "", "ChiCTR XML without trials")


# -- saved web pages ---------------------------------------------------------------------------


def page_record(
    text: str, source: str, locator: str = "", *, url: str | None = None, kind: str = "file"
) -> RawRecord | Reject:
    """A trial page as a RawRecord, or a Reject saying why it is not one."""
    try:
        page = parse_detail_page(text)
    except Exception as exc:  # lxml raises several kinds on garbage; none may stop an import
        return Reject(source, locator, f"not a readable ChiCTR trial page: {parse_error(exc)}")
    if url:
        page["url"] = url
    trial_id = registration_number(page)
    assert trial_id is not None  # parse_detail_page refuses pages without one
    return RawRecord(
        registry=REGISTRY,
        record_id=trial_id,
        format=PAGE_FORMAT,
        payload=page,
        source=source,
        locator=locator,
        source_kind=kind,  # type: ignore[arg-type]
        record_updated=parse_date(field_value(page, "Date of Last Refreshed on", "最近更新日期")),
    )


def _claims_page(inp: Input) -> bool:
    if not _is_html(inp):
        return False
    text = inp.head(_HTML_SNIFF).decode("utf-8", errors="replace")
    return _is_chictr(text) and (is_detail_page(text) or is_search_page(text))


def _read_page(inp: Input) -> Iterator[Item]:
    text = inp.read_all().decode("utf-8", errors="replace")
    if is_detail_page(text):
        yield page_record(text, inp.name)
        return
    try:
        listing = parse_search_page(text)
    except Exception as exc:
        yield Reject(inp.name, "", f"not a readable ChiCTR search result page: {parse_error(exc)}")
        return
    for row_no, problem in listing.problems:
        yield Reject(inp.name, f"row {row_no}", problem)
    for n, row in enumerate(listing.rows, start=1):
        yield RawRecord(
            registry=REGISTRY,
            record_id=row.registration_number,
            format=LIST_FORMAT,
            payload=row.as_payload(),
            source=inp.name,
            locator=f"row {n}",
        )


register_reader(Reader("chictr-xml", _claims_xml, _read_xml))
register_reader(Reader("chictr-page", _claims_page, _read_page))
