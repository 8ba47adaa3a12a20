"""ClinicalTrials.gov JSON in all its shapes: API v2 and the classic API.

Shapes read: a list of v2 studies, a single v2 study, a v2 page
(``{"studies": [...]}``), JSON lines of any of those (streamed, so a file of
any size reads in flat memory), and the classic API's ``FullStudiesResponse``
(handled by ``classic``).  What a JSON object is decides how it is read; the
file name plays no part.

JSON lines are told from one JSON document without trusting the first line,
which may be broken or longer than any sniffing buffer (a record with
results): a line that ends a JSON value followed by a line that starts one
(``}`` then ``{``) cannot occur in a single document, since JSON strings hold
no raw line breaks.  A document that fails to parse but holds records on
lines of their own is read line by line as well, so one broken line never
costs the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, LineBatch, Reader, line_batches, read_block, register_reader
from cartatlas.sources.ctgov.identity import record_updated

#: (recognises(obj), iterate(obj, source, locator)) for each JSON layout.
JsonLayout = tuple[Callable[[Any], bool], Callable[[Any, str, str], Iterator[Item]]]
JSON_LAYOUTS: list[JsonLayout] = []


def v2_study_record(study: Any, source: str, locator: str, source_kind: str = "file") -> Item:
    """A v2 study as a RawRecord, or a Reject saying why it cannot be one."""
    if not isinstance(study, dict):
        return Reject(source, locator, f"expected a study object, found {type(study).__name__}")
    ps = study.get("protocolSection")
    if not isinstance(ps, dict):
        return Reject(source, locator, "study has no protocolSection")
    ident = ps.get("identificationModule")
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    if not isinstance(nct, str) or not nct.strip():
        return Reject(source, locator, "record has no NCT id (protocolSection.identificationModule.nctId)")
    try:
        updated = record_updated(study)
    except (AttributeError, TypeError):
        return Reject(source, locator, "statusModule is malformed", nct.strip())
    return RawRecord(
        registry="ctgov",
        record_id=nct.strip(),
        format="ctgov_v2",
        payload=study,
        source=source,
        locator=locator,
        source_kind=source_kind,  # type: ignore[arg-type]
        record_updated=updated,
    )


def _is_v2_study(obj: Any) -> bool:
    return isinstance(obj, dict) and "protocolSection" in obj


def _iter_v2_study(obj: Any, source: str, locator: str) -> Iterator[Item]:
    yield v2_study_record(obj, source, locator)


def _is_v2_page(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("studies"), list)


def _iter_v2_page(obj: Any, source: str, locator: str) -> Iterator[Item]:
    prefix = f"{locator} " if locator else ""
    for i, study in enumerate(obj["studies"]):
        yield v2_study_record(study, source, f"{prefix}studies[{i}]")


JSON_LAYOUTS.extend([(_is_v2_study, _iter_v2_study), (_is_v2_page, _iter_v2_page)])


def iter_json_object(obj: Any, source: str, locator: str) -> Iterator[Item]:
    """Records in one parsed JSON value, whatever its layout."""
    if isinstance(obj, list):
        prefix = f"{locator} " if locator else ""
        for i, element in enumerate(obj):
            yield from iter_json_object(element, source, f"{prefix}item {i}")
        return
    for recognises, iterate in JSON_LAYOUTS:
        if recognises(obj):
            yield from iterate(obj, source, locator)
            return
    keys = ", ".join(list(obj)[:5]) if isinstance(obj, dict) else type(obj).__name__
    yield Reject(source, locator, f"JSON is not a known ClinicalTrials.gov layout (top-level: {keys})")


def _claims(inp: Input) -> bool:
    return inp.text_head(1)[:1] in ("{", "[")


#: The end of one JSON value, a line break, the start of the next: JSON lines, never one document.
_BOUNDARY = re.compile(rb"[}\]][ \t\r]*\n[ \t\r\n]*[{\[]")
_HEAD = 1 << 20
_SCAN_BLOCK = 1 << 22
#: Bytes kept between scanned blocks, so that a boundary across two blocks is seen.
_SCAN_OVERLAP = 4096


def _looks_like_jsonl(inp: Input) -> bool:
    """True when the content is JSON lines rather than one JSON document.

    Cheap when the first line is a whole JSON value (the usual case); else the
    content is scanned, block by block in flat memory, for a line boundary
    between two values, however long or broken the first line is.
    """
    head = inp.head(_HEAD)
    first, sep, rest = head.lstrip(b"\xef\xbb\xbf \t\r\n").partition(b"\n")
    if sep and rest.strip():
        try:
            orjson.loads(first)
            return True
        except orjson.JSONDecodeError:
            pass
    if _BOUNDARY.search(head):
        return True
    if len(head) < _HEAD:  # the whole content was in the head
        return False
    with inp.open() as fh:
        carry = b""
        while True:
            block, error = read_block(fh, _SCAN_BLOCK)
            if not block:
                return False
            window = carry + block
            if _BOUNDARY.search(window):
                return True
            if error is not None:
                return False
            carry = window[-_SCAN_OVERLAP:]


def parse_line(source: str, lineno: int, line: bytes) -> Iterator[Item]:
    """The records of one line of a JSON-lines file (module level: ``LineBatch`` pickles it)."""
    if not line.strip():
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        yield Reject(source, f"line {lineno}", f"invalid JSON: {exc}")
        return
    yield from iter_json_object(obj, source, f"line {lineno}")


def _read(inp: Input) -> Iterator[Item]:
    for unit in _read_batches(inp):
        if isinstance(unit, LineBatch):
            yield from unit.items()
        else:
            yield unit


def _read_batches(inp: Input) -> Iterator[Item | LineBatch]:
    """JSON lines as unparsed batches (an importer parses them in worker processes); a document whole."""
    if _looks_like_jsonl(inp):
        with inp.open() as fh:
            yield from line_batches(inp.name, fh, parse_line)
        return
    data = inp.read_all()
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield from _broken_document(inp.name, data, exc)
        return
    yield from iter_json_object(obj, inp.name, "")


def _broken_document(source: str, data: bytes, exc: orjson.JSONDecodeError) -> Iterator[Item]:
    """A document that does not parse: its lines, when some of them are records, else one reject.

    JSON lines whose lines never meet whole (a broken line between every two
    good ones) look like one broken document; their good lines are kept.  A
    pretty-printed document cut short has no record on a line of its own and
    stays one reject rather than one per line.
    """
    if data.count(b"\n", 0, len(data) - 1) >= 1:
        lines = data.split(b"\n")
        items = [item for i, line in enumerate(lines, start=1) for item in parse_line(source, i, line)]
        if any(isinstance(item, RawRecord) for item in items):
            yield from items
            return
    yield Reject(source, "", f"invalid or truncated JSON: {exc}")


register_reader(Reader("ctgov-json", _claims, _read, _read_batches))
