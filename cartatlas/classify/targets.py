"""Target rules: which antigens the trial's CAR product recognises, and how several are combined.

An antigen is a target when it is attached to a CAR mention that is the
product (in a CAR intervention's name, right before the CAR term, or after a
linking word such as "targeting"), or when a named product carries it.  An
antigen attached to a history ("after CD19 CAR-T") is not a target, nor one
followed by "negative" or "knock-out", nor a CAR component (CD28, 4-1BB,
truncated EGFR).  Antigens named only as disease markers ("CD19-positive
lymphoma") are used when nothing better is written.  Tiers keep background
sentences of a summary from adding targets that the title and interventions
do not have.

The tiers, strongest first (issue 13): attached in a title, intervention or
arm; attached in prose; recognised by the product's cells in prose ("T cells
... able to recognize ... PSMA"); a marker of the patients ("(GPC3)-positive");
for a CAR trial that names no antigen anywhere else, a marker the inclusion
criteria require.  A list of antigens ("CD19 & CD22", "BCMA, GPRC5D,
DLL3,FcRH5", ``antigen_lists``) shares the tier of its attached item, a list
in a title that names the CAR or after a linking word in the CAR's sentence is
the product's, and the items of the chosen targets' lists that the antigen
table cannot name are kept as evidence.  An antigen read inside a catalogue
product's name is that name's ("huMNC2-CAR22" is MUC1*, not CD22).
"""

from __future__ import annotations

import re
from typing import Any

from cartatlas.classify.antigen_lists import continues, next_item, read_lists
from cartatlas.classify.context import Context, Mention
from cartatlas.classify.text import (
    ARM,
    ARM_DESC,
    ELIGIBILITY,
    INTERVENTION,
    INTERVENTION_DESC,
    PROSE_ROLES,
    TITLE,
    Hit,
    Near,
    Segment,
    scan,
    sentence_bounds,
)
from cartatlas.classify.types import UNKNOWN_TARGET

D = "targets"
_NEGATED_AFTER = re.compile(
    r"^\s*(?:negative|neg|loss|lost|knockout|knock out|knocked out|ko|deleted|deletion|deficient|disrupted|null|"
    r"silenced|silencing|edited|dim|escape|blockade|blocking|inhibitor|inhibitors|antibody|antibodies|"
    r"bispecific(?!\s*(?:car|chimeric|t cells?|nk|cells?|tandem))|"
    r"monoclonal|adc|x ?cd3|阴性)(?![a-z])"
)
_NEGATED_BEFORE = re.compile(r"(?:loss of|without|lack of|negative for|non)\s*$")
_MARKER_AFTER = re.compile(
    r"^\s*\)?\s*(?:\+|positive|positivity|pos(?![a-z])|expressing|expression|\(\+\)|high|bright|阳性)"
)
_STRONG_ROLES = frozenset({TITLE, INTERVENTION, INTERVENTION_DESC, ARM, ARM_DESC})


def _negated(a: Hit) -> bool:
    norm = a.seg.norm
    return bool(
        _NEGATED_AFTER.match(norm[a.end : a.end + 20]) or _NEGATED_BEFORE.search(norm[max(0, a.start - 14) : a.start])
    )


def _marker(a: Hit) -> bool:
    return bool(_MARKER_AFTER.match(a.seg.norm[a.end : a.end + 14]))


