"""The product catalogue and the developer table, read as records, with their consistency checks.

``products.csv`` names every CAR cell product a curator could source (code names and
aliases in every spelling, Chinese names, developer, antigens, platform, cell source,
the sample trials that name it); ``developers.csv`` names the companies and
institutions whose cell products are CAR products, and whether they develop other
products too (``pipeline``); ``code_prefixes.csv`` names the prefixes of developers'
CAR product codes.  The screening rules read
products through ``cartatlas.classify.knowledge``; this module serves everyone
else (curators, reports, rules that want the developer of a sponsor) and says
what is wrong with the tables, so that a wrong row is caught before it becomes
a wrong count.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from cartatlas.knowledge import read_table
from cartatlas.knowledge.labels import values

PLATFORMS = frozenset(values("platforms"))
PRODUCT_SOURCES = frozenset(values("product_source"))
ROLES = frozenset({"cell", "switch"})
STATUSES = frozenset({"approved", "investigational"})
DEVELOPER_KINDS = frozenset({"company", "academic", "hospital"})
#: What a developer's clinical products are: CAR cell products only, also other products, or not known here.
PIPELINES = frozenset({"car", "mixed", "unknown"})
_NCT = re.compile(r"NCT\d{8}")
_MARKS = re.compile(r"[\s\-\u2010-\u2015_.,;:/()\[\]+'\"]+")


def spelling_key(term: str) -> str:
    """How two spellings are compared: case, dashes, dots, slashes and spaces ignored."""
    return _MARKS.sub(" ", term.lower()).strip()


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split("|") if v.strip())


@dataclass(frozen=True, slots=True)
class CatalogueProduct:
    name: str
    aliases: tuple[str, ...]
    chinese_names: tuple[str, ...]
    targets: tuple[str, ...]
    platform: str
    product_source: str
    cell_source: str
    role: str
    status: str
    developer: str
    #: Spellings that also mean something else; a rule should see context before counting them.
    ambiguous_aliases: tuple[str, ...]
    target_note: str
    #: Trials of the 2026-08-22 monitor corpus whose title, interventions or summary name the product.
    nct_ids: tuple[str, ...]
    source: str

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.chinese_names)


@dataclass(frozen=True, slots=True)
class Developer:
    name: str
    aliases: tuple[str, ...]
    chinese_names: tuple[str, ...]
    country: str
    kind: str
    platforms: tuple[str, ...]
    #: ``car`` when its clinical products are CAR cell products (a code name of it is probably one),
    #: ``mixed`` when it also develops drugs or other cell products, ``unknown`` when the samples say too little.
    pipeline: str
    pipeline_note: str
    #: Trials of the monitor corpus whose lead sponsor is this developer (any of its names).
    sample_trials: tuple[str, ...]
    source: str

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.chinese_names)


@lru_cache(maxsize=1)
def products() -> tuple[CatalogueProduct, ...]:
    return tuple(
        CatalogueProduct(
            name=row["name"].strip(),
            aliases=_split(row.get("aliases")),
            chinese_names=_split(row.get("chinese_names")),
            targets=_split(row.get("targets")),
            platform=(row.get("platform") or "").strip(),
            product_source=(row.get("product_source") or "").strip(),
            cell_source=(row.get("cell_source") or "").strip(),
            role=(row.get("role") or "").strip() or "cell",
            status=(row.get("status") or "").strip(),
            developer=(row.get("developer") or "").strip(),
            ambiguous_aliases=_split(row.get("ambiguous_aliases")),
            target_note=(row.get("target_note") or "").strip(),
            nct_ids=_split(row.get("nct_ids")),
            source=(row.get("source") or "").strip(),
        )
        for row in read_table("products.csv")
    )


@lru_cache(maxsize=1)
def developers() -> tuple[Developer, ...]:
    return tuple(
        Developer(
            name=row["name"].strip(),
            aliases=_split(row.get("aliases")),
            chinese_names=_split(row.get("chinese_names")),
            country=(row.get("country") or "").strip(),
            kind=(row.get("kind") or "").strip(),
            platforms=_split(row.get("platforms")),
            pipeline=(row.get("pipeline") or "").strip(),
            pipeline_note=(row.get("pipeline_note") or "").strip(),
            sample_trials=_split(row.get("sample_trials")),
            source=(row.get("source") or "").strip(),
        )
        for row in read_table("developers.csv")
    )


def developer_for(sponsor: str) -> Developer | None:
    """The developer a sponsor name (any spelling in the table) belongs to."""
    key = spelling_key(sponsor)
    for dev in developers():
        if any(spelling_key(s) == key for s in dev.spellings):
            return dev
    return None


def _collisions(rows: list[tuple[str, tuple[str, ...], tuple[str, ...]]], table: str) -> list[str]:
    """Spellings shared by two rows, unless every row but one declares the spelling ambiguous."""
    owners: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for name, spellings, ambiguous in rows:
        declared = {spelling_key(a) for a in ambiguous}
        for key in {spelling_key(s) for s in spellings}:
            owners[key].append((name, key in declared))
    out = []
    for key, who in sorted(owners.items()):
        if len(who) > 1 and sum(1 for _, declared in who if not declared) > 1:
            out.append(f"{table}: spelling {key!r} names {', '.join(n for n, _ in who)}")
    return out


def problems(antigens: set[str] | None = None) -> list[str]:
    """Everything wrong with the two tables, one sentence each (empty when they are consistent)."""
    if antigens is None:
        antigens = {row["symbol"].strip() for row in read_table("antigens.csv")}
    out: list[str] = []
    for p in products():
        where = f"products.csv {p.name}"
        if not p.source:
            out.append(f"{where}: no source")
        out += [f"{where}: antigen {t} is not in antigens.csv" for t in p.targets if t not in antigens]
        if p.platform not in PLATFORMS:
            out.append(f"{where}: platform {p.platform!r} is not one of {sorted(PLATFORMS)}")
        if p.product_source not in PRODUCT_SOURCES:
            out.append(f"{where}: product_source {p.product_source!r}")
        if p.role not in ROLES:
            out.append(f"{where}: role {p.role!r}")
        if p.status not in STATUSES:
            out.append(f"{where}: status {p.status!r}")
        if not p.targets and not p.target_note:
            out.append(f"{where}: no target and no note saying why")
        keys = {spelling_key(s) for s in p.spellings}
        out += [
            f"{where}: ambiguous spelling {a!r} is not one of its names"
            for a in p.ambiguous_aliases
            if spelling_key(a) not in keys
        ]
        out += [f"{where}: {i!r} is not an NCT id" for i in p.nct_ids if not _NCT.fullmatch(i)]
    out += _collisions([(p.name, p.spellings, p.ambiguous_aliases) for p in products()], "products.csv")
    for d in developers():
        where = f"developers.csv {d.name}"
        if not d.source:
            out.append(f"{where}: no source")
        if d.kind not in DEVELOPER_KINDS:
            out.append(f"{where}: kind {d.kind!r}")
        out += [f"{where}: platform {x!r}" for x in d.platforms if x not in PLATFORMS]
        if d.pipeline not in PIPELINES:
            out.append(f"{where}: pipeline {d.pipeline!r} is not one of {sorted(PIPELINES)}")
        elif d.pipeline != "unknown" and not d.pipeline_note:
            out.append(f"{where}: pipeline {d.pipeline!r} without a note saying why")
        out += [f"{where}: {i!r} is not an NCT id" for i in d.sample_trials if not _NCT.fullmatch(i)]
    out += _collisions([(d.name, d.spellings, ()) for d in developers()], "developers.csv")
    out += _prefix_problems()
    return out


def _prefix_problems() -> list[str]:
    """Code prefixes must name a developer of the table and be long enough to mean one company's codes."""
    out: list[str] = []
    for row in read_table("code_prefixes.csv"):
        where = f"code_prefixes.csv {row['prefix']}"
        if developer_for(row["developer"]) is None:
            out.append(f"{where}: developer {row['developer']!r} is not in developers.csv")
        key = re.sub(r"[^A-Za-z0-9]", "", row["prefix"])
        if len(key) < 3 or len(re.sub(r"[^A-Za-z]", "", key)) < 2:
            # "HN23" and "IMC" name one company's codes; "CT" or "H1" would name many.
            out.append(f"{where}: a prefix shorter than three characters or two letters matches other codes")
    return out
