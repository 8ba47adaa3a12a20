"""Fields of the WHO Trial Registration Data Set, as ICTRP and ChiCTR write them.

The WHO ICTRP republishes every primary registry in one layout, and ChiCTR's
own exports and pages follow the same data set, so the readers of both share
these helpers: which register a record belongs to, recruitment status, study
type and sex in their many spellings (``knowledge/registry_terms.csv``), target
sizes written per group ("case:30;control:30;"), list fields separated by
semicolons or ``<br>``, and markup left in free text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cartatlas.knowledge import read_table
from cartatlas.normalise.countries import normalise_country
from cartatlas.sources.who import clean_text, one_line

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
#: Values that registries write where they mean "nothing".
_EMPTY_VALUES = frozenset({"", "n/a", "na", "none", "nil", "null", "not applicable", "no", "-", "无", "/", "nan"})


def is_empty_value(text: str | None) -> bool:
    return text is None or text.strip().casefold().rstrip(".") in _EMPTY_VALUES


def split_list(value: object, *, separators: str = ";") -> list[str]:
    """Items of a list field: split on the separators and on line breaks, de-duplicated, order kept."""
    text = clean_text(value)
    if not text:
        return []
    parts = re.split(f"[{re.escape(separators)}\n]", text)
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        item = " ".join(part.split()).strip(" ,.")
        key = item.casefold()
        if item and key not in seen and not is_empty_value(item):
            seen.add(key)
            out.append(item)
    return out


_GROUP_SIZE = re.compile(r"(?:^|;)\s*[^:;]*?:\s*(\d+)\s*(?=;|$)")


def target_size(value: object) -> int | None:
    """Planned sample size: a number, or the sum of ChiCTR's per-group sizes ("case:30;control:30;")."""
    text = clean_text(value)
    if not text:
        return None
    compact = text.replace(",", "").strip()
    if compact.isdigit():
        return int(compact)
    groups = _GROUP_SIZE.findall(text.replace("\n", ";"))
    if groups:
        return sum(int(n) for n in groups)
    m = re.fullmatch(r"\s*(\d+)\s*(?:participants?|patients?|subjects?|cases?)?\s*", compact, re.I)
    return int(m[1]) if m else None


def _term_key(text: str) -> str:
    cleaned = clean_text(text)
    return " ".join(cleaned.split()).casefold() if cleaned else ""


@lru_cache(maxsize=1)
def _terms() -> dict[tuple[str, str], str]:
    return {(row["field"], _term_key(row["spelling"])): row["value"] for row in read_table("registry_terms.csv")}


def _enum(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z\u4e00-\u9fff]+", "_", text.strip()).strip("_").upper()


def _term(field: str, value: object, *, keep_unknown: bool) -> str | None:
    text = one_line(value)
    if not text:
        return None
    known = _terms().get((field, _term_key(text)))
    if known is not None:
        return known or None
    return (_enum(text) or None) if keep_unknown else None


def status(value: object) -> str | None:
    """Recruitment status in ClinicalTrials.gov's vocabulary where it maps; other statuses kept, enum-spelled.

    ICTRP's "Not recruiting" and EU CTR's "Authorised" have no ClinicalTrials.gov
    equivalent (not recruiting may mean not yet, active or completed), so they
    stay NOT_RECRUITING and AUTHORISED rather than being guessed.
    """
    return _term("status", value, keep_unknown=True)


def study_type(value: object) -> str | None:
    """INTERVENTIONAL / OBSERVATIONAL / EXPANDED_ACCESS where it maps; ChiCTR's own categories kept."""
    return _term("study_type", value, keep_unknown=True)


def sex(value: object) -> str | None:
    """ALL / MALE / FEMALE, or None for a spelling that says neither."""
    text = one_line(value)
    if not text:
        return None
    return _term("sex", text, keep_unknown=False)


def age(value: object) -> str | None:
    """An age limit as written ("18 Years"), None where the registry means "no limit"."""
    text = one_line(value)
    if is_empty_value(text) or text is None:
        return None
    if text.casefold() in {"no limit", "no maximum age", "no minimum age", "not stated", "none specified"}:
        return None
    return text


def country_codes(value: object) -> list[str]:
    """ISO codes of the countries a list field names, in order, each once; unrecognised names are dropped.

    Items are separated by semicolons; a comma separates countries too unless
    it belongs to the name ("Korea, Republic of", "Iran, Islamic Republic of").
    """
    codes: list[str] = []

    def add(name: str) -> bool:
        _, code = normalise_country(name.strip(" ?.").strip())
        if code and code not in codes:
            codes.append(code)
        return code is not None

    for item in split_list(value):
        if not add(item) and "," in item:
            for part in item.split(","):
                add(part)
    return codes


def has_cjk(text: str | None) -> bool:
    return text is not None and _CJK.search(text) is not None


def language_of(*texts: str | None) -> str | None:
    """Languages of a record's main texts: "zh", "en" or "zh+en" (Chinese first, as ChiCTR shows them)."""
    zh = en = False
    for text in texts:
        if not text:
            continue
        if has_cjk(text):
            # A Chinese text with drug codes or acronyms in it is still Chinese.
            zh = True
        elif _LATIN_WORD.search(text):
            en = True
    if zh and en:
        return "zh+en"
    if zh:
        return "zh"
    if en:
        return "en"
    return None
