"""The report covers what the data holds (issue 12, part 7), on the whole sample's report as of its run date.

Before: the sample's 299 autoimmune CAR trials had no section of their own;
there were no per-target timelines and no city table; tables were in the
order the database returned their rows and showed raw tokens ("in-vivo-CAR",
"heme-malignancy") beside charts that said "In vivo CAR"; the provenance
table printed "None"; combination chips and the per-target facts were counts
that opened nothing; a number opened never reached the address bar, so a
view could not be shared; trial cards lacked enrolment, start date,
conditions and cities.

The page is read with lxml; what the script does is read in headless
Chromium (Playwright), skipped when either is absent.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest

import cartatlas
from cartatlas.report import figures
from cartatlas.report.labels import BRANCH_LABELS, PLATFORM_LABELS, PRODUCT_SOURCE_LABELS, STRATEGY_LABELS
from tests.full_sample import TODAY, full_sample_db

CHROMIUM = "/usr/bin/chromium"


class Page:
    """The report as written: its parsed HTML, the page's data block and summary.json."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.html = (out / "index.html").read_text(encoding="utf-8")
        self.doc = lxml.html.fromstring(self.html)
        self.data: dict[str, Any] = json.loads(self.doc.get_element_by_id("data").text)
        self.summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))

    def section(self, name: str) -> Any:
        return self.doc.get_element_by_id(name)


@pytest.fixture(scope="module")
def atlas() -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(full_sample_db(), read_only=True) as a:
        yield a


@pytest.fixture(scope="module")
def page(atlas: cartatlas.Atlas, tmp_path_factory: pytest.TempPathFactory) -> Page:
    out = tmp_path_factory.mktemp("coverage") / "report"
    atlas.report(out, as_of=TODAY)
    return Page(out)


def _text(element: Any) -> str:
    return re.sub(r"\s+", " ", element.text_content()).strip()


def _rows(table: Any) -> list[list[str]]:
    """A table's body rows as cell texts (the header row left out)."""
    return [[_text(cell) for cell in tr.xpath("./td")] for tr in table.xpath(".//tr") if tr.xpath("./td")]


def _header(table: Any) -> list[str]:
    return [_text(th) for th in table.xpath(".//tr[1]/th")]


def _chips(cell: Any) -> list[tuple[str, str]]:
    """The combination chips of a target row: (partner, count)."""
    return [
        (_text(chip)[: -len(_text(b)) - 1], _text(b))
        for chip in cell.xpath(".//span[@class='chip']")
        for b in chip.xpath(".//button")
    ]


# -- autoimmune: targets, figure, over time ------------------------------------------------------------


def test_autoimmune_trials_have_their_own_section(page: Page) -> None:
    sec = page.section("branch-autoimmune")
    assert _text(sec.xpath(".//h2")[0]) == "Autoimmune diseases"
    assert [f.get("id") for f in sec.xpath(".//figure")] == ["fig_focus_targets_autoimmune", "fig_over_time_autoimmune"]
    targets, over_time = sec.xpath(".//table")
    assert _header(targets) == ["Target", "Trials", "Alone", "In combination", "Combined with"]
    # China's autoimmune CAR trials per target: trials, alone, with other targets.
    assert [r[:4] for r in _rows(targets)] == [
        ["CD19", "157", "73", "84"],
        ["BCMA", "89", "11", "78"],
        ["CD20", "13", "1", "12"],
        ["CD70", "5", "1", "4"],
        ["CD22", "4", "0", "4"],
        ["CD7", "4", "4", "0"],
        ["BAFF-R", "1", "1", "0"],
    ]
    cd19 = targets.xpath(".//tr[td]")[0].xpath("./td")[4]
    assert _chips(cd19) == [("BCMA", "73"), ("CD20", "10"), ("CD22", "4"), ("CD70", "1")]
    # Over time, all countries: registered in each year and by its end, per country group.
    assert _header(over_time)[:3] == ["Year registered", "China: that year", "China: by its end"]
    rows = _rows(over_time)
    assert rows[0][0] == "2017" and rows[-1][0] == f"2026 (to {TODAY})"
    assert rows[-2] == ["2025", "75", "153", "15", "53", "16", "41", "6", "11"]
    assert rows[-1][1:] == ["56", "209", "10", "63", "10", "51", "7", "18"]


