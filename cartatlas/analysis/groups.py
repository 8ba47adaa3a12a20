"""Country groups (China / United States / other ...) and regions inside a country.

A trial belongs to every group in which it has a site, so a trial run in
China and the US counts for both, as in the review.  A trial with no site
belongs to its sponsor's country when that can be told from the sponsor's
name (a province or city of the focus country, or the country's name).
Group schemes are data (knowledge/country_groups.csv); a user can also give
their own groups on the command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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