def decide(ctx: Context, relation: str, chosen: list[Mention]) -> tuple[list[str], str]:
    """Target symbols (canonical) and the target strategy."""
    if relation == "none" or not chosen:
        return [], "unknown"
    kb = ctx.kb
    chosen_ids = {id(m.hit) for m in chosen}
    others = [m for m in ctx.mentions if id(m.hit) not in chosen_ids]
    car_groups = {m.hit.seg.group for m in chosen if m.hit.seg.role in (INTERVENTION, INTERVENTION_DESC)}
    car_arms = {m.hit.seg.group for m in chosen if m.hit.seg.role in (ARM, ARM_DESC)}
    tier1: dict[str, Hit | Mention] = {}
    tier2: dict[str, Hit] = {}
    tier3: dict[str, Hit] = {}
    excluded: dict[str, Hit] = {}
    # How each antigen hit was placed, for the lists below: 1 and 2 attached, 0 excluded.
    placed: dict[int, int] = {}
    # ``adjacent`` is false across segments and far apart: compare each antigen only with the mentions near it.
    for m in chosen:
        if m.product is not None:
            for t in m.product.targets:
                tier1.setdefault(t, m)
    chosen_near = Near([m.hit for m in chosen])
    others_near = Near([m.hit for m in others])
    inside_products = _product_spans(ctx)
    antigens = ctx.of("antigen")
    if inside_products:
        antigens = [a for a in antigens if not _inside(a, inside_products)]
    for a in antigens:
        symbol = a.entry.value
        if symbol not in kb.target_symbols or _negated(a):
            continue
        role = a.seg.role
        direct = chosen_near.attached_to(a)
        if not direct and role == INTERVENTION and a.seg.group in car_groups:
            direct = True
        if not direct and role == ARM and a.seg.group in car_arms:
            direct = True
        if direct:
            strong = role in _STRONG_ROLES
            (tier1 if strong else tier2).setdefault(symbol, a)
            placed[id(a)] = 1 if strong else 2
            continue
        if others_near.attached_to(a):
            excluded.setdefault(symbol, a)
            placed[id(a)] = 0
            continue
        if _marker(a) or (role == TITLE and a.seg in chosen_near):
            tier3.setdefault(symbol, a)
    unresolved = _lists(ctx, antigens, placed, chosen_near, tier1, tier2)
    recognised: dict[str, Hit] = {}
    if not tier1 and not tier2:
        recognised = _recognised_by_product(ctx, antigens, placed)
    if tier1:
        chosen_tier: dict[str, Hit | Mention] = tier1
        rule = "targets.attached_to_car_product"
    elif tier2:
        chosen_tier = dict(tier2)
        rule = "targets.attached_to_car_in_text"
    elif recognised:
        chosen_tier = dict(recognised)
        rule = "targets.recognised_by_product_cells"
    elif tier3:
        chosen_tier = dict(tier3)
        rule = "targets.disease_marker_antigen"
        ctx.flag("targets:from-marker")
    else:
        markers = _eligibility_markers(ctx)
        if not markers:
            ctx.add(D, UNKNOWN_TARGET, "targets.car_without_disclosed_antigen", chosen[0].hit)
            ctx.flag("unknown-target")
            return [UNKNOWN_TARGET], "unknown"
        chosen_tier = dict(markers)
        rule = "targets.eligibility_marker_antigen"
        ctx.flag("targets:from-marker")
    for symbol, src in chosen_tier.items():
        if isinstance(src, Mention):
            ctx.add(D, symbol, "targets.named_product", src.hit)
        elif src.entry.table == "list":
            ctx.add(D, symbol, "targets.antigen_list", src)
        else:
            ctx.add(D, symbol, rule, src)
    for symbol, a in excluded.items():
        if symbol not in chosen_tier:
            ctx.add(D, symbol, "targets.not_target_history_or_setting", a)
    # What a list of the chosen targets holds that the antigen table cannot name stays visible.
    shown = 1 if chosen_tier is tier1 else 2 if rule == "targets.attached_to_car_in_text" else 0
    for tier, hit, text in unresolved:
        if tier == shown:
            ctx.add(D, UNKNOWN_TARGET, "targets.unresolved_antigen", field=hit.seg.field, text=text)
            ctx.flag("targets:unresolved-antigen")
    targets = list(chosen_tier)
    return targets, _strategy(ctx, targets, chosen, chosen_tier)


def _product_spans(ctx: Context) -> dict[int, list[tuple[int, int]]]:
    """Spans of named products per segment: an antigen read inside a product's name is the name's, not a target.

    "huMNC2-CAR22" targets MUC1*: its "CAR22" is the construct's name, and the catalogue row wins over the
    reading of a glued number as CD22.
    """
    out: dict[int, list[tuple[int, int]]] = {}
    products = ctx.kb.products
    for h in ctx.of("product"):
        if products[h.entry.value].targets:  # a row without antigens (V001-BCMA) leaves them to the name
            out.setdefault(id(h.seg), []).append((h.start, h.end))
    return out


