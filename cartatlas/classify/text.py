"""Reading a trial's text: which fields, in which role, and every vocabulary hit in them.

A curator weighs a CAR mention in an intervention name differently from one in
the eligibility criteria, so each piece of text becomes a ``Segment`` tagged
with its role, and each vocabulary match a ``Hit`` that knows its segment.
Eligibility text is never scanned for positive evidence: it only says who may
enrol (often "no prior CAR-T"), not what is given.

The work per field stays linear in its length, whatever the text: hits of one
term beyond ``MAX_HITS_PER_TERM`` in one field are not kept (no real record
comes near; a field of "CAR-T" repeated a million times would otherwise hold
a million mentions), every match has a bounded length, and the rules find the
hits near a position through ``Near`` and the sentence around it through
``sentence_bounds``, never by walking the whole field again.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

from cartatlas.classify.knowledge import Entry, Knowledge, display_key, match_form, normalise_display
from cartatlas.model import Trial

#: Segment roles, strongest evidence first.
TITLE, INTERVENTION, INTERVENTION_DESC, ARM, ARM_DESC = "title", "intervention", "intervention_desc", "arm", "arm_desc"
SUMMARY, DESCRIPTION, CONDITION, KEYWORD, OUTCOME, ELIGIBILITY = (
    "summary",
    "description",
    "condition",
    "keyword",
    "outcome",
    "eligibility",
)
STRONG_ROLES = frozenset({TITLE, INTERVENTION, ARM})
PRODUCT_ROLES = frozenset({TITLE, INTERVENTION, INTERVENTION_DESC, ARM, ARM_DESC})
PROSE_ROLES = frozenset({SUMMARY, DESCRIPTION, INTERVENTION_DESC, ARM_DESC, OUTCOME})

_ELIGIBILITY_HEAD = re.compile(
    r"(?:inclusion criteria|exclusion criteria|eligibility criteria|key inclusion|key exclusion|"
    r"入选标准|纳入标准|排除标准)"
)
#: Latin letters beyond ASCII (é, ü, ñ, ...): word characters like a-z, so that no term is found inside a word
#: such as "écart".  Greek letters, Han characters and marks are not word characters.
LATIN_EXTRA = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
#: What a token is made of; every regex below matches whole tokens by looking around with it.
WORD = "a-z0-9" + LATIN_EXTRA
_NON_LATIN = re.compile(f"[^\\x00-\\x7f{LATIN_EXTRA}]")
_LATIN_NON_ASCII = re.compile(f"[{LATIN_EXTRA}]")
_CLAUSE_END = re.compile(r"[.;:!?\n。；：！？]")
_CLAUSE_MARK = re.compile(r"[.;:!?\n。；：,(]")
#: Eligibility is not scanned; this cheap check only reports that CAR words are there.
CAR_WORDS = re.compile(
    f"chimeric antigen|(?<![{WORD}])car[ -]?(?:t|nk)(?![{WORD}])|(?<![{WORD}])cart(?![a-z{LATIN_EXTRA}])|嵌合抗原"
)


def car_words_search(text: str) -> re.Match[str] | None:
    """``CAR_WORDS.search(text)``, tried only where one of its words can start.

    Eligibility criteria are long and are only checked for CAR words: trying the pattern at every
    character was a tenth of the screening time of a registry's records.  Every match of ``CAR_WORDS``
    starts with "chimeric antigen", "car" or "嵌合抗原"; ``str.find`` finds those places, and the pattern,
    matched there, sees the same text around them (look-behinds included), so the first match is the same.
    """
    starts: list[int] = []
    for word in ("chimeric antigen", "嵌合抗原"):
        i = text.find(word)
        if i >= 0:
            starts.append(i)
    i = text.find("car")
    while i >= 0 and (not starts or i < min(starts)):
        m = CAR_WORDS.match(text, i)
        if m is not None:
            return m
        i = text.find("car", i + 1)
    if not starts:
        return None
    return CAR_WORDS.match(text, min(starts))


#: Occurrences of one vocabulary term read per field (the first ones, in text order).  No real record
#: comes near: in the 7,206 sample records the most repeated term of one field ("lymphoma" in a list of
#: conditions) occurs 63 times.  Past this, more of the same says nothing new, and a field of one phrase
#: repeated a million times costs one pass of the automaton instead of a million hits and mentions.
MAX_HITS_PER_TERM = 500
#: Anchors (a "car", a "cd", a "z") at which one glued-spelling pattern is tried per field (the samples'
#: most: 35 of "car" in one field).
MAX_ANCHORS = 5000


@dataclass(slots=True)
class Segment:
    field: str
    role: str
    #: Intervention or arm index (for "same intervention" reasoning); -1 elsewhere.
    group: int
    disp: str
    norm: str
    #: Hits dropped by ``MAX_HITS_PER_TERM`` when the segment was scanned.
    capped: int = 0
    #: Starts and ends of the sentence marks of ``norm``, found once when first needed.
    marks: tuple[list[int], list[int]] | None = None


@dataclass(slots=True)
class Hit:
    entry: Entry
    start: int
    end: int
    seg: Segment

    @property
    def text(self) -> str:
        return self.seg.disp[self.start : self.end]

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def value(self) -> str:
        return self.entry.value


def _segment(out: list[Segment], field: str, role: str, group: int, text: Any) -> None:
    if not text or not isinstance(text, str):
        return
    disp = text.strip()
    if not disp:
        return
    if role == ELIGIBILITY:
        out.append(Segment(field, role, group, disp, disp.lower()))
        return
    norm = normalise_display(disp)
    if role in (SUMMARY, DESCRIPTION):
        # Every heading contains one of these words: most summaries skip the regex altogether.
        m = _ELIGIBILITY_HEAD.search(norm) if "criteria" in norm or "clusion" in norm or "标准" in norm else None
        if m is not None:
            if m.start() > 0:
                out.append(Segment(field, role, group, disp[: m.start()], norm[: m.start()]))
            out.append(Segment(field, ELIGIBILITY, group, disp[m.start() :], norm[m.start() :]))
            return
    out.append(Segment(field, role, group, disp, norm))


def build_segments(trial: Trial) -> list[Segment]:
    """Every text of the trial in its role; tolerant of missing or malformed fields."""
    out: list[Segment] = []
    record = cast(dict[str, Any], trial)
    get = record.get
    _segment(out, "brief_title", TITLE, -1, get("brief_title"))
    _segment(out, "official_title", TITLE, -1, get("official_title"))
    _segment(out, "acronym", TITLE, -1, get("acronym"))
    # Bilingual registries (ChiCTR) keep the local-language text beside the English: read both.
    _segment(out, "brief_title_local", TITLE, -1, get("brief_title_local"))
    _segment(out, "official_title_local", TITLE, -1, get("official_title_local"))
    for i, iv in enumerate(get("interventions") or []):
        if not isinstance(iv, dict):
            continue
        _segment(out, f"interventions[{i}].name", INTERVENTION, i, iv.get("name"))
        for j, other in enumerate(iv.get("other_names") or []):
            _segment(out, f"interventions[{i}].other_names[{j}]", INTERVENTION, i, other)
        _segment(out, f"interventions[{i}].description", INTERVENTION_DESC, i, iv.get("description"))
    for i, arm in enumerate(get("arm_groups") or []):
        if not isinstance(arm, dict):
            continue
        _segment(out, f"arm_groups[{i}].label", ARM, i, arm.get("label"))
        _segment(out, f"arm_groups[{i}].description", ARM_DESC, i, arm.get("description"))
    _segment(out, "brief_summary", SUMMARY, -1, get("brief_summary"))
    _segment(out, "detailed_description", DESCRIPTION, -1, get("detailed_description"))
    _segment(out, "brief_summary_local", SUMMARY, -1, get("brief_summary_local"))
    _segment(out, "detailed_description_local", DESCRIPTION, -1, get("detailed_description_local"))
    conditions = [c for c in (get("conditions") or []) if isinstance(c, str)]
    _segment(out, "conditions", CONDITION, -1, " | ".join(conditions))
    local_conditions = [c for c in (get("conditions_local") or []) if isinstance(c, str)]
    _segment(out, "conditions_local", CONDITION, -1, " | ".join(local_conditions))
    keywords = [k for k in (get("keywords") or []) if isinstance(k, str)]
    _segment(out, "keywords", KEYWORD, -1, " | ".join(keywords))
    outcomes = [o for o in (get("primary_outcomes") or []) if isinstance(o, str)]
    _segment(out, "primary_outcomes", OUTCOME, -1, " | ".join(outcomes))
    _segment(out, "eligibility_criteria", ELIGIBILITY, -1, get("eligibility_criteria"))
    _segment(out, "eligibility_criteria_local", ELIGIBILITY, -1, get("eligibility_criteria_local"))
    return out


# Glued spellings that no fixed vocabulary can list: CART19, CAR-T19, UCART123, 4SCAR19/22, CAR-20/19-T, eCAR, cCAR.
# The T of a CAR-T may also follow the antigen numbers (CAR-20/19-T: CD20 and CD19 on T cells), and the numbers
# may be joined by dots (DuoCAR20.19.22: CD20, CD19 and CD22; a dot before a single digit is a version, CART19.1).
# The match is one whole token: a short prefix, CAR, an optional T, an optional antigen number and, only after
# that number, a version letter (CART19A, CAR22v2).  Letters right after CAR or CAR-T continue another word
# (ECMOCARD, Medicare, EuCARE, trocars), so the token is not a CAR.
_GLUED_CAR = re.compile(
    f"(?<![{WORD}])(?P<prefix>[a-z0-9]{{0,5}}?)car(?P<t> ?t)?(?P<sep> ?)(?P<n>\\d{{1,3}})?"
    f"(?P<more>(?:/\\d{{1,3}}|\\.\\d{{2,3}}){{0,12}})"
    f"(?:(?<=\\d)[a-z]\\d{{0,2}})?(?:(?<=\\d)(?P<t2> t))?(?![{WORD}])"
    r"(?! ?(?:days?|d(?!\d)|weeks?|wks?|months?|hours?|h|mg|ml|kg|x|%|patients|subjects|years?|cases)(?![a-z]))"
)
_NOT_CAR_WORDS = frozenset({"scar", "oscar", "vicar", "nascar", "escar", "sidecar", "minicar", "autocar"})
# CAR construct notation: 19-28z, 4H11-28z, iCasp9M28z, BBζ, CD28-zeta; a version tail that starts with a digit
# belongs to the token (1928z1XX, M28z1XXPD1DNR).
_CONSTRUCT = re.compile(
    f"(?<![{WORD}])[a-z0-9]{{0,8}}?(?:28|bb|41bb|4 1bb|137) ?(?:z|ζ|zeta)(?:\\d[a-z0-9]{{0,10}})?(?![{WORD}])"
)
# Older records describe CAR-T cells without the word CAR: "T cells genetically targeted to CD19".
_ENGINEERED = re.compile(
    f"(?<![{WORD}])(?:"
    r"(?:genetically|gene) ?(?:modified|engineered|targeted|redirected|transduced|manipulated) "
    f"(?:autologous |allogeneic |human )?(?:t|nk|γδ ?t)(?: ?cells?| lymphocytes|cells)(?![{WORD}])|"
    r"(?:t|nk) ?(?:cells?|lymphocytes) "
    r"(?:genetically )?(?:targeted|redirected|engineered|modified) to (?:target|the|recogni[sz]e|express)|"
    r"(?:targeted|redirected) "
    f"(?:autologous )?t ?cells(?![{WORD}]))"
)

# CD19/22, CD19/20/22: the numbers after a slash are CD antigens too.  Every match has a bounded length
# (here at most 12 joined antigens; real records join up to 4), so that the rules' "near" is bounded.
_CD_SLASH = re.compile(r"(?<![a-z0-9])cd ?\d{1,3}[a-z]?(?P<more>(?:/(?:cd)? ?\d{1,3}[a-z]?){1,12})(?![0-9])")
# An INN with the CAR stem -cabtagene that the product table does not list yet.
_CABTAGENE = re.compile(r"(?<![a-z])([a-z]{1,40}cabtagene)(?: [a-z]{1,40}leucel)?(?![a-z])")

GLUED_CAR = Entry("car", "", "car", None, "glued")
GLUED_CART = Entry("car", "CAR-T", "car", None, "glued")
INN_CAR = Entry("car", "CAR-T", "car", None, "inn_stem")
CONSTRUCT_CAR = Entry("car", "", "car", None, "construct")
ENGINEERED = Entry("engineered", "", "car", None, "engineered_cells")


def _antigen_entry(kb: Knowledge, number: str) -> Entry | None:
    symbol = kb.antigen_symbol("CD" + (number.lstrip("0") or "0"))
    if symbol is None or not kb.is_target_symbol(symbol):
        return None
    return Entry("antigen", symbol, "antigen", None, "glued")


def _occurrences(text: str, word: str) -> list[int]:
    """The first ``MAX_ANCHORS`` indexes where ``word`` starts in ``text`` (overlapping), by C-level ``str.find``."""
    out: list[int] = []
    find = text.find
    i = find(word)
    if len(text) < MAX_ANCHORS:  # too short to hold more: no count to keep
        while i >= 0:
            out.append(i)
            i = find(word, i + 1)
        return out
    left = MAX_ANCHORS
    while i >= 0 and left:
        out.append(i)
        left -= 1
        i = find(word, i + 1)
    return out


def _matches_from(pattern: re.Pattern[str], text: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, trying only the given start positions (ascending).

    Equivalent to ``finditer`` whenever every match of ``pattern`` starts at one of
    ``starts``: ``match`` at a position sees the text before it (look-behinds) just
    as the search does, and matches never overlap.  The regexes below would
    otherwise be tried at every character of every segment, which was a third of
    the scanning time; their anchors (the literal "car", a "z" after a signalling
    domain, "cd", "cell") are found with ``str.find``.  Lazy, so that a field of
    a million anchors never holds a million match objects.
    """
    pos = 0
    match = pattern.match
    for p in starts:
        if p < pos:
            continue
        m = match(text, p)
        if m is not None:
            yield m
            pos = m.end()


