"""The report's figures: specs that say what they show, fixed group colours, files that open.

The landscape here is HAND-MADE: small DataFrames typed in below, shaped like
``compute_landscape``'s tables (with their ``trial_ids`` list columns), not
counts from real records.  They test the drawing, not the counting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import itertools
import json
import pkgutil
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cartatlas
from cartatlas.analysis.groups import load_scheme
from cartatlas.analysis.landscape import Landscape, LandscapeOptions
from cartatlas.report import figures
from cartatlas.report.figures import (
    FIGURES,
    GROUP_COLOURS,
    PNG_PPI,
    SINGLE_COLUMN,
    save_figure,
)
from cartatlas.report.figures.declare import declare
from cartatlas.report.figures.layout import dodge, nice_ceiling
from cartatlas.report.figures.over_time import TIMELINE_SPACING
from cartatlas.report.figures.theme import count_ticks
from cartatlas.report.html import _FigurePlaces
from tests.test_pubmed_classify import load_articles

PUBLICATION_FIGURES = [name for name, figure in FIGURES.items() if figure.needs == "pub_fig2a"]
TRIAL_FIGURES = [name for name, figure in FIGURES.items() if figure.needs is None]

AS_OF = dt.date(2020, 6, 30)


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def hand_made_landscape(scheme: str = "wei2021") -> Landscape:
    """A tiny hand-made landscape (not real data): 3 years, 3 groups, a few targets, regions and sponsors."""
    options = LandscapeOptions(as_of=AS_OF, groups=load_scheme(scheme))
    groups = [*options.groups.names, "No location given"]
    cumulative = pd.DataFrame(
        [
            (group, year, (dt.date(year, 12, 31) if year < 2020 else AS_OF).isoformat(), n, _ids(group[:2], n))
            for group, counts in zip(groups, [(3, 8, 12), (5, 7, 9), (1, 2, 4), (0, 0, 0)], strict=False)
            for year, n in zip((2018, 2019, 2020), counts, strict=True)
        ],
        columns=["group", "year", "up_to", "n", "trial_ids"],
    )
    first, second, third = groups[0], groups[1], groups[2]
    phase = pd.DataFrame(
        [
            (first, "Phase 1", 10, _ids("a", 10)),
            (first, "Phase 2", 2, _ids("b", 2)),
            (second, "Phase 1", 6, _ids("c", 6)),
            (second, "Phase 3", 1, _ids("d", 1)),
            (second, "Not applicable", 2, _ids("e", 2)),
            (third, "Phase 1", 4, _ids("f", 4)),
        ],
        columns=["group", "phase_category", "n", "trial_ids"],
    )
    sponsor_type = pd.DataFrame(
        [
            (first, "Academic / hospital", 9, _ids("a", 9)),
            (first, "Industry", 3, _ids("b", 3)),
            (second, "Industry", 5, _ids("c", 5)),
            (second, "Government", 4, _ids("d", 4)),
            (third, "Academic / hospital", 4, _ids("f", 4)),
        ],
        columns=["group", "sponsor_type", "n", "trial_ids"],
    )

    def targets(rows: list[tuple[str, int, int, dict[str, int]]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "target": t,
                    "n": n,
                    "alone": alone,
                    "in_combination": n - alone,
                    "partners": partners,
                    "trial_ids": _ids(t, n),
                    "alone_ids": _ids(t, alone),
                    "combination_ids": _ids(t + "x", n - alone),
                }
                for t, n, alone, partners in rows
            ]
        )

    heme = targets([("CD19", 8, 5, {"CD22": 2, "CD20": 1}), ("CD22", 3, 1, {"CD19": 2}), ("BCMA", 2, 2, {})])
    solid = targets([("Mesothelin", 2, 1, {"MUC1": 1}), ("MUC1", 1, 0, {"Mesothelin": 1})])
    autoimmune = targets([("CD19", 4, 2, {"BCMA": 2}), ("BCMA", 3, 1, {"CD19": 2}), ("CD20", 1, 1, {})])
    # Per branch and group: (new that year, running total) for 2018-2020; the solid branch starts in 2019.
    by_year = pd.DataFrame(
        [
            (branch, group, year, (dt.date(year, 12, 31) if year < 2020 else AS_OF).isoformat(), new, n, [], [])
            for branch, start in (("heme-malignancy", 2018), ("solid-tumor", 2019), ("autoimmune", 2020))
            for group, scale in zip(groups, (3, 2, 1, 0, 0), strict=False)
            for year, (new, n) in zip(
                (2018, 2019, 2020),
                [(0, 0) if y < start else (scale, scale * (y - start + 1)) for y in (2018, 2019, 2020)],
                strict=True,
            )
        ],
        columns=["branch", "group", "year", "up_to", "new", "n", "new_ids", "trial_ids"],
    )
    target_years = pd.DataFrame(
        [
            (target, rank, year, n, _ids(f"{target}{year}", n))
            for rank, (target, counts) in enumerate((("CD19", (1, 3, 2)), ("BCMA", (0, 1, 2))), start=1)
            for year, n in zip((2018, 2019, 2020), counts, strict=True)
        ],
        columns=["target", "rank", "year", "n", "trial_ids"],
    )
    regions = pd.DataFrame(
        [("Beijing", 5, _ids("r", 5)), ("Shanghai", 3, _ids("s", 3)), ("Unknown region", 1, ["u"])],
        columns=["region", "n", "trial_ids"],
    )
    platforms = pd.DataFrame(
        [("CAR-T", 20, _ids("p", 20)), ("CAR-NK", 2, _ids("q", 2))], columns=["platform", "n", "trial_ids"]
    )
    product_source = pd.DataFrame(
        [("autologous", 15, _ids("p", 15)), ("allogeneic", 3, _ids("q", 3)), ("unknown", 4, _ids("u", 4))],
        columns=["product_source", "n", "trial_ids"],
    )
    sponsors = pd.DataFrame(
        [
            ("Hospital A", 4, _ids("h", 4)),
            ("A Very Long Sponsor Name Co., Ltd. (formerly Another Long Name Research Institute)", 3, _ids("c", 3)),
            ("Agency C", 2, _ids("g", 2)),
        ],
        columns=["lead_sponsor", "n", "trial_ids"],
    )
    units = pd.DataFrame(
        {
            "unit_id": ["u1", "u2", "u3"],
            "lead_sponsor": list(sponsors["lead_sponsor"]),
            "sponsor_type": ["Academic / hospital", "Industry", "Government"],
        }
    )
    tables = {
        "cumulative_by_year": cumulative,
        "phase_by_group": phase,
        "sponsor_type_by_group": sponsor_type,
        "focus_targets_heme": heme,
        "focus_targets_solid": solid,
        "focus_targets_autoimmune": autoimmune,
        "branch_by_year": by_year,
        "focus_target_years": target_years,
        "focus_regions": regions,
        "platforms": platforms,
        "product_source": product_source,
        "top_sponsors": sponsors,
        "top_focus_sponsors": sponsors.head(2),
    }
    facts = {"totals": {"units": 22}}
    notes = {"date_sources": {"estimated_from_id": 20, "first_posted": 2}}
    return Landscape(options, units, tables, facts, notes)


def empty_landscape() -> Landscape:
    """The same tables with no rows (a filter that matches nothing)."""
    full = hand_made_landscape()
    tables = {name: table.iloc[0:0] for name, table in full.tables.items()}
    return Landscape(full.options, full.units.iloc[0:0], tables, {"totals": {"units": 0}}, {})


#: Rows each figure hands to Vega-Lite from the hand-made landscape (groups with no trials are left out).
EXPECTED_ROWS = {
    "fig1a_cumulative": 9,
    "fig1a_inset_phase_by_group": 6,
    "fig1b_focus_targets_heme": 3,
    "fig1c_focus_targets_solid": 2,
    "fig_focus_targets_autoimmune": 3,
    # From the year before the branch's first trial, groups with trials only: 3 years x 3 groups, 2 x 3, 2 x 3.
    "fig_over_time_heme": 9,
    "fig_over_time_solid": 9,
    "fig_over_time_autoimmune": 6,
    "fig_focus_target_timelines": 6,
    "fig_focus_regions": 3,
    "fig_sponsor_type_by_group": 5,
    "fig_platforms": 2,
    "fig_product_source": 3,
    "fig_top_sponsors": 3,
    "fig_top_focus_sponsors": 2,
}
#: The axis title that carries the unit, per figure.
VALUE_AXIS = {
    "fig1a_cumulative": "Trials registered (cumulative)",
    "fig_over_time_heme": "Trials registered (cumulative)",
    "fig_over_time_solid": "Trials registered (cumulative)",
    "fig_over_time_autoimmune": "Trials registered (cumulative)",
    "fig_focus_target_timelines": "New trials (n)",
    "fig1a_inset_phase_by_group": "Share of the group's trials (%)",
    "fig_sponsor_type_by_group": "Share of the group's trials (%)",
}
GROUP_FIGURES = ("fig1a_cumulative", "fig1a_inset_phase_by_group", "fig_sponsor_type_by_group")


def _layers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield spec
    if isinstance(spec.get("spec"), dict):  # the panel of small multiples
        yield from _layers(spec["spec"])
    for layer in spec.get("layer", []):
        yield from _layers(layer)


def _mark(part: dict[str, Any]) -> str:
    mark = part.get("mark", "")
    return str(mark["type"] if isinstance(mark, dict) else mark)


def _main_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the chart's own data: the top-level data, else that of the first layer drawing bars or lines."""
    if "name" in spec.get("data", {}):
        return list(spec["datasets"][spec["data"]["name"]])
    for part in _layers(spec):
        if _mark(part) in ("bar", "line") and "name" in part.get("data", {}):
            return list(spec["datasets"][part["data"]["name"]])
    raise AssertionError("no named dataset in spec")


