"""Relation rules: is a CAR product the studied intervention, the subject of follow-up, the setting, or absent?

The rules read a record the way a curator does: an intervention or title that
names a CAR product is the strongest sign of a CAR therapy trial; a CAR product
named only as a history or a setting ("after CAR-T", "patients receiving
CAR-T") makes the trial ancillary when it is about something given around the
CAR, and none when the CAR words are only in the eligibility criteria or in
another meaning of "CAR".

Issue 13: a record that names no CAR at all may still name a CAR developer's
product by its code (``codename``: low confidence, flagged for review); a CAR
named only in prose as the setting of the study makes it ancillary, and one
named only as background (the limits of, alternatives to or results of other
treatments, in a trial of drugs or of another engineered product) none.
"""

from __future__ import annotations

import re

from cartatlas.classify import codename
from cartatlas.classify.context import POSITIVE, SETTING, TOXICITY, Context, Mention
from cartatlas.classify.text import (
    ARM,
    CONDITION,
    INTERVENTION,
    INTERVENTION_DESC,
    KEYWORD,
    STRONG_ROLES,
    SUMMARY,
    TITLE,
    Hit,
    sentence_bounds,
)

D = "relation"


def decide(ctx: Context) -> tuple[str, str]:
    """The relation and its confidence label."""
    mentions = ctx.mentions
    if not mentions:
        decided = codename.decide(ctx)
        if decided is not None:
            return decided
        return _no_car(ctx), "high"
    positive = [m for m in mentions if m.effect == POSITIVE]
    strong = [m for m in positive if m.hit.seg.role in STRONG_ROLES or m.hit.seg.role == INTERVENTION_DESC]
    others = [m for m in mentions if m.effect != POSITIVE]

    follow = _follow_up(ctx, strong)
    if follow is not None:
        return follow
    if strong:
        return _strong(ctx, strong, others)
    if positive:
        return _text_only(ctx, positive, others)
    return _setting_only(ctx, others)


def _evidence_mention(ctx: Context, value: str, m: Mention, rule: str) -> None:
    ctx.add(D, value, rule + (f"[{m.effect}:{m.cue}]" if m.cue else ""), m.hit)


def _no_car(ctx: Context) -> str:
    for h in ctx.of("non_car")[:3]:
        ctx.add(D, "none", "relation.non_car_product", h)
    for h in ctx.of("other_meaning")[:3]:
        ctx.add(D, "none", "relation.other_meaning_of_car", h)
    if ctx.eligibility_car:
        ctx.add(D, "none", "relation.car_only_in_eligibility", field="eligibility_criteria", text=ctx.eligibility_car)
        ctx.flag("car-words-present")
    if not ctx.evidence:
        ctx.add(D, "none", "relation.no_car_product")
    return "none"


def _follow_up(ctx: Context, strong: list[Mention]) -> tuple[str, str] | None:
    cues = [h for h in ctx.of("follow_up") if h.seg.role in (TITLE, INTERVENTION, ARM)]
    if not cues and not any(m.effect == POSITIVE for m in ctx.mentions):
        cues = [h for h in ctx.of("follow_up") if h.seg.role == SUMMARY]
    if cues:
        ctx.add(D, "follow_up", "relation.long_term_follow_up", cues[0])
        _evidence_mention(ctx, "follow_up", ctx.mentions[0], "relation.car_product_followed")
        return "follow_up", "high" if cues[0].seg.role == TITLE else "medium"
    study_type = (ctx.trial.get("study_type") or "").upper()
    observational = study_type == "OBSERVATIONAL"
    obs_cues = [h for h in ctx.of("observational") if h.seg.role in (TITLE, INTERVENTION)]
    if not observational and not obs_cues:
        return None
    if not strong and not any(m.effect == POSITIVE or m.hit.seg.role in (TITLE, INTERVENTION) for m in ctx.mentions):
        return None
    if obs_cues:
        ctx.add(D, "follow_up", "relation.observational_design", obs_cues[0])
    else:
        ctx.add(D, "follow_up", "relation.observational_study_type", field="study_type", text=study_type)
    topic = [h for h in ctx.of("ancillary") if h.seg.role == TITLE]
    if topic:
        ctx.add(D, "ancillary", "relation.observational_about_ancillary_topic", topic[0])
        return "ancillary", "medium"
    _evidence_mention(ctx, "follow_up", ctx.mentions[0], "relation.car_product_followed")
    return "follow_up", "medium" if obs_cues else "high"


_INN_DRUG = re.compile(
    r"(?:mab|nib|ciclib|lisib|parib|zomib|tide|platin|taxel|rubicin|domide|stat|tinib|asone|olone|leukin|cept|"
    r"sertib|rafenib|limus|citabine|arabine|trexate|mustine|cillin|mycin|vudine|azole)(?![a-z])"
)