def _window_starts(anchors: list[int], back: int, ahead: int = 0) -> list[int]:
    """Sorted distinct positions from ``a - back`` to ``a + ahead`` around each anchor (never below 0)."""
    if len(anchors) == 1:
        a = anchors[0]
        return list(range(max(0, a - back), a + ahead + 1))
    starts: set[int] = set()
    for a in anchors:
        starts.update(range(max(0, a - back), a + ahead + 1))
    return sorted(starts)


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _glued_car_matches(norm: str) -> Iterator[re.Match[str]]:
    # A match starts where a run of ASCII letters and digits starts (the look-behind), at most 5
    # characters before a "car": so each "car" has one candidate start, the start of its run.
    starts: list[int] = []
    for i in _occurrences(norm, "car"):
        q = i
        while q > 0 and i - q <= 5 and norm[q - 1] in _ALNUM:
            q -= 1
        if i - q <= 5 and (not starts or starts[-1] != q):
            starts.append(q)
    return _matches_from(_GLUED_CAR, norm, starts)


def _construct_matches(norm: str) -> Iterator[re.Match[str]]:
    # A match ends its signalling domain (28, bb, 41bb, 4 1bb, 137: last character 8, b or 7) right before
    # "z", "ζ" or "zeta", at most one space between; it starts at most 8 + 5 characters before that end.
    ends: list[int] = []
    for z in (*_occurrences(norm, "z"), *_occurrences(norm, "ζ")):
        if z >= 1 and norm[z - 1] in "8b7":
            ends.append(z - 1)
        elif z >= 2 and norm[z - 1] == " " and norm[z - 2] in "8b7":
            ends.append(z - 2)
    if not ends:
        return iter(())
    ends.sort()
    return _matches_from(_CONSTRUCT, norm, _window_starts(ends, 8 + 4))


