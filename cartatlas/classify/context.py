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
from typing import Any, cast

from cartatlas.classify.knowledge import Developer, Entry, Knowledge, Product
from cartatlas.classify.text import (
    ELIGIBILITY,
    Hit,
    Near,
    Segment,
    build_segments,
    car_words_search,
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
_CANDIDATE_KINDS = MENTION_KINDS | {"antigen", "car_weak", "engineered", "product_ambiguous"}
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


#: What a bridge to a CAR product is when the CAR is the setting: a drug or an antibody.
_BRIDGED = re.compile(r"antibod|bispecific|engager|mab(?![a-z])|nib(?![a-z])|drug|chemotherap|radiotherap|radiation")


@dataclass(slots=True)
class Mention:
    hit: Hit
    effect: str
    #: The cue that set the effect (empty for positive mentions).
    cue: str
    platform: str
    product: Product | None
    #: Why a mention that is not a CAR word counts: an ambiguous code name in its context
    #: (``developer``, ``cell-therapy``, ``car-word``) or a code-named product (``code-name``); empty otherwise.
    via: str = ""


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
    _signals: dict[str, Hit | None] | None = None
    _sponsors: list[tuple[str, str, Developer]] | None = None
    _car_segs: set[int] | None = None

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

    def cell_signals(self) -> dict[str, Hit | None]:
        """The signs of a cell therapy in the record, first hit per signal (``cell_therapy_signals.csv``).

        Lymphodepletion is also read from fludarabine and cyclophosphamide both named (combination terms); that
        signal has no single hit and maps to the fludarabine hit.
        """
        if self._signals is None:
            found: dict[str, Hit | None] = {}
            terms = self.kb.signal_terms
            for seg in self.segments:
                if seg.role == ELIGIBILITY:
                    continue
                for m in self.kb.signal_re.finditer(seg.norm):
                    signal = terms.get(m.group(0))
                    if signal is not None and signal not in found:
                        found[signal] = Hit(
                            Entry("cell_signal", signal, "cell_signal", None, "signals"), m.start(), m.end(), seg
                        )
            if "lymphodepletion" not in found:
                flu = [h for h in self.of("combo") if h.entry.value == "lymphodepletion" and "fludarabin" in _norm(h)]
                cy = [
                    h for h in self.of("combo") if h.entry.value == "lymphodepletion" and "cyclophosphamid" in _norm(h)
                ]
                if flu and cy:
                    found["lymphodepletion"] = flu[0]
            self._signals = found
        return self._signals

    def strong_signals(self) -> list[str]:
        strength = self.kb.signal_strength
        return [s for s in self.cell_signals() if strength.get(s) == "strong"]

    def sponsor_developers(self) -> list[tuple[str, str, Developer]]:
        """(field, name, developer) of the lead sponsor and collaborators that are CAR developers."""
        if self._sponsors is None:
            out: list[tuple[str, str, Developer]] = []
            record = cast(dict[str, Any], self.trial)
            developer = self.kb.developer
            lead = record.get("lead_sponsor")
            if isinstance(lead, str):
                dev = developer(lead)
                if dev is not None:
                    out.append(("lead_sponsor", lead, dev))
            for i, c in enumerate(record.get("collaborators") or ()):
                name = c.get("name") if isinstance(c, dict) else c
                if isinstance(name, str):
                    dev = developer(name)
                    if dev is not None:
                        out.append((f"collaborators[{i}]", name, dev))
            self._sponsors = out
        return self._sponsors


def build_context(trial: Trial, kb: Knowledge) -> Context:
    segments = build_segments(trial)
    hits: list[Hit] = []
    eligibility_car = ""
    capped = False
    for seg in segments:
        if seg.role == ELIGIBILITY:
            if not eligibility_car:
                m = car_words_search(seg.norm)
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
        via = ""
        if kind == "product":
            product = kb.products[entry.value]
            platform = product.platform
        elif kind == "product_ambiguous":
            product = kb.products[entry.value]
            via = _ambiguous_context(ctx, h, product)
            if not via:
                continue
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
        out.append(Mention(h, effect, cue, platform, product, via))
    return out


def _norm(h: Hit) -> str:
    return h.seg.norm[h.start : h.end]


def _ambiguous_context(ctx: Context, h: Hit, product: Product) -> str:
    """Why a code name that also means something else names this CAR product here, or "" when nothing says so.

    Issue 13: "F01" (also an ICD-10 code), "KD025" (also belumosudil), "CT011" (also pidilizumab) count only
    when the trial's sponsor is the product's developer, when the record shows a cell therapy (lymphodepletion,
    a cell injection, gene transfer, apheresis), or when a CAR word is in the same text.
    """
    kb = ctx.kb
    owner = _product_developer(kb, product)
    if owner is not None and any(dev.name == owner.name for _, _, dev in ctx.sponsor_developers()):
        return "developer"
    if "car" in h.seg.norm[h.start : h.end]:
        return ""  # "CAR.70" is a CAR word itself: only its developer tells which product it is
    if ctx.strong_signals():
        return "cell-therapy"
    if id(h.seg) in _car_word_segments(ctx):
        return "car-word"
    return ""


def _car_word_segments(ctx: Context) -> set[int]:
    """The segments that hold a CAR word (found once per record)."""
    if ctx._car_segs is None:
        ctx._car_segs = {id(c.seg) for c in ctx.of("car", "caar", "car_weak")}
    return ctx._car_segs


def _product_developer(kb: Knowledge, product: Product) -> Developer | None:
    """The developers.csv row of a product's developer ("Nanjing Drum Tower Hospital / Kangda": either part)."""
    dev = kb.developer(product.developer)
    if dev is not None:
        return dev
    for part in re.split(r"[/;]", product.developer):
        dev = kb.developer(part.strip())
        if dev is not None:
            return dev
    return None


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
    # Most clauses hold no history or setting cue at all: the cue automaton says so in one pass, and the
    # pattern (tried at every character) runs only on the clauses that hold one.
    cue = bool(before) and next(kb.before_automaton.iter(before), None) is not None
    while cue:
        m = kb.before_re.search(before, pos)
        if m is None:
            break
        fill = m.group("fill")
        if len(fill.split()) <= 6 and not _GIVING.search(fill) and not _OTHER_ANCHOR.search(fill):
            phrase = m.group(1)
            # "Bridging" makes the CAR the setting only when what bridges to it is a drug ("bridging GPRC5D/CD3
            # bispecific antibody treatment with BCMA CAR-T"); "ASCT bridging CAR-T" is a combined strategy.
            if phrase != "bridging" or _BRIDGED.search(fill):
                return kb.context_effects.get(f"before:{phrase}", PRIOR), phrase
        pos = m.start(1) + 1
    after = clause_after(h.seg, h.end)
    if after:
        m = kb.after_re.search(after)
        if m is not None:
            phrase = m.group(1)
            return kb.context_effects.get(f"after:{phrase}", PRIOR), phrase
    return POSITIVE, ""
