"""Trial registries, described once: ``knowledge/registries.csv``.

One row per registry (and per id format a registry's records carry, such as EudraCT numbers), with:

- ``name``: cartatlas's short name, the ``registry`` column of every table;
- ``display_name``: how the report and its figures name it; ``full_name``: what it is;
- ``id_pattern``: the form of its ids (a regular expression; rows are tried in file order, so a longer
  form comes before a shorter one it contains: CTIS before EudraCT);
- ``records_in``: the registry that holds the records an id of this form names, when it is another
  (ICTRP lists EudraCT-numbered trials under EU CTR, UMIN and jRCT ones under JPRN);
- ``url_template``: a trial's page, ``{id}`` standing for its id (the id is put in only after it matched
  ``id_pattern``);
- ``precedence``: the order in which registrations of one trial are merged (the first is the trial's
  main registration); blank after every numbered one;
- ``cluster_ids``: ``yes`` when its ids name a cluster of linked registrations, and a link to one of its
  ids is kept before that record is imported; among them, ``precedence`` decides;
- ``aliases``: spellings of the registry in ICTRP's "Source Register" column, separated by ``|``;
- ``source``: where each fact comes from.

Every other module asks this one; ``tests/test_architecture.py`` fails when code names a registry that
the file does not list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cartatlas.knowledge import read_table

FILE = "registries.csv"
#: A trial's page on a registry that the file does not list: the WHO ICTRP search portal.
DEFAULT_URL_TEMPLATE = "https://trialsearch.who.int/Trial2.aspx?TrialID={id}"


@dataclass(frozen=True)
class Registry:
    name: str
    display_name: str
    full_name: str
    id_pattern: str | None
    records_in: str | None
    url_template: str
    precedence: int | None
    cluster_ids: bool
    aliases: tuple[str, ...]


@lru_cache(maxsize=1)
def registries() -> tuple[Registry, ...]:
    """Every row of ``registries.csv``, in file order."""
    out = []
    for lineno, row in enumerate(read_table(FILE), start=2):
        name = row["name"].strip()
        if not name or not re.fullmatch(r"[a-z][a-z0-9]*", name):
            raise ValueError(f"knowledge/{FILE} line {lineno}: name {name!r} is not a lowercase short name")
        precedence = row.get("precedence", "").strip()
        out.append(
            Registry(
                name=name,
                display_name=row["display_name"].strip() or name.upper(),
                full_name=row.get("full_name", "").strip(),
                id_pattern=row.get("id_pattern", "").strip() or None,
                records_in=row.get("records_in", "").strip() or None,
                url_template=row.get("url_template", "").strip() or DEFAULT_URL_TEMPLATE,
                precedence=int(precedence) if precedence else None,
                cluster_ids=row.get("cluster_ids", "").strip().lower() == "yes",
                aliases=tuple(a.strip() for a in row.get("aliases", "").split("|") if a.strip()),
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Registry]:
    return {r.name: r for r in registries()}


def names() -> tuple[str, ...]:
    """Every registry name the file lists."""
    return tuple(r.name for r in registries())


def display_name(name: str) -> str:
    """How the report names a registry (its short name in capitals when the file does not list it)."""
    known = _by_name().get(name)
    return known.display_name if known is not None else name.upper()


def precedence() -> tuple[str, ...]:
    """Registries in the order registrations of one trial are merged; unlisted ones come after."""
    ranked = [r for r in registries() if r.precedence is not None]
    return tuple(r.name for r in sorted(ranked, key=lambda r: r.precedence or 0))


def cluster_id_registries() -> tuple[str, ...]:
    """Registries whose ids name clusters of linked registrations, the preferred first."""
    ranked = {name: i for i, name in enumerate(precedence())}
    chosen = [r.name for r in registries() if r.cluster_ids]
    return tuple(sorted(chosen, key=lambda n: ranked.get(n, len(ranked))))


def records_registry(name: str) -> str:
    """The registry holding the records that an id of ``name``'s form names (itself, mostly)."""
    known = _by_name().get(name)
    return known.records_in if known is not None and known.records_in else name


def url_template(name: str) -> str:
    """A trial's page on registry ``name``, ``{id}`` standing for its id."""
    known = _by_name().get(name)
    return known.url_template if known is not None else DEFAULT_URL_TEMPLATE


# -- ids -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _raw_patterns() -> list[tuple[str, str]]:
    return [(r.name, r.id_pattern) for r in registries() if r.id_pattern]


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


# -- ICTRP's "Source Register" ---------------------------------------------------------------------


def _alias_key(text: str) -> str:
    """A spelling as compared: single spaces, case folded (callers pass text cleaned to one line)."""
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=1)
def _registers() -> dict[str, str]:
    return {_alias_key(alias): r.name for r in registries() for alias in r.aliases}


def register_short_name(source_register: str | None, trial_id: str | None = None) -> str:
    """cartatlas's short name (ctgov, chictr, euctr, ...) for an ICTRP "Source Register".

    Unknown spellings fall back to the registry the trial id's format belongs
    to, then to a slug of the spelling, so a new register is still kept apart
    from the others rather than dropped.  ``source_register`` is expected
    cleaned to one line (``cartatlas.sources.who.one_line``).
    """
    if source_register:
        known = _registers().get(_alias_key(source_register))
        if known:
            return known
    by_id = id_registry(trial_id)
    if by_id:
        return records_registry(by_id)
    slug = re.sub(r"[^a-z0-9]+", "", (source_register or "").casefold())
    return slug or "unknown"
