"""One search box over the registrations: ids, titles (English and Chinese), sponsors, products, sites.

A ``SearchIndex`` reads every registration once into a few lower-cased texts
per field group, and answers a query by plain substring matching, which
works for Chinese (no word boundaries) as well as for ids and names.  Every
word of the query must match somewhere; a hit's score adds, per word, the
weight of the best group it matched (an exact id beats a title, a title beats
a site), with a bonus for matching at the start of a word.  Hits carry their
matched texts cut into marked and unmarked pieces, so a page can highlight
them while escaping everything.

The index is built from the database in one query and holds no payloads: at
100,000 registrations it takes a few seconds and some tens of MB; callers
that search often keep one per database version (the explorer does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cartatlas.store.db import Store

#: Field groups, their weights, and how a hit names them.
GROUPS: tuple[tuple[str, str, float], ...] = (
    ("ids", "Registry id", 40.0),
    ("titles", "Title", 12.0),
    ("products", "Product", 10.0),
    ("sponsors", "Sponsor", 6.0),
    ("sites", "Site", 3.0),
)
EXACT_ID_BONUS = 500.0
#: Text before a match that makes it the start of a word (a letter or digit would be mid-word).
_WORD_START = re.compile(r"[^0-9a-z]$")
SNIPPET = 90

_QUERY = """
SELECT t.registry, t.trial_id, t.nct_id, t.org_study_id,
       [s.id FOR s IN coalesce(t.secondary_ids, [])] AS secondary,
       t.brief_title, t.official_title, t.acronym, t.brief_title_local, t.official_title_local,
       t.lead_sponsor, t.lead_sponsor_local, [c.name FOR c IN coalesce(t.collaborators, [])] AS collaborators,
       [i.name FOR i IN coalesce(t.interventions, [])] AS interventions,
       flatten([coalesce(i.other_names, []) FOR i IN coalesce(t.interventions, [])]) AS other_names,
       coalesce(k.products, []) AS products,
       list_distinct(flatten([[s.facility, s.city, s.state] FOR s IN coalesce(t.sites, [])])) AS sites,
       k.relation
FROM trials t LEFT JOIN classifications k USING (registry, trial_id)
"""


@dataclass(frozen=True)
class Match:
    """A matched text of one field group, as (piece, is_match) pairs for highlighting."""

    group: str
    label: str
    pieces: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Hit:
    registry: str
    trial_id: str
    title: str
    relation: str | None
    score: float
    matches: tuple[Match, ...]


def terms_of(query: str) -> list[str]:
    """Words of a query; "quoted phrases" stay whole.  Case is ignored."""
    terms = [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', query.casefold())]
    return [t.strip() for t in terms if t.strip()]


def _texts(values: list[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, list | tuple):
            out.extend(str(x) for x in v if x)
        elif v:
            out.append(str(v))
    return list(dict.fromkeys(out))


class SearchIndex:
    """Every registration's searchable texts, grouped and lower-cased once."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.keys: list[tuple[str, str]] = []
        self.titles: list[str] = []
        self.relations: list[str | None] = []
        #: Per registration, per group: the original texts (for snippets) and their lower-cased join.
        self.texts: list[dict[str, list[str]]] = []
        self.hay: list[str] = []
        self.group_hay: list[dict[str, str]] = []
        for r in rows:
            groups = {
                "ids": _texts([r["trial_id"], r["nct_id"], r["org_study_id"], r["secondary"]]),
                "titles": _texts(
                    [
                        r["brief_title"],
                        r["official_title"],
                        r["acronym"],
                        r["brief_title_local"],
                        r["official_title_local"],
                    ]
                ),
                "products": _texts([r["products"], r["interventions"], r["other_names"]]),
                "sponsors": _texts([r["lead_sponsor"], r["lead_sponsor_local"], r["collaborators"]]),
                "sites": _texts([r["sites"]]),
            }
            lowered = {g: "\n".join(v).casefold() for g, v in groups.items()}
            self.keys.append((r["registry"], r["trial_id"]))
            self.titles.append(r["brief_title"] or r["brief_title_local"] or r["official_title"] or "")
            self.relations.append(r["relation"])
            self.texts.append(groups)
            self.group_hay.append(lowered)
            self.hay.append("\n\x00".join(lowered.values()))

    @classmethod
    def build(cls, store: Store) -> SearchIndex:
        cursor = store.cursor()
        try:
            rows = cursor.sql(_QUERY).to_arrow_table().to_pylist()
        finally:
            cursor.close()
        return cls(rows)

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, query: str, limit: int = 50) -> list[Hit]:
        """Registrations matching every word of ``query``, best first (ties: CAR trials, then id)."""
        terms = terms_of(query)
        if not terms:
            return []
        first, *rest = sorted(terms, key=len, reverse=True)  # the longest word is the most selective
        candidates = [i for i, h in enumerate(self.hay) if first in h]
        for term in rest:
            candidates = [i for i in candidates if term in self.hay[i]]
        scored = [(self._score(i, terms), i) for i in candidates]
        scored.sort(key=lambda s: (-s[0], self.relations[s[1]] not in ("therapy", "follow_up"), self.keys[s[1]]))
        return [self._hit(i, terms, score) for score, i in scored[:limit]]

    def _score(self, i: int, terms: list[str]) -> float:
        total = 0.0
        hay = self.group_hay[i]
        for term in terms:
            best = 0.0
            for group, _, weight in GROUPS:
                text = hay[group]
                at = text.find(term)
                if at < 0:
                    continue
                w = weight * (1.5 if at == 0 or _WORD_START.search(text[at - 1]) else 1.0)
                if group == "ids" and term in text.split("\n"):
                    w += EXACT_ID_BONUS
                best = max(best, w)
            total += best
        return total

    def _hit(self, i: int, terms: list[str], score: float) -> Hit:
        matches = []
        for group, label, _ in GROUPS:
            for text in self.texts[i][group]:
                pieces = highlight(text, terms)
                if any(marked for _, marked in pieces):
                    matches.append(Match(group, label, pieces))
                    break  # one text per group is enough to show why it matched
        registry, trial_id = self.keys[i]
        return Hit(registry, trial_id, self.titles[i], self.relations[i], score, tuple(matches))


def highlight(text: str, terms: list[str], width: int = SNIPPET) -> tuple[tuple[str, bool], ...]:
    """``text`` cut into (piece, matched) pairs; a long text is shortened around its first match."""
    lowered = text.casefold()
    if len(lowered) != len(text):  # casefold changed the length (ß -> ss): positions must stay the text's
        lowered = text.lower()
    spans: list[tuple[int, int]] = []
    if len(lowered) == len(text):
        for term in terms:
            start = lowered.find(term)
            while start >= 0 and term:
                spans.append((start, start + len(term)))
                start = lowered.find(term, start + len(term))
    if not spans:
        return ((text[: width * 2] + ("…" if len(text) > width * 2 else ""), False),)
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    lo = max(0, merged[0][0] - width) if len(text) > width * 2 else 0
    hi = min(len(text), lo + width * 2) if len(text) > width * 2 else len(text)
    pieces: list[tuple[str, bool]] = [("…", False)] if lo > 0 else []
    pos = lo
    for a, b in merged:
        if b <= lo or a >= hi:
            continue
        a, b = max(a, lo), min(b, hi)
        if a > pos:
            pieces.append((text[pos:a], False))
        pieces.append((text[a:b], True))
        pos = b
    if pos < hi:
        pieces.append((text[pos:hi], False))
    if hi < len(text):
        pieces.append(("…", False))
    return tuple(pieces)
