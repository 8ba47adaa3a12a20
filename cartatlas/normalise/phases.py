"""Phase spellings of every registry mapped onto one ordered vocabulary.

The vocabulary (``cartatlas.model.PHASES``) follows ClinicalTrials.gov API v2
and adds PHASE0 for registries that use it.  Combined phases ("Phase 1/Phase 2",
"1-2", "PHASE1|PHASE2") become several entries, as API v2 itself lists them.

Spellings that are vocabulary rather than pattern (ChiCTR's "New Treatment
Measure Clinical Study", "Retrospective study", its Chinese phase names) live in
``knowledge/phase_spellings.csv``; EU CTR's multi-line blocks ("Human
pharmacology (Phase I): yes ...") are read line by line, so only the phases
answered "yes" count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from cartatlas.knowledge import read_table
from cartatlas.model import PHASES

_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "0": "0", "1": "1", "2": "2", "3": "3", "4": "4"}
_NA = re.compile(r"^(n/?a|not applicable|none|not specified|na)$", re.I)
_EARLY = re.compile(r"early[\s_-]*phase[\s_-]*(?:1|i)\b", re.I)
_NUMBERS = re.compile(r"(?<![a-z0-9])(iv|iii|ii|i|[0-4])(?![a-z0-9])", re.I)
#: One line of an EU CTR phase block: "Therapeutic exploratory (Phase II): yes".
_EU_LINE = re.compile(r"\(\s*phase\s+(iv|iii|ii|i)\s*\)\s*:\s*(yes|no)?", re.I)


def _spelling_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@lru_cache(maxsize=1)
def _spellings() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for row in read_table("phase_spellings.csv"):
        phases = tuple(p.strip() for p in (row["phases"] or "").split("|") if p.strip())
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ValueError(f"knowledge/phase_spellings.csv: {row['spelling']!r} maps to unknown phase(s) {unknown}")
        table[_spelling_key(row["spelling"])] = phases
    return table


def _eu_ctr_block(text: str) -> tuple[str, ...] | None:
    """Phases answered "yes" in an EU CTR block, or None when the text is not such a block."""
    lines = _EU_LINE.findall(text)
    if len(lines) < 2:
        return None
    return tuple(f"PHASE{_ROMAN[numeral.lower()]}" for numeral, answer in lines if answer.lower() == "yes")


@lru_cache(maxsize=4096)
def _parse_one(text: str) -> tuple[str, ...]:
    s = text.strip()
    if not s:
        return ()
    known = _spellings().get(_spelling_key(s))
    if known is not None:
        return known
    upper = s.upper().replace(" ", "_")
    if upper in PHASES:
        return (upper,)
    if _NA.match(s):
        return ("NA",)
    out: list[str] = []
    if _EARLY.search(s):
        out.append("EARLY_PHASE1")
        s = _EARLY.sub(" ", s)
    compact = re.sub(r"phase", " ", s, flags=re.I)
    for m in _NUMBERS.finditer(compact):
        out.append(f"PHASE{_ROMAN[m[1].lower()]}")
    return tuple(out)


def normalise_phases(values: Iterable[str | None]) -> list[str]:
    """Map registry phase strings to the vocabulary, ordered and de-duplicated.

    Unrecognised spellings yield nothing rather than a guess; the raw record
    keeps the original for a curator.
    """
    return list(_normalise_tuple(tuple(values)))


@lru_cache(maxsize=4096)
def _normalise_tuple(values: tuple[str | None, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        block = _eu_ctr_block(value)
        if block is not None:
            found.update(block)
            continue
        known = _spellings().get(_spelling_key(value))
        if known is not None:
            found.update(known)
            continue
        for part in re.split(r"[|,;]", value):
            found.update(_parse_one(part))
    if len(found) > 1:
        found.discard("NA")
    return tuple(p for p in PHASES if p in found)