def _engineered_matches(norm: str) -> Iterator[re.Match[str]]:
    # The first branch starts with "gene", the third with "targeted" or "redirected".  The second
    # starts with "t" or "nk" at most 35 characters ("nk lymphocytes genetically engineer") before
    # its "ed to ", the rarest literal it contains.
    starts = set(_occurrences(norm, "gene"))
    starts.update(_occurrences(norm, "targeted"))
    starts.update(_occurrences(norm, "redirected"))
    for e in _occurrences(norm, "ed to "):
        starts.update(p for p in range(max(0, e - 36), e) if norm[p] in "tn")
    return _matches_from(_ENGINEERED, norm, sorted(starts))


def scan(seg: Segment, kb: Knowledge) -> list[Hit]:
    """All vocabulary hits in one segment, word-bounded; shorter hits inside longer ones of a family are dropped.

    At most ``MAX_HITS_PER_TERM`` occurrences of one term (an automaton key, a
    glued-spelling pattern) are read, and the glued patterns are tried at the
    first ``MAX_ANCHORS`` anchors; ``seg.capped`` counts what was passed over.
    """
    norm = seg.norm
    limit = MAX_HITS_PER_TERM
    # The match form is padded by one space: a key ending at index ``end`` spans the segment
    # text from ``end - klen + lead`` to ``end - trail`` (exclusive), shifted back by the pad.
    form = match_form(norm)
    # Chinese has no spaces: ASCII terms next to Chinese characters are found in a second pass where every
    # character that is neither ASCII nor a Latin letter is blanked (a token boundary, as a space is), and
    # only non-ASCII terms in the first.  Latin letters such as "é" stay word characters there ("#", which no
    # term contains), so "écart" holds no CART.
    passes: list[tuple[str, bool | None]] = (
        [(form, None)]
        if form.isascii()
        else [(form, False), (_LATIN_NON_ASCII.sub("#", _NON_LATIN.sub(" ", form)), True)]
    )
    # Counting occurrences per term costs a little on every match: only a segment with more matches
    # than one term may keep is scanned again, counting.
    found = _vocabulary_hits(seg, passes, kb, None)
    if found is None:
        found = _vocabulary_hits(seg, passes, kb, {})
        assert found is not None
    hits, passed = found
    append = hits.append
    glued = 0
    if "car" in norm:
        for m in _glued_car_matches(norm):
            if glued >= limit:
                passed += 1
                break
            prefix, number = m.group("prefix"), m.group("n")
            if prefix:
                if prefix + "car" in _NOT_CAR_WORDS or (prefix.isdigit() and prefix != "4"):
                    continue
            elif number is None or (not m.group("t") and not m.group("t2") and m.group("sep")):
                continue
            numbers = [number, *[x for x in re.split(r"[/.]", m.group("more")) if x]] if number else []
            num_end = m.start("t2") if m.group("t2") else m.end()
            glued += 1
            cart = m.group("t") or m.group("t2") or (prefix == "u" and not norm.startswith(" nk", m.end()))
            # A trailing T (CAR-20/19-T) makes the token a CAR-T; the mention itself ends with the numbers.
            append(Hit(GLUED_CART if cart else GLUED_CAR, m.start(), num_end, seg))
            for x in numbers:
                entry = _antigen_entry(kb, x)
                if entry is not None:
                    append(Hit(entry, m.start("n"), num_end, seg))
            if prefix in ("u", "uni"):
                append(Hit(Entry("source", "allogeneic", "source", None, "glued"), m.start(), num_end, seg))
    if "z" in norm or "ζ" in norm:
        for i, m in enumerate(_construct_matches(norm)):
            if i >= limit:
                passed += 1
                break
            append(Hit(CONSTRUCT_CAR, m.start(), m.end(), seg))
    if "t cell" in norm or "lymphocytes" in norm or "nk cell" in norm:
        for i, m in enumerate(_engineered_matches(norm)):
            if i >= limit:
                passed += 1
                break
            append(Hit(ENGINEERED, m.start(), m.end(), seg))
    if "cd" in norm and "/" in norm:
        for i, m in enumerate(_matches_from(_CD_SLASH, norm, _occurrences(norm, "cd"))):
            if i >= limit:
                passed += 1
                break
            for x in m.group("more").split("/"):
                x = x.replace("cd", "").strip()
                entry = _antigen_entry(kb, x) if x else None
                if entry is not None:
                    append(Hit(entry, m.start("more"), m.end(), seg))
    if "cabtagene" in norm:
        for i, m in enumerate(_CABTAGENE.finditer(norm)):
            if i >= limit:
                passed += 1
                break
            append(Hit(INN_CAR, m.start(), m.end(), seg))
    if len(norm) >= MAX_ANCHORS and any(norm.count(word) >= MAX_ANCHORS for word in _ANCHOR_WORDS):
        passed += 1  # a glued pattern was not tried past its first MAX_ANCHORS anchors
    if len(hits) > 1:
        hits = _drop_contained(hits)
    if len(hits) > limit:
        hits = _cap(hits, seg)
    seg.capped += passed
    return hits


