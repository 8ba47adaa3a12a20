"""The screening vocabularies, compiled once into matchers.

Every vocabulary lives in a CSV under ``cartatlas/knowledge/`` with a source
note per entry; this module only turns them into one Aho-Corasick automaton
(one pass per text field finds every term of every vocabulary) plus a few
regular expressions for context.  Adding a product or a synonym is therefore a
one-line change to a CSV, never a code change.

Terms and texts are normalised the same way (lower case, dashes and
underscores as spaces, runs of white space collapsed) so that "CAR-T",
"CAR T" and "car t" are one key, and every match is then checked for word
boundaries on ASCII letters and digits (CD19 is not found in CD190, EGFR not
in EGFRvIII), while Chinese text, which has no spaces, matches anywhere.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from cartatlas.knowledge import read_table

log = logging.getLogger(__name__)

TableReader = Callable[[str], Iterable[dict[str, str]]]

_DASHES = str.maketrans(
    {c: " " for c in "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212_\t\n\r\f\v\u00a0\u2009\u200a\u3000"}
    | {"\u2019": "'", "\u2018": "'"}
)
#: For the automaton only: every ASCII mark becomes a space, so that word boundaries are spaces.
_MARKS = str.maketrans({c: " " for c in "!\"#$%&'()*+,./:;<=>?@[\\]^`{|}~"})
_WS = re.compile(r"\s+")
ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def display_text(text: str) -> str:
    """The text as shown in evidence: white space collapsed, nothing else changed."""
    return _WS.sub(" ", text).strip()


def _byte_table(table: Mapping[int, str | int], *, lower: bool) -> bytes:
    """A ``bytes.translate`` table for ASCII text, equal to (lower-casing then) ``str.translate(table)``."""
    out = bytearray(range(256))
    for i in range(128):
        c = chr(i).lower() if lower else chr(i)
        mapped = table.get(ord(c), c)
        out[i] = ord(mapped) if isinstance(mapped, str) else mapped
    return bytes(out)


# Most registry text is ASCII: for it one C-level ``bytes.translate`` does the lower-casing and the
# mapping at once, several times faster than ``str.lower`` plus ``str.translate`` with a dict.
_NORM_BYTES = _byte_table(_DASHES, lower=True)
_FORM_BYTES = _byte_table(_MARKS, lower=False)
# Text with a few non-ASCII characters (a "≥", a curly quote) takes ``str.translate``'s slow per-character
# path; one regular-expression substitution per mapped group is about six times faster and gives the same.
_DASH_RE = re.compile("[" + re.escape("".join(chr(k) for k, v in _DASHES.items() if v == " ")) + "]")
_QUOTE_RE = re.compile("[\u2018\u2019]")
_MARK_RE = re.compile("[" + re.escape("".join(chr(k) for k in _MARKS)) + "]")
assert all(v in (" ", "'") for v in _DASHES.values()) and all(v == " " for v in _MARKS.values())


def normalise_display(disp: str) -> str:
    """Matching form of a display text, with the same length so offsets map back to it."""
    if disp.isascii():
        return disp.encode("ascii").translate(_NORM_BYTES).decode("ascii")
    low = disp.lower()
    if len(low) != len(disp):  # a few characters (e.g. 'İ') lower-case to two; keep offsets aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in disp)
    low = _DASH_RE.sub(" ", low)
    return _QUOTE_RE.sub("'", low) if "\u2018" in low or "\u2019" in low else low


def match_form(norm: str) -> str:
    """What the automaton scans: the normalised text with marks as spaces, padded by one space each side."""
    if norm.isascii():
        return " " + norm.encode("ascii").translate(_FORM_BYTES).decode("ascii") + " "
    return " " + _MARK_RE.sub(" ", norm) + " "


def normalise_term(term: str) -> str:
    return _WS.sub(" ", term.lower().translate(_DASHES)).strip()


def automaton_key(term: str) -> str:
    """A term as the automaton stores it: marks as spaces, padded where its edge is a letter or digit."""
    key = normalise_term(term).translate(_MARKS).strip()
    if not key:
        return ""
    return (" " if key[0] in ASCII_ALNUM else "") + key + (" " if key[-1] in ASCII_ALNUM else "")


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split("|") if v.strip()]


@dataclass(frozen=True, slots=True)
class Entry:
    """One vocabulary term: what kind of thing it names and its canonical value."""

    kind: str
    value: str
    #: Hits of one family mask shorter hits of the same family inside them.
    family: str
    #: Spellings that must match case-sensitively (None: any case).
    exact: frozenset[str] | None
    #: The knowledge table the term comes from, for rule ids.
    table: str
    #: For glued forms such as "CD19CAR": the hit is also a CAR mention.
    car_glued: bool = False


@dataclass(frozen=True, slots=True)
class Antigen:
    symbol: str
    lineages: tuple[str, ...]
    component: bool


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    targets: tuple[str, ...]
    platform: str
    product_source: str
    developer: str
    #: Approved (marketed) products are often the standard-of-care setting of a trial, not its subject.
    approved: bool = False
    #: Where the cells come from ("patient T cells", "cord-blood NK cells", "in vivo (mRNA-LNP)", ...).
    cell_source: str = ""
    #: "cell" for a cell product; "switch" for the molecule that sets the target of a switchable or adaptor CAR.
    role: str = "cell"
    #: Spellings that also mean something else (a drug code, a gene): kept out of the matcher, for rules
    #: that want context before counting them.
    ambiguous: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Disease:
    entity: str
    branch: str
    level: str


_FAMILY = {
    "antigen": "antigen",
    "product": "car",
    "car": "car",
    "car_weak": "car",
    "caar": "car",
    "non_car": "car",
}


@dataclass
class Knowledge:
    """Compiled vocabularies; built once per process (see ``knowledge()``)."""

    automaton: Any
    antigens: dict[str, Antigen]
    cd_numbers: dict[str, str]
    products: dict[str, Product]
    diseases: dict[str, Disease]
    before_re: re.Pattern[str]
    after_re: re.Pattern[str]
    context_effects: dict[str, str]
    n_terms: int
    tables: list[str] = field(default_factory=list)
    #: Antigens that can be targets (not CAR components), for a set test per hit.
    target_symbols: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.target_symbols = frozenset(s for s, info in self.antigens.items() if not info.component)

    def is_target_symbol(self, symbol: str) -> bool:
        return symbol in self.target_symbols


class _Builder:
    def __init__(self) -> None:
        self.keys: dict[str, list[Entry]] = {}

    def add(
        self,
        term: str,
        kind: str,
        value: str,
        table: str,
        *,
        exact: bool = False,
        car_glued: bool = False,
    ) -> None:
        key = automaton_key(term)
        if not key.strip():
            return
        family = _FAMILY.get(kind, kind)
        entry = Entry(kind, value, family, frozenset({display_key(term)}) if exact else None, table, car_glued)
        bucket = self.keys.setdefault(key, [])
        for i, old in enumerate(bucket):
            if old.kind == entry.kind and old.value == entry.value and old.car_glued == entry.car_glued:
                if old.exact is None or entry.exact is None:
                    bucket[i] = Entry(kind, value, family, None, table, car_glued)
                else:
                    bucket[i] = Entry(kind, value, family, old.exact | entry.exact, table, car_glued)
                return
        bucket.append(entry)

    def automaton(self) -> Any:
        auto = ahocorasick.Automaton()
        for key, entries in self.keys.items():
            # Offsets of the term inside the padded key, to map a match back to the segment text.
            lead = 1 if key[0] == " " else 0
            trail = 1 if key[-1] == " " else 0
            auto.add_word(key, (len(key), lead, trail, tuple(entries), key.isascii()))
        auto.make_automaton()
        return auto


def display_key(term: str) -> str:
    """How an exact-case spelling is compared: dashes as spaces, white space collapsed, case kept."""
    return _WS.sub(" ", term.translate(_DASHES)).strip()


def _add_terms(
    b: _Builder, terms: Iterable[str], exact_terms: Iterable[str], kind: str, value: str, table: str
) -> None:
    for term in terms:
        b.add(term, kind, value, table)
    for term in exact_terms:
        b.add(term, kind, value, table, exact=True)


def _phrase_regex(phrases: Iterable[str]) -> str:
    ordered = sorted({normalise_term(p) for p in phrases}, key=len, reverse=True)
    return "|".join(re.escape(p) for p in ordered)


def load_knowledge(reader: TableReader = read_table) -> Knowledge:
    """Read every screening table and compile the matchers (tests pass their own reader)."""
    b = _Builder()
    antigens: dict[str, Antigen] = {}
    cd_numbers: dict[str, str] = {}
    for row in reader("antigens.csv"):
        symbol = row["symbol"].strip()
        lineages = tuple(split_list(row.get("lineage")))
        component = "component" in lineages
        antigens[symbol] = Antigen(symbol, lineages, component)
        exact = split_list(row.get("exact_case"))
        synonyms = [*split_list(row.get("synonyms"))]
        if not exact or symbol not in exact:
            synonyms.append(symbol)
        m = re.fullmatch(r"CD(\d{1,3}[a-z]?)", symbol, re.I)
        if m:
            cd_numbers[m.group(1).lower()] = symbol
            synonyms.append(f"CD {m.group(1)}")
        _add_terms(b, synonyms, exact, "antigen", symbol, "antigens")
        if component:
            continue
        # Glued spellings of Chinese and academic sponsors: antiCD19, CD19CAR, CD19-CART, CARCD19.
        for syn in synonyms:
            key = normalise_term(syn)
            if " " in key or not key.isascii() or len(key) < 3:
                continue
            b.add("anti" + key, "antigen", symbol, "antigens")
            for car in ("car", "cart", "cars"):
                b.add(key + car, "antigen", symbol, "antigens", car_glued=True)
            b.add("car" + key, "antigen", symbol, "antigens", car_glued=True)
        for syn in exact:
            b.add("anti-" + syn, "antigen", symbol, "antigens", exact=True)

    products: dict[str, Product] = {}
    for row in reader("products.csv"):
        name = row["name"].strip()
        ambiguous = tuple(split_list(row.get("ambiguous_aliases")))
        product = Product(
            name,
            tuple(split_list(row.get("targets"))),
            (row.get("platform") or "").strip(),
            (row.get("product_source") or "unknown").strip() or "unknown",
            (row.get("developer") or "").strip(),
            (row.get("status") or "").strip() == "approved",
            (row.get("cell_source") or "").strip(),
            (row.get("role") or "").strip() or "cell",
            ambiguous,
        )
        unknown = [t for t in product.targets if t not in antigens]
        if unknown:
            raise ValueError(f"knowledge/products.csv: {name} targets unknown antigens {unknown}")
        products[name] = product
        # Chinese names are matched like aliases; spellings marked ambiguous are left to context-aware rules.
        spellings = [name, *split_list(row.get("aliases")), *split_list(row.get("chinese_names"))]
        skip = {automaton_key(a) for a in ambiguous}
        _add_terms(b, [t for t in spellings if automaton_key(t) not in skip], [], "product", name, "products")

    for row in reader("platform_terms.csv"):
        exact = split_list(row.get("exact_case"))
        terms = [] if exact else [row["term"]]
        _add_terms(b, terms, exact, row["kind"].strip(), (row.get("platform") or "").strip(), "platform_terms")

    for row in reader("car_other_meanings.csv"):
        b.add(row["phrase"], row["kind"].strip(), row["meaning"].strip(), "car_other_meanings")

    for row in reader("relation_cues.csv"):
        b.add(row["term"], row["kind"].strip(), row["term"].strip(), "relation_cues")

    for row in reader("product_source_terms.csv"):
        exact = split_list(row.get("exact_case"))
        _add_terms(
            b, [] if exact else [row["term"]], exact, "source", row["product_source"].strip(), "product_source_terms"
        )

    for row in reader("strategy_terms.csv"):
        b.add(row["term"], "strategy", row["strategy"].strip(), "strategy_terms")

    for row in reader("combination_terms.csv"):
        b.add(row["term"], "combo", row["kind"].strip(), "combination_terms")

    diseases: dict[str, Disease] = {}
    for row in reader("diseases.csv"):
        entity = row["entity"].strip()
        diseases[entity] = Disease(entity, row["branch"].strip(), row["level"].strip())
        exact = split_list(row.get("exact_case"))
        terms = [t for t in split_list(row.get("synonyms")) if t not in exact]
        _add_terms(b, terms, exact, "disease", entity, "diseases")

    effects: dict[str, str] = {}
    before: list[str] = []
    after: list[str] = []
    for row in reader("car_context.csv"):
        position = row["position"].strip()
        effects[f"{position}:{normalise_term(row['phrase'])}"] = row["effect"].strip()
        (before if position == "before" else after).append(row["phrase"])
    # A history cue, then at most a few words (none of them a verb of giving), then the CAR mention.
    before_re = re.compile(r"(?<![a-z0-9])(" + _phrase_regex(before) + r")(?![a-z0-9])(?P<fill>[^,;.:!?()]{0,60})$")
    after_re = re.compile(
        r"^(?:\s*(?:cell|cells|therapy|therapies|treatment|treatments|infusion|infusions|product|products|based|"
        r"immunotherapy|t|s|/|-))*\s*(" + _phrase_regex(after) + r")(?![a-z0-9])"
    )
    kb = Knowledge(
        automaton=b.automaton(),
        antigens=antigens,
        cd_numbers=cd_numbers,
        products=products,
        diseases=diseases,
        before_re=before_re,
        after_re=after_re,
        context_effects=effects,
        n_terms=len(b.keys),
    )
    log.debug("screening knowledge: %d terms, %d antigens, %d products", kb.n_terms, len(antigens), len(products))
    return kb


@functools.lru_cache(maxsize=1)
def knowledge() -> Knowledge:
    """The packaged knowledge base, loaded on first use and kept for the process."""
    return load_knowledge()