def _axis_titles(spec: dict[str, Any]) -> set[str]:
    titles = set()
    for part in _layers(spec):
        for channel in ("x", "y"):
            enc = part.get("encoding", {}).get(channel)
            if isinstance(enc, dict) and isinstance(enc.get("axis"), dict) and enc["axis"].get("title"):
                titles.add(enc["axis"]["title"])
            if isinstance(enc, dict) and enc.get("title"):
                titles.add(enc["title"])
    return titles


def _colour_scales(spec: dict[str, Any]) -> list[dict[str, str]]:
    scales = []
    for part in _layers(spec):
        colour = part.get("encoding", {}).get("color")
        if isinstance(colour, dict) and isinstance(colour.get("scale"), dict) and "domain" in colour["scale"]:
            scales.append(dict(zip(colour["scale"]["domain"], colour["scale"]["range"], strict=True)))
    return scales


@pytest.fixture(scope="module")
def landscape() -> Landscape:
    return hand_made_landscape()


@pytest.mark.parametrize("name", TRIAL_FIGURES)
def test_figure_spec(landscape: Landscape, name: str) -> None:
    chart = FIGURES[name].draw(landscape)
    spec = chart.to_dict()
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v")
    # Titled axes, with units.
    titles = _axis_titles(spec)
    assert VALUE_AXIS.get(name, "Trials (n)") in titles
    if name == "fig1a_cumulative" or name.startswith("fig_over_time"):
        assert "Year of registration" in titles
    # Title says what it shows and when.
    assert "30 Jun 2020" in figures.chart_title(chart)
    # The chart's data: one row per table row, no list columns (trial_ids stay in the tables).
    rows = _main_rows(spec)
    assert len(rows) == EXPECTED_ROWS[name]
    for dataset in spec["datasets"].values():
        for row in dataset:
            assert not any(isinstance(v, list | dict) for v in row.values())
            assert "trial_ids" not in row
    # The shared style is on the chart itself, so any renderer draws the same figure.
    assert spec["config"]["font"] == figures.FONT
    if "facet" in spec:  # small multiples: panels that fill a double column
        columns = spec["columns"]
        panels = columns * spec["spec"]["width"] + TIMELINE_SPACING * (columns - 1)
        assert figures.DOUBLE_COLUMN - 40 <= panels <= figures.DOUBLE_COLUMN
    else:
        assert spec["width"] in (figures.SINGLE_COLUMN, figures.DOUBLE_COLUMN)
    assert figures.caption(name, landscape)


