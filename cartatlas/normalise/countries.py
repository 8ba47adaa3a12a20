"""Country names from any registry mapped to ISO 3166 codes and one display name.

Taiwan, Hong Kong and Macao keep their own codes (TW, HK, MO) so that a report
can group them with mainland China or apart, as its user chooses.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

from cartatlas.knowledge import read_table


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    aliases = {row["alias"].casefold(): row["code"] for row in read_table("country_aliases.csv")}
    names = {row["code"]: row["display_name"] for row in read_table("country_names.csv")}
    return aliases, names


@lru_cache(maxsize=4096)
def country_code(name: str | None) -> str | None:
    """ISO alpha-2 code for a registry's country spelling, or None if unknown."""
    if not name or not name.strip():
        return None
    key = name.strip()
    aliases, _ = _tables()
    code = aliases.get(key.casefold())
    if code:
        return code
    try:
        return str(pycountry.countries.lookup(key).alpha_2)
    except LookupError:
        return None


@lru_cache(maxsize=512)
def country_name(code: str | None) -> str | None:
    """The display name cartatlas uses for a code (short, as readers expect)."""
    if not code:
        return None
    _, names = _tables()
    if code in names:
        return names[code]
    entry = pycountry.countries.get(alpha_2=code)
    if entry is None:
        return code
    return str(getattr(entry, "common_name", None) or entry.name)


def normalise_country(name: str | None) -> tuple[str | None, str | None]:
    """(display name, code); an unrecognised spelling is kept as given, code None."""
    code = country_code(name)
    if code is None:
        return (name.strip() if name and name.strip() else None), None
    return country_name(code), code