def test_autoimmune_tables_in_the_summary(page: Page) -> None:
    tables = page.summary["tables"]
    cd19 = tables["focus_targets_autoimmune"][0]
    assert (cd19["target"], cd19["n"], cd19["alone"], cd19["in_combination"]) == ("CD19", 157, 73, 84)
    assert len(cd19["trial_ids"]) == 157 and sorted(cd19["alone_ids"] + cd19["combination_ids"]) == cd19["trial_ids"]
    pairs = [r for r in tables["focus_target_pairs"] if r["branch"] == "autoimmune" and r["target"] == "CD19"]
    assert [(r["partner"], r["n"]) for r in pairs] == [("BCMA", 73), ("CD20", 10), ("CD22", 4), ("CD70", 1)]
    assert set(pairs[0]["trial_ids"]) <= set(cd19["combination_ids"])
    # 307 trials are screened as autoimmune only; 4 more treat an autoimmune disease beside a haematological one.
    ends = [r for r in tables["branch_by_year"] if r["branch"] == "autoimmune" and r["up_to"] == TODAY]
    every = set().union(*(r["trial_ids"] for r in ends))
    branches = {u: page.summary["units"][u]["branch"] for u in every}
    assert len(every) == 311 and sum(b == "autoimmune" for b in branches.values()) == 307
    assert sorted(u for u, b in branches.items() if b != "autoimmune") == [
        "NCT04561557", "NCT05263817", "NCT06567080", "NCT06967038"
    ]  # fmt: skip
    # Before, a trial of lupus and lymphoma counted among solid tumours: 378 there, now 373.
    totals = page.summary["facts"]["totals"]
    assert (totals["focus_heme"], totals["focus_solid"], totals["focus_autoimmune"]) == (896, 373, 209)


# -- per-target timelines, cities ----------------------------------------------------------------------------


def test_per_target_timelines(page: Page) -> None:
    sec = page.section("targets")
    assert sec.xpath(".//figure/@id")[0] == "fig_focus_target_timelines"
    table = sec.xpath(".//table")[0]
    header = _header(table)
    assert header[:3] == ["Target", "Trials", "2012"] and header[-1] == "2026"
    rows = _rows(table)
    assert [r[:2] for r in rows] == [
        ["CD19", "611"], ["BCMA", "250"], ["CD22", "91"], ["CD20", "82"],
        ["CD7", "66"], ["Mesothelin", "50"], ["GPC3", "39"], ["Claudin18.2", "38"],
    ]  # fmt: skip
    assert rows[0][2:] == ["0", "1", "3", "6", "25", "41", "35", "38", "44", "39", "53", "39", "94", "117", "76"]
    for row in rows:  # each year's new trials add up to the target's trials
        assert sum(map(int, row[2:])) == int(row[1])
    # The same counts in the summary, one row per target and year.
    years = [r for r in page.summary["tables"]["focus_target_years"] if r["target"] == "BCMA"]
    assert [r["n"] for r in years][-3:] == [32, 72, 45] and all(r["rank"] == 2 for r in years)


def test_a_city_table_beside_the_regions(page: Page, atlas: cartatlas.Atlas) -> None:
    side = page.section("regions").xpath(".//div[@class='side']")[0]
    regions, cities = side.xpath(".//table")
    assert _header(regions)[0] == "Region" and _header(cities) == ["City", "Region", "Trials with a site there"]
    rows = _rows(cities)
    assert rows[:5] == [
        ["Beijing", "Beijing", "260"],
        ["Shanghai", "Shanghai", "213"],
        ["Hangzhou", "Zhejiang", "202"],
        ["Wuhan", "Hubei", "107"],
        ["Shenzhen", "Guangdong", "106"],
    ]
    assert len(rows) == 85
    # A city never counts more trials than its region.
    per_region = {r[0]: int(r[1]) for r in _rows(regions)}
    assert all(int(n) <= per_region[region] for _, region, n in rows)
    # The same number from the database's normalised site columns, by SQL.
    hangzhou = atlas.sql(
        "SELECT count(DISTINCT l.cluster_id) FROM trial_landscape l JOIN trial_sites s USING (registry, trial_id) "
        "WHERE l.relation IN ('therapy', 'follow_up') AND l.registration_date <= DATE '2026-12-02' "
        "AND s.country_code IN ('CN', 'TW', 'HK', 'MO') AND s.city_normalised = 'Hangzhou'"
    ).iloc[0, 0]
    assert hangzhou == 202


# -- sorted, labelled, no "None" -------------------------------------------------------------------------------