@pytest.mark.parametrize("name", GROUP_FIGURES)
def test_group_colours_fixed(landscape: Landscape, name: str) -> None:
    scales = _colour_scales(FIGURES[name].draw(landscape).to_dict())
    assert scales
    for scale in scales:
        for group, colour in scale.items():
            assert colour == GROUP_COLOURS[group]
    assert GROUP_COLOURS["China"] == "#D55E00"
    assert GROUP_COLOURS["United States"] == "#0072B2"
    assert GROUP_COLOURS["Other countries"] == "#009E73"
    assert GROUP_COLOURS["No location given"] == "#999999"


def test_group_colours_other_scheme() -> None:
    """A scheme with groups of its own (Taiwan) keeps the fixed colours and gives the new group a spare one."""
    colours = figures.group_colours(hand_made_landscape("greater-china"))
    assert colours["China (mainland)"] == GROUP_COLOURS["China (mainland)"]
    assert colours["Taiwan"] not in GROUP_COLOURS.values()
    assert len(set(colours.values())) == len(colours)


def test_focus_targets_sorted_and_split(landscape: Landscape) -> None:
    spec = figures.fig_focus_targets(landscape, "heme").to_dict()
    bars = spec["layer"][0]
    assert bars["encoding"]["y"]["sort"] == ["CD19", "CD22", "BCMA"]
    assert bars["transform"][0]["fold"] == ["alone", "in_combination"]
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == ["Target alone", "In combination"]


