"""Recognising which registry a trial identifier belongs to.

Cross-registry linking (issue 5) starts from the ids one registration gives
for another, so every secondary id is tagged with its registry here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cartatlas.knowledge import read_table


@lru_cache(maxsize=1)
def _raw_patterns() -> list[tuple[str, str]]:
    return [(row["registry"], row["pattern"]) for row in read_table("registry_ids.csv")]


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    return [(reg, re.compile(rf"^(?:{pat})$", re.I)) for reg, pat in _raw_patterns()]


@lru_cache(maxsize=1)
def _finder() -> re.Pattern[str]:
    joined = "|".join(f"(?P<{reg}>{pat})" for reg, pat in _raw_patterns())
    return re.compile(rf"(?<![A-Za-z0-9])(?:{joined})(?![0-9])", re.I)


@lru_cache(maxsize=65536)
def id_registry(identifier: str | None) -> str | None:
    """The registry whose id format this identifier matches, or None."""
    if not identifier:
        return None
    s = identifier.strip()
    for registry, pattern in _patterns():
        if pattern.match(s):
            return registry
    return None


@lru_cache(maxsize=65536)
def id_matches(registry: str, identifier: str | None) -> bool:
    """Whether ``identifier`` is, as a whole, a well-formed id of ``registry``.

    A registry without a pattern of its own accepts an id of any known format
    (ICTRP carries registers the knowledge file does not list).
    """
    if not identifier:
        return False
    own = [pattern for reg, pattern in _patterns() if reg == registry]
    return any(pattern.fullmatch(identifier) for pattern in (own or [p for _, p in _patterns()]))


def find_registry_ids(text: str | None) -> list[tuple[str, str]]:
    """(registry, id) for every registry id written inside free text."""
    if not text:
        return []
    out: list[tuple[str, str]] = []
    for m in _finder().finditer(text):
        registry = m.lastgroup
        if registry is not None:
            out.append((registry, m.group(0)))
    return out
