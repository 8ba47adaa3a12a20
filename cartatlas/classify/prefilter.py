"""Screening at parse speed where there is nothing to find (issue 16): a record with no trace of a CAR skips the rules.

About 99% of a registry's records are not CAR trials.  For them the full rules
(``engine.classify_trial``) still scan every text field with the whole
vocabulary (3,400 terms: diseases, drugs, cues, antigens, ...), try the glued
CAR spellings, the construct notation and the code-name rule, and end with
relation ``none``.  What such a record's classification holds besides
``none`` is its disease entities and branch (with their evidence), read from
the disease hits of its conditions, titles and keywords (of all its text when
those name none).  ``quick_context`` builds the rules' ``Context`` for such a
record from far less work, and says None (run the full rules) whenever
something could be found:

- one pass of the *trigger automaton* over every text field read for positive
  evidence.  Its keys are exactly the keys of the rules' automaton
  (``Knowledge.automaton``, same spelling, same padding for word boundaries,
  same match form of the text) whose entries can become a CAR mention or add
  evidence to a ``none`` (``TRIGGER_KINDS``: CAR terms, CAR-like constructs,
  products and ambiguous code names, antigens glued to "CAR", other meanings
  of "CAR", other engineered products).  So a key the full scan would find,
  this pass finds at the same place; it never needs a list of its own;
- the glued-spelling, construct, engineered-cell, "CD19/22" and "-cabtagene"
  patterns of ``text.scan``, run by the same functions: any match at all sends
  the record to the full rules (over-matching: "scar" or "CD19/CD20" in a
  leukaemia trial is a match here, and the rules then decide);
- the eligibility criteria: ``text.car_words_search``, as ``build_context``;
- the code-name rule (``codename.decide``) can only fire with a CAR developer
  among the sponsors (``Context.sponsor_developers``, asked as the rules ask)
  or a developer's code prefix in a title or intervention: the prefixes
  (``Knowledge.code_prefixes``, the list ``code_prefix_re`` is built from) are
  looked for in that text with every space and dot removed, which holds every
  match of ``code_prefix_re`` (it allows a space or dot between letters);
- the caps of ``text.scan`` (``screening:capped``): a field is fully scanned
  when it is long enough to hold ``MAX_HITS_PER_TERM`` matches of one term,
  and the full rules run when the scan would count.

Soundness: when none of these fires, the full scan finds no hit of a trigger
kind and no glued, construct, engineered, slash-list or INN match, so
``context._mentions`` is empty (its candidates are exactly those hits), the
code-name rule returns None before reading anything, ``relation._no_car``
finds no ``non_car`` or ``other_meaning`` hit and no CAR word in the
eligibility, and platform, targets, source and combinations return their
empty values for ``none``.  What remains is ``disease.decide`` with no
targets, which reads only the disease hits of the conditions, titles and
keywords, or of all fields when those have none; ``quick_context`` gives it
exactly those hits (the same automaton and ``_drop_contained`` over the same
segments, so the same hits in the same order).  The engine then runs its own
rules on that context, so the classification is built by the same code.
Case, Unicode and normalisation: every check reads the segments that
``build_segments`` makes (``normalise_display``: lower case, dashes as
spaces), with the same match form (``match_form``) and, for text that is not
ASCII, the same second pass with non-Latin characters blanked; no separate
normalisation exists to drift.  ``tests/test_prefilter.py`` checks every
sample record and random insertions of every kind of knowledge term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ahocorasick

from cartatlas.classify.context import Context
from cartatlas.classify.knowledge import Knowledge, match_form
from cartatlas.classify.text import (
    _ANCHOR_WORDS,
    _CD_SLASH,
    _LATIN_NON_ASCII,
    _NON_LATIN,
    CONDITION,
    ELIGIBILITY,
    INTERVENTION,
    KEYWORD,
    MAX_ANCHORS,
    MAX_HITS_PER_TERM,
    TITLE,
    Hit,
    Segment,
    _construct_matches,
    _drop_contained,
    _engineered_matches,
    _glued_car_matches,
    _vocabulary_hits,
    build_segments,
    car_words_search,
)
from cartatlas.model import Trial

#: Kinds of automaton entries that can become a CAR mention or add evidence to a ``none``.
TRIGGER_KINDS = frozenset({"car", "caar", "car_weak", "product", "product_ambiguous", "non_car", "other_meaning"})
#: The segments ``disease.decide`` reads first.
_DISEASE_FIRST = frozenset({CONDITION, TITLE, KEYWORD})


@dataclass(frozen=True)
class Prefilter:
    """The trigger automaton and code prefixes, derived from one ``Knowledge``."""

    kb: Knowledge
    automaton: Any
    #: Code prefixes of CAR developers, lower case, as substrings of text without spaces and dots.
    prefixes: Any
    #: Shortest span between two matches of one automaton key, per script: below this many times
    #: ``MAX_HITS_PER_TERM`` characters a field cannot hold enough matches of one term to be capped.
    ascii_period: int
    other_period: int


def _period(key: str) -> int:
    for p in range(1, len(key)):
        if key[p:] == key[: len(key) - p]:
            return p
    return max(1, len(key))


def trigger_keys(kb: Knowledge) -> list[str]:
    """The rules' automaton keys whose entries can make a CAR mention or ``none`` evidence."""
    out = []
    for key, value in kb.automaton.items():
        entries = value[3]
        if any(e.kind in TRIGGER_KINDS or (e.kind == "antigen" and e.car_glued) for e in entries):
            out.append(key)
    return out