#: The literals ``_occurrences`` looks for in ``scan``'s glued patterns.
_ANCHOR_WORDS = ("car", "z", "ζ", "cd", "gene", "targeted", "redirected", "ed to ")


def _vocabulary_hits(
    seg: Segment, passes: list[tuple[str, bool | None]], kb: Knowledge, read: dict[int, int] | None
) -> tuple[list[Hit], int] | None:
    """The automaton's hits in a segment, and how many occurrences were passed over.

    With ``read`` (occurrences read per automaton key), at most ``MAX_HITS_PER_TERM`` per key;
    without, None when a pass over the segment has more matches than that in all.
    """
    hits: list[Hit] = []
    append = hits.append
    limit = MAX_HITS_PER_TERM
    passed = [0]
    shown_as: dict[str, str] = {}
    iterate = kb.automaton.iter
    disp = seg.disp
    for text, ascii_pass in passes:
        matches = iterate(text)
        # Uncounted, a pass reads at most ``limit`` matches (islice: no Python work per match for it)
        # and gives up when there are more: only then can a term pass the limit.
        chosen = islice(matches, limit) if read is None else _counted(matches, ascii_pass, read, passed)
        for end, key in chosen:
            klen, lead, trail, entries, ascii_key = key
            if ascii_pass is not None and ascii_key != ascii_pass:
                continue
            start = end - klen + lead
            stop = end - trail
            shown: str | None = None
            for entry in entries:
                if entry.exact is not None:
                    if shown is None:
                        raw = disp[start:stop]
                        shown = shown_as.get(raw)
                        if shown is None:
                            shown = shown_as[raw] = display_key(raw)
                    if shown not in entry.exact:
                        continue
                append(Hit(entry, start, stop, seg))
        if read is None and next(matches, None) is not None:
            return None
    return hits, passed[0]


