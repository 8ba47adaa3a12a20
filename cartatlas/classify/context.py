"""Everything the rules share about one trial: its segments, hits, CAR mentions and the evidence so far.

The central judgement made here is what each CAR mention *is*: the product
the trial gives (``positive``), a history ("after CAR-T", "prior CAR T
therapy", "CAR-T failure": ``prior``), the setting of a study about something
else ("patients receiving CAR-T", "standard-of-care CAR-T": ``setting``), or a
CAR-related adverse event (``toxicity``).  The rules for relation, targets,
platform and source all start from that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cartatlas.classify.knowledge import Knowledge, Product
from cartatlas.classify.text import (
    CAR_WORDS,
    ELIGIBILITY,
    Hit,
    Near,
    Segment,
    build_segments,
    clause_after,
    clause_before,
    scan,
)
from cartatlas.classify.types import Evidence
from cartatlas.model import Trial

POSITIVE, PRIOR, SETTING, TOXICITY = "positive", "prior", "setting", "toxicity"
#: Evidence kept per decision and rule (``engine``): the first ones, in the order the rules found them.
#: A rule that fires once per intervention would otherwise list every one of a record's hundreds of
#: drugs; the label is the same and a curator reads the record for the rest.
MAX_EVIDENCE_PER_RULE = 20
#: Flag of a classification that read only the first ``MAX_HITS_PER_TERM`` hits of a term in some field.
CAPPED_FLAG = "screening:capped"
MENTION_KINDS = frozenset({"car", "caar", "product"})
#: Hit kinds that may become a mention: the above, glued antigens ("CD19CAR"), a bare "CAR", engineered cells.
_CANDIDATE_KINDS = MENTION_KINDS | {"antigen", "car_weak", "engineered"}
#: Words after a bare "CAR" that make it a chimeric antigen receptor, not another CAR.
_CELL_WORDS = frozenset(
    [
        "t",
        "ts",
        "nk",
        "nkt",
        "treg",
        "tregs",
        "m",
        "cells",
        "cell",
        "modified",
        "engineered",
        "transduced",
        "expressing",
        "construct",
        "constructs",
        "vector",
        "gene",
        "genes",
        "positive",
        "redirected",
        "therapy",
        "therapies",
        "product",
        "products",
        "based",
        "transgene",
        "expression",
        "lymphocytes",
        "macrophages",
        "gammadelta",
        "γδ",
        "γδt",
    ]
)
#: Filler after a history cue that turns it back into an administration ("after ... will receive CAR-T").
_GIVING = re.compile(r"(?<![a-z])(?:will|shall|be|receive|receives|infus\w*|administ\w*|given|inject\w*|then)(?![a-z])")
#: A history cue that attaches to something else in between ("post-transplant CAR-T", "after lymphodepletion").
_OTHER_ANCHOR = re.compile(
    r"(?<![a-z])(?:transplant\w*|hsct|sct|asct|hct|bmt|chemotherap\w*|lymphodeplet\w*|conditioning|induction|"
    r"remission|surgery|resection|radiotherap\w*|radiation|diagnosis|leukapheresis|apheresis|consolidation|移植)"
)


@dataclass(slots=True)
class Mention:
    hit: Hit
    effect: str
    #: The cue that set the effect (empty for positive mentions).
    cue: str
    platform: str
    product: Product | None


@dataclass
class Context:
    trial: Trial
    kb: Knowledge
    segments: list[Segment]
    hits: list[Hit]
    by_kind: dict[str, list[Hit]]
    mentions: list[Mention] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    eligibility_car: str = ""

    def of(self, *kinds: str) -> list[Hit]:
        if len(kinds) == 1:
            return self.by_kind.get(kinds[0], [])
        out: list[Hit] = []
        for k in kinds:
            out.extend(self.by_kind.get(k, []))
        return out

    def add(
        self, decision: str, value: str, rule: str, hit: Hit | None = None, *, field: str = "", text: str = ""
    ) -> None:
        self.evidence.append(
            Evidence(
                decision=decision,
                value=value,
                field=hit.seg.field if hit is not None else field,
                text=hit.text if hit is not None else text,
                rule=rule,
            )
        )

    def flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)

    def positive(self) -> list[Mention]:
        return [m for m in self.mentions if m.effect == POSITIVE]


def build_context(trial: Trial, kb: Knowledge) -> Context:
    segments = build_segments(trial)
    hits: list[Hit] = []
    eligibility_car = ""
    capped = False
    for seg in segments:
        if seg.role == ELIGIBILITY:
            if not eligibility_car:
                m = CAR_WORDS.search(seg.norm)
                if m is not None:
                    eligibility_car = seg.disp[max(0, m.start() - 40) : m.end() + 40]
            continue
        hits.extend(scan(seg, kb))
        capped = capped or seg.capped > 0
    by_kind: dict[str, list[Hit]] = {}
    for h in hits:
        by_kind.setdefault(h.entry.kind, []).append(h)
    ctx = Context(trial, kb, segments, hits, by_kind, eligibility_car=eligibility_car)
    if capped:
        ctx.flag(CAPPED_FLAG)
    ctx.mentions = _mentions(ctx)
    return ctx


def _mentions(ctx: Context) -> list[Mention]:
    kb = ctx.kb
    other_meaning_segs = {id(h.seg) for h in ctx.of("other_meaning")}
    targets = kb.target_symbols
    antigens: Near | None = None  # built when a bare "CAR" or engineered cells need it
    full_name_segs = {id(h.seg) for h in ctx.of("car") if "chimeric" in h.seg.norm[h.start : h.end]}
    tcr = any(
        "tcr" in h.seg.norm[h.start : h.end] or "receptor" in h.seg.norm[h.start : h.end] for h in ctx.of("non_car")
    )
    out: list[Mention] = []
    for h in ctx.hits:
        entry = h.entry
        kind = entry.kind
        if kind not in _CANDIDATE_KINDS:  # most hits (diseases, cells, cues) are never mentions
            continue
        product: Product | None = None
        platform = entry.value if kind in ("car", "caar") else ""
        if kind == "product":
            product = kb.products[entry.value]
            platform = product.platform
        elif kind == "antigen":
            if not entry.car_glued:
                continue
            platform = "CAR-T" if "cart" in h.seg.norm[h.start : h.end] else ""
        elif kind == "car_weak":
            if id(h.seg) in other_meaning_segs:
                continue
            antigens = antigens or Near([a for a in ctx.of("antigen") if a.entry.value in targets])
            if not _weak_car_is_receptor(h, antigens, full_name_segs):
                continue
        elif kind == "engineered":
            # "T cells genetically targeted to CD19" is a CAR-T when an antigen is attached and no TCR is named.
            if tcr:
                continue
            antigens = antigens or Near([a for a in ctx.of("antigen") if a.entry.value in targets])
            if not antigens.attaches(h):
                continue
            platform = "CAR-NK" if "nk" in h.seg.norm[h.start : h.end] else ""
        effect, cue = mention_effect(ctx.kb, h)
        out.append(Mention(h, effect, cue, platform, product))
    return out


def _weak_car_is_receptor(h: Hit, antigens: Near, full_name_segs: set[int]) -> bool:
    """A bare "CAR" counts only next to an antigen, a cell word, or where the full name is spelt out."""
    if id(h.seg) in full_name_segs:
        return True
    if antigens.attaches(h):
        return True
    nxt = h.seg.norm[h.end : h.end + 24].lstrip(" .+/(")
    word = nxt.split(" ", 1)[0].strip(".,;:()") if nxt else ""
    return word in _CELL_WORDS or word.startswith(("t细胞", "nk细胞", "细胞"))


def mention_effect(kb: Knowledge, h: Hit) -> tuple[str, str]:
    """Whether a CAR mention is the product given, a history, a setting or a toxicity."""
    before = clause_before(h.seg, h.start)
    pos = 0
    while before:
        m = kb.before_re.search(before, pos)
        if m is None:
            break
        fill = m.group("fill")
        if len(fill.split()) <= 6 and not _GIVING.search(fill) and not _OTHER_ANCHOR.search(fill):
            phrase = m.group(1)
            return kb.context_effects.get(f"before:{phrase}", PRIOR), phrase
        pos = m.start(1) + 1
    after = clause_after(h.seg, h.end)
    if after:
        m = kb.after_re.search(after)
        if m is not None:
            phrase = m.group(1)
            return kb.context_effects.get(f"after:{phrase}", PRIOR), phrase
    return POSITIVE, ""
