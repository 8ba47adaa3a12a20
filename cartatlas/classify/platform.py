"""Platform rules: which kind of CAR-engineered product the trial gives.

The platform is read from the CAR term itself (CAR-NK, CAAR-T, CAR-Treg), from
a named product, or from the cell type named next to a generic "chimeric
antigen receptor"; a CAR with no cell type named is a CAR-T, the dominant
platform, and says so in its evidence.  "In vivo" counts only when it
qualifies the CAR itself (not "expansion in vivo").
"""

from __future__ import annotations

import re

from cartatlas.classify.context import Context, Mention
from cartatlas.classify.text import PROSE_ROLES, TITLE, Hit, sentence_bounds

D = "platforms"
_SPECIFIC_FIRST = ("CAAR-T", "CAR-Treg", "CAR-NKT", "CAR-gdT", "CAR-NK", "CAR-M", "CAR-other")
_VIVO_GAP = re.compile(r"^[\s/]*(?:(?:generated|engineered|delivered|produced|programmed|anti|targeting)\s*)*$")
_ALWAYS_VIVO = ("lipid nanoparticle", "lnp", "vivovec", "mrna lnp", "tlnp")


def decide(ctx: Context, relation: str, mentions: list[Mention]) -> list[str]:
    if relation == "none" or not mentions:
        return []
    found: list[str] = []
    defaulted: Mention | None = None
    for m in mentions:
        platform = m.platform or _cell_platform(ctx, m)
        if platform:
            if platform not in found:
                found.append(platform)
                ctx.add(D, platform, "platform.product" if m.product else "platform.term", m.hit)
        elif defaulted is None:
            defaulted = m
    if defaulted is not None and not found:
        found.append("CAR-T")
        ctx.add(D, "CAR-T", "platform.default_car_is_t_cell", defaulted.hit)
        ctx.flag("default:platform")
    vivo = _in_vivo(ctx, mentions)
    if vivo is not None:
        ctx.add(D, "in-vivo-CAR", "platform.in_vivo", vivo)
        found = ["in-vivo-CAR", *[p for p in found if p not in ("CAR-T", "in-vivo-CAR")]]
    return found


def _cell_platform(ctx: Context, m: Mention) -> str:
    seg = m.hit.seg
    lo, hi = sentence_bounds(seg, m.hit.start) if seg.role in PROSE_ROLES else (0, len(seg.norm))
    cues = [h for h in ctx.of("cell") if h.seg is seg and lo <= h.start < hi]
    values = {h.entry.value for h in cues}
    for p in _SPECIFIC_FIRST:
        if p in values:
            return p
    return "CAR-T" if "CAR-T" in values else ""


def _in_vivo(ctx: Context, mentions: list[Mention]) -> Hit | None:
    for m in mentions:
        if m.product is not None and m.product.platform == "in-vivo-CAR":
            return m.hit
    by_seg: dict[int, list[Mention]] = {}
    for m in mentions:
        by_seg.setdefault(id(m.hit.seg), []).append(m)
    for h in ctx.of("vivo"):
        near = by_seg.get(id(h.seg), [])
        if not near:
            continue
        key = h.seg.norm[h.start : h.end]
        if key in _ALWAYS_VIVO and (h.seg.role == TITLE or h.seg.role.startswith("intervention")):
            return h
        for m in near:
            if 0 <= m.hit.start - h.end <= 25 and _VIVO_GAP.match(h.seg.norm[h.end : m.hit.start]):
                return h
    return None
