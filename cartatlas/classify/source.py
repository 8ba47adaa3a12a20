"""Product-source and combination rules.

"Allogeneic" and "autologous" are common words in CAR trials for another
reason: stem-cell transplantation.  A source word therefore counts only when it
qualifies the CAR product (in the CAR intervention, or right before the CAR
term) and is not followed by transplant words.  Leukapheresis of the patient
means autologous cells; a CAR-NK product is allogeneic unless stated
otherwise, as NK products almost always come from donors, cord blood or lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cartatlas.classify.context import Context, Mention
from cartatlas.classify.text import (
    INTERVENTION,
    INTERVENTION_DESC,
    PROSE_ROLES,
    TITLE,
    Hit,
    Near,
    Segment,
    sentence_bounds,
)

_TRANSPLANT_AFTER = re.compile(
    r"^[\s/]*(?:hematopoietic|haematopoietic|stem|hsct|sct|hct|bmt|bone marrow|marrow|transplant\w*|graft|"
    r"lymphocyte infusion|donor lymphocyte|serum|cd34|移植|造血)"
)
_WITH_BEFORE = re.compile(
    r"(?:bridg\w* to|followed by|combined with|combination with|plus|and|then|sequential|consolidat\w*|with|"
    r"before|联合)"
    r"\s*(?:\w+\s*){0,3}$"
)
_HISTORY_BEFORE = re.compile(
    r"(?:after|post|following|relapse\w*|prior|history|previous\w*|failed|undergone|received)\s*(?:\w+\s*){0,3}$"
)
_NOT_A_DRUG = re.compile(r"^(?:dose|level|arm|cohort|group|part|phase|stage|treatment|experimental|control)\b")
#: An intervention that describes engineered cells: in a CAR therapy trial it is the CAR product under another
#: name ("genetically engineered lymphocyte therapy", "re-directed T cells", "transduced T lymphocytes").
_ENGINEERED_CELLS = re.compile(
    r"(?<![a-z])(?:engineered|modified|transduced|transfected|redirected|re directed|manipulated)(?![a-z])"
    r"[^.;]{0,40}?(?<![a-z])(?:lymphocytes?|t ?cells?|nk ?cells?|cells?)(?![a-z])|"
    r"(?<![a-z])(?:lymphocytes?|t ?cells?|nk ?cells?)(?![a-z])[^.;]{0,30}?"
    r"(?<![a-z])(?:engineered|modified|transduced|transfected|redirected)(?![a-z])"
)
#: Hit kinds that name a CAR (whatever the context) or another engineered product (TCR-T, TIL).
_CAR_WORD_KINDS = ("car", "car_weak", "caar", "product", "engineered")
_CELL_PRODUCT_TYPES = ("", "BIOLOGICAL", "GENETIC")
_SOURCE_RANK = {"in-vivo": 0, "allogeneic": 1, "autologous": 2}


def decide_source(ctx: Context, relation: str, chosen: list[Mention], platforms: list[str]) -> str:
    D = "product_source"
    if relation == "none" or not chosen:
        return "unknown"
    if "in-vivo-CAR" in platforms:
        ctx.add(D, "in-vivo", "source.in_vivo_platform", field="platforms", text="in-vivo-CAR")
        return "in-vivo"
    votes: dict[str, list[tuple[int, Hit]]] = {}
    for m in chosen:
        if m.product is not None and m.product.product_source in _SOURCE_RANK:
            votes.setdefault(m.product.product_source, []).append((0, m.hit))
    car_groups = {m.hit.seg.group for m in chosen if m.hit.seg.role in (INTERVENTION, INTERVENTION_DESC)}
    chosen_near = Near([m.hit for m in chosen])
    for h in ctx.of("source"):
        if _TRANSPLANT_AFTER.match(h.seg.norm[h.end : h.end + 24]):
            continue
        weight = _attached(h, chosen_near, car_groups)
        if weight is not None:
            votes.setdefault(h.entry.value, []).append((weight, h))
    if votes:
        ranked = sorted(votes.items(), key=lambda kv: (min(w for w, _ in kv[1]), -len(kv[1]), _SOURCE_RANK[kv[0]]))
        value, support = ranked[0]
        if len(ranked) > 1 and min(w for w, _ in ranked[1][1]) == min(w for w, _ in support):
            ctx.flag("conflict:product_source")
        w, hit = min(support, key=lambda x: x[0])
        ctx.add(D, value, "source.named_product" if w == 0 and hit.entry.kind == "product" else "source.stated", hit)
        return value
    for h in ctx.of("combo"):
        if h.entry.value == "procedure" and "apheresis" in h.seg.norm[h.start : h.end]:
            ctx.add(D, "autologous", "source.patient_leukapheresis", h)
            ctx.flag("source:from-leukapheresis")
            return "autologous"
    if "CAR-NK" in platforms:
        ctx.add(D, "allogeneic", "source.car_nk_default_allogeneic", field="platforms", text="CAR-NK")
        ctx.flag("default:product_source")
        return "allogeneic"
    ctx.add(D, "unknown", "source.not_stated")
    return "unknown"


def _attached(h: Hit, chosen: Near, car_groups: set[int]) -> int | None:
    """Weight of a source word (lower is stronger), or None when it does not qualify the CAR product."""
    if h.seg.role in (INTERVENTION, INTERVENTION_DESC) and h.seg.group in car_groups:
        return 1
    if h.seg not in chosen:
        return None
    if h.seg.role == TITLE:
        return 1
    # A CAR mention in the same sentence, starting from 40 characters before the word's end to 60 after it.
    lo, hi = sentence_bounds(h.seg, h.start)
    if chosen.between(h.seg, max(lo, h.end - 40), min(hi - 1, h.end + 60)):
        return 2
    return None


def _car_product_groups(ctx: Context) -> set[int]:
    """The interventions that no CAR mention was taken from but that still are the trial's CAR product.

    Interventions often list the CAR product twice: under its name and as "genetically engineered
    lymphocyte therapy", a dose level ("CAR-20/19-T cells, 1 x 10^6/kg") or a preparation.  A CAR word in
    its name, or a name that describes engineered cells in a biological or genetic intervention, makes it
    the CAR product, unless it names another engineered product (TCR-T, TIL), which is given beside the CAR.
    Computed once per trial from the hits grouped by intervention, so its cost is linear in the record.
    """
    # Names only: a drug's description often mentions the CAR-T it is given around.
    names: dict[int, list[Segment]] = {}
    for seg in ctx.segments:
        if seg.role == INTERVENTION:
            names.setdefault(seg.group, []).append(seg)

    def groups_of(hits: Iterable[Hit]) -> set[int]:
        return {h.seg.group for h in hits if h.seg.role == INTERVENTION}

    other_products = groups_of(ctx.of("non_car"))
    car_named = groups_of(ctx.of(*_CAR_WORD_KINDS)) | groups_of(h for h in ctx.of("antigen") if h.entry.car_glued)
    out = set()
    for i, iv in enumerate(ctx.trial.get("interventions") or []):
        if not isinstance(iv, dict) or i in other_products:
            continue
        if i in car_named or (
            (iv.get("type") or "").upper() in _CELL_PRODUCT_TYPES
            and any(_ENGINEERED_CELLS.search(seg.norm) for seg in names.get(i, []))
        ):
            out.add(i)
    return out


def decide_combinations(ctx: Context, relation: str, chosen: list[Mention]) -> list[str]:
    D = "combinations"
    if relation != "therapy":
        return []
    found: set[str] = set()
    car_groups = {m.hit.seg.group for m in chosen if m.hit.seg.role in (INTERVENTION, INTERVENTION_DESC)}
    iv_names: dict[int, list[Hit]] = {}
    for h in ctx.of("combo"):
        if h.seg.role == INTERVENTION:
            iv_names.setdefault(h.seg.group, []).append(h)
    car_products = _car_product_groups(ctx)
    for i, iv in enumerate(ctx.trial.get("interventions") or []):
        if not isinstance(iv, dict) or i in car_groups or i in car_products:
            continue
        kinds = iv_names.get(i, [])
        if not kinds:
            itype = (iv.get("type") or "").upper()
            if (
                iv.get("name")
                and itype in ("", "DRUG", "BIOLOGICAL", "COMBINATION_PRODUCT")
                and not _NOT_A_DRUG.search(iv["name"].lower())
            ):
                field = f"interventions[{i}].name"
                ctx.add(D, "other-drug", "combination.other_listed_intervention", field=field, text=iv["name"])
                found.add("other-drug")
            continue
        for h in kinds:
            if h.entry.value in ("HSCT", "checkpoint-inhibitor", "radiotherapy") and h.entry.value not in found:
                found.add(h.entry.value)
                ctx.add(D, h.entry.value, "combination.listed_intervention", h)
    # "CAR-T bridging to allo-HSCT", "CAR-T combined with PD-1 antibody" in the title or summary.
    chosen_segs = {id(m.hit.seg) for m in chosen}
    for h in ctx.of("combo"):
        if h.entry.value not in ("HSCT", "checkpoint-inhibitor") or h.entry.value in found:
            continue
        if h.seg.role not in (TITLE, *PROSE_ROLES) or id(h.seg) not in chosen_segs:
            continue
        before = h.seg.norm[max(0, h.start - 40) : h.start]
        if _WITH_BEFORE.search(before) and not _HISTORY_BEFORE.search(before):
            found.add(h.entry.value)
            ctx.add(D, h.entry.value, "combination.stated_with_car", h)
    return [c for c in ("HSCT", "checkpoint-inhibitor", "radiotherapy", "other-drug") if c in found]
