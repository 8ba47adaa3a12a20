"""One record per figure: what draws it, what its caption says, how wide it prints and where the page shows it.

A figure is declared once, as a :class:`Figure` beside its builder; the
registry (:data:`cartatlas.report.figures.FIGURES`) gathers the records.  The
report writes every declared figure and its page shows each one in the place
its record names (``section``: one of :data:`SECTIONS`, which the page's
template asks for by that name), so a figure cannot be drawn and never shown,
nor shown without being declared.  ``Atlas.figure`` finds it by its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from cartatlas.analysis.landscape import Landscape
from cartatlas.report.figures.theme import DOUBLE_COLUMN, SINGLE_COLUMN, FigureChart

#: The places of the report page that show figures (the id of the page's ``<section>``, and for a disease
#: branch a second place under its "Over time" heading), in page order, with what stands there.
SECTIONS: Mapping[str, str] = MappingProxyType(
    {
        "fig1a": "Trials over time (Fig. 1a)",
        "phase": "Phases and status by country group, after its tables",
        "branch-heme": "Haematological malignancies: the focus country's targets (Fig. 1b)",
        "branch-heme/over-time": "Haematological malignancies: over time, all countries",
        "branch-solid": "Solid tumours: the focus country's targets (Fig. 1c)",
        "branch-solid/over-time": "Solid tumours: over time, all countries",
        "branch-autoimmune": "Autoimmune diseases: the focus country's targets",
        "branch-autoimmune/over-time": "Autoimmune diseases: over time, all countries",
        "targets": "Targets in the focus country: timelines",
        "regions": "Regions and cities of the focus country",
        "sponsors": "Sponsors and sites",
        "platforms": "Platforms, product sources and disease branches",
        "publications": "Published clinical reports (Fig. 2)",
    }
)


class Builder(Protocol):
    """Draws a figure from the landscape at a total width in points."""

    def __call__(self, landscape: Landscape, *, width: int) -> FigureChart: ...


@dataclass(frozen=True)
class Figure:
    """A figure of the report, declared once.

    ``name`` is its file name (``figures/NAME.png``, ``.svg``), the id of its
    place on the page and the name ``Atlas.figure`` takes.  ``needs`` names a
    landscape table without which the figure is not drawn at all (Fig. 2
    needs published clinical reports); every other figure is drawn always,
    saying "No trials ..." when it has nothing to count.
    """

    name: str
    builder: Builder
    caption: Callable[[Landscape], str]
    section: str
    width: int = SINGLE_COLUMN
    needs: str | None = None

    @property
    def wide(self) -> bool:
        """Printed across two columns (174 mm) rather than one (85 mm)."""
        return self.width > SINGLE_COLUMN

    def draw(self, landscape: Landscape) -> FigureChart:
        """The Altair chart, exactly as the report writes it."""
        return self.builder(landscape, width=self.width)

    def drawn_for(self, landscape: Landscape) -> bool:
        """Whether the report draws this figure for ``landscape`` (its ``needs`` table has rows)."""
        if self.needs is None:
            return True
        table = landscape.tables.get(self.needs)
        return table is not None and not table.empty


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def declare(*groups: Iterable[Figure]) -> Mapping[str, Figure]:
    """The registry: every figure of ``groups`` by name, in page order; refuses a clash or a place the page lacks.

    Page order is the order of :data:`SECTIONS`, and within a section the
    order of declaration.
    """
    registry: dict[str, Figure] = {}
    for figure in (f for group in groups for f in group):
        if not _NAME.fullmatch(figure.name):
            raise ValueError(f"figure name {figure.name!r}: lower case letters, digits and _ only (a file name)")
        if figure.name in registry:
            raise ValueError(f"figure {figure.name!r} is declared twice")
        if figure.section not in SECTIONS:
            raise ValueError(f"figure {figure.name!r}: no place {figure.section!r} on the page ({', '.join(SECTIONS)})")
        if figure.width not in (SINGLE_COLUMN, DOUBLE_COLUMN):
            raise ValueError(f"figure {figure.name!r}: width {figure.width} is neither one column nor two")
        registry[figure.name] = figure
    places = list(SECTIONS)
    in_page_order = sorted(registry.values(), key=lambda f: places.index(f.section))
    return MappingProxyType({f.name: f for f in in_page_order})