def _inside(a: Hit, spans: dict[int, list[tuple[int, int]]]) -> bool:
    found = spans.get(id(a.seg), ())
    return any(lo <= a.start and a.end <= hi and (lo, hi) != (a.start, a.end) for lo, hi in found)


#: Words before a list of antigens that make it the list of the CAR product's antigens in the same sentence.
_LIST_LINKER = re.compile(
    r"(?:expression of|expressing|express|antigens?|targets?|targeting|targeted|against|specific|directed|"
    r"recogni[sz]\w*|including|such as|靶向|靶点)[^.;:]{0,40}$"
)


def _lists(
    ctx: Context,
    antigens: list[Hit],
    placed: dict[int, int],
    chosen_near: Near,
    tier1: dict[str, Hit | Mention],
    tier2: dict[str, Hit],
) -> list[tuple[int, Hit, str]]:
    """Attach every item of a list to the tier of its attached member; the unresolved items of attached lists.

    A list none of whose items is attached still counts when a linking word leads into it ("based on the
    expression of EGFRvIII, IL13Rα2, Her-2, ...") and its sentence names the trial's CAR product.
    """
    kb = ctx.kb
    # Most antigens of a record stand alone: a list needs a separator after an item, or several antigens read
    # at one place (the numbers of "4SCAR20/22/70").  Summaries, descriptions and outcomes feed the second
    # tier only, which counts only when no title, intervention or arm names a target.
    strong_only = bool(tier1)
    listed: set[int] = set()
    for a in antigens:
        if strong_only and a.seg.role not in _STRONG_ROLES:
            continue
        if a.entry.table == "glued" or continues(a.seg, a):
            listed.add(id(a.seg))
    if not listed:
        return []
    by_seg: dict[int, list[Hit]] = {}
    for a in antigens:
        if id(a.seg) in listed:
            by_seg.setdefault(id(a.seg), []).append(a)
    unresolved: list[tuple[int, Hit, str]] = []
    stops: dict[int, set[int]] | None = None

    def stop_at(seg: Segment, pos: int) -> bool:
        # Where other vocabulary hits start (a product, a disease): asked only for the rare bare token.
        nonlocal stops
        if stops is None:
            stops = {}
            for h in ctx.hits:
                if h.entry.kind != "antigen":
                    stops.setdefault(id(h.seg), set()).add(h.start)
        return pos in stops.get(id(seg), ())

    for group in by_seg.values():
        seg = group[0].seg
        if tier1 and seg.role not in _STRONG_ROLES:
            continue
        if tier1 and _nothing_new(seg, group, tier1):
            continue
        if not _list_matters(seg, group, placed, chosen_near):
            continue
        for lst in read_lists(seg, group, kb, stop_at):
            tiers = [placed[id(h)] for h in lst.hits if id(h) in placed]
            tier = min((t for t in tiers if t > 0), default=None)
            first = min(lst.hits, key=lambda h: h.start)
            # A title that names the CAR product and a list of antigens: the list is the product's, unless a
            # history leads into it ("CD19 CAR-T after CD20/CD22 failure").
            if (
                tier is None
                and 0 not in tiers
                and seg.role == TITLE
                and seg in chosen_near
                and not _HISTORY_BEFORE.search(seg.norm[max(0, first.start - 30) : first.start])
            ):
                tier = 1
            if tier is None and 0 not in tiers and seg.role in PROSE_ROLES:
                lo, hi = sentence_bounds(seg, first.start)
                lead = seg.norm[max(lo, first.start - 60) : first.start]
                if _LIST_LINKER.search(lead) and chosen_near.between(seg, lo, hi - 1):
                    tier = 2
            if tier is None:
                continue
            into: dict[str, Any] = tier1 if tier == 1 else tier2
            for h in lst.hits:
                if h.entry.value in kb.target_symbols and not _negated(h):
                    into.setdefault(h.entry.value, h)
                    placed.setdefault(id(h), tier)
            unresolved += [(tier, lst.hits[0], text) for text in lst.unresolved]
    return unresolved