def _counted(
    matches: Iterator[tuple[int, Any]], ascii_pass: bool | None, read: dict[int, int], passed: list[int]
) -> Iterator[tuple[int, Any]]:
    """The matches of keys read fewer than ``MAX_HITS_PER_TERM`` times (of this pass's script), counting."""
    limit = MAX_HITS_PER_TERM
    for match in matches:
        key = match[1]
        if ascii_pass is not None and key[4] != ascii_pass:
            continue
        n = read.get(id(key), 0)
        if n >= limit:
            passed[0] += 1
            continue
        read[id(key)] = n + 1
        yield match


def _cap(hits: list[Hit], seg: Segment) -> list[Hit]:
    """The first ``MAX_HITS_PER_TERM`` hits of each term, in their order; the rest counted on the segment."""
    seen: dict[tuple[str, str, str], int] = {}
    kept: list[Hit] = []
    for h in hits:
        e = h.entry
        key = (e.kind, e.value, e.table)
        n = seen.get(key, 0)
        if n < MAX_HITS_PER_TERM:
            kept.append(h)
        seen[key] = n + 1
    seg.capped += len(hits) - len(kept)
    return kept


_BY_START = operator.attrgetter("start")
_BY_END = operator.attrgetter("end")


def _drop_contained(hits: list[Hit]) -> list[Hit]:
    # Start ascending, then end descending, ties in scanning order: two stable sorts with C-level keys
    # give the same order as one sort keyed by (start, start - end), without a Python call per hit.
    hits.sort(key=_BY_END, reverse=True)
    hits.sort(key=_BY_START)
    reach: dict[str, tuple[int, int]] = {}
    kept: list[Hit] = []
    for h in hits:
        fam = h.entry.family
        best = reach.get(fam)
        if best is not None and h.end <= best[1] and (best[0], best[1]) != (h.start, h.end):
            continue
        kept.append(h)
        if best is None or h.end > best[1]:
            reach[fam] = (h.start, h.end)
    return kept


