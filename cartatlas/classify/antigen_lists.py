"""A grammar for lists of antigens: "CD19/CD22", "CD19 & CD22", "BCMA, GPRC5D, DLL3,FcRH5", "CD19、CD22".

Registries join the antigens of one product, or of the products of one trial,
in every way a writer can: slashes, ampersands, plus signs, commas, "and",
"or", "x", Chinese enumerations (、和及), and numbered shorthand after a CAR
or a CD ("4SCAR20/22/70/PSMA/13/79b/GD2", "CD19/22").  The automaton finds
the antigens it knows one by one; this module reads the list they stand in,
so that a rule that attaches one antigen of the list to a CAR product
attaches them all, and so that an item the antigen table cannot resolve
("KLK9", a number that is no known CD) is kept as evidence rather than lost.

A list is read left to right from an antigen hit: a separator, then an item,
as long as both are there.  An item is an antigen hit of the segment, a bare
number when the list is one of CD numbers ("CD20/22/70", "4SCAR19/13"), or a
token that ``antigen_key`` resolves ("Her-2", "IL13Rα2").  A token that looks
like an antigen symbol (capitals and digits, "KLK9") but resolves to nothing
is an unresolved item; any other word ends the list.  Every list has a
bounded length (``MAX_ITEMS``), so reading one costs a bounded amount of work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cartatlas.classify.knowledge import Entry, Knowledge
from cartatlas.classify.text import Hit, Segment

#: Items read in one list at most (real records join up to 8).
MAX_ITEMS = 16
#: What joins two items: a mark (/ & + , 、) or a word (and, or, x, plus, 和, 及), with an optional "anti-"
#: or "CD" repeated before the next item ("anti-CD19 and anti-CD20", "CD19/CD22").
_SEP = re.compile(
    r"\s*(?:and/or|and|or|plus|as well as|x|×|[/&+,、和及])\s*(?:anti\s*)?",
)
#: A bare item: a CD number with an optional letter ("13", "79b", "cd 13"), or a token of letters and digits.
_NUMBER = re.compile(r"(?:cd\s?)?(?P<n>\d{1,3}[a-z]?)(?![a-z0-9])")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9.αβγδκλ]{0,14}(?:\s?(?:v?iii|alpha\s?\d|α\d))?(?![a-z0-9])")
#: A token that looks like an antigen symbol as written: a capital and a digit (KLK9, FCRL5).  Capitals alone
#: (MRD, ALL, CRS) are as often a disease or an outcome as an antigen: they end the list silently.
_SYMBOL_LIKE = re.compile(r"^(?=.*[A-Z])(?=.*\d)[A-Za-z][A-Za-z0-9.\-]{1,11}$")
_STOP = frozenset({"car", "cart", "cars", "cells", "cell", "etc", "the", "dual", "bispecific", "tandem", "and", "or"})
#: Tokens that are no antigen even when written like one: a CAR construct ("C22CAR"), a cytokine armour
#: ("IL15", "IL-7"), a chemokine or the chemokine receptor that helps the cells home ("CD30.CCR4").
_NOT_ANTIGEN = re.compile(r"car|^(?:il|ifn|tnf|tgf|ccl|cxcl|ccr|cxcr|csf|gm)\d*")

UNRESOLVED = "unresolved"


@dataclass(slots=True)
class AntigenList:
    """Antigen hits joined into one list, and the items no antigen of the table matched."""

    hits: list[Hit]
    unresolved: list[str] = field(default_factory=list)
    #: Whether the items are all CD numbers or glued numbers (a multi-specific product more often than not).
    slashed: bool = False


_SEP_CHARS = frozenset("/&+,、和及×")
_SEP_WORDS = ("and ", "or ", "x ", "plus ", "as well as ")


def continues(seg: Segment, h: Hit) -> bool:
    """Whether a separator follows an antigen hit, so that a list may start with it (string tests: most
    antigens in a record stand alone, and this is asked of every one of them)."""
    nxt = seg.norm[h.end : h.end + 12]
    if not nxt:
        return False
    if nxt[0] in _SEP_CHARS:
        return True
    rest = nxt.lstrip(" ")
    return rest[:1] in _SEP_CHARS or rest.startswith(_SEP_WORDS)


def next_item(seg: Segment, h: Hit) -> int:
    """Where the item after an antigen hit starts (after its separator), or -1 when no separator follows."""
    m = _SEP.match(seg.norm, h.end)
    return m.end() if m is not None and m.end() > h.end else -1


def _cd_number(kb: Knowledge, number: str) -> str | None:
    symbol = kb.antigen_symbol("CD" + number)
    return symbol if symbol is not None and kb.is_target_symbol(symbol) else None


def _never(seg: Segment, pos: int) -> bool:
    return False


def read_lists(
    seg: Segment, hits: list[Hit], kb: Knowledge, stop_at: Callable[[Segment, int], bool] = _never
) -> list[AntigenList]:
    """The lists of two or more items in one segment, from its antigen hits (sorted or not).

    ``stop_at(seg, pos)``: whether another vocabulary hit (a product, a disease, a CAR term) starts at ``pos``,
    which ends a list there rather than being read as an unresolved antigen.
    """
    if not hits:
        return []
    # Most antigens stand alone: a list needs a separator after an item, or items read at one place
    # ("4SCAR20/22/70" gives three antigens at the same start).
    count: dict[int, int] = {}
    for h in hits:
        count[h.start] = count.get(h.start, 0) + 1
    if not any(count[h.start] > 1 or continues(seg, h) for h in hits):
        return []
    norm, disp = seg.norm, seg.disp
    ordered = sorted(hits, key=lambda h: (h.start, -h.end))
    by_start: dict[int, list[Hit]] = {}
    for h in ordered:
        by_start.setdefault(h.start, []).append(h)
    used: set[int] = set()
    out: list[AntigenList] = []
    for first in ordered:
        if id(first) in used:
            continue
        items = [first]
        unresolved: list[str] = []
        numeric = norm[first.start : first.end].startswith("cd") or norm[first.start : first.start + 1].isdigit()
        slashed = False
        pos = max(h.end for h in by_start[first.start])
        for h in by_start[first.start]:
            used.add(id(h))
            if h is not first:
                items.append(h)
        while len(items) + len(unresolved) < MAX_ITEMS:
            sep = _SEP.match(norm, pos)
            if sep is None or sep.end() == pos:
                break
            start = sep.end()
            slashed = slashed or "/" in sep.group(0)
            nxt = by_start.get(start)
            if nxt:
                for h in nxt:
                    used.add(id(h))
                    items.append(h)
                pos = max(h.end for h in nxt)
                continue
            if numeric:
                m = _NUMBER.match(norm, start)
                if m is not None:
                    symbol = _cd_number(kb, m.group("n"))
                    if symbol is not None:
                        items.append(Hit(Entry("antigen", symbol, "antigen", None, "list"), m.start("n"), m.end(), seg))
                    else:
                        unresolved.append(disp[start : m.end()])
                    pos = m.end()
                    continue
            m = _TOKEN.match(norm, start)
            if m is None or stop_at(seg, start):
                break
            word = norm[start : m.end()]
            shown = disp[start : m.end()]
            # One letter is never an antigen here ("κ" names the kappa light chain, its Latin "k" does not).
            symbol = kb.antigen_symbol(word) if word not in _STOP and len(word) > 1 else None
            if symbol is not None and kb.is_target_symbol(symbol):
                items.append(Hit(Entry("antigen", symbol, "antigen", None, "list"), start, m.end(), seg))
            elif word not in _STOP and _SYMBOL_LIKE.match(shown) and not _NOT_ANTIGEN.search(word):
                unresolved.append(shown)
            else:
                break
            pos = m.end()
        values = {h.entry.value for h in items}
        if len(values) + len(unresolved) >= 2:
            out.append(AntigenList(items, unresolved, slashed))
    return out