_HISTORY_BEFORE = re.compile(
    r"(?:after|following|post|prior|previous\w*|failed|failure|relapsed|refractory|resistant|exposed)[^,;:]{0,20}$"
)


def _nothing_new(seg: Segment, group: list[Hit], tier1: dict[str, Hit | Mention]) -> bool:
    """Whether the lists of a segment can only repeat targets already found: every antigen of it is one,
    and after every separator stands another of its antigens (no number or unknown item to read)."""
    if any(h.entry.value not in tier1 for h in group):
        return False
    starts = {h.start for h in group}
    return all(next_item(seg, h) in starts for h in group if continues(seg, h))


def _list_matters(seg: Segment, group: list[Hit], placed: dict[int, int], chosen_near: Near) -> bool:
    """Whether a list in this segment could change the targets (``read_lists`` then looks for separators)."""
    if any(placed.get(id(h), 0) > 0 for h in group):
        return True
    return (seg.role == TITLE or seg.role in PROSE_ROLES) and seg in chosen_near


_RECOGNISE = re.compile(
    r"(?:recogni[sz]\w*|target(?:s|ing|ed)?|directed (?:against|to|at)|specific (?:for|to)|redirected to|"
    r"bind(?:s|ing)?(?: to)?)(?![a-z])[^.;:]{0,70}$"
)
_CELLS = re.compile(r"(?<![a-z])(?:t ?cells?|nk ?cells?|cells|lymphocytes|细胞)(?![a-z])")


def _recognised_by_product(ctx: Context, antigens: list[Hit], placed: dict[int, int]) -> dict[str, Hit]:
    """Antigens that the trial's cells are said to recognise in prose, when nothing attaches one to the CAR.

    "The T cells given in this study ... will be able to recognize a priming antigen as well as
    Prostate-Specific Membrane Antigen (PSMA)": the verb leads to the antigen within its clause, and the
    sentence is about the cells given.
    """
    kb = ctx.kb
    out: dict[str, Hit] = {}
    for a in antigens:
        if a.seg.role not in PROSE_ROLES or placed.get(id(a)) == 0 or a.entry.value not in kb.target_symbols:
            continue
        if _negated(a):
            continue
        if a.entry.value in out:
            continue
        lo, hi = sentence_bounds(a.seg, a.start)
        before = a.seg.norm[max(lo, a.start - 90) : a.start]
        if not _RECOGNISE.search(before):
            continue
        # The cells are named within a bounded reach of the antigen (a sentence may be a whole field).
        if _CELLS.search(a.seg.norm, max(lo, a.start - 300), min(hi, a.end + 300)) is None:
            continue
        out[a.entry.value] = a
    return out


def _eligibility_markers(ctx: Context) -> dict[str, Hit]:
    """Antigens the inclusion criteria require of the patients ("CD19-positive"), the weakest sign of a target.

    Eligibility text is not scanned with the rest of the record (it says who may enrol, not what is given); it
    is read here only for a CAR trial that discloses no antigen anywhere else.
    """
    kb = ctx.kb
    out: dict[str, Hit] = {}
    for seg in ctx.segments:
        if seg.role != ELIGIBILITY:
            continue
        cut = _EXCLUSION.search(seg.norm)
        end = cut.start() if cut is not None else len(seg.norm)
        # Only the words before a marker ("positive", "+") can be a marker antigen: scan those windows alone.
        for m in _MARKER_WORD.finditer(seg.norm, 0, end):
            lo = max(0, m.start() - 40)
            hi = m.end() + 14  # what _marker reads after an antigen
            window = Segment(seg.field, seg.role, seg.group, seg.disp[lo:hi], seg.norm[lo:hi])
            for h in scan(window, kb):
                if h.entry.kind != "antigen" or h.entry.value not in kb.target_symbols or h.entry.value in out:
                    continue
                if h.end > m.start() - lo + 2 or not _marker(h) or _negated(h):
                    continue  # the antigen right before the marker word, with nothing else between
                if _PRIOR_THERAPY.search(window.norm[max(0, h.start - 40) : h.start]):
                    continue
                out[h.entry.value] = Hit(h.entry, h.start + lo, h.end + lo, seg)
    return out