def _count_column(table: Any) -> int | None:
    """The column of a table's first count of trials, when the table ranks rows by it."""
    for i, head in enumerate(_header(table)):
        if i and head.startswith("Trials"):
            return i
    return None


def test_tables_are_sorted_by_count_then_label(page: Page) -> None:
    checked = 0
    for table in page.doc.xpath("//main//table"):
        col = _count_column(table)
        rows = _rows(table)
        if col is None or len(rows) < 2 or not all(r[col].isdigit() for r in rows):
            continue
        labels = [", ".join(r[:col]) if col > 1 and not r[1].isdigit() else r[0] for r in rows]
        keys = [(-int(r[col]), label.casefold()) for r, label in zip(rows, labels, strict=True)]
        assert keys == sorted(keys), (_header(table), labels[:8])
        checked += 1
    assert checked >= 12


def test_tables_use_the_charts_labels(page: Page, atlas: cartatlas.Atlas) -> None:
    tokens = {*PLATFORM_LABELS, *PRODUCT_SOURCE_LABELS, *BRANCH_LABELS, *STRATEGY_LABELS} - {
        *PLATFORM_LABELS.values(),
        *BRANCH_LABELS.values(),
    }
    cells = {_text(td) for td in page.doc.xpath("//main//td")}
    assert not cells & tokens, sorted(cells & tokens)
    # Registries by their names, in the provenance too.
    assert {"ClinicalTrials.gov", "ChiCTR", "ANZCTR"} <= cells and not cells & {"ctgov", "chictr", "anzctr"}
    text = _text(page.section("targets").xpath(".//p[contains(., 'Target strategies')]")[0])
    assert "One target 937, Multi-specific CAR 263, Not stated 247, Co-administered CARs 38" in text
    # The platform table says what the platform chart says, in the same order.
    land = atlas.landscape(TODAY)
    spec = figures.fig_platforms(land).to_dict()
    chart = [row["platform_label"] for ds in spec["datasets"].values() for row in ds if "platform_label" in row]
    table = [r[0] for r in _rows(page.section("platforms").xpath(".//table")[0])]
    assert table == chart == [
        "CAR-T", "CAR-NK", "In vivo CAR", "CAR-γδT", "Other CAR", "CAR-NKT", "CAR-Treg", "CAR-M", "CAAR-T"
    ]  # fmt: skip
    # So do the target tables: the chart's 20 targets are the table's first 20, in its order.
    heme = figures.fig_focus_targets(land, "heme").to_dict()["layer"][0]["encoding"]["y"]["sort"]
    assert heme == [r[0] for r in _rows(page.section("branch-heme").xpath(".//table")[0])][:20]
    assert [r[0] for r in _rows(page.section("platforms").xpath(".//table")[2])][:3] == [
        "Haematological malignancies", "Solid tumours", "Autoimmune diseases"
    ]  # fmt: skip
    # Trial cards speak the same words.
    card = page.data["trials"]["NCT07444307"]["labels"]
    assert (card["branch"], card["source"], card["relation"]) == ("Autoimmune diseases", "Allogeneic", "CAR therapy")


def test_no_none_on_the_page(page: Page) -> None:
    body = page.doc.xpath("//body")[0]
    texts = body.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]")
    words = set(re.findall(r"\b(?:None|nan|NaN|null|undefined)\b", " ".join(texts)))
    attributes = {v for el in body.iter() for v in el.attrib.values() if re.search(r"\bNone\b", v)}
    assert not words and not attributes
    # Where the registry states nothing, the page says so.
    assert "not stated in the records" in _text(page.section("methods"))


# -- every count opens its trials --------------------------------------------------------------------------------


def test_every_blue_count_opens_its_trials_and_has_an_address(page: Page) -> None:
    buttons = [
        b for b in page.doc.xpath("//button[contains(concat(' ', @class, ' '), ' n ')]") if b.get("id") != "close"
    ]
    refs: dict[str, str] = {}
    for b in buttons:
        if b.get("data-one"):
            assert b.get("data-one") in page.data["trials"]
            continue
        ref, key = b.get("data-ref"), b.get("data-list") or b.get("data-pubs")
        assert ref and key, _text(b)
        ids = page.data["lists"][key] if b.get("data-list") else page.data["publists"][key]
        assert int(_text(b)) == len(ids) > 0, ref
        assert refs.setdefault(ref, key) == key, f"{ref} names two lists"
    assert len(refs) > 1500
    assert len(page.data["lists"][refs["focus_targets_heme:CD19"]]) == 454
    assert len(page.data["lists"][refs["focus_targets_autoimmune:CD19:with:BCMA"]]) == 73
    # Every chip is a count that opens its trials, and so is every count of the per-target facts.
    chips = page.doc.xpath("//span[@class='chip']")
    assert len(chips) > 400 and all(len(c.xpath(".//button[@data-list]")) == 1 for c in chips)
    facts = page.section("targets").xpath(".//table")[1]
    for tr in facts.xpath(".//tr[td]"):
        for td in tr.xpath("./td")[1:4] + tr.xpath("./td")[6:7]:
            assert _text(td) == "0" or td.xpath("./button[@data-ref]"), _text(tr)


