"""Finding antigens, CAR products, platforms and diseases in an article's title and abstract.

The vocabularies are the trial classifier's knowledge base (``antigens.csv``,
``products.csv``, ``platform_terms.csv``, ``diseases.csv`` in
``cartatlas/knowledge``), read through ``cartatlas.knowledge.read_table``, so
a synonym added for trials is found in articles too.  Only the CSVs are
shared, not the trial matcher: a trial is a set of short structured fields,
an abstract is running prose, and the two need different context rules.

Text and terms are compared in one normal form (lower case, dashes as
spaces) and every hit is checked for word boundaries on ASCII letters and
digits, so CD19 is not found in CD190 nor EGFR in EGFRvIII; spellings marked
``exact_case`` (MET, FAP, CART) must match in their case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick

from cartatlas.classify.antigen_names import antigen_spellings
from cartatlas.knowledge import read_table

_DASHES = str.maketrans({c: " " for c in "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212_/"})
_WS = re.compile(r"\s+")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def display(text: str) -> str:
    """White space collapsed; the form hits point into."""
    return _WS.sub(" ", text).strip()


def _norm_same_length(text: str) -> str:
    """Lower case with dashes as spaces, keeping every offset (a few letters lower-case to two)."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return low.translate(_DASHES)


def _key(term: str) -> str:
    return _WS.sub(" ", _norm_same_length(term)).strip()


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split("|") if v.strip()]


@dataclass(frozen=True, slots=True)
class Term:
    #: antigen | product | car | caar | car_weak | cell | vivo | disease
    kind: str
    #: Canonical value: antigen symbol, product name, platform, disease entity.
    value: str
    exact: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    value: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Vocab:
    automaton: ahocorasick.Automaton
    product_targets: dict[str, tuple[str, ...]]
    product_platform: dict[str, str]
    disease_branch: dict[str, str]
    disease_level: dict[str, str]
    antigen_lineages: dict[str, tuple[str, ...]]

    def scan(self, text: str | None) -> list[Hit]:
        """Every vocabulary hit in a text, longest first where hits overlap."""
        if not text:
            return []
        disp = display(text)
        norm = _norm_same_length(disp)
        found: list[Hit] = []
        for end, (length, terms) in self.automaton.iter(norm):
            start = end - length + 1
            if start > 0 and norm[start] in _ALNUM and norm[start - 1] in _ALNUM:
                continue
            if end + 1 < len(norm) and norm[end] in _ALNUM and norm[end + 1] in _ALNUM:
                continue
            raw = disp[start : end + 1]
            for term in terms:
                if term.exact is not None and raw.translate(_DASHES) != term.exact.translate(_DASHES):
                    continue
                found.append(Hit(term.kind, term.value, start, end + 1, raw))
        # Longest match wins where hits of the same kind family overlap (EGFRvIII over EGFR).
        found.sort(key=lambda h: (h.start, -(h.end - h.start)))
        kept: list[Hit] = []
        for hit in found:
            if any(
                k.start <= hit.start
                and hit.end <= k.end
                and (k.end - k.start) > (hit.end - hit.start)
                and _family(k.kind) == _family(hit.kind)
                for k in kept
            ):
                continue
            kept.append(hit)
        return kept


def _family(kind: str) -> str:
    return "antigen" if kind in ("antigen", "product") else kind


class _Builder:
    def __init__(self) -> None:
        self.keys: dict[str, list[Term]] = {}

    def add(self, term: str, kind: str, value: str, *, exact: bool = False) -> None:
        key = _key(term)
        if not key or not value:
            return
        entry = Term(kind, value, display(term) if exact else None)
        bucket = self.keys.setdefault(key, [])
        if entry not in bucket:
            bucket.append(entry)

    def build(self) -> ahocorasick.Automaton:
        auto = ahocorasick.Automaton()
        for key, terms in self.keys.items():
            auto.add_word(key, (len(key), tuple(terms)))
        auto.make_automaton()
        return auto


def _terms(row: dict[str, str], *extra: str) -> tuple[list[str], list[str]]:
    exact = _split(row.get("exact_case"))
    plain = [t for t in (*extra, *_split(row.get("synonyms")), *_split(row.get("aliases"))) if t and t not in exact]
    return plain, exact


@lru_cache(maxsize=1)
def vocab() -> Vocab:
    """The compiled vocabularies, built once per process."""
    b = _Builder()
    lineages: dict[str, tuple[str, ...]] = {}
    for row in read_table("antigens.csv"):
        symbol = row["symbol"].strip()
        lineages[symbol] = tuple(_split(row.get("lineage")))
        plain, exact = _terms(row, symbol)
        if symbol in exact:
            plain = [p for p in plain if p != symbol]
        # The table lists names; every spelling of each (CD-19, IL13Ralpha2, GD 2) is the trial classifier's.
        plain = [s for p in plain for s in antigen_spellings(p)]
        exact = [s for e in exact for s in antigen_spellings(e)]
        for term in plain:
            b.add(term, "antigen", symbol)
            k = _key(term)
            # Glued spellings common in Chinese and academic reports: CD19CAR, CD19-CART, antiCD19, CARCD19.
            if " " not in k and k.isascii() and len(k) >= 3:
                for glued in (k + "car", k + "cart", "car" + k, "anti" + k):
                    b.add(glued, "antigen", symbol)
        for term in exact:
            b.add(term, "antigen", symbol, exact=True)
        cd = re.fullmatch(r"CD(\d{1,3})", symbol)
        if cd:  # Penn's and Chinese groups' CART19 / CART-19 / CAR19
            for glued in ("cart", "car t", "car"):
                b.add(glued + cd.group(1), "antigen", symbol)
            b.add("cart " + cd.group(1), "antigen", symbol)
    product_targets: dict[str, tuple[str, ...]] = {}
    product_platform: dict[str, str] = {}
    for row in read_table("products.csv"):
        name = row["name"].strip()
        product_targets[name] = tuple(_split(row.get("targets")))
        product_platform[name] = (row.get("platform") or "").strip()
        plain, _ = _terms(row, name)
        for term in plain:
            b.add(term, "product", name)
    for row in read_table("platform_terms.csv"):
        kind = row["kind"].strip()
        platform = (row.get("platform") or "").strip() or "CAR"
        exact = _split(row.get("exact_case"))
        if exact:
            for term in exact:
                b.add(term, kind, platform, exact=True)
        else:
            b.add(row["term"], kind, platform)
    for row in read_table("car_other_meanings.csv"):
        b.add(row["phrase"], "other_meaning", row["meaning"].strip())
    branch: dict[str, str] = {}
    level: dict[str, str] = {}
    for row in read_table("diseases.csv"):
        entity = row["entity"].strip()
        branch[entity] = row["branch"].strip()
        level[entity] = row["level"].strip()
        plain, exact = _terms(row)
        for term in plain:
            b.add(term, "disease", entity)
        for term in exact:
            b.add(term, "disease", entity, exact=True)
    return Vocab(b.build(), product_targets, product_platform, branch, level, lineages)


def hits_of(hits: list[Hit], *kinds: str) -> Iterator[Hit]:
    return (h for h in hits if h.kind in kinds)
