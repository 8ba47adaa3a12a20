"""Screening where there is nothing to find (issue 16): the rules' context of a record with no trace of a CAR.

About 99% of a registry's records are not CAR trials.  For them the full rules
(``engine.classify_trial``) normalise the whole record, scan every text field
with the whole vocabulary (3,400 terms: diseases, drugs, cues, antigens, ...),
try the glued CAR spellings, the construct notation and the code-name rule, and
end with relation ``none``.  What such a record's classification holds besides
``none`` is its disease entities and branch (with their evidence), read from
the disease hits of its conditions, titles and keywords (of all its text when
those name none), and the evidence of CAR words in its eligibility criteria.
``quick_context`` builds the rules' ``Context`` for such a record from less
work, and says None (run the full rules) whenever something could be found:

- one automaton pass over every text field read for positive evidence.  Its
  keys are exactly the keys of the rules' automaton (``Knowledge.automaton``:
  same spelling, same padding for word boundaries, same match form of the
  text) whose entries can become a CAR mention or add evidence to a ``none``
  (``TRIGGER_KINDS``: CAR terms, products and ambiguous code names, antigens
  glued to "CAR", other meanings of "CAR", other engineered products), which
  carry the entry ``TRIGGER``, and those that name a disease, with their
  disease entries.  So the pass finds every trigger and every disease hit the
  full scan finds, at the same place; it has no list of its own to drift.  A
  field long enough to hold ``MAX_HITS_PER_TERM`` matches of one term
  (``_short``) is read with the rules' own automaton instead, whose count
  tells whether the full scan would cap it (``screening:capped``);
- the glued-spelling, construct, engineered-cell, "CD19/22" and "-cabtagene"
  patterns of ``text.scan``, run by the same functions: any match at all sends
  the record to the full rules (over-matching: "scar" or "CD19/CD20" in a
  leukaemia trial is a match here, and the rules then decide);
- the eligibility criteria are read as ``build_context`` reads them
  (``text.car_words_search``): CAR words there only add evidence to a ``none``
  (``relation._no_car``), which the rules then add;
- the code-name rule (``codename.decide``) decides only for a record with a CAR
  developer among its sponsors (``Context.sponsor_developers``, asked as the
  rules ask) whose titles or interventions name a code (``codename.code_names``
  itself), whose interventions name cells, or whose title holds a follow-up cue
  (``_developer_may_be_read``), or for a record with a developer's code prefix
  in a title or intervention: the prefixes (``Knowledge.code_prefixes``, the
  list ``code_prefix_re`` is built from) are looked for in that text with every
  space and dot removed, which holds every match of ``code_prefix_re`` (it
  allows a space or dot between letters), and where one occurs,
  ``code_prefix_re`` itself decides.

Soundness: when none of these fires, the full scan finds no hit of a trigger
kind and no glued, construct, engineered, slash-list or INN match, so
``context._mentions`` is empty (its candidates are exactly those hits), the
code-name rule returns None before it reads anything, ``relation._no_car``
finds no ``non_car`` or ``other_meaning`` hit (and the same eligibility text),
and platform, targets, source and combinations return their empty values for
``none``.  What remains is ``disease.decide`` with no targets, which reads only
disease hits; ``quick_context`` gives it exactly the full scan's (the same keys
and entries, ``_vocabulary_hits`` and ``_drop_contained`` over the same
segments, so the same hits in the same order).  The engine then runs its own
rules on that context (``classify_trial(trial, ctx=...)``), so the
classification is built by the same code.  Case, Unicode and normalisation:
every check reads the segments ``build_segments`` makes (``normalise_display``:
lower case, dashes as spaces), with the same match form and, for text that is
not ASCII, the same second pass with non-Latin characters blanked; the rules
apply no NFKC folding, so neither does this.  ``tests/test_prefilter.py``
checks every sample record, and random insertions of terms read from the
knowledge tables (not from this module), which fail when a pattern is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ahocorasick

from cartatlas.classify import codename
from cartatlas.classify.context import Context
from cartatlas.classify.knowledge import Entry, Knowledge, knowledge, match_form
from cartatlas.classify.text import (
    _ANCHOR_WORDS,
    _CD_SLASH,
    _LATIN_NON_ASCII,
    _NON_LATIN,
    ELIGIBILITY,
    INTERVENTION,
    MAX_ANCHORS,
    MAX_HITS_PER_TERM,
    TITLE,
    Hit,
    _construct_matches,
    _drop_contained,
    _engineered_matches,
    _glued_car_matches,
    _vocabulary_hits,
    build_segments,
    car_words_search,
)
from cartatlas.classify.types import Classification
from cartatlas.model import Trial
from cartatlas.normalise.ctgov import normalise_ctgov, screening_view

#: Kinds of automaton entries that can become a CAR mention or add evidence to a ``none``.
TRIGGER_KINDS = frozenset({"car", "caar", "car_weak", "product", "product_ambiguous", "non_car", "other_meaning"})
#: The entry a trigger key carries in the prefilter's automaton: its hit sends the record to the full rules.
TRIGGER = Entry("trigger", "", "trigger", None, "prefilter")


@dataclass(frozen=True)
class Prefilter:
    """The prefilter's automaton and the developers' code prefixes, derived from one ``Knowledge``."""

    kb: Knowledge
    #: The rules' automaton keys that are triggers or name a disease, with the rules' payload layout
    #: (length, lead, trail, entries, ASCII): entries are the key's disease entries plus ``TRIGGER``.
    automaton: Any
    #: Code prefixes of CAR developers, lower case, as substrings of text without spaces and dots.
    prefixes: Any


def is_trigger(entry: Entry) -> bool:
    """Whether a hit of this entry can make a CAR mention or ``none`` evidence."""
    return entry.kind in TRIGGER_KINDS or (entry.kind == "antigen" and entry.car_glued)


def trigger_keys(kb: Knowledge) -> list[str]:
    """The rules' automaton keys whose entries can make a CAR mention or ``none`` evidence."""
    return [key for key, value in kb.automaton.items() if any(is_trigger(e) for e in value[3])]


