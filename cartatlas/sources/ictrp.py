"""WHO ICTRP search-portal exports: XML (``Trials_downloaded_from_ICTRP``) and CSV.

Each row is one registration in one of ICTRP's source registers; it is stored
under that register (``registry`` = ctgov, chictr, euctr, ...) and the trial id
as ICTRP writes it, so an ICTRP copy of a ClinicalTrials.gov record becomes
another version of the same record rather than a second trial.

Formats are recognised by content: the XML by its root element, the CSV by a
header with both a trial-id and a source-register column (the search portal's
export and tables derived from it, such as curated extracts, spell these
``TrialID`` / ``Source Register`` or ``Source_Register``).  Both are streamed, so
a full weekly ICTRP dump reads in flat memory.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from typing import IO

from lxml import etree

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Input, Item, Reader, register_reader
from cartatlas.sources.who import canonical_key, refreshed_on, register_short_name_for, row_fields, trial_id_of

log = logging.getLogger(__name__)

XML_FORMAT = "ictrp_xml"
CSV_FORMAT = "ictrp_csv"
_ROOT = "Trials_downloaded_from_ICTRP"
_XML_ROOT = re.compile(r"<\s*Trials_downloaded_from_ICTRP[\s>/]")
#: Trial records run past the csv module's default 128 KiB field limit in EU CTR's long criteria.
_FIELD_LIMIT = 64 * 1024 * 1024
_ID_COLUMNS = frozenset({"trialid", "trial id"})
_REGISTER_COLUMNS = frozenset({"source register"})
#: Stop reading a CSV after this many consecutive unparseable rows: the file is not what its header says.
_MAX_BAD_ROWS = 100


def _record(payload: dict[str, str] | str, fields: dict[str, str], fmt: str, source: str, locator: str) -> Item:
    trial_id = trial_id_of(fields)
    if trial_id is None:
        return Reject(source, locator, "ICTRP record has no TrialID")
    return RawRecord(
        registry=register_short_name_for(fields, trial_id),
        record_id=trial_id,
        format=fmt,
        payload=payload,
        source=source,
        locator=locator,
        record_updated=refreshed_on(fields),
    )


# -- XML ---------------------------------------------------------------------------


def _claims_xml(inp: Input) -> bool:
    return _XML_ROOT.search(inp.text_head(4096)) is not None


def _read_xml(inp: Input) -> Iterator[Item]:
    count = 0
    stream = inp.open()
    try:
        context = etree.iterparse(
            stream, events=("end",), tag="Trial", huge_tree=True, resolve_entities=False, no_network=True
        )
        for _, elem in context:
            count += 1
            locator = f"Trial {count}"
            text = etree.tostring(elem, encoding="unicode", with_tail=False)
            parent = elem.getparent()
            elem.clear()
            if parent is not None and parent.tag == _ROOT:
                # Keep memory flat on a full ICTRP dump.
                while elem.getprevious() is not None:
                    del parent[0]
            try:
                fields = row_fields(text)
            except (etree.XMLSyntaxError, ValueError) as exc:
                yield Reject(inp.name, locator, f"unreadable Trial element: {exc}")
                continue
            yield _record(text, fields, XML_FORMAT, inp.name, locator)
    except etree.XMLSyntaxError as exc:
        where = f"after Trial {count}" if count else "before the first Trial"
        yield Reject(inp.name, where, f"XML is malformed or cut short ({exc})")
    finally:
        stream.close()


# -- CSV ---------------------------------------------------------------------------


def _header(inp: Input) -> tuple[list[str], str] | None:
    first = inp.text_head(65536).split("\n", 1)[0].rstrip("\r")
    for delimiter in (",", "\t", ";"):
        try:
            fields = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error:
            continue
        keys = {canonical_key(f) for f in fields}
        if keys & _ID_COLUMNS and keys & _REGISTER_COLUMNS:
            return fields, delimiter
    return None


def _claims_csv(inp: Input) -> bool:
    return _header(inp) is not None


def _text_stream(inp: Input) -> IO[str]:
    return io.TextIOWrapper(inp.open(), encoding="utf-8-sig", errors="replace", newline="")


def _read_csv(inp: Input) -> Iterator[Item]:
    found = _header(inp)
    if found is None:
        yield Reject(inp.name, "line 1", "no ICTRP header (TrialID and Source Register columns)")
        return
    _, delimiter = found
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with _text_stream(inp) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except (StopIteration, csv.Error) as exc:
            yield Reject(inp.name, "line 1", f"cannot read the header: {exc}")
            return
        row_no = 0
        bad_in_a_row = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row_no += 1
                bad_in_a_row += 1
                yield Reject(inp.name, f"row {row_no} (line {reader.line_num})", f"malformed CSV: {exc}")
                if bad_in_a_row >= _MAX_BAD_ROWS:
                    yield Reject(inp.name, f"line {reader.line_num}", "too many malformed rows; rest of file skipped")
                    return
                continue
            bad_in_a_row = 0
            if not any(v.strip() for v in values):
                continue
            row_no += 1
            locator = f"row {row_no} (line {reader.line_num})"
            row: dict[str, str] = {}
            for i, value in enumerate(values):
                name = header[i] if i < len(header) and header[i] else f"_column_{i + 1}"
                row[name] = value
            if len(values) > len(header):
                log.debug("%s %s: %d values for %d columns", inp.name, locator, len(values), len(header))
            try:
                fields = row_fields(row)
            except ValueError as exc:  # pragma: no cover - a dict row always reads
                yield Reject(inp.name, locator, str(exc))
                continue
            yield _record(row, fields, CSV_FORMAT, inp.name, locator)


register_reader(Reader("ictrp-xml", _claims_xml, _read_xml))
register_reader(Reader("ictrp-csv", _claims_csv, _read_csv))