def test_top_sponsors_long_names_wrap(landscape: Landscape) -> None:
    spec = figures.fig_top_sponsors(landscape).to_dict()
    labels = spec["layer"][0]["encoding"]["y"]["sort"]
    assert any("\n" in label for label in labels)
    assert all(len(line) <= 60 for label in labels for line in label.split("\n"))


def test_cumulative_labels_do_not_overlap() -> None:
    placed = dodge([100.0, 99.0, 98.0, 10.0], gap=5.0, low=0.0)
    ordered = sorted(placed, reverse=True)
    assert all(a - b >= 5.0 - 1e-9 for a, b in itertools.pairwise(ordered))
    assert placed[3] == 10.0


def test_plain_frame_drops_lists_and_dates() -> None:
    frame = pd.DataFrame({"a": [1], "trial_ids": [["x"]], "partners": [{"b": 1}], "d": [dt.date(2020, 1, 2)]})
    assert list(figures.plain_frame(frame).to_dict("records")) == [{"a": 1, "d": "2020-01-02"}]


@pytest.mark.parametrize("name", list(FIGURES))
def test_empty_tables_draw_a_note(name: str) -> None:
    spec = FIGURES[name].draw(empty_landscape()).to_dict()
    rows = _main_rows(spec)
    assert len(rows) == 1
    assert rows[0]["message"].startswith("No ")


def _png_info(data: bytes) -> tuple[int, int, float | None]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    at = data.find(b"pHYs")
    dpi = None
    if at > 0:
        x, _, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
        dpi = x * 0.0254 if unit == 1 else None
    return width, height, dpi


def test_save_figure_png_and_svg(tmp_path: Path, landscape: Landscape) -> None:
    for name in ("fig1a_cumulative", "fig1b_focus_targets_heme", "fig_top_sponsors"):
        paths = save_figure(FIGURES[name].draw(landscape), tmp_path, name)
        assert [p.name for p in paths] == [f"{name}.png", f"{name}.svg"]
        assert all(p.stat().st_size > 1000 for p in paths)
        width, height, dpi = _png_info(paths[0].read_bytes())
        # 300 ppi at the printed width: a single-column figure is 85 mm = 3.35 in -> >= 1000 px.
        printed = FIGURES[name].width
        assert width == pytest.approx(printed * PNG_PPI / 72, abs=4)
        assert height > 300
        assert dpi == pytest.approx(300, abs=1)
        svg = paths[1].read_text(encoding="utf-8")
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "Liberation Sans" in svg
        # Nothing remote: the only URLs in the file are XML namespaces.
        assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
            'xmlns:xlink="http://www.w3.org/1999/xlink"', ""
        )


def test_save_empty_figure(tmp_path: Path) -> None:
    paths = save_figure(figures.fig_cumulative(empty_landscape()), tmp_path, "empty")
    assert _png_info(paths[0].read_bytes())[0] > 900
    assert "No CAR trials" in paths[1].read_text(encoding="utf-8")


def test_save_figure_rejects_unknown_format(tmp_path: Path, landscape: Landscape) -> None:
    with pytest.raises(ValueError, match="unknown figure format"):
        save_figure(figures.fig_platforms(landscape), tmp_path, "x", formats=("gif",))


