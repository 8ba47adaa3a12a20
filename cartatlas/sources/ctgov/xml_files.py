"""ClinicalTrials.gov legacy XML: per-study ``<clinical_study>`` files and the old RSS feeds.

A ``<clinical_study>`` file (single, or one member of the AllPublicXML zip)
is one record of format ``ctgov_xml``; its payload is the document's text,
with line ends normalised as any XML parser normalises them, so that a copy
saved with CRLF is the same content.  The ``<required_header>`` download
stamp is left out of the content hash by the format's ``hash_view``, so a
re-download of an unchanged study is "unchanged".

The website's RSS search feeds (``<rss>`` whose links point at
ClinicalTrials.gov) carry a few fields per study; each ``<item>`` becomes a
minimal record of format ``ctgov_rss``, and an empty feed is no records and
no error.

A file named for one NCT id that holds another is refused unless the record
lists the file's id as an ``nct_alias``: ClinicalTrials.gov merged duplicate
registrations that way, so the alias explains the name, while an unexplained
mismatch means the file is not what its name says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, Reader, register_reader
from cartatlas.sources.ctgov.identity import (
    keep_entity_references,
    rss_item_id,
    xml_nct_aliases,
    xml_nct_id,
    xml_parser,
    xml_record_updated,
)

_PROLOG = re.compile(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>", re.S)
_FIRST_TAG = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")
_FILE_NCT = re.compile(r"^(NCT\d{8})(?!\d)", re.I)


def _root_name(inp: Input) -> str | None:
    """The document element's name, read from the first bytes past the prolog."""
    text = inp.text_head(16384)
    m = _FIRST_TAG.match(_PROLOG.sub("", text))
    return m.group(1) if m else None


def _claims(inp: Input) -> bool:
    root = _root_name(inp)
    if root == "clinical_study":
        return True
    return root == "rss" and "clinicaltrials.gov" in inp.text_head(16384).lower()


def file_name_conflict(source: str, nct: str, aliases: list[str]) -> str | None:
    """Why a record cannot be the study its file is named for, or None when it can."""
    base = re.split(r"[/\\!]", source)[-1]
    m = _FILE_NCT.match(base)
    if m is None:
        return None
    named = m.group(1).upper()
    if named == nct or named in {a.upper() for a in aliases}:
        return None
    return f"file is named for {named} but holds {nct}, which does not list {named} as an nct_alias"


def _decode(data: bytes, encoding: str | None) -> str:
    text = data.decode(encoding or "utf-8")
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _read(inp: Input) -> Iterator[Item]:
    data = inp.read_all()
    try:
        root = etree.fromstring(data, xml_parser())
    except (etree.LxmlError, ValueError) as exc:
        yield Reject(inp.name, "", f"invalid or truncated XML: {exc}")
        return
    if root is None:
        yield Reject(inp.name, "", "XML document has no root element")
        return
    keep_entity_references(root)  # the id, and a feed item's text, as the file writes them
    if root.tag == "rss":
        yield from _read_rss(inp.name, root)
        return
    if root.tag != "clinical_study":
        yield Reject(inp.name, "", f"XML root <{root.tag}> is not a ClinicalTrials.gov study")
        return
    try:
        text = _decode(data, root.getroottree().docinfo.encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        yield Reject(inp.name, "", f"cannot decode XML text: {exc}")
        return
    yield _study_record(inp.name, root, text)


def _study_record(source: str, root: etree._Element, text: str) -> Item:
    nct = xml_nct_id(root)
    if nct is None:
        return Reject(source, "", "record has no NCT id (id_info/nct_id)")
    # The study is converted when normalised; reading only needs its id, aliases and update date.
    aliases = xml_nct_aliases(root)
    if conflict := file_name_conflict(source, nct, aliases):
        return Reject(source, "", conflict, nct)
    return RawRecord(
        registry="ctgov",
        record_id=nct,
        format="ctgov_xml",
        payload=text,
        source=source,
        locator="",
        record_updated=xml_record_updated(root),
    )


def _read_rss(source: str, root: etree._Element) -> Iterator[Item]:
    for i, item in enumerate(root.iterfind("channel/item"), start=1):
        locator = f"item {i}"
        nct = rss_item_id(item)
        if nct is None:
            yield Reject(source, locator, "feed item has no NCT id in its link or guid")
            continue
        item.tail = None
        yield RawRecord(
            registry="ctgov",
            record_id=nct,
            format="ctgov_rss",
            payload=etree.tostring(item, encoding="unicode"),
            source=source,
            locator=locator,
            # The feed gives the first-posted date only; no last-update date to order versions by.
            record_updated=None,
        )


register_reader(Reader("ctgov-xml", _claims, _read))