def build_prefilter(kb: Knowledge) -> Prefilter:
    auto = ahocorasick.Automaton()
    for key in trigger_keys(kb):
        auto.add_word(key, key)
    auto.make_automaton()
    prefixes = ahocorasick.Automaton()
    for prefix, _ in kb.code_prefixes:
        p = prefix.lower()
        if p:
            prefixes.add_word(p, p)
    if len(prefixes) == 0:
        prefixes.add_word("\x00", "\x00")  # an automaton needs a word; this one never occurs in text
    prefixes.make_automaton()
    keys = list(kb.automaton.keys())
    ascii_period = min((_period(k) for k in keys if k.isascii()), default=1)
    other_period = min((_period(k) for k in keys if not k.isascii()), default=1)
    return Prefilter(kb, auto, prefixes, ascii_period, other_period)


#: Prefilters by the id of their knowledge base (which the entry keeps alive, so the id stays its own).
_BUILT: dict[int, Prefilter] = {}


def prefilter(kb: Knowledge) -> Prefilter:
    """The prefilter of ``kb``, built once per knowledge base."""
    pf = _BUILT.get(id(kb))
    if pf is None or pf.kb is not kb:
        if len(_BUILT) >= 8:  # tests build knowledge bases of their own; the packaged one is the usual
            _BUILT.clear()
        pf = _BUILT[id(kb)] = build_prefilter(kb)
    return pf


def _passes(form: str) -> list[str]:
    if form.isascii():
        return [form]
    return [form, _LATIN_NON_ASCII.sub("#", _NON_LATIN.sub(" ", form))]


def _pattern_may_match(norm: str) -> bool:
    """Whether a glued, construct, engineered, slash-list or INN pattern of ``text.scan`` matches (or may cap)."""
    if "car" in norm and next(_glued_car_matches(norm), None) is not None:
        return True
    if ("z" in norm or "ζ" in norm) and next(_construct_matches(norm), None) is not None:
        return True
    if ("t cell" in norm or "lymphocytes" in norm or "nk cell" in norm) and next(
        _engineered_matches(norm), None
    ) is not None:
        return True
    if "cd" in norm and "/" in norm and _CD_SLASH.search(norm) is not None:
        return True
    if "cabtagene" in norm:
        return True
    return len(norm) >= MAX_ANCHORS and any(norm.count(word) >= MAX_ANCHORS for word in _ANCHOR_WORDS)


def _may_cap(pf: Prefilter, seg: Segment, passes: list[str]) -> bool:
    """Whether the full scan of a field not read here could pass ``MAX_HITS_PER_TERM`` matches of one term."""
    n = len(passes[0])
    if n < MAX_HITS_PER_TERM * (pf.ascii_period if len(passes) == 1 else min(pf.ascii_period, pf.other_period)):
        return False
    return (
        _vocabulary_hits(seg, [(p, None if len(passes) == 1 else i == 1) for i, p in enumerate(passes)], pf.kb, None)
        is None
    )


def _disease_hits(seg: Segment, passes: list[str], kb: Knowledge) -> list[Hit] | None:
    """The disease hits of a segment as ``text.scan`` finds them; None when the scan would count (caps)."""
    found = _vocabulary_hits(seg, [(p, None if len(passes) == 1 else i == 1) for i, p in enumerate(passes)], kb, None)
    if found is None:
        return None
    hits, _ = found
    if len(hits) > MAX_HITS_PER_TERM:
        return None
    hits = [h for h in hits if h.entry.kind == "disease"]
    return _drop_contained(hits) if len(hits) > 1 else hits


def quick_context(trial: Trial, kb: Knowledge) -> Context | None:
    """The rules' context of a record in which nothing about CAR can be found, or None (then run the full rules).

    The context holds the record's segments and exactly the disease hits the disease rule reads; see the
    module docstring for why every other rule then decides what it decides on the full context.
    """
    pf = prefilter(kb)
    segments = build_segments(trial)
    iterate = pf.automaton.iter
    forms: list[list[str] | None] = []
    code_text: list[str] = []
    for seg in segments:
        if seg.role == ELIGIBILITY:
            if car_words_search(seg.norm) is not None:
                return None
            forms.append(None)
            continue
        seg_passes = _passes(match_form(seg.norm))
        for text in seg_passes:
            if next(iterate(text), None) is not None:
                return None
        if _pattern_may_match(seg.norm):
            return None
        if seg.role == INTERVENTION or seg.role == TITLE:
            code_text.append(seg.norm)
        forms.append(seg_passes)
    if code_text:
        squeezed = "\n".join(code_text).replace(" ", "").replace(".", "")
        if next(pf.prefixes.iter(squeezed), None) is not None:
            return None
    ctx = Context(trial, kb, segments, [], {})
    if ctx.sponsor_developers():
        return None
    hits: list[Hit] = []
    scanned: set[int] = set()
    for i, seg in enumerate(segments):
        passes = forms[i]
        if passes is not None and seg.role in _DISEASE_FIRST:
            found = _disease_hits(seg, passes, kb)
            if found is None:
                return None
            hits.extend(found)
            scanned.add(i)
    if not hits:
        for i, seg in enumerate(segments):
            passes = forms[i]
            if passes is not None and i not in scanned:
                found = _disease_hits(seg, passes, kb)
                if found is None:
                    return None
                hits.extend(found)
                scanned.add(i)
        # Keep the segments' order, as the full scan does.
        order = {id(s): k for k, s in enumerate(segments)}
        hits.sort(key=lambda h: order[id(h.seg)])
    for i, seg in enumerate(segments):
        passes = forms[i]
        if passes is not None and i not in scanned and _may_cap(pf, seg, passes):
            return None
    ctx.hits = hits
    if hits:
        ctx.by_kind = {"disease": hits}
    return ctx
