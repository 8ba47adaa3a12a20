"""Country groups (China / United States / other ...) and regions inside a country.

A trial belongs to every group in which it has a site, so a trial run in
China and the US counts for both, as in the review.  A trial with no site
belongs to its sponsor's country when that can be told from the sponsor's
name (a province or city of the focus country, or the country's name).
Group schemes are data (knowledge/country_groups.csv); a user can also give
their own groups on the command line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pycountry

from cartatlas.knowledge import read_table
from cartatlas.normalise.countries import country_code, country_name

OTHER = "Other countries"


@dataclass(frozen=True)
class CountryGroups:
    """Named groups of ISO codes; every other country falls into ``other``."""

    groups: dict[str, frozenset[str]]
    other: str = OTHER
    scheme: str = "custom"
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [*self.groups, self.other]

    def groups_of(self, codes: Iterable[str]) -> list[str]:
        """Groups of a trial with sites in these countries, in scheme order."""
        found: list[str] = []
        codes = set(codes)
        if not codes:
            return []
        for name, members in self.groups.items():
            if codes & members:
                found.append(name)
        if codes - set().union(*self.groups.values()):
            found.append(self.other)
        return found

    def group_of_country(self, code: str) -> str:
        for name, members in self.groups.items():
            if code in members:
                return name
        return self.other


def load_scheme(scheme: str = "wei2021") -> CountryGroups:
    groups: dict[str, set[str]] = {}
    notes: list[str] = []
    for row in read_table("country_groups.csv"):
        if row["scheme"] == scheme:
            groups.setdefault(row["group"], set()).add(row["country_code"])
            notes.append(f"{row['group']} includes {country_name(row['country_code'])}: {row['source']}")
    if not groups:
        schemes = sorted({row["scheme"] for row in read_table("country_groups.csv")})
        raise ValueError(f"unknown country-group scheme {scheme!r} (known: {', '.join(schemes)})")
    return CountryGroups({k: frozenset(v) for k, v in groups.items()}, scheme=scheme, notes=notes)


def parse_groups(specs: list[str]) -> CountryGroups:
    """Groups from ``NAME=CODE,CODE`` strings (country names are accepted too)."""
    groups: dict[str, frozenset[str]] = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        if not sep or not name.strip() or not members.strip():
            raise ValueError(f"group {spec!r}: expected NAME=CODE[,CODE...], e.g. 'China=CN,TW'")
        codes = []
        for member in members.split(","):
            code = member.strip().upper() if len(member.strip()) == 2 else country_code(member.strip())
            if not code or (pycountry.countries.get(alpha_2=code) is None and code != "XK"):
                raise ValueError(f"group {spec!r}: unknown country {member.strip()!r}")
            codes.append(code)
        groups[name.strip()] = frozenset(codes)
    return CountryGroups(groups)


def focus_code(focus: str) -> str:
    """ISO code of a focus country given by code or name."""
    code = focus.strip().upper() if len(focus.strip()) == 2 else country_code(focus)
    if not code or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"unknown focus country {focus!r}")
    return code


# -- regions -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _region_aliases() -> dict[str, dict[str, tuple[str, str]]]:
    table: dict[str, dict[str, tuple[str, str]]] = {}
    for row in read_table("regions.csv"):
        table.setdefault(row["country_code"], {})[_key(row["alias"])] = (row["region_code"], row["region"])
    return table


def _key(text: str) -> str:
    return re.sub(r"[\s\-_'.]+", " ", text.casefold()).strip()


@lru_cache(maxsize=8192)
def region_of(country: str | None, *texts: str | None) -> tuple[str, str] | None:
    """(region code, region name) for a site, from its state, then city, then facility text.

    Uses knowledge/regions.csv (provinces of China with Chinese names, common
    misspellings and major cities) and pycountry's ISO 3166-2 subdivisions for
    other countries (US states...).
    """
    if not country:
        return None
    aliases = _region_aliases().get(country, {})
    subdivisions = _subdivisions(country)
    for text in texts:
        if not text:
            continue
        key = _key(text)
        if key in aliases:
            return aliases[key]
        if key in subdivisions:
            return subdivisions[key]
        # "Kunming, Yunnan", "China,Beijing", "Beijing 100071": try the parts.
        for part in re.split(r"[,/;]|\s\d{5,6}\b", text):
            pkey = _key(part)
            if pkey in aliases:
                return aliases[pkey]
            if pkey in subdivisions:
                return subdivisions[pkey]
    return None


@lru_cache(maxsize=256)
def _subdivisions(country: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or []:
        if getattr(sub, "parent_code", None):
            continue  # only first-level divisions: states, provinces
        out[_key(sub.name)] = (sub.code, sub.name)
        out[_key(sub.code.split("-")[1])] = (sub.code, sub.name)
    return out


@lru_cache(maxsize=1)
def _sponsor_country_patterns() -> list[tuple[re.Pattern[str], str]]:
    """Sponsor-name cues for a trial without sites: provinces/cities of China, country names."""
    patterns: list[tuple[re.Pattern[str], str]] = []
    for cc, aliases in _region_aliases().items():
        words = sorted({a for a in aliases if len(a) > 3}, key=len, reverse=True)
        if words:
            patterns.append((re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.I), cc))
    patterns.append((re.compile(r"\b(?:china|chinese|peking|pla general hospital)\b", re.I), "CN"))
    return patterns


def sponsor_country(sponsor: str | None) -> str | None:
    """The sponsor's country when its name says it (used only for trials without sites)."""
    if not sponsor:
        return None
    for pattern, cc in _sponsor_country_patterns():
        if pattern.search(sponsor):
            return cc
    return None