def _recognised_drugs(ctx: Context) -> list[str]:
    """Listed interventions that are recognisably something other than a CAR product.

    Opaque code names ("GC022", "GAP T cells", "Dose Level 1") are not counted: in a trial whose
    title names a CAR product they are that product under another name.
    """
    # Per intervention, looked up once: a record may list hundreds of interventions.
    car_groups = {m.hit.seg.group for m in ctx.mentions if m.hit.seg.role in (INTERVENTION, INTERVENTION_DESC)}
    combo_kinds: dict[str, set[str]] = {}
    for h in ctx.of("combo"):
        combo_kinds.setdefault(h.seg.field, set()).add(h.entry.value)
    ancillary_fields = {h.seg.field for h in ctx.of("ancillary")}
    out: list[str] = []
    for i, iv in enumerate(ctx.trial.get("interventions") or []):
        if not isinstance(iv, dict) or i in car_groups:
            continue
        name = iv.get("name") or ""
        field = f"interventions[{i}].name"
        kinds = combo_kinds.get(field, set())
        if kinds & {"lymphodepletion", "procedure"}:
            continue
        if kinds or field in ancillary_fields or _INN_DRUG.search(name.lower()):
            out.append(name)
    return out


def _strong(ctx: Context, strong: list[Mention], others: list[Mention]) -> tuple[str, str]:
    title_mentions = [m for m in ctx.mentions if m.hit.seg.role == TITLE]
    title_positive = [m for m in title_mentions if m.effect == POSITIVE]
    title_topic = [h for h in ctx.of("ancillary") if h.seg.role == TITLE]
    iv_positive = [m for m in strong if m.hit.seg.role in (INTERVENTION, INTERVENTION_DESC, ARM)]
    investigational = [m for m in iv_positive if m.product is None or not m.product.approved]
    if investigational:
        # An investigational CAR product is given within the protocol, whatever else is studied with it.
        _evidence_mention(ctx, "therapy", investigational[0], "relation.car_in_intervention")
        return _therapy(ctx, investigational[0], others, "high")
    drugs = _recognised_drugs(ctx)
    if title_mentions and not title_positive and (title_topic or drugs):
        # "Anakinra to prevent CRS in patients receiving axi-cel": the CAR product is the setting.
        _evidence_mention(ctx, "ancillary", title_mentions[0], "relation.title_names_car_as_setting")
        if title_topic:
            ctx.add(D, "ancillary", "relation.title_topic_around_car", title_topic[0])
        return "ancillary", "medium"
    if (
        not iv_positive
        and drugs
        and (
            title_topic
            or not title_positive
            or all(m.product is not None and m.product.approved for m in title_positive)
        )
    ):
        # "Brexucabtagene autoleucel plus dasatinib" listing only dasatinib: an approved CAR is the standard of care.
        m = title_positive[0] if title_positive else strong[0]
        _evidence_mention(ctx, "ancillary", m, "relation.approved_car_as_standard_of_care")
        ctx.add(D, "ancillary", "relation.studied_intervention_is_not_car", field="interventions", text=drugs[0])
        return "ancillary", "medium"
    if iv_positive and not title_positive and title_topic and drugs:
        # "Itacitinib to prevent CRS" listing Yescarta: an approved CAR product given as standard of care.
        ctx.add(D, "ancillary", "relation.title_topic_around_car", title_topic[0])
        _evidence_mention(ctx, "ancillary", iv_positive[0], "relation.approved_car_as_standard_of_care")
        return "ancillary", "medium"
    best = iv_positive[0] if iv_positive else strong[0]
    rule = "relation.car_in_intervention" if iv_positive else "relation.car_in_title"
    _evidence_mention(ctx, "therapy", best, rule)
    conf = "high" if iv_positive or not others else "medium"
    return _therapy(ctx, best, others, conf)


#: Evidence of an ambiguous code name counted in its context (``context._ambiguous_context``).
_AMBIGUOUS_RULES = {
    "developer": "relation.ambiguous_code_with_its_developer",
    "cell-therapy": "relation.ambiguous_code_with_cell_therapy_signs",
    "car-word": "relation.ambiguous_code_next_to_car_word",
}