def test_counts_of_trials_in_tables_are_buttons(page: Page) -> None:
    """Every positive count of trials in a table opens them (registrations, records and dates are not trials)."""
    for table in page.doc.xpath("//main//table"):
        if table.xpath("ancestor::section[@id='methods']"):
            continue
        header = _header(table)
        for tr in table.xpath(".//tr[td]"):
            for i, td in enumerate(tr.xpath("./td")[1:], start=1):
                if re.fullmatch(r"[1-9][0-9]*", _text(td)) and "Registrations" not in header[i]:
                    assert td.xpath(".//button"), (header[0], header[i], _text(tr))


# -- in a browser: the address of a list, trial cards -----------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    tab = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.goto(url)
    return tab, errors


def test_a_number_clicked_is_in_the_address_and_reopens(page: Page, browser: Any) -> None:
    url = (page.out / "index.html").as_uri()
    tab, errors = _open(browser, url)
    tab.locator('button[data-ref="focus_targets_heme:CD19"]').click()
    assert tab.url == url + "#n=focus_targets_heme:CD19"
    assert tab.locator("#panel.open").count() == 1
    assert tab.locator("#panel-body .trial").count() == 454
    assert tab.locator("#panel-title").text_content().endswith("(454 trials)")
    chip = 'button[data-ref="focus_targets_autoimmune:CD19:with:BCMA"]'
    tab.locator(chip).click()
    assert tab.url == url + "#n=focus_targets_autoimmune:CD19:with:BCMA"
    title = tab.locator("#panel-title").text_content()
    assert title == "Autoimmune diseases · CD19 · with BCMA (73 trials)"
    tab.go_back()  # the previous list again
    assert tab.locator("#panel-body .trial").count() == 454
    tab.locator("#close").click()
    assert tab.url == url and tab.locator("#panel.open").count() == 0
    # The shared address opens the same list in a new page, with the same heading.
    again, more = _open(browser, url + "#n=focus_targets_autoimmune:CD19:with:BCMA")
    assert again.locator("#panel-title").text_content() == title
    shown = again.locator("#panel-body .trial .t a").all_text_contents()
    key = page.doc.xpath("//button[@data-ref='focus_targets_autoimmune:CD19:with:BCMA']")[0].get("data-list")
    assert shown == page.data["lists"][key]
    # A percent-encoded address works as well; an unknown one opens nothing.
    third, _ = _open(browser, url + "#n=focus_targets_heme%3ACD19")
    assert third.locator("#panel-body .trial").count() == 454
    fourth, _ = _open(browser, url + "#n=no_such_table:CD19")
    assert fourth.locator("#panel.open").count() == 0
    assert not errors and not more


def test_trial_cards_show_size_dates_conditions_and_cities(page: Page, browser: Any) -> None:
    url = (page.out / "index.html").as_uri()
    tab, errors = _open(browser, url + "#trial=NCT07444307")
    card = tab.locator("#panel-body .trial").inner_text()
    assert "Start / enrolment: 2025-12-15 / 18 (estimated)" in card
    assert "Conditions: Systemic Lupus Erythematosus (SLE)" in card
    assert "Cities: Beijing, Hefei, Wuhan" in card
    labels = "Labels: CAR therapy, CAR-T, targets not disclosed, Autoimmune diseases (SLE), product source: allogeneic"
    assert labels in card
    assert "Registered: 2026-03-02 (extrapolated from the NCT number)" in card
    # Every card of every counted trial: nothing shows as None, null, undefined or NaN.
    tab.locator('button[data-ref="overview:all"]').click()
    assert tab.locator("#panel-body .trial").count() == 2471
    text = tab.locator("#panel-body").inner_text()
    assert not re.findall(r"\b(?:None|null|undefined|NaN)\b", text)
    assert not errors
