"""Reading a trial's text: which fields, in which role, and every vocabulary hit in them.

A curator weighs a CAR mention in an intervention name differently from one in
the eligibility criteria, so each piece of text becomes a ``Segment`` tagged
with its role, and each vocabulary match a ``Hit`` that knows its segment.
Eligibility text is never scanned for positive evidence: it only says who may
enrol (often "no prior CAR-T"), not what is given.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(slots=True)
class Segment:
    field: str
    role: str
    #: Intervention or arm index (for "same intervention" reasoning); -1 elsewhere.
    group: int
    disp: str
    norm: str


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
# The match is one whole token: a short prefix, CAR, an optional T, an optional antigen number and, only after
# that number, a version letter (CART19A, CAR22v2).  Letters right after CAR or CAR-T continue another word
# (ECMOCARD, Medicare, EuCARE, trocars), so the token is not a CAR.
_GLUED_CAR = re.compile(
    f"(?<![{WORD}])(?P<prefix>[a-z0-9]{{0,5}}?)car(?P<t> ?t)?(?P<sep> ?)(?P<n>\\d{{1,3}})?(?P<more>(?:/\\d{{1,3}})*)"
    f"(?:(?<=\\d)[a-z]\\d{{0,2}})?(?![{WORD}])"
    r"(?! ?(?:days?|d|weeks?|wks?|months?|hours?|h|mg|ml|kg|x|%|patients|subjects|years?|cases)(?![a-z]))"
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

# CD19/22, CD19/20/22: the numbers after a slash are CD antigens too.
_CD_SLASH = re.compile(r"(?<![a-z0-9])cd ?\d{1,3}[a-z]?(?P<more>(?:/(?:cd)? ?\d{1,3}[a-z]?)+)(?![0-9])")
# An INN with the CAR stem -cabtagene that the product table does not list yet.
_CABTAGENE = re.compile(r"(?<![a-z])([a-z]+cabtagene)(?: [a-z]+leucel)?(?![a-z])")

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
    """Every index where ``word`` starts in ``text`` (overlapping), found by C-level ``str.find``."""
    out: list[int] = []
    find = text.find
    i = find(word)
    while i >= 0:
        out.append(i)
        i = find(word, i + 1)
    return out


def _matches_from(pattern: re.Pattern[str], text: str, starts: Iterable[int]) -> list[re.Match[str]]:
    """``pattern.finditer(text)``, trying only the given start positions (ascending).

    Equivalent to ``finditer`` whenever every match of ``pattern`` starts at one of
    ``starts``: ``match`` at a position sees the text before it (look-behinds) just
    as the search does, and matches never overlap.  The regexes below would
    otherwise be tried at every character of every segment, which was a third of
    the scanning time; their anchors (the literal "car", a "z" after a signalling
    domain, "cd", "cell") are found with ``str.find``.
    """
    out: list[re.Match[str]] = []
    pos = 0
    match = pattern.match
    for p in starts:
        if p < pos:
            continue
        m = match(text, p)
        if m is not None:
            out.append(m)
            pos = m.end()
    return out


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


def _glued_car_matches(norm: str) -> list[re.Match[str]]:
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


def _construct_matches(norm: str) -> list[re.Match[str]]:
    # A match ends its signalling domain (28, bb, 41bb, 4 1bb, 137: last character 8, b or 7) right before
    # "z", "ζ" or "zeta", at most one space between; it starts at most 8 + 5 characters before that end.
    ends: list[int] = []
    for z in (*_occurrences(norm, "z"), *_occurrences(norm, "ζ")):
        if z >= 1 and norm[z - 1] in "8b7":
            ends.append(z - 1)
        elif z >= 2 and norm[z - 1] == " " and norm[z - 2] in "8b7":
            ends.append(z - 2)
    if not ends:
        return []
    ends.sort()
    return _matches_from(_CONSTRUCT, norm, _window_starts(ends, 8 + 4))


def _engineered_matches(norm: str) -> list[re.Match[str]]:
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
    """All vocabulary hits in one segment, word-bounded; shorter hits inside longer ones of a family are dropped."""
    norm = seg.norm
    hits: list[Hit] = []
    append = hits.append
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
    iterate = kb.automaton.iter
    for text, ascii_pass in passes:
        for end, (klen, lead, trail, entries, ascii_key) in iterate(text):
            if ascii_pass is not None and ascii_key != ascii_pass:
                continue
            start = end - klen + lead
            stop = end - trail
            shown: str | None = None
            for entry in entries:
                if entry.exact is not None:
                    if shown is None:
                        shown = display_key(seg.disp[start:stop])
                    if shown not in entry.exact:
                        continue
                append(Hit(entry, start, stop, seg))
    if "car" in norm:
        for m in _glued_car_matches(norm):
            prefix, number = m.group("prefix"), m.group("n")
            if prefix:
                if prefix + "car" in _NOT_CAR_WORDS or (prefix.isdigit() and prefix != "4"):
                    continue
            elif number is None or (not m.group("t") and m.group("sep")):
                continue
            numbers = [number, *[x for x in m.group("more").split("/") if x]] if number else []
            append(Hit(GLUED_CART if m.group("t") or prefix == "u" else GLUED_CAR, m.start(), m.end(), seg))
            for x in numbers:
                entry = _antigen_entry(kb, x)
                if entry is not None:
                    append(Hit(entry, m.start("n"), m.end(), seg))
            if prefix in ("u", "uni"):
                append(Hit(Entry("source", "allogeneic", "source", None, "glued"), m.start(), m.end(), seg))
    if "z" in norm or "ζ" in norm:
        for m in _construct_matches(norm):
            append(Hit(CONSTRUCT_CAR, m.start(), m.end(), seg))
    if "t cell" in norm or "lymphocytes" in norm or "nk cell" in norm:
        for m in _engineered_matches(norm):
            append(Hit(ENGINEERED, m.start(), m.end(), seg))
    if "cd" in norm and "/" in norm:
        for m in _matches_from(_CD_SLASH, norm, _occurrences(norm, "cd")):
            for x in m.group("more").split("/"):
                x = x.replace("cd", "").strip()
                entry = _antigen_entry(kb, x) if x else None
                if entry is not None:
                    append(Hit(entry, m.start("more"), m.end(), seg))
    if "cabtagene" in norm:
        for m in _CABTAGENE.finditer(norm):
            append(Hit(INN_CAR, m.start(), m.end(), seg))
    if len(hits) > 1:
        hits = _drop_contained(hits)
    return hits


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


def sentence_bounds(seg: Segment, pos: int) -> tuple[int, int]:
    """The sentence around ``pos`` (short segments such as titles are one sentence)."""
    if seg.role not in PROSE_ROLES:
        return 0, len(seg.norm)
    norm = seg.norm
    lo = max(norm.rfind(". ", 0, pos), norm.rfind("\n", 0, pos), norm.rfind("。", 0, pos), norm.rfind("; ", 0, pos))
    m = re.compile(r"\. |\n|。|; ").search(norm, pos)
    hi = m.start() if m else len(norm)
    return (lo + 1 if lo >= 0 else 0), hi


_LINKER = re.compile(r"target|direct|against|specific|recogni|redirect|bind|express|靶向|anti|for the|to the")
_GAP_BREAK = re.compile(r"[.;:!?\n。；]")


def adjacent(a: Hit, m: Hit) -> bool:
    """Whether an antigen hit is grammatically attached to a CAR mention in the same text."""
    if a.seg is not m.seg:
        return False
    norm = a.seg.norm
    if a.start >= m.start and a.end <= m.end:
        return True
    if a.end <= m.start:
        gap = norm[a.end : m.start]
        if len(gap) <= 3 and not gap.strip(" ./+-"):
            return True
        return len(gap) <= 32 and len(gap.split()) <= 4 and not _GAP_BREAK.search(gap)
    if a.start >= m.end:
        gap = norm[m.end : a.start]
        if len(gap) > 48 or _GAP_BREAK.search(gap):
            return False
        return not gap.strip(" /()-,:") or (len(gap.split()) <= 6 and bool(_LINKER.search(gap)))
    return False
