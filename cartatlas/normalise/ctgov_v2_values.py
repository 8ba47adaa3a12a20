"""The API v2 spelling of values that ClinicalTrials.gov's older formats share.

The classic API JSON (``ctgov_classic``), the legacy per-study XML (``ctgov_xml``), the website CSV
downloads (``ctgov_csv``) and the old RSS feeds (``ctgov_rss``) all describe the same registry record
with other names and other spellings.  Each of those modules translates its format, key by key, into
the API v2 module layout so that ``normalise_ctgov`` interprets every field in one place; a converter
only renames and respells, it never decides what a field means.  What more than one of them needs is
here: dates, enums, the study design, pruning of absent values (left out rather than written as empty,
as API v2 does), and reading stored XML.

The stored payload stays in its original format, so a better converter can re-derive every trial later
(``cartatlas rebuild``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

from cartatlas.dates import parse_date
from cartatlas.normalise.phases import normalise_phases
from cartatlas.sources.ctgov.identity import (
    _text,
    clean,
    keep_entity_references,
    xml_parser,
)

V2 = dict[str, Any]

# -- values ------------------------------------------------------------------------------------------


_MONTH_ONLY = re.compile(r"^(?:[A-Za-z]+\.?,?\s+\d{4}|\d{4}[-/.]\d{1,2})$")
_YEAR_ONLY = re.compile(r"^\d{4}$")


def iso_date(value: Any) -> str | None:
    """A registry date in the API v2 spelling, keeping its precision ("2021-03" stays a month).

    A date that cannot be read is kept as written: the normaliser then yields
    no date, but the v2 view still shows what the record said.
    """
    text = clean(value)
    if text is None:
        return None
    date = parse_date(text)
    if date is None:
        return text
    if _YEAR_ONLY.match(text):
        return f"{date.year:04d}"
    if _MONTH_ONLY.match(text):
        return f"{date.year:04d}-{date.month:02d}"
    return date.isoformat()


def _enum_token(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


def v2_enum(value: Any, table: Mapping[str, str | None] | None = None, *, na: str | None = None) -> str | None:
    """An enum value in API v2 spelling: known old spellings by table, the rest by rule.

    "N/A" means no value, except where v2 has a value for it (``na``, e.g. allocation "NA").
    """
    text = clean(value)
    if text is None:
        return na if na is not None and _text(value) is not None else None
    if table is not None:
        key = text.casefold()
        if key in table:
            return table[key]
    return _enum_token(text)


#: Old spellings that the rule (upper case, "_" for the rest) would get wrong; the rule does the others.
_STATUS = {"unknown status": "UNKNOWN"}
_SPONSOR_CLASS = {
    "u.s. fed": "FED",
    "us fed": "FED",
    "other u.s. federal agency": "FED",
    "other gov": "OTHER_GOV",
    "individual": "INDIV",
    "ambiguous": "AMBIG",
}
_DATE_TYPE = {"anticipated": "ESTIMATED", "estimate": "ESTIMATED", "estimated": "ESTIMATED", "actual": "ACTUAL"}
_STUDY_TYPE = {"observational [patient registry]": "OBSERVATIONAL"}
_SEX = {"both": "ALL", "all": "ALL", "female": "FEMALE", "male": "MALE"}
_INTERVENTION_TYPE = {"procedure/surgery": "PROCEDURE", "gene transfer": "GENETIC"}
INTERVENTION_TYPES = frozenset(
    {
        "DRUG",
        "DEVICE",
        "BIOLOGICAL",
        "PROCEDURE",
        "RADIATION",
        "BEHAVIORAL",
        "GENETIC",
        "DIETARY_SUPPLEMENT",
        "COMBINATION_PRODUCT",
        "DIAGNOSTIC_TEST",
        "OTHER",
    }
)
_PRIMARY_PURPOSE = {"educational/counseling/training": "ECT"}
_WHO_MASKED = {"subject": "PARTICIPANT", "caregiver": "CARE_PROVIDER"}


def v2_status(value: Any) -> str | None:
    return v2_enum(value, _STATUS)


def v2_sponsor_class(value: Any) -> str | None:
    return v2_enum(value, _SPONSOR_CLASS)


def v2_date_type(value: Any) -> str | None:
    return v2_enum(value, _DATE_TYPE)


def v2_study_type(value: Any) -> str | None:
    """The 2018 website CSV names the kind of expanded access after a colon; v2 has one type for all."""
    text = clean(value)
    return None if text is None else v2_enum(text.split(":")[0], _STUDY_TYPE)


def v2_sex(value: Any) -> str | None:
    return v2_enum(value, _SEX)


def v2_intervention_type(value: Any) -> str | None:
    return v2_enum(value, _INTERVENTION_TYPE)


def v2_phases(values: Iterable[Any]) -> list[str]:
    """Phase lists in v2 form; here "N/A" is a value (NA, not applicable), not an absence."""
    return normalise_phases(_text(v) for v in values)


def v2_age(value: Any) -> str | None:
    """Ages are already written "18 Years" in every format; "N/A" means no limit."""
    return clean(value)


def v2_bool(value: Any) -> bool | None:
    text = clean(value)
    if text is None:
        return None
    key = text.casefold()
    if key in {"yes", "true", "accepts healthy volunteers", "has results"}:
        return True
    if key in {"no", "false", "no results available"}:
        return False
    return None


def date_struct(date: Any, kind: Any = None) -> dict[str, str] | None:
    iso = iso_date(date)
    if iso is None:
        return None
    out = {"date": iso}
    if (t := v2_date_type(kind)) is not None:
        out["type"] = t
    return out


def _pruned(value: Any) -> Any:
    """The value pruned, or None when nothing of it is left."""
    cls = value.__class__
    if cls is dict or cls is list:
        value = prune(value)
        return value or None
    return None if value is None or value == "" else value


def prune(obj: Any) -> Any:
    """Drop None, empty strings, empty lists and empty dicts, recursively, as API v2 omits them."""
    if obj.__class__ is dict:
        out = {}
        for key, value in obj.items():
            if (kept := _pruned(value)) is not None:
                out[key] = kept
        return out
    if obj.__class__ is list:
        return [kept for value in obj if (kept := _pruned(value)) is not None]
    return obj


# -- design ------------------------------------------------------------------------------------------

_MASK_LEVELS = ("none", "open label", "single", "double", "triple", "quadruple")


def masking_info(value: Any) -> dict[str, Any] | None:
    """ "Double (Participant, Investigator)" or "Double Blind (Subject, Investigator)" as v2 maskingInfo."""
    text = clean(value)
    if text is None:
        return None
    head, _, rest = text.partition("(")
    level_text = head.strip().casefold()
    level = None
    for name in _MASK_LEVELS:
        if level_text.startswith(name):
            level = "NONE" if name in ("none", "open label") else name.upper()
            break
    who = [v2_enum(w, _WHO_MASKED) for w in rest.rstrip(")").split(",")] if rest and level != "NONE" else []
    return {"masking": level or _enum_token(head), "whoMasked": [w for w in who if w]}


def intervention_model(value: Any) -> str | None:
    text = clean(value)
    return None if text is None else _enum_token(re.sub(r"\s+Assignment$", "", text, flags=re.I))


_DESIGN_ITEM = re.compile(r"([A-Z][A-Za-z ]+):\s*(.*?)(?=,\s*[A-Z][A-Za-z ]+:\s|$)")


def design_from_text(text: Any, separator: str | None = None) -> dict[str, Any]:
    """The free-text design summary of old XML and the 2018 CSV as v2 designInfo.

    Written "Allocation: Randomized, Masking: Double (Subject, Investigator), Primary
    Purpose: Treatment" (XML before 2017) or with "|" between items (website CSV).
    """
    s = clean(text)
    if s is None:
        return {}
    items: dict[str, str] = {}
    parts = s.split(separator) if separator else [m.group(0) for m in _DESIGN_ITEM.finditer(s)]
    for part in parts:
        key, sep, val = part.partition(":")
        if sep:
            items[key.strip().casefold()] = val.strip()
    return design_info(
        allocation=items.get("allocation"),
        model=items.get("intervention model"),
        purpose=items.get("primary purpose"),
        masking=items.get("masking"),
        observational=items.get("observational model"),
        perspective=items.get("time perspective"),
    )


def design_info(
    *,
    allocation: Any = None,
    model: Any = None,
    model_description: Any = None,
    purpose: Any = None,
    masking: Any = None,
    masking_description: Any = None,
    who_masked: Iterable[Any] = (),
    observational: Any = None,
    perspective: Any = None,
) -> dict[str, Any]:
    mask = masking_info(masking) or {}
    if who := [w for w in (v2_enum(x, _WHO_MASKED) for x in who_masked) if w]:
        mask["whoMasked"] = who
    if masking_description is not None:
        mask["maskingDescription"] = _text(masking_description)
    return {
        "allocation": v2_enum(allocation, na="NA"),
        "interventionModel": intervention_model(model),
        "interventionModelDescription": _text(model_description),
        "primaryPurpose": v2_enum(purpose, _PRIMARY_PURPOSE),
        "observationalModel": v2_enum(observational),
        "timePerspective": v2_enum(perspective),
        "maskingInfo": mask,
    }


def v2_int(value: Any) -> int | None:
    text = clean(value)
    if text is None:
        return None
    try:
        return int(float(text.replace(",", "")))
    except ValueError:
        return None


_XML_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")


def parse_xml_text(text: str) -> etree._Element:
    """Parse stored XML text; its declaration names the original byte encoding, which no longer applies."""
    return keep_entity_references(
        etree.fromstring(_XML_DECLARATION.sub("", text, count=1).encode("utf-8"), xml_parser())
    )


def findtext(el: etree._Element, path: str) -> str | None:
    return _text(el.findtext(path))


def split_intervention(entry: str) -> dict[str, Any]:
    """ "Drug: SD-101" as type and name; an entry without a known type prefix is all name."""
    kind, sep, name = entry.partition(":")
    if sep and (t := v2_intervention_type(kind)) in INTERVENTION_TYPES and name.strip():
        return {"type": t, "name": name.strip()}
    return {"name": entry.strip()}
