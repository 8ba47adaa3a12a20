"""Phase spellings of every registry mapped onto one ordered vocabulary.

The vocabulary (``cartatlas.model.PHASES``) follows ClinicalTrials.gov API v2
and adds PHASE0 for registries that use it.  Combined phases ("Phase 1/Phase 2",
"1-2", "PHASE1|PHASE2") become several entries, as API v2 itself lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from cartatlas.model import PHASES

_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "0": "0", "1": "1", "2": "2", "3": "3", "4": "4"}
_NA = re.compile(r"^(n/?a|not applicable|none|not specified|na)$", re.I)
_EARLY = re.compile(r"early[\s_-]*phase[\s_-]*(?:1|i)\b", re.I)
_NUMBERS = re.compile(r"(?<![a-z0-9])(iv|iii|ii|i|[0-4])(?![a-z0-9])", re.I)


@lru_cache(maxsize=4096)
def _parse_one(text: str) -> tuple[str, ...]:
    s = text.strip()
    if not s:
        return ()
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
        if value:
            for part in re.split(r"[|,;]", value):
                found.update(_parse_one(part))
    if len(found) > 1:
        found.discard("NA")
    return tuple(p for p in PHASES if p in found)