def test_count_axes_tick_whole_numbers(landscape: Landscape) -> None:
    """Count axes tick at whole numbers only (a 0-1 trial axis must not print '0, 1, 1')."""
    assert count_ticks(2) == [0, 1, 2]
    assert count_ticks(400) == [0, 100, 200, 300, 400]
    assert nice_ceiling(1.05) == 2
    spec = figures.fig_platforms(landscape).to_dict()
    values = spec["layer"][0]["encoding"]["x"]["axis"]["values"]
    assert all(isinstance(v, int) for v in values)


def test_publication_figures_from_their_tables(landscape: Landscape) -> None:
    """Fig. 2a-2c read the landscape's publication tables (hand-made rows, not real data)."""
    landscape.tables["pub_fig2a"] = pd.DataFrame(
        [
            {"year": 2016, "group": "China", "reports": 2, "cumulative": 2, "pmids": ["1", "2"]},
            {"year": 2016, "group": "United States", "reports": 1, "cumulative": 1, "pmids": ["3"]},
        ]
    )
    landscape.tables["pub_fig2b"] = pd.DataFrame(
        [{"target": "CD19", "reports": 2, "branch": "hematologic", "pmids": ["1", "2"]}]
    )
    landscape.tables["pub_fig2c"] = pd.DataFrame(
        [{"region_code": "CN-BJ", "region": "Beijing", "reports": 2, "pmids": ["1", "2"]}]
    )
    for name in PUBLICATION_FIGURES:
        spec = FIGURES[name].draw(landscape).to_dict()
        text = json.dumps(spec)
        assert "pmids" not in text, name
        assert "Clinical reports" in text or "clinical reports" in text, name


# -- one record per figure, and the page shows every record ------------------------------------------

_FIGURE_TAG = re.compile(r'<figure id="([^"]+)"')
_SECTION_TAG = re.compile(r'<section id="([^"]+)"')


def _stub_save(chart: Any, out_dir: Path, name: str, **_: Any) -> list[Path]:
    """save_figure without vl-convert: the page's placement is under test here, not the drawing."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    svg = out / f"{name}.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")
    return [svg]


def _placed(page: str) -> dict[str, str]:
    """Figure id -> id of the page section it stands in."""
    placed: dict[str, str] = {}
    section = ""
    for match in re.finditer(f"{_FIGURE_TAG.pattern}|{_SECTION_TAG.pattern}", page):
        if match.group(2):
            section = match.group(2)
        else:
            assert match.group(1) not in placed, f"{match.group(1)} shown twice"
            placed[match.group(1)] = section
    return placed


@pytest.fixture
def articles_atlas(atlas: cartatlas.Atlas, tmp_path: Path) -> cartatlas.Atlas:
    """Hand-made trials and clinical reports (tests/fixtures/pubmed), so that Fig. 2 is drawn too."""
    return load_articles(atlas, tmp_path)


def test_every_declared_figure_is_shown_in_its_place(
    articles_atlas: cartatlas.Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report writes every record of FIGURES and its page shows each once, in the section the record names;
    the page shows nothing else (its template names no figure: it asks for a place's figures)."""
    monkeypatch.setattr(figures, "save_figure", _stub_save)
    result = articles_atlas.report(tmp_path / "rep", as_of="2020-06-30")
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    placed = _placed(page)
    assert list(placed) == list(FIGURES)  # all of them, in page order
    assert placed == {name: f.section.split("/")[0] for name, f in FIGURES.items()}
    assert {p.name for p in result.figures} == {f"{name}.svg" for name in FIGURES}
    template = (Path(figures.__file__).parent.parent / "templates" / "report.html.j2").read_text(encoding="utf-8")
    assert not [name for name in FIGURES if name in template]
    assert not re.search(r"\bfig(?:[0-9]+[a-z]?)?_\w", template), "the template places figures by section, not by name"


def test_every_place_is_asked_for_and_used() -> None:
    """Each place of SECTIONS holds a figure, so every one of them is exercised by the test above."""
    assert {f.section for f in FIGURES.values()} == set(figures.SECTIONS)


