"""Small SVG charts drawn here, with nothing from the network: bars, cumulative lines, China's tile map.

Every text is escaped (registry text ends up in labels); colours are
presentation attributes, not inline styles, so the strict
Content-Security-Policy holds.  Each bar or tile can link to the trials
behind its number, and carries a ``<title>`` that screen readers and
tooltips show.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#d1495b", "#2a9d8f", "#8d6a9f", "#e9a03b", "#5c6b73")
BAR = "#1f6feb"


@dataclass(frozen=True)
class Bar:
    label: str
    n: int
    href: str | None = None


def _a(href: str | None, inner: str) -> str:
    return f'<a href="{escape(href)}">{inner}</a>' if href else inner


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bars(rows: list[Bar], *, title: str, label_width: int = 170, width: int = 520) -> Markup:
    """A horizontal bar chart: one row per value, its count at the end of the bar."""
    if not rows:
        return Markup('<p class="empty">No trials.</p>')
    top = max(r.n for r in rows) or 1
    row_h = 22
    height = row_h * len(rows) + 6
    span = width - label_width - 50
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, r in enumerate(rows):
        y = i * row_h + 4
        w = max(1.0, span * r.n / top) if r.n else 0
        inner = (
            f"<title>{escape(r.label)}: {r.n:,}</title>"
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" class="lbl">'
            f"{escape(_short(r.label, 28))}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{BAR}" rx="2"/>'
            f'<text x="{label_width + w + 5:.1f}" y="{y + 14}" class="num">{r.n:,}</text>'
        )
        parts.append(f"<g>{_a(r.href, inner)}</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(series: dict[str, list[tuple[int, int]]], *, title: str, width: int = 900, height: int = 260) -> Markup:
    """Cumulative counts per year, one line per series, with a legend."""
    points = [p for s in series.values() for p in s]
    if not points:
        return Markup('<p class="empty">No trials.</p>')
    years = sorted({y for y, _ in points})
    top = max(n for _, n in points) or 1
    left, right, bottom, upper = 48, 28, 26, 10
    plot_w, plot_h = width - left - right, height - bottom - upper
    span = max(1, years[-1] - years[0])

    def x(year: int) -> float:
        return left + plot_w * (year - years[0]) / span

    def y(n: int) -> float:
        return upper + plot_h * (1 - n / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height + 22 * ((len(series) + 2) // 3)}" width="100%" '
        f'role="img" aria-label="{escape(title)}">'
    ]
    for k in range(5):
        value = round(top * k / 4)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" class="num">{value:,}</text>'
        )
    step = max(1, len(years) // 8)
    for year in years[::step]:
        parts.append(f'<text x="{x(year):.1f}" y="{height - 8}" text-anchor="middle" class="num">{year}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.2">')
        parts.append(f"<title>{escape(name)}: {pts[-1][1] if pts else 0:,}</title></polyline>")
        lx, ly = left + (i % 3) * (plot_w / 3), height + 14 + 22 * (i // 3)
        parts.append(
            f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 16:.1f}" y="{ly + 1:.1f}" class="lbl">{escape(_short(name, 24))} '
            f"({pts[-1][1] if pts else 0:,})</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Tile:
    code: str
    name: str
    abbr: str
    row: int
    col: int


@lru_cache(maxsize=1)
def china_tiles() -> tuple[Tile, ...]:
    """The tile layout of China's provinces (``data/cn_tiles.csv``, with its source note)."""
    text = resources.files("cartatlas.explorer").joinpath("data/cn_tiles.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(Tile(r["region_code"], r["region"], r["abbr"], int(r["row"]), int(r["col"])) for r in rows)


def _shade(n: int, top: int) -> str:
    """A blue from pale (few trials) to deep (most); grey for none."""
    if n <= 0 or top <= 0:
        return "#e8ebef"
    t = (n / top) ** 0.5
    light, dark = (219, 234, 254), (29, 78, 216)
    r, g, b = (round(a + (d - a) * t) for a, d in zip(light, dark, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def tile_map(counts: dict[str, int], hrefs: dict[str, str], *, title: str) -> Markup:
    """China's provinces as a grid of equal tiles, shaded by trials; each tile links to its trials."""
    tiles = china_tiles()
    size, gap = 58, 4
    cols = max(t.col for t in tiles) + 1
    rows = max(t.row for t in tiles) + 1
    width, height = cols * (size + gap), rows * (size + gap)
    top = max(counts.values(), default=0)
    parts = [
        f'<svg class="chart tilemap" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    for t in tiles:
        n = counts.get(t.name, 0)
        x, y = t.col * (size + gap), t.row * (size + gap)
        fill = _shade(n, top)
        ink = "on-dark" if top and n / top > 0.3 else "on-light"
        inner = (
            f"<title>{escape(t.name)}: {n:,} trial{'s' if n != 1 else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{size}" height="{size}" rx="5" fill="{fill}"/>'
            f'<text x="{x + size / 2}" y="{y + 24}" text-anchor="middle" class="abbr {ink}">{escape(t.abbr)}</text>'
            f'<text x="{x + size / 2}" y="{y + 44}" text-anchor="middle" class="num {ink}">{n:,}</text>'
        )
        parts.append(f"<g>{_a(hrefs.get(t.name) if n else None, inner)}</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
