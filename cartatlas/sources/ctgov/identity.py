"""What a ClinicalTrials.gov reader needs to split input into records: a study's NCT id, its aliases
and the registry's last-update date (which orders versions), in every format ClinicalTrials.gov has
written (API v2 JSON, the classic API's JSON, legacy per-study XML, RSS, the website's CSV), read
without converting the study.

Moved from the normalisers (``normalise/ctgov.py`` and the older formats' ``normalise/ctgov_*.py``), which
import it from here: a reader does not import a normaliser.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from cartatlas.dates import parse_date

_EMPTY: dict[str, Any] = {}


def _date_of(struct: Any) -> Any:
    if isinstance(struct, dict):
        return parse_date(struct.get("date"))
    if isinstance(struct, str):
        return parse_date(struct)
    return None


def record_updated(study: dict[str, Any]) -> Any:
    """The registry's last-update date of a v2 study, used to order versions."""
    status = (study.get("protocolSection") or _EMPTY).get("statusModule") or _EMPTY
    return _date_of(status.get("lastUpdatePostDateStruct")) or parse_date(status.get("lastUpdateSubmitDate"))


_NULLS = {"", "null", "none", "n/a", "na"}


def clean(value: Any) -> str | None:
    """A trimmed string, or None for the many ways the old formats write nothing."""
    if value is None:
        return None
    text = str(value).replace("\xa0", " ").strip()
    return None if text.lower() in _NULLS else text


def _text(value: Any) -> str | None:
    """Like ``clean`` but keeps "N/A" and friends: for free text, where they are content."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _items(obj: Any, *path: str) -> list[Any]:
    """A classic "...List" wrapper's items: ``_items(s, "ConditionList", "Condition")``."""
    value = _get(obj, *path)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def classic_nct_id(study: Any) -> str | None:
    return clean(_get(study, "ProtocolSection", "IdentificationModule", "NCTId"))


def classic_nct_aliases(study: Any) -> list[str]:
    ident = _get(study, "ProtocolSection", "IdentificationModule")
    return [a for a in (clean(x) for x in _items(ident, "NCTIdAliasList", "NCTIdAlias")) if a]


def classic_record_updated(study: Any) -> dt.date | None:
    """The last-update date that orders versions (posted, else submitted), read without converting."""
    status = _get(study, "ProtocolSection", "StatusModule")
    for value in (_get(status, "LastUpdatePostDateStruct", "LastUpdatePostDate"), _get(status, "LastUpdateSubmitDate")):
        if isinstance(value, str) and (date := parse_date(clean(value))) is not None:
            return date
    return None


def xml_parser() -> etree.XMLParser:
    """A parser that never fetches or expands anything a file points at (no XXE, no network)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def keep_entity_references(root: etree._Element) -> etree._Element:
    """Entity references the parser left unexpanded, written back into the text as they stand (``&foo;``).

    No entity is ever expanded (an external one could read a local file or
    the network, a nested internal one could grow without end), so a
    reference declared in a DOCTYPE stays in the tree as a node of its own,
    which ``.text`` and ``findtext`` pass over: a title ``&foo;`` read as
    nothing, ``Study &foo; of`` as ``Study``, without a word.  As text, the
    reference keeps what the file says.  (A reference no DOCTYPE declares is
    a parse error, reported as a reject naming the entity and the line.)
    """
    for ref in list(root.iter(etree.Entity)):
        parent = ref.getparent()
        if parent is None:
            continue
        text = str(ref.text) + (ref.tail or "")
        before = ref.getprevious()
        if before is not None:
            before.tail = (before.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
        ref.tail = None
        parent.remove(ref)
    return root


def _find(el: etree._Element, path: str) -> str | None:
    return clean(el.findtext(path))


def _all(el: etree._Element, path: str) -> list[str]:
    return [t for t in (_text(x.text) for x in el.iterfind(path)) if t]


def xml_nct_id(root: etree._Element) -> str | None:
    return _find(root, "id_info/nct_id")


def xml_nct_aliases(root: etree._Element) -> list[str]:
    return _all(root, "id_info/nct_alias")


def xml_record_updated(root: etree._Element) -> dt.date | None:
    """The last-update date that orders versions: posted, else submitted (``lastchanged_date`` before 2017).

    Read directly so that a reader need not convert the whole study to learn it.
    """
    for path in ("last_update_posted", "last_update_submitted", "lastchanged_date"):
        if (date := parse_date(clean(root.findtext(path)))) is not None:
            return date
    return None


NCT_IN_TEXT = re.compile(r"NCT\d{8}(?!\d)")


def rss_item_id(item: etree._Element) -> str | None:
    for text in (item.findtext("link"), item.findtext("guid")):
        m = NCT_IN_TEXT.search(text or "")
        if m:
            return m.group(0)
    return None


def csv_record_updated(row: Mapping[str, Any]) -> dt.date | None:
    """The "Last Update Posted" date that orders versions; the current site's exports may omit it."""
    value = row.get("Last Update Posted")
    return parse_date(clean(value)) if isinstance(value, str) else None
