"""PubMed XML files: ``PubmedArticleSet`` (efetch) and ``MedlineCitationSet`` (baseline/update files).

Baseline files hold 30,000 records and 200 MB each, so they are streamed with
``lxml.etree.iterparse``: each record is serialised as soon as its end tag is
read and then cleared from the tree, together with the siblings before it, so
memory stays flat whatever the file's size.

Each ``PubmedArticle`` (efetch; also ``PubmedBookArticle``) or top-level
``MedlineCitation`` (older baseline files) is one record of format
``pubmed_xml`` whose payload is that element's XML text.  ``DeleteCitation``
entries of update files name PMIDs NLM withdrew; they are logged, not stored
(the raw store is append-only and a withdrawn article keeps its history).

A malformed record is a Reject naming the file, the record's position and
line, and its PMID when one can be read; a file cut short or broken keeps
the records before the break and ends with one Reject saying where it broke.
Nothing raises out of the reader.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from lxml import etree

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, Reader, register_reader
from cartatlas.sources.pubmed.identity import FORMAT, REGISTRY, clean, record_pmid, record_updated

log = logging.getLogger(__name__)

ROOTS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle", "MedlineCitation"})
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "MedlineCitation", "DeleteCitation")

_PROLOG = re.compile(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>", re.S)
_FIRST_TAG = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")


def root_name(text: str) -> str | None:
    """The document element's name, read past the XML declaration, comments and DOCTYPE."""
    m = _FIRST_TAG.match(_PROLOG.sub("", text))
    return m.group(1) if m else None


def _claims(inp: Input) -> bool:
    return root_name(inp.text_head(16384)) in ROOTS


def _is_record(elem: etree._Element) -> bool:
    """MedlineCitation is a record only at the top of a MedlineCitationSet, not inside a PubmedArticle."""
    if elem.tag != "MedlineCitation":
        return True
    parent = elem.getparent()
    return parent is None or parent.tag == "MedlineCitationSet"


def _release(elem: etree._Element) -> None:
    """Free a processed record and every earlier sibling (iterparse keeps them otherwise)."""
    elem.clear()
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def iter_records(inp: Input, *, source_kind: str = "file", source: str | None = None) -> Iterator[Item]:
    """Records and rejects of one PubMed XML stream, in file order."""
    where = source or inp.name
    position = 0
    last_ok: str | None = None
    deleted: list[str] = []
    try:
        with inp.open() as fh:
            events = etree.iterparse(
                fh,
                events=("end",),
                tag=RECORD_TAGS,
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                huge_tree=True,
            )
            for _, elem in events:
                if not _is_record(elem):
                    continue
                if elem.tag == "DeleteCitation":
                    deleted.extend(p for p in (clean(x.text) for x in elem.findall("PMID")) if p)
                    _release(elem)
                    continue
                position += 1
                locator = f"record {position} (line {elem.sourceline})"
                item = record_from_element(elem, where, locator, source_kind)
                if isinstance(item, RawRecord):
                    last_ok = item.record_id
                yield item
                _release(elem)
    except etree.XMLSyntaxError as exc:
        after = f" after record {position}" + (f" (PMID {last_ok})" if last_ok else "") if position else ""
        yield Reject(where, f"line {exc.lineno}" if exc.lineno else "", f"malformed XML{after}: {exc.msg}")
    except (OSError, EOFError):
        raise  # read_input reports a file cut short or unreadable as such
    except Exception as exc:  # the reader must never stop an import
        log.exception("%s: unexpected error reading PubMed XML", where)
        yield Reject(where, f"record {position + 1}", f"cannot read PubMed XML: {exc!r}")
    if deleted:
        log.info("%s: %d DeleteCitation PMIDs (withdrawn by NLM) not stored: %s", where, len(deleted), deleted[:10])


def record_from_element(elem: etree._Element, source: str, locator: str, source_kind: str = "file") -> Item:
    """One PubmedArticle / MedlineCitation element as a RawRecord, or a Reject saying why not."""
    try:
        pmid = record_pmid(elem)
    except Exception as exc:  # a broken record is reported, the next one read
        return Reject(source, locator, f"cannot read the record's PMID: {exc!r}")
    if not pmid:
        return Reject(source, locator, f"{elem.tag} has no PMID")
    if not pmid.isdigit():
        return Reject(source, locator, f"PMID {pmid!r} is not a number", pmid)
    try:
        updated = record_updated(elem)
        payload = etree.tostring(elem, encoding="unicode", with_tail=False)
    except Exception as exc:
        return Reject(source, locator, f"cannot serialise the record: {exc!r}", pmid)
    return RawRecord(
        registry=REGISTRY,
        record_id=pmid,
        format=FORMAT,
        payload=payload,
        source=source,
        locator=locator,
        source_kind=source_kind,  # type: ignore[arg-type]
        record_updated=updated,
    )


register_reader(Reader("pubmed-xml", _claims, iter_records))