def build_prefilter(kb: Knowledge) -> Prefilter:
    auto = ahocorasick.Automaton()
    for key, (klen, lead, trail, entries, ascii_key) in kb.automaton.items():
        kept = tuple(e for e in entries if e.kind == "disease")
        if any(is_trigger(e) for e in entries):
            kept += (TRIGGER,)
        if kept:
            auto.add_word(key, (klen, lead, trail, kept, ascii_key))
    auto.make_automaton()
    prefixes = ahocorasick.Automaton()
    for prefix, _ in kb.code_prefixes:
        if prefix:
            prefixes.add_word(prefix.lower(), prefix)
    if len(prefixes) == 0:
        prefixes.add_word("\x00", "")  # an automaton needs a word; this one never occurs in text
    prefixes.make_automaton()
    return Prefilter(kb, _Automaton(auto), prefixes)


@dataclass(frozen=True)
class _Automaton:
    """What ``text._vocabulary_hits`` reads of a knowledge base: its automaton."""

    automaton: Any


#: Prefilters by the id of their knowledge base (the entry holds the base, so the id stays its own).
_BUILT: dict[int, Prefilter] = {}


def prefilter(kb: Knowledge) -> Prefilter:
    """The prefilter of ``kb``, built once per knowledge base."""
    pf = _BUILT.get(id(kb))
    if pf is None or pf.kb is not kb:
        if len(_BUILT) >= 8:  # tests build knowledge bases of their own; the packaged one is the usual
            _BUILT.clear()
        pf = _BUILT[id(kb)] = build_prefilter(kb)
    return pf


def _passes(norm: str) -> list[tuple[str, bool | None]]:
    """The texts ``text.scan`` gives the automaton, with the script of the keys read in each."""
    form = match_form(norm)
    if form.isascii():
        return [(form, None)]
    return [(form, False), (_LATIN_NON_ASCII.sub("#", _NON_LATIN.sub(" ", form)), True)]


def _pattern_may_match(norm: str) -> str:
    """Which glued, construct, engineered, slash-list or INN pattern of ``text.scan`` matches (or may cap), or ""."""
    if "car" in norm and next(_glued_car_matches(norm), None) is not None:
        return "glued CAR spelling"
    if ("z" in norm or "ζ" in norm) and next(_construct_matches(norm), None) is not None:
        return "CAR construct notation"
    if ("t cell" in norm or "lymphocytes" in norm or "nk cell" in norm) and next(
        _engineered_matches(norm), None
    ) is not None:
        return "engineered cells"
    if "cd" in norm and "/" in norm and _CD_SLASH.search(norm) is not None:
        return "CD antigens joined by slashes"
    if "cabtagene" in norm:
        return "-cabtagene INN stem"
    if len(norm) >= MAX_ANCHORS and any(norm.count(word) >= MAX_ANCHORS for word in _ANCHOR_WORDS):
        return "too many anchors (capped)"
    return ""


def _short(passes: list[tuple[str, bool | None]]) -> bool:
    """Whether no automaton key can match more than ``MAX_HITS_PER_TERM`` times in a field.

    Every ASCII key starts with a space (``automaton_key`` pads a key that starts with a letter or
    digit; marks are spaces in the match form), and every other key with a character beyond ASCII,
    so no key matches more often than the text has spaces or characters beyond ASCII.
    """
    limit = MAX_HITS_PER_TERM
    form = passes[0][0]
    if passes[-1][0].count(" ") > limit:
        return False
    return len(form) == len(form.encode("utf-8")) or len(form.encode("utf-8")) - len(form) <= limit


