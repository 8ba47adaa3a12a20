"""Places inside a country: a site's province or state and its city, each in one spelling.

Registries take these as free text, so one province arrives as "Beijing",
"Beijing Municipality", "Beijing Shi", "China/Shanghai", "北京" or a district
("Haidian"), and placeholders ("不限" = "any", "(Select)", "State...") sit
where a province should be.  Counting by region or city needs one spelling,
so every site gets, beside the text as registered:

- ``region_code`` and ``region``: the ISO 3166-2 first-level subdivision
  (province, state), read from the state field, else the city, else the
  facility.  Chinese places use ``knowledge/regions.csv`` (provinces by their
  English, full romanised and Chinese names, common misspellings, cities and
  districts), whose short English name is the canonical one; other countries
  use pycountry's subdivisions (US states by name or postal code).  Text that
  names no subdivision gives NULL: placeholders are never guessed into places.
- ``city_normalised``: the city with surrounding space, placeholders and
  administrative suffixes removed ("Wuhan Shi", "Tianjin City"), misspellings
  corrected (``knowledge/city_aliases.csv``), all-capital names in title case;
  for China, a district of a municipality becomes the municipality, a site in a
  municipality without a city gets it, and a province written as a city
  (city "Henan") is not a city (NULL).

``sponsor_country`` reads a country from a sponsor's name (a Chinese province
or city, or China's name); reports use it only for trials that list no site.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from cartatlas.knowledge import read_table
from cartatlas.normalise.countries import country_name

#: Texts that registries put where a place should be ("any", "select", form defaults).
_PLACEHOLDERS = frozenset(
    {
        "nan", "none", "null", "n/a", "na", "n.a.", "-", "--", "?", "0", "unknown", "not applicable",
        "not specified", "other", "other (non u.s.)", "(select)", "select", "state...", "city...", "state", "city",
        "province", "不限", "无", "其他",
    }
)  # fmt: skip

#: Chinese province-level municipalities: their districts and their province name are also their city.
_MUNICIPALITIES = frozenset({"CN-BJ", "CN-SH", "CN-TJ", "CN-CQ"})
_CITY_SUFFIX = re.compile(r"(?:\s+(?:shi|city)|\s*市)$", re.I)
_DISTRICT_ROW = "city or district"


def _key(text: str) -> str:
    return re.sub(r"[\s\-_'.’]+", " ", text.casefold()).strip()


def _clean(text: str | None) -> str | None:
    """The text stripped, or None for empty text and placeholders."""
    if text is None:
        return None
    text = re.sub(r"\s+", " ", str(text)).strip()
    if not text or text.casefold() in _PLACEHOLDERS or not any(ch.isalpha() for ch in text):
        return None
    return text


@lru_cache(maxsize=1)
def _region_table() -> tuple[dict[str, dict[str, tuple[str, str]]], dict[str, str], frozenset[tuple[str, str]]]:
    """(country -> alias key -> (code, name), code -> canonical name, (country, key) of city/district rows)."""
    aliases: dict[str, dict[str, tuple[str, str]]] = {}
    names: dict[str, str] = {}
    districts: set[tuple[str, str]] = set()
    for row in read_table("regions.csv"):
        cc, code, name = row["country_code"], row["region_code"], row["region"]
        aliases.setdefault(cc, {})[_key(row["alias"])] = (code, name)
        names.setdefault(code, name)
        if row["source"].startswith(_DISTRICT_ROW):
            districts.add((cc, _key(row["alias"])))
    return aliases, names, frozenset(districts)


@lru_cache(maxsize=256)
def _subdivisions(country: str) -> dict[str, tuple[str, str]]:
    _, names, _ = _region_table()
    out: dict[str, tuple[str, str]] = {}
    # In code order: pycountry returns a set, whose order changes from one process to the next, and
    # a name two subdivisions share (Hsinchu City and County) must mean the same one every time.
    for sub in sorted(pycountry.subdivisions.get(country_code=country) or [], key=lambda s: s.code):
        if getattr(sub, "parent_code", None):
            continue  # only first-level divisions: states, provinces
        value = (sub.code, names.get(sub.code, sub.name))
        out[_key(sub.name)] = value
        out[_key(sub.code.split("-")[1])] = value
    return out


def _lookup(country: str, text: str) -> tuple[str, str] | None:
    key = _key(text)
    return _region_table()[0].get(country, {}).get(key) or _subdivisions(country).get(key)


@lru_cache(maxsize=8192)
def region_of(country: str | None, *texts: str | None) -> tuple[str, str] | None:
    """(region code, region name) of a place, from the first of ``texts`` that names one.

    Texts are tried whole, then by their parts ("Kunming, Yunnan",
    "China,Beijing", "Beijing 100071").
    """
    if not country:
        return None
    for text in texts:
        text = _clean(text)
        if text is None:
            continue
        found = _lookup(country, text)
        if found:
            return found
        for part in re.split(r"[,/;]|\s\d{5,6}\b", text):
            if part.strip() and (found := _lookup(country, part)):
                return found
    return None


@lru_cache(maxsize=1)
def _city_aliases() -> dict[tuple[str, str], str]:
    return {(row["country_code"], _key(row["alias"])): row["city"] for row in read_table("city_aliases.csv")}


@lru_cache(maxsize=16384)
def normalise_city(country: str | None, city: str | None, region_code: str | None = None) -> str | None:
    """One spelling of a site's city (see the module doc); None when the text names no city."""
    text = _clean(city)
    if text is not None and country and _key(text) == _key(country_name(country) or country):
        text = None  # the country's name written as the city
    if country in ("CN", "TW", "HK", "MO") and text is not None:
        text = _CITY_SUFFIX.sub("", text).strip() or None
    if text is None:
        if country == "CN" and region_code in _MUNICIPALITIES:
            return _region_table()[1][region_code]
        return None
    alias = _city_aliases().get((country or "", _key(text)))
    if alias:
        return alias
    if country == "CN":
        aliases, _, districts = _region_table()
        place = aliases.get("CN", {}).get(_key(text))
        if place is not None:
            code, name = place
            if code in _MUNICIPALITIES:
                return name  # Beijing Municipality, Haidian, Xuhui: the city is the municipality
            if (country, _key(text)) not in districts:
                return None  # a province written as the city
        if text.isascii() and re.fullmatch(r"[A-Za-z' ]+", text) and not text.islower():
            # Pinyin with capitals inside a word ("ZhengZhou", "Huai'An"): one capital per word.
            return " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    if text.isupper() and len(text) > 3:
        return text.title()
    return text


def site_place(
    country: str | None, state: str | None, city: str | None, facility: str | None
) -> tuple[str | None, str | None, str | None]:
    """(region_code, region, city_normalised) of one site."""
    region = region_of(country, state, city, facility)
    code = region[0] if region else None
    return code, (region[1] if region else None), normalise_city(country, city, code)


@lru_cache(maxsize=1)
def _sponsor_country_patterns() -> list[tuple[re.Pattern[str], str]]:
    """Sponsor-name cues for a trial without sites: provinces/cities of China, country names."""
    patterns: list[tuple[re.Pattern[str], str]] = []
    for cc, aliases in _region_table()[0].items():
        words = sorted({a for a in aliases if len(a) > 3}, key=len, reverse=True)
        if words:
            patterns.append((re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.I), cc))
    patterns.append((re.compile(r"\b(?:china|chinese|peking|pla general hospital)\b", re.I), "CN"))
    return patterns


@lru_cache(maxsize=16384)
def sponsor_country(sponsor: str | None) -> str | None:
    """The sponsor's country when its name says it (reports use it only for trials without sites)."""
    if not sponsor:
        return None
    for pattern, cc in _sponsor_country_patterns():
        if pattern.search(sponsor):
            return cc
    return None