_MARKER_WORD = re.compile(r"\+|positiv|express|阳性")


_EXCLUSION = re.compile(r"exclusion criteria|排除标准")
_PRIOR_THERAPY = re.compile(r"(?:prior|previous|after|following|failed)[^.;:]{0,30}$")


def _strategy(ctx: Context, targets: list[str], chosen: list[Mention], found: dict[str, Hit | Mention]) -> str:
    if len(targets) == 1:
        ctx.add("target_strategy", "single", "strategy.one_target", field="targets", text=targets[0])
        return "single"
    wanted = set(targets)
    antigens = Near([a for a in ctx.of("antigen") if a.entry.value in wanted])
    chosen_near = Near([m.hit for m in chosen])
    # A cue counts where the targets are named together: in that sentence, title or intervention.
    for kind in ("co-administered", "multi-specific-CAR"):
        for h in ctx.of("strategy"):
            if h.entry.value != kind:
                continue
            if _bispecific_antibody(h):
                continue
            lo, hi = sentence_bounds(h.seg, h.start) if h.seg.role in PROSE_ROLES else (0, len(h.seg.norm))
            two_targets = antigens.two_values(h.seg, lo, hi - 1)
            if two_targets or (h.seg.role in (TITLE, INTERVENTION) and chosen_near.between(h.seg, lo, hi - 1)):
                ctx.add("target_strategy", kind, "strategy.cue", h)
                return kind
    for m in chosen:
        if m.product is not None and len(m.product.targets) >= 2:
            ctx.add("target_strategy", "multi-specific-CAR", "strategy.named_multi_target_product", m.hit)
            return "multi-specific-CAR"
    # Two CAR interventions with different single targets: given together.
    per_group: dict[int, set[str]] = {}
    for symbol, src in found.items():
        hit = src.hit if isinstance(src, Mention) else src
        if hit.seg.role in (INTERVENTION, INTERVENTION_DESC):
            per_group.setdefault(hit.seg.group, set()).add(symbol)
    singles = [g for g in per_group.values() if len(g) == 1]
    if len(singles) >= 2 and len(set().union(*singles)) >= 2:
        ctx.add("target_strategy", "co-administered", "strategy.separate_car_interventions", field="interventions")
        return "co-administered"
    # "CD19/CD22 CAR-T", "4SCAR19/22": antigens joined by a slash inside one product phrase.
    spans = [(id(h.seg), h.start) for h in (s.hit if isinstance(s, Mention) else s for s in found.values())]
    if len(spans) != len(set(spans)):
        ctx.add(
            "target_strategy", "multi-specific-CAR", "strategy.joined_antigens", field="targets", text="/".join(targets)
        )
        ctx.flag("strategy:from-joined-antigens")
        return "multi-specific-CAR"
    for src in found.values():
        hit = src.hit if isinstance(src, Mention) else src
        tail = hit.seg.norm[hit.end : hit.end + 3]
        head = hit.seg.norm[max(0, hit.start - 3) : hit.start]
        if "/" in tail or "/" in head or tail.startswith((" x ", "x")):
            ctx.add("target_strategy", "multi-specific-CAR", "strategy.joined_antigens", hit)
            ctx.flag("strategy:from-joined-antigens")
            return "multi-specific-CAR"
    ctx.flag("unknown-strategy")
    return "unknown"


def _bispecific_antibody(h: Hit) -> bool:
    after = h.seg.norm[h.end : h.end + 30]
    return bool(re.match(r"\s*(?:antibod|t cell engager|t-cell engager|bite|monoclonal)", after))