def _developer_may_be_read(ctx: Context) -> str:
    """What the code-name rule could read in a record sponsored by a CAR developer, or "" when nothing.

    With a CAR developer among the sponsors, ``codename.decide`` decides something only from a follow-up
    cue in a title, a code in an intervention name or title (``codename.code_names``, which reads only the
    segments' text and the knowledge base, so it is asked here as the rule asks it), or an intervention of
    engineered cells (``engineered_products``: none without "cell", "lymphocyte" or "ctl").
    """
    kb = ctx.kb
    for seg in ctx.segments:
        if seg.role == INTERVENTION and ("cell" in seg.norm or "lymphocyte" in seg.norm or "ctl" in seg.norm):
            return "engineered cells may be named"
        if seg.role == TITLE:
            found = _vocabulary_hits(seg, _passes(seg.norm), kb, {})
            if found is None or any(h.entry.kind == "follow_up" for h in found[0]):
                return "a title names a follow-up"
    codes = codename.code_names(ctx)
    if codes:
        return f"a code is named: {codes[0].text}"
    return ""


def quick_context(trial: Trial, kb: Knowledge) -> Context | None:
    """The rules' context of a record in which nothing about CAR can be found, or None (then run the full rules).

    The context holds the record's segments and exactly the disease hits of the full scan, in its order;
    see the module docstring for why every other rule then decides what it decides on the full context.
    """
    found = _quick(trial, kb)
    return found if isinstance(found, Context) else None


def full_rules_reason(trial: Trial, kb: Knowledge | None = None) -> str:
    """Why the prefilter sends a record to the full rules ("" when it does not): for the benchmark's hit rate."""
    found = _quick(trial, kb if kb is not None else knowledge())
    return "" if isinstance(found, Context) else found


def _quick(trial: Trial, kb: Knowledge) -> Context | str:
    pf = prefilter(kb)
    segments = build_segments(trial)
    ctx = Context(trial, kb, segments, [], {})
    # The cheap questions first: a CAR developer among the sponsors, a developer's code prefix.
    sponsors = ctx.sponsor_developers()
    if sponsors:
        reason = _developer_may_be_read(ctx)
        if reason:
            return f"sponsor is a CAR developer ({sponsors[0][2].name}) and {reason}"
    code_text = "\n".join(s.norm for s in segments if s.role == INTERVENTION or s.role == TITLE)
    # ``codename._prefix_somewhere`` itself, asked only when a prefix occurs with spaces and dots removed
    # (which every match of ``code_prefix_re`` does): its pattern, tried at every character, is slow.
    if code_text and next(pf.prefixes.iter(code_text.replace(" ", "").replace(".", "")), None) is not None:
        m = kb.code_prefix_re.search(code_text)
        if m is not None:
            return f"code prefix: {m.group(0)}"
    hits: list[Hit] = []
    for seg in segments:
        norm = seg.norm
        if seg.role == ELIGIBILITY:
            # As ``build_context``: CAR words here only add evidence to a ``none`` (``relation._no_car``).
            if not ctx.eligibility_car:
                m = car_words_search(norm)
                if m is not None:
                    ctx.eligibility_car = seg.disp[max(0, m.start() - 40) : m.end() + 40]
            continue
        pattern = _pattern_may_match(norm)
        if pattern:
            return pattern
        passes = _passes(norm)
        # A short field is read with the prefilter's automaton (its triggers and diseases only); a long one
        # with the rules' own, whose count of matches says whether the full scan would cap it.
        short = _short(passes)
        found = _vocabulary_hits(seg, passes, pf.automaton if short else kb, None)
        if found is None:
            return "more matches in a field than one term may keep (capped)"
        seg_hits = found[0]
        if seg_hits:
            for h in seg_hits:
                if h.entry is TRIGGER or (not short and is_trigger(h.entry)):
                    return f"term: {h.text}"
            if not short:
                seg_hits = [h for h in seg_hits if h.entry.kind == "disease"]
            if len(seg_hits) > 1:
                seg_hits = _drop_contained(seg_hits)
            hits.extend(seg_hits)
    ctx.hits = hits
    if hits:
        ctx.by_kind = {"disease": hits}
    return ctx


def screen_study(study: dict[str, Any], kb: Knowledge | None = None) -> Classification:
    """The classification of one API v2 study, normalised only when something about CAR may be found.

    ``normalise.ctgov.screening_view`` takes the fields the screening reads (a few µs); a record in
    which ``quick_context`` finds nothing is classified from that view, every other one from its full
    normalised trial.  The result is ``classify_trial(normalise_ctgov(study))`` in either case.
    """
    from cartatlas.classify.engine import classify_trial

    kb = kb if kb is not None else knowledge()
    view = screening_view(study)
    ctx = quick_context(view, kb)
    if ctx is not None:
        return classify_trial(view, kb, ctx=ctx)
    return classify_trial(normalise_ctgov(study), kb)