def _therapy(ctx: Context, best: Mention, others: list[Mention], conf: str) -> tuple[str, str]:
    if best.product is not None:
        ctx.add(D, "therapy", "relation.named_car_product", best.hit)
    rule = _AMBIGUOUS_RULES.get(best.via)
    if rule is not None:
        ctx.add(D, "therapy", rule, best.hit)
        if best.via == "developer":
            for fld, name, _ in ctx.sponsor_developers()[:1]:
                ctx.add(D, "therapy", "relation.sponsor_is_car_developer", field=fld, text=name)
        elif best.via == "cell-therapy":
            for signal in ctx.strong_signals()[:2]:
                h = ctx.cell_signals().get(signal)
                if h is not None:
                    ctx.add(D, "therapy", "relation.cell_therapy_signal", field=h.seg.field, text=f"{signal}: {h.text}")
            conf = "medium" if conf == "high" else conf
    if any(m.hit.seg.role == TITLE for m in others) and not any(
        m.hit.seg.role == TITLE and m.effect == POSITIVE for m in ctx.mentions
    ):
        ctx.flag("conflict:relation")
        conf = "medium"
    return "therapy", conf


def _text_only(ctx: Context, positive: list[Mention], others: list[Mention]) -> tuple[str, str]:
    title_topic = [h for h in ctx.of("ancillary") if h.seg.role == TITLE]
    title_setting = [m for m in others if m.hit.seg.role in (TITLE, INTERVENTION, ARM)]
    if title_setting or title_topic:
        if title_setting:
            _evidence_mention(ctx, "ancillary", title_setting[0], "relation.title_names_car_as_setting")
        if title_topic:
            ctx.add(D, "ancillary", "relation.title_topic_around_car", title_topic[0])
        ctx.flag("conflict:relation")
        return "ancillary", "low"
    if _background(ctx, positive):
        ctx.flag("car-words-present")
        return "none", "medium"
    m = positive[0]
    role = m.hit.seg.role
    _evidence_mention(ctx, "therapy", m, "relation.car_in_" + role)
    ctx.flag("relation:car-only-in-" + role)
    return "therapy", "medium" if role in (SUMMARY, "description") else "low"


def _background(ctx: Context, positive: list[Mention]) -> bool:
    """Whether the CAR words of a record that names its CAR only in prose are background, not its product.

    Each CAR mention sits in a sentence about the limits of, alternatives to or results of treatments ("CAR-T
    cell therapy may be limited by manufacturing time"; "bridging therapies including ... CAR-T cell therapy";
    "side effects found in CAR-T trials"), and the trial gives something else: another engineered product
    named in its title or interventions (TCR-T), or only recognisable drugs (issue 13).
    """
    interventions = [iv for iv in ctx.trial.get("interventions") or [] if isinstance(iv, dict) and iv.get("name")]
    if not interventions:
        return False
    other = [h for h in ctx.of("non_car") if h.seg.role in (INTERVENTION, TITLE)]
    if not other and len(_recognised_drugs(ctx)) < len(interventions):
        return False
    cues: list[tuple[Mention, str]] = []
    seen: dict[tuple[int, int], str | None] = {}  # each sentence searched once, however many mentions it holds
    for m in positive:
        lo, hi = sentence_bounds(m.hit.seg, m.hit.start)
        key = (id(m.hit.seg), lo)
        if key not in seen:
            cue = ctx.kb.background_re.search(m.hit.seg.norm, lo, hi)
            seen[key] = m.hit.seg.disp[cue.start() : cue.end()] if cue is not None else None
        text = seen[key]
        if text is None:
            return False
        cues.append((m, text))
    m, cue_text = cues[0]
    _evidence_mention(ctx, "none", m, "relation.car_only_as_background")
    ctx.add(D, "none", "relation.background_cue", field=m.hit.seg.field, text=cue_text)
    if other:
        ctx.add(D, "none", "relation.other_engineered_product_given", other[0])
    return True


def _setting_only(ctx: Context, others: list[Mention]) -> tuple[str, str]:
    visible = [m for m in others if m.hit.seg.role in (TITLE, INTERVENTION, ARM, CONDITION, KEYWORD)]
    ctx.flag("car-words-present")
    if visible:
        _evidence_mention(ctx, "ancillary", visible[0], "relation.car_named_as_history_or_setting")
        topic: list[Hit] = [h for h in ctx.of("ancillary") if h.seg.role in (TITLE, INTERVENTION, CONDITION)]
        if topic:
            ctx.add(D, "ancillary", "relation.topic_around_car", topic[0])
        return "ancillary", "high" if visible[0].hit.seg.role == TITLE else "medium"
    # Named only in prose as the setting ("patients scheduled to receive CAR T-cell therapy", "delivered before
    # and after treatment with CAR T-cell therapy"): a study around the CAR, so ancillary, with low confidence;
    # named only as a history ("relapsed after CAR-T") it says nothing about what is given.
    settings = [m for m in others if m.effect in (SETTING, TOXICITY)]
    if settings:
        _evidence_mention(ctx, "ancillary", settings[0], "relation.car_named_as_setting_in_text")
        return "ancillary", "low"
    _evidence_mention(ctx, "none", others[0], "relation.car_only_as_history_in_text")
    return "none", "medium"
