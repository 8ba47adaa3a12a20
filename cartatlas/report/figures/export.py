"""Writing a figure: PNG and SVG (or PDF) through vl-convert, with no browser and no network.

Nothing in a figure refers to a remote resource, and rendering is forbidden
to load any URL, so a figure can only show the data in its spec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

from cartatlas.report.figures.theme import PNG_PPI
from cartatlas.spreadsheet import xml_safe


def chart_title(chart: alt.TopLevelMixin) -> str:
    """A chart's title (and subtitle) as one line of text, e.g. for an HTML heading or alt text."""
    title = getattr(chart, "title", alt.Undefined)
    if title is alt.Undefined:
        return ""
    if isinstance(title, str):
        return title
    if isinstance(title, list):
        return " ".join(title)
    text = getattr(title, "text", "")
    subtitle = getattr(title, "subtitle", alt.Undefined)
    line = " ".join(text) if isinstance(text, list) else str(text)
    if subtitle is not alt.Undefined:
        line += ". " + (" ".join(subtitle) if isinstance(subtitle, list) else str(subtitle))
    return line


def _vl_version() -> str | None:
    """The Vega-Lite version Altair writes, if vl-convert knows it (else vl-convert's own latest)."""
    wanted = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    return wanted if wanted in vlc.get_vegalite_versions() else None


def save_figure(
    chart: alt.TopLevelMixin,
    out_dir: str | Path,
    name: str,
    *,
    formats: Sequence[str] = ("png", "svg"),
    ppi: float = PNG_PPI,
    on_replaced: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``name.png`` (at ``ppi``, 300 by default, recorded in the file) and ``name.svg``; returns the paths.

    Rendered by vl-convert, with no browser and with every URL refused, so a
    figure can only show the data in its spec.  ``formats`` may add ``pdf``
    (fonts embedded, for journals that want vector files).  Characters an SVG
    cannot hold (control characters in a sponsor's name made vl-convert abort
    the whole process) are replaced with U+FFFD first; ``on_replaced`` hears
    how many strings of the spec changed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changed = [0]
    spec = _xml_safe(chart.to_dict(), changed)
    if on_replaced is not None and changed[0]:
        on_replaced(changed[0])
    version = _vl_version()
    paths: list[Path] = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        if fmt == "png":
            path.write_bytes(vlc.vegalite_to_png(spec, vl_version=version, ppi=ppi, allowed_base_urls=[]))
        elif fmt == "svg":
            svg = vlc.vegalite_to_svg(spec, vl_version=version, allowed_base_urls=[])
            path.write_text(svg, encoding="utf-8")
        elif fmt == "pdf":
            path.write_bytes(vlc.vegalite_to_pdf(spec, vl_version=version, allowed_base_urls=[]))
        else:
            raise ValueError(f"unknown figure format {fmt!r} (png, svg or pdf)")
        paths.append(path)
    return paths


def _xml_safe(value: Any, changed: list[int]) -> Any:
    """A chart spec with every string XML-safe; ``changed[0]`` counts the strings that were not."""
    if isinstance(value, str):
        safe = xml_safe(value)
        if safe != value:
            changed[0] += 1
        return safe
    if isinstance(value, dict):
        return {_xml_safe(k, changed): _xml_safe(v, changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_xml_safe(v, changed) for v in value]
    return value
