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
"""

from __future__ import annotations

import re

from cartatlas.classify.context import Context, Mention
from cartatlas.classify.text import (
    ARM,
    ARM_DESC,
    INTERVENTION,
    INTERVENTION_DESC,
    PROSE_ROLES,
    TITLE,
    Hit,
    Near,
    sentence_bounds,
)
from cartatlas.classify.types import UNKNOWN_TARGET

D = "targets"
_NEGATED_AFTER = re.compile(
    r"^\s*(?:negative|neg|loss|lost|knockout|knock out|knocked out|ko|deleted|deletion|deficient|disrupted|null|"
    r"silenced|silencing|edited|dim|escape|blockade|blocking|inhibitor|inhibitors|antibody|antibodies|bispecific|"
    r"monoclonal|adc|x ?cd3|阴性)(?![a-z])"
)
_NEGATED_BEFORE = re.compile(r"(?:loss of|without|lack of|negative for|non)\s*$")
_MARKER_AFTER = re.compile(r"^\s*(?:\+|positive|pos(?![a-z])|expressing|expression|\(\+\)|high|bright|阳性)")
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
    # ``adjacent`` is false across segments and far apart: compare each antigen only with the mentions near it.
    for m in chosen:
        if m.product is not None:
            for t in m.product.targets:
                tier1.setdefault(t, m)
    chosen_near = Near([m.hit for m in chosen])
    others_near = Near([m.hit for m in others])
    for a in ctx.of("antigen"):
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
            (tier1 if role in _STRONG_ROLES else tier2).setdefault(symbol, a)
            continue
        if others_near.attached_to(a):
            excluded.setdefault(symbol, a)
            continue
        if _marker(a) or (role == TITLE and a.seg in chosen_near):
            tier3.setdefault(symbol, a)
    if tier1:
        chosen_tier: dict[str, Hit | Mention] = tier1
        rule = "targets.attached_to_car_product"
    elif tier2:
        chosen_tier = dict(tier2)
        rule = "targets.attached_to_car_in_text"
    elif tier3:
        chosen_tier = dict(tier3)
        rule = "targets.disease_marker_antigen"
        ctx.flag("targets:from-marker")
    else:
        ctx.add(D, UNKNOWN_TARGET, "targets.car_without_disclosed_antigen", chosen[0].hit)
        ctx.flag("unknown-target")
        return [UNKNOWN_TARGET], "unknown"
    for symbol, src in chosen_tier.items():
        if isinstance(src, Mention):
            ctx.add(D, symbol, "targets.named_product", src.hit)
        else:
            ctx.add(D, symbol, rule, src)
    for symbol, a in excluded.items():
        if symbol not in chosen_tier:
            ctx.add(D, symbol, "targets.not_target_history_or_setting", a)
    targets = list(chosen_tier)
    return targets, _strategy(ctx, targets, chosen, chosen_tier)


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
