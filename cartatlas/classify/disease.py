"""Disease rules: the disease entities studied and the branch they belong to.

Conditions and titles say what a trial is for; summaries often also name
diseases as background, so they are read only when the conditions and title
name none.  A generic entity ("lymphoma", "solid tumor") gives way to a
specific one of the same branch, and an unspecified acute lymphoblastic
leukaemia or lymphoma is refined by the lineage of the CAR target (a CD19
CAR-T in "ALL" is a B-ALL trial).
"""

from __future__ import annotations

from cartatlas.classify.context import Context
from cartatlas.classify.text import CONDITION, KEYWORD, TITLE, Hit

D = "disease_entity"
_B_LINEAGE = frozenset({"CD19", "CD20", "CD22", "CD79b", "BAFF-R", "KappaLC", "CD37", "CD10"})
_T_LINEAGE = frozenset({"CD7", "CD5", "CD4", "CD1a", "TRBC1", "TRBC2", "CD30"})
_REFINE = {"ALL": ("B-ALL", "T-ALL"), "lymphoma": ("B-NHL", "T-cell lymphoma")}
_LEVEL_RANK = {"specific": 0, "group": 1, "generic": 2}


def decide(ctx: Context, targets: list[str]) -> tuple[list[str], str]:
    kb = ctx.kb
    hits = [h for h in ctx.of("disease") if h.seg.role in (CONDITION, TITLE, KEYWORD)]
    rule = "disease.conditions_or_title"
    if not hits:
        hits = list(ctx.of("disease"))
        rule = "disease.text"
    first: dict[str, Hit] = {}
    for h in hits:
        first.setdefault(h.entry.value, h)
    entities = list(first)
    # Keep the most specific level within each branch.
    best: dict[str, int] = {}
    for e in entities:
        d = kb.diseases[e]
        best[d.branch] = min(best.get(d.branch, 9), _LEVEL_RANK.get(d.level, 2))
    entities = [e for e in entities if _LEVEL_RANK.get(kb.diseases[e].level, 2) == best[kb.diseases[e].branch]]
    tset = set(targets)
    refined: list[str] = []
    for e in entities:
        if e in _REFINE and tset:
            b_name, t_name = _REFINE[e]
            if tset <= _B_LINEAGE:
                ctx.add(D, b_name, "disease.refined_by_b_lineage_target", first[e])
                e = b_name
            elif tset <= _T_LINEAGE:
                ctx.add(D, t_name, "disease.refined_by_t_lineage_target", first[e])
                e = t_name
        if e not in refined:
            refined.append(e)
    for e in refined:
        if e in first:
            ctx.add(D, e, rule, first[e])
    branches = []
    for e in refined:
        b = kb.diseases[e].branch
        if b not in branches:
            branches.append(b)
    if len(branches) == 1:
        branch = branches[0]
    elif len(branches) > 1:
        branch = "mixed"
    else:
        branch = _branch_from_targets(ctx, targets)
    if branch != "unknown" and refined:
        ctx.add("branch", branch, "branch.from_disease_entities", field="disease_entity", text=", ".join(refined))
    return refined, branch


def _branch_from_targets(ctx: Context, targets: list[str]) -> str:
    lineages = set()
    for t in targets:
        info = ctx.kb.antigens.get(t)
        if info is None:
            return "unknown"
        lineages.add(info.lineages)
    if len(lineages) == 1:
        (only,) = lineages
        if len(only) == 1 and only[0] in ("heme", "solid"):
            branch = "heme-malignancy" if only[0] == "heme" else "solid-tumor"
            ctx.add("branch", branch, "branch.from_target_lineage", field="targets", text=", ".join(targets))
            ctx.flag("branch:from-target")
            return branch
    ctx.flag("unknown-disease")
    ctx.add("branch", "unknown", "branch.no_disease_found")
    return "unknown"
