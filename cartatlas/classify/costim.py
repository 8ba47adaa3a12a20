"""The CAR's co-stimulatory domains: which signalling domains a record says its CAR carries.

Users compare CD28 and 4-1BB CARs (persistence, toxicity), and newer constructs (OX40, ICOS, CD27,
the DAP10/DAP12/2B4 adaptors of CAR-NK, inducible MyD88/CD40).  A record names them in three ways,
each a kind of row of ``knowledge/costim_domain_terms.csv``:

- a named product whose label states its domain (Kymriah 4-1BB, Yescarta CD28: ``product`` rows);
- construct shorthand that can only be a CAR domain ("4-1BB", "19-28z", "CD19-BBz": ``token`` and
  ``glued`` rows);
- a molecule that is also a T-cell marker ("CD28", "CD137", "ICOS", "CD27": ``cue`` rows), counted
  only in a title, intervention or arm name, glued to a zeta ("CD28ζ"), or with a word of CAR anatomy
  in the same sentence ("co-stimulatory", "signalling domain", "CD3 zeta": ``context`` rows), and
  never as a cell population ("CD28+ T cells", "CD27-negative") or an antibody's target ("anti-CD28").

The rule reads its own terms and never the antigen vocabulary, so the targets decided are untouched
(``antigens.csv`` lists these molecules as CAR components, never targets).  Eligibility criteria and
outcomes are not read: they name molecules measured or excluded, not the CAR given.

Generations are not derived: a trial comparing a CD28 and a 4-1BB CAR names two domains without being
third-generation, and "fourth generation" (armoured CARs) is not about co-stimulation at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cartatlas.classify.context import Context, Mention
from cartatlas.classify.knowledge import normalise_display
from cartatlas.classify.text import CONDITION, ELIGIBILITY, OUTCOME, STRONG_ROLES, WORD, sentence_bounds
from cartatlas.knowledge import read_table
from cartatlas.knowledge.labels import values

DECISION = "costim_domains"
TERMS = "costim_domain_terms.csv"
#: Roles not read: who may enrol, what is measured, what is treated.
_SKIPPED = frozenset({ELIGIBILITY, OUTCOME, CONDITION})
#: How far either side of a cue molecule a context word is looked for (within its sentence).
_REACH = 120
#: A molecule named as a cell population, a ligand or an antibody's target, not as the CAR's domain.
_NOT_A_DOMAIN_AFTER = re.compile(r"^ ?(?:\+|positive|negative|null|neg\b|pos\b|ligand|agonist|antibod|expression)")
_NOT_A_DOMAIN_BEFORE = re.compile(r"(?:anti ?|α|alpha )$")


_KINDS = ("token", "glued", "cue", "product", "context")


@dataclass(frozen=True)
class _Terms:
    #: Normalised term -> (domain, match kind).
    terms: dict[str, tuple[str, str]]
    #: Canonical product name -> its domains.
    products: dict[str, list[str]]
    pattern: re.Pattern[str]
    context: re.Pattern[str]
    #: Any term anywhere, tried once on the trial's text read before the pattern is tried segment by segment:
    #: nine records in ten name none, and the plain alternation is several times cheaper than the pattern.
    quick: re.Pattern[str]


@lru_cache(maxsize=1)
def _terms() -> _Terms:
    """The terms, compiled once per process (``knowledge/costim_domain_terms.csv``)."""
    known = set(values(DECISION))
    terms: dict[str, tuple[str, str]] = {}
    products: dict[str, list[str]] = {}
    context: list[str] = []
    for lineno, row in enumerate(read_table(TERMS), start=2):
        term, domain, kind = row["term"].strip(), row["domain"].strip(), row["match"].strip()
        if kind != "context" and domain not in known:
            raise ValueError(f"knowledge/{TERMS} line {lineno}: domain {domain!r} is not one of {sorted(known)}")
        if kind == "product":
            products.setdefault(term, []).append(domain)
        elif kind == "context":
            context.append(re.escape(normalise_display(term.lower())))
        elif kind in ("token", "glued", "cue"):
            terms[normalise_display(term.lower())] = (domain, kind)
        else:
            raise ValueError(f"knowledge/{TERMS} line {lineno}: match {kind!r} is not one of {_KINDS}")
    longest = sorted(terms, key=len, reverse=True)
    glued = "|".join(re.escape(t) for t in longest if terms[t][1] == "glued")
    whole = "|".join(re.escape(t) for t in longest if terms[t][1] != "glued")
    # A whole term stands alone; it may carry the zeta it is fused to (CD28z, 4-1BBzeta).  A glued term may
    # follow anything (19-28z, CD19.BBz) but ends its token.
    pattern = re.compile(f"(?:(?<![{WORD}])(?P<term>{whole})(?P<zeta>z|zeta|ζ)?|(?P<glued>{glued}))(?![{WORD}])")
    quick = re.compile("|".join(re.escape(t) for t in longest))
    return _Terms(terms, products, pattern, re.compile("|".join(context)), quick)


def decide(ctx: Context, relation: str, chosen: list[Mention]) -> list[str]:
    """The co-stimulatory domains of the trial's CAR products, in the vocabulary's order (empty: not stated)."""
    if relation == "none" or not chosen:
        return []
    kb = _terms()
    found: set[str] = set()
    for m in chosen:
        if m.product is None:
            continue
        for domain in kb.products.get(m.product.name, ()):
            if domain not in found:
                found.add(domain)
                ctx.add(DECISION, domain, "costim.named_product", m.hit)
    read = [seg for seg in ctx.segments if seg.role not in _SKIPPED]
    if kb.quick.search("\n".join(seg.norm for seg in read)) is None:
        read = []
    for seg in read:
        norm = seg.norm
        for match in kb.pattern.finditer(norm):
            text = match.group("term") or match.group("glued")
            domain, kind = kb.terms[text]
            if domain in found:
                continue
            start, end = match.start(), match.end()
            if kind != "glued" and (
                _NOT_A_DOMAIN_BEFORE.search(norm, max(0, start - 6), start)
                or _NOT_A_DOMAIN_AFTER.match(norm[end : end + 12])
            ):
                continue
            rule = "costim.construct"
            if kind == "cue" and match.group("zeta") is None:
                if seg.role not in STRONG_ROLES:
                    lo, hi = sentence_bounds(seg, start)
                    if kb.context.search(norm, max(lo, start - _REACH), min(hi, end + _REACH)) is None:
                        continue
                rule = "costim.named_with_cue"
            found.add(domain)
            ctx.add(DECISION, domain, rule, field=seg.field, text=seg.disp[start:end])
    return [v for v in values(DECISION) if v in found]