def clause_before(seg: Segment, pos: int, width: int = 90) -> str:
    """The text before ``pos`` back to the start of its clause (at most ``width`` characters)."""
    lo = max(0, pos - width)
    window = seg.norm[lo:pos]
    # The last clause mark is the first one in the reversed window (one regex call, not 13 ``rfind``).
    m = _CLAUSE_MARK.search(window[::-1])
    return window[len(window) - m.start() :] if m is not None else window


def clause_after(seg: Segment, pos: int, width: int = 60) -> str:
    window = seg.norm[pos : pos + width]
    m = _CLAUSE_END.search(window)
    return window[: m.start()] if m else window


_SENTENCE_MARK = re.compile(r"\. |\n|。|; ")
#: How far ``sentence_bounds`` looks for the nearest marks before it falls back to the segment's mark list.
_SENTENCE_REACH = 2000


def sentence_bounds(seg: Segment, pos: int) -> tuple[int, int]:
    """The sentence around ``pos`` (short segments such as titles are one sentence).

    From the last sentence mark ending at or before ``pos`` to the first one
    starting at or after it.  Prose has a mark every few hundred characters,
    found by looking at most ``_SENTENCE_REACH`` characters each way; past
    that (a long text without a single mark), the segment's marks are listed
    once and bisected, so that no call walks the whole text.
    """
    if seg.role not in PROSE_ROLES:
        return 0, len(seg.norm)
    norm = seg.norm
    floor = max(0, pos - _SENTENCE_REACH)
    lo = max(
        norm.rfind(". ", floor, pos),
        norm.rfind("\n", floor, pos),
        norm.rfind("。", floor, pos),
        norm.rfind("; ", floor, pos),
    )
    m = _SENTENCE_MARK.search(norm, pos, pos + _SENTENCE_REACH)
    if (lo < 0 and floor > 0) or (m is None and pos + _SENTENCE_REACH < len(norm)):
        return _sentence_from_marks(seg, pos)
    return (lo + 1 if lo >= 0 else 0), (m.start() if m is not None else len(norm))


