"""Fields of the WHO trial registration data set, as ICTRP's and ChiCTR's exports write them.

What a reader needs to split an export into records (a record's fields by ICTRP's column names, its
trial id, its register, the date ICTRP last refreshed it) and the text cleaning those need.  Moved
from the normalisers (``normalise/who.py``, ``normalise/ictrp.py``, ``normalise/chictr.py``), which
import it from here: a reader does not import a normaliser.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from lxml import etree

from cartatlas.dates import parse_date
from cartatlas.knowledge.registries import register_short_name

_BR = re.compile(r"<\s*br\s*/?\s*>", re.I)


_TAG = re.compile(r"</?(?:p|div|span|b|i|u|strong|em|sup|sub|font)(?:\s[^<>]*)?>", re.I)


_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


_BLANK_LINES = re.compile(r"\n{3,}")


def element_text(el: Any) -> str:
    """All text inside an XML element (lxml's stubs type ``itertext`` loosely)."""
    return "".join(str(t) for t in el.itertext())


def clean_text(value: object) -> str | None:
    """Free text without the markup and padding exports leave in it; None when nothing remains.

    ICTRP writes line breaks as ``<br>`` (with CR and indentation around them)
    and pads some titles with hundreds of spaces; CSV exports keep HTML
    entities.  Line breaks are kept as ``\\n``; runs of spaces collapse.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "&" in text and ";" in text:
        text = html.unescape(text)
    text = _BR.sub("\n", text)
    text = _TAG.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text or None


def one_line(value: object) -> str | None:
    """A title or name: one line, single spaces."""
    text = clean_text(value)
    return " ".join(text.split()) if text else None


#: Column names as ICTRP spells them in one export but not the other (or in derived tables).
_ALIASES = {
    "phase original": "phase",
    "secondary ids": "secondary id",
    "secondary identifiers": "secondary id",
    "date enrollment": "date enrollement",
    "date enrolment": "date enrollement",
    "public title": "public title",
    "web address": "web address",
    "url": "web address",
}


#: Aliases that win over the column they stand for (a curated table's "Phase_Original" is the register's own).
_PREFERRED = frozenset({"phase original"})


def canonical_key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().casefold()


def _xml_fields(text: str) -> dict[str, str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    return {str(child.tag): element_text(child) for child in root if isinstance(child.tag, str)}


def row_fields(payload: Any) -> dict[str, str]:
    """ICTRP columns of one record, keyed by canonical column name."""
    raw = _xml_fields(payload) if isinstance(payload, str) else payload
    if not isinstance(raw, dict):
        raise ValueError(f"ICTRP record must be a row or a <Trial> element, not {type(payload).__name__}")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or value is None:
            continue
        key = canonical_key(name)
        text = value if isinstance(value, str) else str(value)
        target = _ALIASES.get(key, key)
        if target != key and target in out and key not in _PREFERRED:
            continue
        if target != key and key in _PREFERRED and not text.strip():
            continue
        out[target] = text
    return out


def trial_id_of(fields: dict[str, str]) -> str | None:
    return one_line(fields.get("trialid") or fields.get("trial id"))


def refreshed_on(fields: dict[str, str]) -> dt.date | None:
    """ICTRP's "Last Refreshed on": when it last took the record from its register."""
    return parse_date(one_line(fields.get("last refreshed on")))


def register_short_name_for(fields: dict[str, str], trial_id: str) -> str:
    """The registry a row belongs to: its Source Register, else what its id looks like."""
    return register_short_name(one_line(fields.get("source register")), trial_id)


#: ChiCTR's WHO XML tag -> the ICTRP column it fills (``trial_from_fields`` reads ICTRP's names).
_XML_MAIN = {
    "trial_id": "trialid",
    "reg_name": "source register",
    "date_registration": "date registration",
    "primary_sponsor": "primary sponsor",
    "public_title": "public title",
    "acronym": "acronym",
    "scientific_title": "scientific title",
    "date_enrolment": "date enrollement",
    "target_size": "target size",
    "recruitment_status": "recruitment status",
    "url": "web address",
    "study_type": "study type",
    "study_design": "study design",
    "phase": "phase",
    "hc_freetext": "condition",
    "i_freetext": "intervention",
    "results_date_completed": "results date completed",
}


#: Repeated elements joined into one ICTRP list column.
_XML_LISTS = {
    "country2": "countries",
    "prim_outcome": "primary outcome",
    "sec_outcome": "secondary outcome",
    "sec_id": "secondary id",
    "sponsor_name": "secondary sponsor",
    "hc_keyword": "condition",
}


_XML_CRITERIA = {
    "inclusion_criteria": "inclusion criteria",
    "exclusion_criteria": "exclusion criteria",
    "agemin": "inclusion agemin",
    "agemax": "inclusion agemax",
    "gender": "inclusion gender",
}


def xml_fields(text: str) -> dict[str, str]:
    """The ICTRP-named fields of one ``<Triall>`` element of ChiCTR's WHO XML."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    fields: dict[str, str] = {}
    main = root.find("main")
    for child in main if main is not None else ():
        if isinstance(child.tag, str) and child.tag in _XML_MAIN:
            fields[_XML_MAIN[child.tag]] = element_text(child)
    criteria = root.find("criteria")
    for child in criteria if criteria is not None else ():
        if isinstance(child.tag, str) and child.tag in _XML_CRITERIA:
            fields[_XML_CRITERIA[child.tag]] = element_text(child)
    lists: dict[str, list[str]] = {}
    for tag, column in _XML_LISTS.items():
        for el in root.iter(tag):
            value = element_text(el).strip().strip(";")
            if value:
                lists.setdefault(column, []).append(value)
    for column, values in lists.items():
        joined = ";".join(values)
        fields[column] = f"{fields[column]};{joined}" if fields.get(column) else joined
    return fields
