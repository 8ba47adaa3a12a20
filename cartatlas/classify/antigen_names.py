"""How antigen names are spelt: one canonical key, and every spelling that has it.

Registries write one antigen many ways: "CD19", "CD 19", "CD-19"; "GD2" and
"GD-2"; "B7-H3" and "B7H3"; "IL13Rα2", "IL-13Ra2", "IL13Ralpha2" and
"IL13R alpha 2"; "Claudin 18.2" and "claudin18.2".  The differences are always
of two kinds: a separator (space, hyphen) or none where letters meet digits or a
Greek letter, and a Greek letter written as itself, as its name or as the Latin
letter.  ``antigen_key`` removes exactly those differences, so a spelling in a
record and a name in ``knowledge/antigens.csv`` are the same antigen when their
keys are equal; the knowledge table therefore lists names (symbols, aliases), not
spellings.  The screening matcher is one Aho-Corasick automaton over the text,
which cannot normalise the text it scans without losing offsets, so it holds
every spelling of each name (``antigen_spellings``), all with the same key.

Separators between two words of letters ("EGFR vIII", "Lewis Y") and between
two numbers ("4-1BB") are kept: removing them would join words or numbers that
are not one token.
"""

from __future__ import annotations

import itertools
import re

#: Greek letters used in antigen names, with their Latin letter and name.
GREEK: dict[str, tuple[str, str]] = {
    "α": ("a", "alpha"),
    "β": ("b", "beta"),
    "γ": ("g", "gamma"),
    "δ": ("d", "delta"),
    "ε": ("e", "epsilon"),
    "ζ": ("z", "zeta"),
    "κ": ("k", "kappa"),
    "λ": ("l", "lambda"),
}
_BY_NAME = {name: letter for letter, (_, name) in GREEK.items()}
_NAMES = "|".join(sorted(_BY_NAME, key=len, reverse=True))
_GREEK_CHARS = "".join(GREEK)
#: Chunks of a name: a Greek letter or letter name (a name only where a run of letters ends, as in
#: "IL13Ralpha2" or "FR-alpha", never inside a word such as "zetakine"), a number (18.2 is one), a run of
#: letters, a separator, or any other mark.
_CHUNK = re.compile(
    rf"(?P<greek>[{_GREEK_CHARS}]|(?:{_NAMES})(?![a-z]))"
    r"|(?P<num>\d+(?:\.\d+)*)"
    rf"|(?P<alpha>(?:(?!(?:{_NAMES})(?![a-z]))[a-z])+)"
    r"|(?P<sep>[\s\-\u2010-\u2015\u2212_]+)"
    r"|(?P<mark>.)",
    re.S,
)
#: Spellings of one name stop being generated past this many (a long phrase, not a symbol).
MAX_SPELLINGS = 64


def _chunks(term: str) -> list[tuple[str, str]]:
    """(kind, original text) for each chunk; kinds are greek, num, alpha, sep, mark."""
    low = term.lower()
    out: list[tuple[str, str]] = []
    for m in _CHUNK.finditer(low):
        kind = m.lastgroup or "mark"
        out.append((kind, term[m.start() : m.end()]))
    return out


def _joinable(left: str, right: str) -> bool:
    """Whether a separator between two chunk kinds is only spelling (it may be there or not)."""
    if "greek" in (left, right):
        return left != "sep" and right != "sep"
    return {left, right} == {"alpha", "num"}


def _pieces(term: str) -> list[tuple[str, str]]:
    """Chunks with separators folded into the boundaries: (kind, text) where kind 'opt' / 'space' is a boundary."""
    chunks = _chunks(term.strip())
    out: list[tuple[str, str]] = []
    for i, (kind, text) in enumerate(chunks):
        if kind != "sep":
            if out and out[-1][0] not in ("opt", "space") and _joinable(out[-1][0], kind):
                out.append(("opt", ""))
            out.append((kind, text))
            continue
        prev = out[-1][0] if out else ""
        nxt = chunks[i + 1][0] if i + 1 < len(chunks) else ""
        if not prev or not nxt:
            continue
        out.append(("opt", " ") if _joinable(prev, nxt) else ("space", " "))
    return out


def antigen_key(spelling: str) -> str:
    """The canonical form of an antigen spelling: lower case, Greek as Latin letters, no optional separators.

    "CD-19", "CD 19" and "cd19" give "cd19"; "IL-13 Rα2", "IL13Ralpha2" and "IL13Ra2" give "il13ra2";
    "Claudin 18.2" gives "claudin18.2"; "EGFR vIII" keeps its space ("egfr viii").
    """
    parts: list[str] = []
    for kind, text in _pieces(spelling):
        if kind == "opt":
            continue
        if kind == "greek":
            low = text.lower()
            parts.append(GREEK[low][0] if low in GREEK else GREEK[_BY_NAME[low]][0])
        elif kind == "space":
            parts.append(" ")
        else:
            parts.append(text.lower())
    return "".join(parts)


def antigen_spellings(name: str) -> list[str]:
    """Every spelling of a name that has its key, the name first; case is kept (for upper-case-only names).

    Each optional separator is there or not; each Greek letter is written as itself, by its name, or (only
    where it is glued to a neighbour, as in "IL13Ra2" or "CD8a") as its Latin letter: a lone "a" is a word.
    """
    pieces = _pieces(name)
    options: list[list[tuple[str, bool]]] = []  # (text, is a Latin-letter Greek) per piece
    for kind, text in pieces:
        if kind == "opt":
            options.append([("", False), (" ", False)])
        elif kind == "greek":
            low = text.lower()
            letter = low if low in GREEK else _BY_NAME[low]
            latin, spelled = GREEK[letter]
            options.append([(text, False), (letter, False), (spelled, False), (latin, True)])
        else:
            options.append([(text, False)])
    out: list[str] = [name.strip()]
    seen = {name.strip()}
    for combo in itertools.product(*options):
        if len(out) >= MAX_SPELLINGS:
            break
        if any(
            latin and (i == 0 or combo[i - 1][0] != "") and (i == len(combo) - 1 or combo[i + 1][0] != "")
            for i, (_, latin) in enumerate(combo)
        ):
            continue  # a Latin letter standing alone is not this antigen's Greek letter
        spelling = "".join(text for text, _ in combo)
        if spelling not in seen:
            seen.add(spelling)
            out.append(spelling)
    return out