def _sentence_from_marks(seg: Segment, pos: int) -> tuple[int, int]:
    """``sentence_bounds`` by bisection over the segment's marks (which never overlap: starts and ends sorted)."""
    marks = seg.marks
    if marks is None:
        found = [(m.start(), m.end()) for m in _SENTENCE_MARK.finditer(seg.norm)]
        marks = seg.marks = ([a for a, _ in found], [b for _, b in found])
    starts, ends = marks
    k = bisect.bisect_right(ends, pos) - 1
    lo = starts[k] + 1 if k >= 0 else 0
    j = bisect.bisect_left(starts, pos)
    return lo, starts[j] if j < len(starts) else len(seg.norm)


class Near:
    """Hits grouped by segment: which of them lie near a position, found by bisection in large groups.

    The rules pair hits (an antigen with the CAR mention it is attached to, a
    cell word with the CAR of its sentence); comparing each with every other
    hit of its field made a field of many repeated phrases cost the square of
    its length.  A record's usual handful of hits per field is simply looked
    through; a group of more than ``_SMALL`` is sorted once and bisected.
    """

    __slots__ = ("_changes", "_few", "_groups", "_sorted")

    def __init__(self, hits: list[Hit]) -> None:
        #: A record's usual few hits are not grouped at all: a query looks through them.
        self._few = hits if len(hits) <= _SMALL else None
        groups: dict[int, list[Hit]] = {}
        if self._few is None:
            for h in hits:
                group = groups.get(id(h.seg))
                if group is None:
                    groups[id(h.seg)] = [h]
                else:
                    group.append(h)
        self._groups = groups
        #: Large groups, sorted by start: (starts, hits, longest span).
        self._sorted: dict[int, tuple[list[int], list[Hit], int]] = {}
        #: Per segment, for each hit, the index of the next hit with another value (``two_values``).
        self._changes: dict[int, list[int]] = {}

    def _group(self, seg: Segment) -> list[Hit] | None:
        few = self._few
        if few is not None:
            return [h for h in few if h.seg is seg] or None
        return self._groups.get(id(seg))

    def _sorted_group(self, seg: Segment) -> tuple[list[int], list[Hit], int]:
        key = id(seg)
        found = self._sorted.get(key)
        if found is None:
            group = sorted(self._group(seg) or (), key=_BY_START)
            longest = max(h.end - h.start for h in group)
            found = self._sorted[key] = ([h.start for h in group], group, longest)
        return found

    def __contains__(self, seg: Segment) -> bool:
        few = self._few
        if few is not None:
            return any(h.seg is seg for h in few)
        return id(seg) in self._groups

    def between(self, seg: Segment, lo: int, hi: int) -> list[Hit]:
        """Hits of ``seg`` that start from ``lo`` up to ``hi`` (inclusive), in no particular order."""
        group = self._group(seg)
        if group is None:
            return []
        if len(group) <= _SMALL:
            return [h for h in group if lo <= h.start <= hi]
        starts, hits, _ = self._sorted_group(seg)
        return hits[bisect.bisect_left(starts, lo) : bisect.bisect_right(starts, hi)]

    def around(self, x: Hit) -> list[Hit]:
        """Every hit of ``x``'s segment that ``adjacent`` can pair with ``x`` (either way round), and a few more."""
        group = self._group(x.seg)
        if group is None or len(group) <= _SMALL:
            return group or []
        starts, hits, longest = self._sorted_group(x.seg)
        # adjacent() pairs spans at most 48 characters apart, or one inside the other.
        lo = x.start - _ADJACENT_GAP - max(longest, x.end - x.start)
        return hits[bisect.bisect_left(starts, lo) : bisect.bisect_right(starts, x.end + _ADJACENT_GAP)]

    def two_values(self, seg: Segment, lo: int, hi: int) -> bool:
        """Whether hits of ``seg`` starting from ``lo`` to ``hi`` (inclusive) name at least two values."""
        if seg not in self:
            return False
        starts, hits, _ = self._sorted_group(seg)
        i, j = bisect.bisect_left(starts, lo), bisect.bisect_right(starts, hi)
        if j - i < 2:
            return False
        changes = self._changes.get(id(seg))
        if changes is None:
            changes = [len(hits)] * len(hits)
            for k in range(len(hits) - 2, -1, -1):
                changes[k] = k + 1 if hits[k + 1].entry.value != hits[k].entry.value else changes[k + 1]
            self._changes[id(seg)] = changes
        return changes[i] < j

    def attaches(self, mention: Hit) -> bool:
        """Whether an antigen of this index is ``adjacent`` to ``mention``."""
        return any(adjacent(a, mention) for a in self.around(mention))

    def attached_to(self, antigen: Hit) -> bool:
        """Whether ``antigen`` is ``adjacent`` to a mention of this index."""
        return any(adjacent(antigen, m) for m in self.around(antigen))


