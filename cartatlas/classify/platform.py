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
from cartatlas.classify.text import PROSE_ROLES, STRONG_ROLES, TITLE, Hit, Near, Segment, sentence_bounds

D = "platforms"
_SPECIFIC_FIRST = ("CAAR-T", "CAR-Treg", "CAR-NKT", "CAR-gdT", "CAR-NK", "CAR-M", "CAR-other")
_VIVO_GAP = re.compile(r"^[\s/]*(?:(?:generated|engineered|delivered|produced|programmed|anti|targeting)\s*)*$")
_ALWAYS_VIVO = ("lipid nanoparticle", "lnp", "vivovec", "mrna lnp", "tlnp")


def decide(ctx: Context, relation: str, mentions: list[Mention]) -> list[str]:
    if relation == "none" or not mentions:
        return []
    found: list[str] = []
    defaulted: Mention | None = None
    cells: _Cells | None = None
    for m in mentions:
        platform = m.platform
        if not platform:
            cells = cells or _Cells(ctx)
            platform = cells.platform(m)
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
    found = _background_car_t(ctx, mentions, found, cells)
    vivo = _in_vivo(ctx, mentions)
    if vivo is not None:
        ctx.add(D, "in-vivo-CAR", "platform.in_vivo", vivo)
        found = ["in-vivo-CAR", *[p for p in found if p not in ("CAR-T", "in-vivo-CAR")]]
    return found


def _background_car_t(ctx: Context, mentions: list[Mention], found: list[str], cells: _Cells | None) -> list[str]:
    """Drop a CAR-T read only from prose when the title, an intervention or a product names another platform.

    Summaries of CAR-NK trials cite CAR-T as the field's background ("CAR-T cells have transformed ..."):
    that CAR-T is not the trial's second platform (issue 13, adjudicated set).
    """
    if "CAR-T" not in found or len(found) < 2:
        return found
    strong_platforms: set[str] = set()
    for m in mentions:
        role = m.hit.seg.role
        if role in STRONG_ROLES or m.product is not None:
            platform = m.platform or (cells.platform(m) if cells is not None else "")
            if platform:
                strong_platforms.add(platform)
    if "CAR-T" in strong_platforms or not strong_platforms - {"CAR-T", "in-vivo-CAR"}:
        return found
    ctx.add(D, "CAR-T", "platform.car_t_only_in_background_text", field="platforms", text=", ".join(found))
    return [p for p in found if p != "CAR-T"]


class _Cells:
    """The platform named by a cell word in a mention's sentence, looked up per platform by bisection."""

    def __init__(self, ctx: Context) -> None:
        by_value: dict[str, list[Hit]] = {}
        for h in ctx.of("cell"):
            by_value.setdefault(h.entry.value, []).append(h)
        self.near = {value: Near(hits) for value, hits in by_value.items()}
        self.seen: dict[tuple[int, int, int], str] = {}

    def platform(self, m: Mention) -> str:
        seg = m.hit.seg
        lo, hi = sentence_bounds(seg, m.hit.start) if seg.role in PROSE_ROLES else (0, len(seg.norm))
        key = (id(seg), lo, hi)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self._platform(seg, lo, hi)
        return found

    def _platform(self, seg: Segment, lo: int, hi: int) -> str:
        for p in (*_SPECIFIC_FIRST, "CAR-T"):
            near = self.near.get(p)
            if near is not None and near.between(seg, lo, hi - 1):
                return p
        return ""


def _in_vivo(ctx: Context, mentions: list[Mention]) -> Hit | None:
    for m in mentions:
        if m.product is not None and m.product.platform == "in-vivo-CAR":
            return m.hit
    vivo = ctx.of("vivo")
    if not vivo:
        return None
    near = Near([m.hit for m in mentions])
    for h in vivo:
        if h.seg not in near:
            continue
        key = h.seg.norm[h.start : h.end]
        if key in _ALWAYS_VIVO and (h.seg.role == TITLE or h.seg.role.startswith("intervention")):
            return h
        for car in near.between(h.seg, h.end, h.end + 25):
            if _VIVO_GAP.match(h.seg.norm[h.end : car.start]):
                return h
    return None
