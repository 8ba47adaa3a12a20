"""Where a report comes from: the country and the Chinese province of its reporting institution.

The rule (issue 6 asks for it to be stated): the reporting institution is the
corresponding author's, when the record marks one (PubMed shows it as an
e-mail address in that author's affiliation), else the first author's; if
that author has no affiliation, the first author who has one.  Corresponding
authors run the study far more often than first authors (often fellows
seconded from elsewhere), and the review counted reports by the hospital that
treated the patients, which the corresponding author's address names.

An affiliation's country is read from its last comma-separated parts (where
journals put it): a country name or spelling (``country_aliases.csv``,
``affiliation_countries.csv``, ISO names), else a US state with a ZIP code,
else a Chinese province or city.  The province of a Chinese affiliation comes
from ``regions.csv`` (the trial sites' table) and ``cn_affiliation_places.csv``:
provinces and municipalities by their
English and Chinese names, and the cities (and old romanisations such as
Peking and Soochow) that affiliations name instead, each with a source note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cartatlas.knowledge import read_table
from cartatlas.normalise.countries import country_code

_EMAIL_TAIL = re.compile(r"(?:electronic address:?)?\s*[\w.+-]+@[\w-]+(?:\.[\w-]+)+\.?", re.I)
_US_STATE_ZIP = re.compile(
    r"\b(?:A[LKZR]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|"
    r"W[AIVY])\s+\d{5}(?:-\d{4})?\b"
)
_DIGITS = re.compile(r"\d[\d\s-]*")


def _key(text: str) -> str:
    return re.sub(r"[\s\-_'.]+", " ", text.casefold()).strip(" .,;:()")


@lru_cache(maxsize=1)
def _country_aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in ("country_aliases.csv", "affiliation_countries.csv"):
        for row in read_table(name):
            if row.get("code"):
                table[_key(row["alias"])] = row["code"].strip()
    return table


@lru_cache(maxsize=1)
def _regions() -> dict[str, tuple[str, str]]:
    """Chinese province, municipality and city names -> (ISO 3166-2 code, province)."""
    table: dict[str, tuple[str, str]] = {}
    # The trial sites' province table first, then the affiliation spellings, which win where both name a place.
    for row in read_table("regions.csv"):
        if row["country_code"] == "CN":
            table[_key(row["alias"])] = (row["region_code"].strip(), row["region"].strip())
    for row in read_table("cn_affiliation_places.csv"):
        table[_key(row["alias"])] = (row["region_code"].strip(), row["region"].strip())
    return table


@lru_cache(maxsize=1)
def _region_pattern() -> re.Pattern[str]:
    names = sorted((k for k in _regions() if len(k) > 3), key=len, reverse=True)
    return re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(n) for n in names) + r")(?![a-z])")


def first_affiliation(text: str) -> str:
    """The first institution of an affiliation string, without e-mail addresses."""
    text = _EMAIL_TAIL.sub("", text)
    return text.split(";")[0].strip(" .;,")


def _parts(text: str) -> list[str]:
    return [p.strip(" .") for p in re.split(r"[,;]", text) if p.strip(" .")]


def country_of(affiliation: str | None) -> str | None:
    """ISO code of the country an affiliation names, or None."""
    if not affiliation:
        return None
    text = first_affiliation(affiliation)
    aliases = _country_aliases()
    for part in reversed(_parts(text)):
        bare = _DIGITS.sub(" ", part).strip()
        for candidate in (part, bare):
            key = _key(candidate)
            if not key:
                continue
            # Two- and three-letter parts are state codes ("PA 19104") unless a listed alias (UK, USA, PRC).
            code = aliases.get(key) or (country_code(candidate) if len(key) > 3 else None)
            if code:
                return code
    if _US_STATE_ZIP.search(text):
        return "US"
    if region_of(text) is not None:
        return "CN"
    return None


def region_of(affiliation: str | None) -> tuple[str, str] | None:
    """(ISO 3166-2 code, province) of a Chinese affiliation: its parts from the end, then any name in it."""
    if not affiliation:
        return None
    text = first_affiliation(affiliation)
    regions = _regions()
    for part in reversed(_parts(text)):
        found = regions.get(_key(_DIGITS.sub(" ", part)))
        if found is not None:
            return found
    m = _region_pattern().search(_key(text))
    return regions[m.group(0)] if m else None


@dataclass(frozen=True, slots=True)
class ReportPlace:
    country: str | None
    basis: str | None
    institution: str | None
    region: str | None
    region_name: str | None


def report_place(authors: list[dict[str, Any]]) -> ReportPlace:
    """Country and province of the reporting institution (see the module doc for the rule)."""
    chosen: dict[str, Any] | None = None
    basis = None
    corresponding = [a for a in authors if a.get("is_corresponding") and a.get("affiliations")]
    if corresponding:
        chosen, basis = corresponding[-1], "corresponding author"
    elif authors and authors[0].get("affiliations"):
        chosen, basis = authors[0], "first author"
    else:
        with_affiliation = [a for a in authors if a.get("affiliations")]
        if with_affiliation:
            chosen, basis = with_affiliation[0], "first author with an affiliation"
    if chosen is None:
        return ReportPlace(None, None, None, None, None)
    affiliations: list[str] = chosen["affiliations"]
    country = None
    institution = first_affiliation(affiliations[0])
    for aff in affiliations:
        country = country_of(aff)
        if country is not None:
            institution = first_affiliation(aff)
            break
    region = region_of(institution) if country == "CN" else None
    return ReportPlace(
        country,
        basis,
        institution or None,
        region[0] if region else None,
        region[1] if region else None,
    )