#: Hits of one segment that ``Near`` looks through one by one rather than bisects.
_SMALL = 16


_LINKER = re.compile(r"target|direct|against|specific|recogni|redirect|bind|express|靶向|anti|for the|to the")
_GAP_BREAK = re.compile(r"[.;:!?\n。；]")


#: The widest gap ``adjacent`` accepts between an antigen and a CAR mention, either way round.
_ADJACENT_GAP = 48


def adjacent(a: Hit, m: Hit) -> bool:
    """Whether an antigen hit is grammatically attached to a CAR mention in the same text."""
    if a.seg is not m.seg:
        return False
    norm = a.seg.norm
    if a.start >= m.start and a.end <= m.end:
        return True
    if a.end <= m.start:
        if m.start - a.end > 32:  # decided before the gap is copied: far-apart hits cost nothing
            return False
        gap = norm[a.end : m.start]
        if len(gap) <= 3 and not gap.strip(" ./+-"):
            return True
        return len(gap) <= 32 and len(gap.split()) <= 4 and not _GAP_BREAK.search(gap)
    if a.start >= m.end:
        if a.start - m.end > _ADJACENT_GAP:
            return False
        gap = norm[m.end : a.start]
        if _GAP_BREAK.search(gap):
            return False
        return not gap.strip(" /()-,:") or (len(gap.split()) <= 6 and bool(_LINKER.search(gap)))
    return False