def test_a_new_record_is_all_a_new_figure_needs(
    articles_atlas: cartatlas.Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declaring a figure is enough for the report to write it and its page to show it, with its caption."""
    extra = figures.Figure(
        "fig_test_extra",
        functools.partial(figures.fig_platforms),
        lambda land: "An extra figure's caption.",
        section="platforms",
    )
    monkeypatch.setattr(figures, "FIGURES", declare(FIGURES.values(), [extra]))
    monkeypatch.setattr(figures, "save_figure", _stub_save)
    articles_atlas.report(tmp_path / "rep", as_of="2020-06-30", focus="CN")
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert _placed(page)["fig_test_extra"] == "platforms"
    assert "An extra figure&#39;s caption." in page or "An extra figure's caption." in page
    assert (tmp_path / "rep" / "figures" / "fig_test_extra.svg").is_file()


def test_declare_refuses_what_the_page_cannot_show() -> None:
    platforms = FIGURES["fig_platforms"]
    with pytest.raises(ValueError, match="no place 'nowhere' on the page"):
        declare([dataclasses.replace(platforms, section="nowhere")])
    with pytest.raises(ValueError, match="declared twice"):
        declare([platforms, platforms])
    with pytest.raises(ValueError, match="a file name"):
        declare([dataclasses.replace(platforms, name="fig/../x")])
    with pytest.raises(ValueError, match="neither one column nor two"):
        declare([dataclasses.replace(platforms, width=300)])


def test_the_page_refuses_a_figure_it_has_no_place_for(landscape: Landscape) -> None:
    """Belt and braces: were a record's place missing from the template, the report would fail, not hide it."""
    places = _FigurePlaces([{"name": "fig_x", "section": "nowhere", "svg": ""}])
    places("platforms")
    with pytest.raises(RuntimeError, match=r"no place for figures fig_x \(nowhere\)"):
        places.check()


def test_publication_figures_share_the_theme_and_fig1_colours(landscape: Landscape) -> None:
    """Fig. 2a colours the groups as Fig. 1a does (China vermillion in both), in the one shared style."""
    landscape.tables["pub_fig2a"] = pd.DataFrame(
        [
            {"year": 2016, "group": "China", "reports": 2, "cumulative": 2, "pmids": ["1", "2"]},
            {"year": 2016, "group": "United States", "reports": 1, "cumulative": 1, "pmids": ["3"]},
            {"year": 2017, "group": "Country not stated", "reports": 1, "cumulative": 1, "pmids": ["4"]},
        ]
    )
    fig1a = FIGURES["fig1a_cumulative"].draw(landscape).to_dict()
    fig2a = FIGURES["fig2a_reports_per_year"].draw(landscape).to_dict()
    fig1a_colours = {k: v for scale in _colour_scales(fig1a) for k, v in scale.items()}
    fig2a_colours = {k: v for scale in _colour_scales(fig2a) for k, v in scale.items()}
    assert fig2a_colours["China"] == fig1a_colours["China"] == "#D55E00"
    assert fig2a_colours["United States"] == fig1a_colours["United States"]
    assert fig2a_colours["Country not stated"] == figures.theme.GREY
    assert fig2a["config"] == fig1a["config"]
    assert fig2a["width"] == SINGLE_COLUMN and "30 Jun 2020" in figures.chart_title(
        FIGURES["fig2a_reports_per_year"].draw(landscape)
    )


def test_architecture_lists_what_adding_a_figure_touches() -> None:
    """docs/architecture.md's "A figure" names every module that declares figures (each gathered into FIGURES),
    the record's fields and the theme's helpers it points at, so that the list stays the whole story."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc[doc.index("**A figure.**") : doc.index("**A country group**")]
    step_one = section[: section.index("\n2. ")]
    package = Path(figures.__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(package)])]
    modules = {name: importlib.import_module(f"cartatlas.report.figures.{name}") for name in names}
    declaring = {name for name, module in modules.items() if hasattr(module, "FIGURES")}
    assert declaring == {"over_time", "shares", "targets", "ranked", "publications"}
    assert {m for m in re.findall(r"`(\w+)\.py`", step_one) if m in modules} - {"theme", "declare"} == declaring
    gathered = [f for name in sorted(declaring) for f in modules[name].FIGURES]
    assert {f.name for f in gathered} == set(FIGURES) and all(FIGURES[f.name] is f for f in gathered)
    for field in ("section", "width", "needs"):
        assert f"`{field}`" in step_one and field in {f.name for f in dataclasses.fields(figures.Figure)}
    for helper in ("finish", "empty", "group_scale", "focus_colour"):
        assert f"`{helper}`" in step_one and callable(getattr(modules["theme"], helper))
    assert "`SECTIONS`" in section and "`FIGURES`" in section and "`EXPECTED_ROWS`" in section
    assert '{{ figures("NAME") }}' in section
