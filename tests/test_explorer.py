"""The explorer at the ASGI level: pages, filters, search, downloads, curation, review, changes, security.

One database of real sample records (tests/explorer_support.py) is built
once per session; this module works on its own copy because it writes
(curation lines, saved views).  Numbers on pages are checked against the
Python API computed independently (``Atlas.units``, ``Atlas.landscape``), so
a page can only pass by showing the API's numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import html
import io
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import openpyxl
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cartatlas
from cartatlas import curation_actions
from cartatlas.analysis.filters import FACETS, TrialFilter
from cartatlas.analysis.trial_record import LABEL_COLUMNS, RECORD_COLUMNS, trial_lookups
from cartatlas.cli import app as cli_app
from cartatlas.cli.common import CliError
from cartatlas.explorer import Settings, create_app
from cartatlas.explorer.query import View, parse
from cartatlas.explorer.state import Counting
from cartatlas.spreadsheet import neutralise
from tests.conftest import CTGOV
from tests.explorer_support import TestClient, built_database, fresh_copy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE = "http://127.0.0.1"
HOSTILE_ID = "NCT99999991"
HOSTILE_TITLE = '=HYPERLINK("http://evil.example","x") <script>alert(1)</script> CT103A BCMA CAR-T'


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("explorer")
    path = fresh_copy(directory, built_database(tmp_path_factory.mktemp("explorer-base")), "explorer.duckdb")
    # One real monitor record given hostile text: a spreadsheet formula, markup, a formula-like sponsor.
    lines = gzip.decompress((CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz").read_bytes()).splitlines()
    record = next(orjson.loads(x) for x in lines if b'"NCT05066646"' in x)
    record["protocolSection"]["identificationModule"]["nctId"] = HOSTILE_ID
    record["protocolSection"]["identificationModule"]["briefTitle"] = HOSTILE_TITLE
    record["protocolSection"]["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = "@SUM(1+1) Biotech"
    record["protocolSection"]["statusModule"]["studyFirstPostDateStruct"] = {"date": "2021-10-04", "type": "ACTUAL"}
    hostile = directory / "hostile.jsonl"
    hostile.write_bytes(orjson.dumps(record) + b"\n")
    with cartatlas.open(path) as atlas:
        atlas.import_files([hostile])
    return path


@pytest.fixture(scope="module")
def client(db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db=db), warm=False), base_url=BASE) as c:
        yield c


def atlas_of(client: TestClient) -> cartatlas.Atlas:
    """The app's own read connection (an independent computation through the public API)."""
    atlas: cartatlas.Atlas = client.app.state.explorer.reader()  # type: ignore[attr-defined]
    return atlas


def read(client: TestClient, query: str, params: list[object] | None = None) -> pd.DataFrame:
    """A query on the app's own read connection (``Atlas.sql`` opens a fenced connection of its own)."""
    return atlas_of(client).store.con.execute(query, params or []).df()


def csrf(client: TestClient) -> str:
    client.get("/help")
    return str(client.cookies.get("cartatlas_csrf"))


def number(html: str, testid: str) -> int:
    m = re.search(rf'data-testid="{testid}">([\d,]+)<', html)
    assert m, f"no {testid} on the page"
    return int(m.group(1).replace(",", ""))


def etag_of(html: str) -> str:
    m = re.search(r'name="etag" value="([0-9a-f]+)"', html)
    assert m
    return m.group(1)


# -- the landscape -------------------------------------------------------------------------------


def test_landscape_counts_are_the_reports(client: TestClient) -> None:
    page = client.get("/?as_of=2020-06-30")
    assert page.status_code == 200
    land = atlas_of(client).landscape("2020-06-30")
    assert number(page.text, "total") == land.facts["totals"]["units"] > 500
    assert number(page.text, "focus-total") == land.facts["totals"]["focus"]


def test_filters_give_the_apis_units_and_facet_counts(client: TestClient) -> None:
    page = client.get("/?country=CN&target=BCMA&phase=Phase+1")
    assert page.status_code == 200
    expected = atlas_of(client).units(country="CN", target="BCMA", phase="Phase 1")
    assert number(page.text, "total") == len(expected) > 100
    # The facet counts beside each value: BCMA's own count is the filtered total (its facet is BCMA-free).
    assert re.search(
        rf'value="BCMA" checked> <span class="v">BCMA</span> <span class="n">{len(expected):,}</span>', page.text
    )
    # A second country's count is what choosing it too would add: China's other facets still apply.
    us = atlas_of(client).units(country="US", target="BCMA", phase="Phase 1")
    assert re.search(
        rf'value="US" > <span class="v">United States</span> <span class="n">{len(us):,}</span>', page.text
    )


def test_every_count_opens_its_trials(client: TestClient) -> None:
    view = "country=CN&target=BCMA"
    land = client.app.state.explorer.landscape(
        parse([("country", "CN"), ("target", "BCMA")]).counting,  # type: ignore[attr-defined]
        TrialFilter.of(country=["CN"], target=["BCMA"]),
    )
    row = land.tables["focus_targets_heme"].iloc[0]
    page = client.get(f"/trials?{view}&cell=focus_targets_heme:0:alone_ids")
    assert page.status_code == 200
    assert number(page.text, "table-total") == int(row["alone"])
    assert "Showing the trials behind one count" in page.text
    assert client.get(f"/trials?{view}&cell=focus_targets_heme:999:trial_ids").status_code == 400


@settings(max_examples=60, deadline=None)
@given(
    facets=st.dictionaries(
        st.sampled_from(sorted(FACETS)),
        st.lists(
            st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
            .map(str.strip)
            .filter(bool),
            max_size=3,
        ),
        max_size=4,
    ),
    as_of=st.one_of(st.none(), st.dates(dt.date(2010, 1, 1), dt.date(2030, 12, 31))),
    per=st.sampled_from(["trial", "registration"]),
    page=st.integers(1, 50),
)
def test_the_url_holds_the_whole_view(facets: dict[str, list[str]], as_of: dt.date | None, per: str, page: int) -> None:
    view = parse(
        [
            *((k, v) for k, vs in facets.items() for v in vs),
            ("per", per),
            ("page", str(page)),
            *([("as_of", as_of.isoformat())] if as_of else []),
        ]
    )
    assert parse(view.pairs(table=True)) == view
    # Through an actual query string, as a browser sends it back.
    assert parse(parse_qsl(view.query(table=True))) == view
    assert isinstance(view, View)


def test_a_bad_parameter_is_named(client: TestClient) -> None:
    page = client.get("/?as_of=yesterday")
    assert page.status_code == 400 and "as_of=&#39;yesterday&#39; is not a date" in page.text
    assert client.get("/trials?sort=colour").status_code == 400


# -- search -----------------------------------------------------------------------------------------


def test_search_finds_products_ids_and_chinese_text_ranked_and_highlighted(client: TestClient) -> None:
    page = client.get("/search?q=CT103A")
    ids = re.findall(r'<a class="id" href="/trial/([^"]+)">', page.text)
    assert {"NCT04561557", "NCT05066646", "NCT05181501", "NCT05201118", "NCT05698303"} <= set(ids)
    assert "<mark>CT103A</mark>" in page.text
    # Titles in Chinese (ChiCTR's own pages), and a ChiCTR id typed in lower case goes to its trial.
    chinese = client.get("/search", params={"q": "广东省人民医院"})
    assert "ChiCTR2500111173" in chinese.text and "<mark>广东省人民医院</mark>" in chinese.text
    direct = client.get("/search?q=chictr2000029603", follow_redirects=False)
    assert direct.status_code == 303 and direct.headers["location"] == "/trial/ChiCTR2000029603"
    # Exact id first, then other matches of the same text.
    ranked = client.get("/search?q=NCT05066646")
    assert ranked.status_code in (200, 303)


def test_registry_text_is_escaped_everywhere(client: TestClient) -> None:
    for url in (f"/trial/{HOSTILE_ID}", "/search?q=HYPERLINK", "/trials?sponsor=%40SUM%281%2B1%29+Biotech"):
        page = client.get(url)
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- the trial table and its files ---------------------------------------------------------------------


def test_table_sorts_pages_and_downloads_exactly_its_rows_and_columns(client: TestClient) -> None:
    query = (
        "country=CN&target=BCMA&phase=Phase+1&cols=trial&cols=title&cols=sponsor&cols=registered"
        "&sort=registered&size=25"
    )
    page = client.get(f"/trials?{query}")
    total = number(page.text, "table-total")
    expected = atlas_of(client).units(country="CN", target="BCMA", phase="Phase 1")
    assert total == len(expected)
    shown = re.findall(r'<td data-label="Registered" >([\d-]+)</td>', page.text)
    assert len(shown) == 25 and shown == sorted(shown)
    second = client.get(f"/trials?{query}&page=2")
    assert re.findall(r'<td data-label="Registered" >([\d-]+)</td>', second.text)[0] >= shown[-1]

    body = client.get(f"/trials.csv?{query}")
    assert body.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    assert rows[0] == ["Trial", "Title", "Sponsor", "Registered"]
    assert len(rows) - 1 == total
    assert {r[0] for r in rows[1:]} == set(expected["unit_id"])
    assert [r[3] for r in rows[1:]] == sorted(r[3] for r in rows[1:])

    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/trials.xlsx?{query}").content))
    assert book.active is not None and book.active.max_row - 1 == total
    table = pq.read_table(io.BytesIO(client.get(f"/trials.parquet?{query}").content))
    assert table.column_names == ["Trial", "Title", "Sponsor", "Registered"] and table.num_rows == total


def test_downloads_neutralise_formulas(client: TestClient) -> None:
    query = "target=BCMA&sponsor=%40SUM%281%2B1%29+Biotech&cols=trial&cols=title&cols=sponsor"
    rows = list(csv.reader(io.StringIO(client.get(f"/trials.csv?{query}").content.decode("utf-8-sig"))))
    assert rows[1] == [HOSTILE_ID, "'" + HOSTILE_TITLE, "'@SUM(1+1) Biotech"]
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"/trials.xlsx?{query}").content)).active
    assert sheet is not None and sheet["B2"].value == "'" + HOSTILE_TITLE and sheet["B2"].data_type == "s"
    assert [neutralise(v) for v in ("-1", "+x", "\tx", "\rx", "a=b")] == ["'-1", "'+x", "'\tx", "'\rx", "a=b"]


# -- the trial page ------------------------------------------------------------------------------------


def test_trial_page_shows_registrations_evidence_and_history(client: TestClient) -> None:
    page = client.get("/trial/NCT02650414")
    assert page.status_code == 200
    text = page.text
    assert 'href="https://clinicaltrials.gov/study/NCT02650414"' in text
    assert "relation.car_in_title" in text or "rule" in text  # evidence rules are listed
    # Two stored versions: the 2023 API answer, then the monitor's 2026 record.
    assert "2 versions" in text
    assert "<del>RECRUITING</del> → <ins>ACTIVE_NOT_RECRUITING</ins>" in text
    assert "<del>15</del> → <ins>41</ins>" in text
    versions = atlas_of(client).history("NCT02650414")
    assert [v.record_updated.isoformat() for v in versions if v.record_updated] == ["2023-01-31", "2026-07-07"]


def test_any_registration_id_opens_the_linked_trial(client: TestClient) -> None:
    page = client.get("/trial/ChiCTR2000029603")
    assert page.status_code == 200
    assert "Registrations (2)" in page.text and "NCT04261907" in page.text
    assert client.get("/trial/NCT00000000").status_code == 404


def test_labels_held_in_memory_are_the_databases(client: TestClient) -> None:
    """The trial page takes counted trials' labels from memory: the same labels and etag as from the database."""
    ex = client.app.state.explorer  # type: ignore[attr-defined]
    counted = ex.counted(Counting())
    reader = ex.reader()
    path = curation_actions.curation_path(reader.store)
    for trial in ("NCT05066646", "NCT02650414", "ChiCTR2000029603", HOSTILE_ID):
        read = reader.trial(trial)
        held = reader.trial(trial, known_labels=counted.registration_labels)
        assert read is not None and held is not None
        # What the page shows; the rules' own values ("auto") are read for curated registrations only.
        shown = [*RECORD_COLUMNS, *LABEL_COLUMNS, "classified_hash"]
        assert [{c: r.get(c) for c in shown} for r in held.registrations] == [
            {c: r.get(c) for c in shown} for r in read.registrations
        ]
        for h, d in zip(held.registrations, read.registrations, strict=True):
            assert not h["curated_fields"] or h["auto"] == d["auto"]
        assert curation_actions.record_etag(path, held) == reader.curation_etag(held.keys)
    assert counted.registration_labels([("ctgov", "NCT05066646")])


def test_lookups_spare_queries_never_links(client: TestClient) -> None:
    """The ids with links or articles (kept per data version) skip two queries, never a link or an article."""
    reader = atlas_of(client)
    lookups = trial_lookups(reader.store)
    linked = read(client, "SELECT trial_id_a AS id FROM trial_links UNION SELECT trial_id_b FROM trial_links")
    assert lookups.linked == set(linked["id"]) and len(lookups.linked) > 20
    unlinked = read(client, "SELECT trial_id FROM trials ORDER BY trial_id LIMIT 400")["trial_id"]
    sample = sorted(lookups.linked)[:40] + [t for t in unlinked if t not in lookups.linked][:40]
    for trial in sample:
        plain, spared = reader.trial(trial), reader.trial(trial, lookups=lookups)
        assert plain is not None and spared == plain, trial
    assert any(reader.trial(t, lookups=lookups).links for t in sorted(lookups.linked)[:40])  # type: ignore[union-attr]


# -- curation ------------------------------------------------------------------------------------------


def test_override_is_a_curation_line_that_changes_the_count_and_survives_reclassification(
    client: TestClient, db: Path
) -> None:
    trial = "NCT05066646"  # CT103A: BCMA, China, phase 1/2
    before = number(client.get("/?country=CN&target=BCMA").text, "total")
    page = client.get(f"/trial/{trial}")
    form = {
        "csrf": csrf(client),
        "etag": etag_of(page.text),
        "kind": "override",
        "registration": f"ctgov:{trial}",
        "field": "targets",
        "value": "CD19",
        "reason": "test: the protocol names CD19",
        "curator": "ana",
    }
    done = client.post(f"/trial/{trial}/curate", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/trial/{trial}?saved=override"
    after = number(client.get("/?country=CN&target=BCMA").text, "total")
    assert after == before - 1
    shown = client.get(done.headers["location"]).text
    assert "Override saved" in shown and "test: the protocol names CD19" in shown and "rules said: BCMA" in shown

    curation_file = db.with_name("explorer.curation.csv")
    rows = list(csv.DictReader(curation_file.open(encoding="utf-8")))
    assert rows[-1]["trial_id"] == trial and rows[-1]["curator"] == "ana" and rows[-1]["value"] == "CD19"
    assert rows[-1]["recorded_at"].startswith(dt.date.today().isoformat()[:4])

    # Re-classification (as after any import) keeps it: the file is re-applied.
    client.app.state.explorer.write(lambda atlas: atlas.classify(force=True))  # type: ignore[attr-defined]
    labels = read(client, "SELECT targets, curated_fields FROM classifications WHERE trial_id = ?", [trial])
    assert list(labels["targets"][0]) == ["CD19"] and list(labels["curated_fields"][0]) == ["targets"]


def test_a_stale_form_gets_409_and_changes_nothing(client: TestClient, db: Path) -> None:
    trial = "NCT05181501"
    page = client.get(f"/trial/{trial}")
    token, etag = csrf(client), etag_of(page.text)
    base = {"csrf": token, "kind": "override", "registration": f"ctgov:{trial}", "field": "branch"}
    first = {**base, "etag": etag, "value": "heme-malignancy", "reason": "first curator", "curator": "ana"}
    assert client.post(f"/trial/{trial}/curate", data=first, follow_redirects=False).status_code == 303
    lines = db.with_name("explorer.curation.csv").read_text(encoding="utf-8")
    second = {**base, "etag": etag, "value": "mixed", "reason": "second curator, same old page", "curator": "ben"}
    refused = client.post(f"/trial/{trial}/curate", data=second, follow_redirects=False)
    assert refused.status_code == 409
    assert "changed since this page was loaded" in refused.text and "by ana" in refused.text
    assert "second curator, same old page" in refused.text  # the form keeps what was typed
    assert db.with_name("explorer.curation.csv").read_text(encoding="utf-8") == lines


def test_a_curator_name_in_chinese_is_remembered(client: TestClient) -> None:
    trial = "NCT05201118"
    page = client.get(f"/trial/{trial}")
    form = {
        "csrf": csrf(client),
        "etag": etag_of(page.text),
        "kind": "review",
        "registration": f"ctgov:{trial}",
        "field": "branch",
        "verdict": "accepted",
        "reason": "标签正确",
        "curator": "王医生",
    }
    done = client.post(f"/trial/{trial}/curate", data=form, follow_redirects=False)
    assert done.status_code == 303
    again = client.get(f"/trial/{trial}")
    assert 'name="curator" required maxlength="80" value="王医生"' in again.text and "标签正确" in again.text


def test_writes_need_the_forms_csrf_token(client: TestClient) -> None:
    trial = "NCT05201118"
    page = client.get(f"/trial/{trial}")
    form = {
        "etag": etag_of(page.text),
        "kind": "override",
        "registration": f"ctgov:{trial}",
        "field": "branch",
        "value": "mixed",
        "reason": "x",
        "curator": "eve",
    }
    assert client.post(f"/trial/{trial}/curate", data=form).status_code == 403
    assert client.post(f"/trial/{trial}/curate", data={**form, "csrf": "forged" * 8}).status_code == 403


def test_an_invalid_override_is_refused_with_the_rule(client: TestClient) -> None:
    trial = "NCT05698303"
    page = client.get(f"/trial/{trial}")
    form = {
        "csrf": csrf(client),
        "etag": etag_of(page.text),
        "kind": "override",
        "registration": f"ctgov:{trial}",
        "field": "platforms",
        "value": "CAR-Q",
        "reason": "typo test",
        "curator": "ana",
    }
    refused = client.post(f"/trial/{trial}/curate", data=form)
    assert refused.status_code == 400 and "CAR-Q" in refused.text and "not in" in refused.text


def test_link_decisions_split_and_confirm(client: TestClient) -> None:
    trial = "ChiCTR2000029603"  # linked automatically to NCT04261907
    page = client.get(f"/trial/{trial}")
    assert "Registrations (2)" in page.text
    form = {
        "csrf": csrf(client),
        "etag": etag_of(page.text),
        "kind": "link",
        "registration": f"chictr:{trial}",
        "verdict": "different",
        "other_registry": "ctgov",
        "other_id": "NCT04261907",
        "reason": "different hospitals",
        "curator": "ana",
    }
    assert client.post(f"/trial/{trial}/curate", data=form, follow_redirects=False).status_code == 303
    split = client.get(f"/trial/{trial}")
    assert "Registrations (1)" in split.text and "rejected" in split.text
    confirm = {**form, "etag": etag_of(split.text), "verdict": "same", "reason": "same trial after all"}
    assert client.post(f"/trial/{trial}/curate", data=confirm, follow_redirects=False).status_code == 303
    assert "Registrations (2)" in client.get(f"/trial/{trial}").text


def test_review_queue_accept_takes_an_item_off(client: TestClient, db: Path) -> None:
    page = client.get("/review")
    assert page.status_code == 200 and "<kbd>j</kbd>" in page.text
    pending = number(page.text, "review-total")
    queue = atlas_of(client).review(limit=None)
    assert pending == len(queue) > 0
    first = re.search(
        r'name="etag" value="([0-9a-f]+)">.*?name="registration" value="([^"]+)">\s*<input type="hidden" '
        r'name="field" value="([^"]+)">',
        page.text,
        re.S,
    )
    assert first
    etag, registration, field = first.groups()
    registry, trial = registration.split(":", 1)
    item = queue.iloc[0]
    assert (item["registry"], item["trial_id"], item["field"]) == (registry, trial, field)
    form = {
        "csrf": csrf(client),
        "etag": etag,
        "kind": "review",
        "scope": "registration",
        "registration": registration,
        "field": field,
        "verdict": "accepted",
        "reason": "labels checked",
        "curator": "ana",
        "next": "/review?show=pending",
    }
    done = client.post(f"/trial/{trial}/curate", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/review?show=pending"
    after = client.get("/review")
    assert number(after.text, "review-total") == pending - 1
    # The verdict is an override keeping the label as it was, with the verdict in its reason.
    rows = list(csv.DictReader(db.with_name("explorer.curation.csv").open(encoding="utf-8")))
    line = next(r for r in rows if r["trial_id"] == trial and r["field"] == field)
    assert line["value"] == (item["current"] or "(none)") and line["reason"] == "accepted: labels checked"
    decided = client.get("/review?show=decided")
    assert trial in decided.text and "accepted: labels checked" in decided.text


# -- changes, feeds, saved views, geography -----------------------------------------------------------------


def test_changes_between_two_dates_and_the_feeds(client: TestClient) -> None:
    page = client.get("/changes?since=2023-01-01&until=2024-01-01&country=CN&target=BCMA&target=GPRC5D")
    assert page.status_code == 200
    atlas = atlas_of(client)

    def matching(as_of: str) -> set[str]:
        units = atlas.units(as_of, country="CN")
        return set(units.loc[units["targets"].map(lambda ts: bool({"BCMA", "GPRC5D"} & set(ts))), "unit_id"])

    old, new = matching("2023-01-01"), matching("2024-01-01")
    text = html.unescape(page.text)
    assert f"the CAR trials counted grew from {len(old):,} to {len(new):,} (+{len(new) - len(old):,})" in text
    assert f"New trials ({len(new - old):,})" in text
    atom = client.get("/changes/feed.atom?country=CN&target=BCMA&target=GPRC5D")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(atom.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert 0 < len(entries) <= 50
    assert feed.findtext("a:title", namespaces=ns) == "CAR trials · Target BCMA or GPRC5D · Country China"
    as_json = client.get("/changes/feed.json?country=CN&target=BCMA&target=GPRC5D").json()
    assert as_json["version"] == "https://jsonfeed.org/version/1.1" and len(as_json["items"]) == len(entries)


def headline_rows(page: str) -> list[tuple[str, str, str]]:
    """The "Counts" table of the changes page: (label, before, after)."""
    table = page.split('data-testid="headline"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td><td class=\"num\">(.*?)</td>", table)
    return [(html.unescape(a), b, c) for a, b, c in cells]


def test_changes_page_and_cartatlas_diff_agree(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One comparison (cartatlas.analysis.diff): the page shows the CLI's numbers for the same two dates."""
    directory = tmp_path_factory.mktemp("diff")
    path = fresh_copy(directory, built_database(tmp_path_factory.mktemp("explorer-base")), "diff.duckdb")
    args = ["diff", "--from", "2023-01-01", "--to", "2024-01-01", "--format", "json", "--db", str(path)]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    cli = orjson.loads(result.stdout)
    with TestClient(create_app(Settings(db=path, read_only=True), warm=False), base_url=BASE) as c:
        page = c.get("/changes?since=2023-01-01&until=2024-01-01")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert cli["paragraph"] in text
    show = lambda n: "?" if n is None else f"{n:,}"  # noqa: E731
    assert headline_rows(page.text) == [(h["label"], show(h["before"]), show(h["after"])) for h in cli["headline"]]
    total = next(h for h in cli["headline"] if h["key"] == "units")
    assert (total["before"], total["after"]) == (1194, 1433)  # the sample database, fixed
    assert f"New trials ({len(cli['new_trials']):,})" in text and len(cli["new_trials"]) > 100
    assert f"Status changes ({len(cli['status_changes']):,})" in text
    assert f"Phase changes ({len(cli['phase_changes']):,})" in text
    for section in cli["sections"].values():
        assert section["title"] in text
        for row in sorted((r for r in section["rows"] if r["change"]), key=lambda r: -abs(r["change"]))[:3]:
            assert f'<td>{row["key"]}</td><td class="num">{show(row["before"])}</td>' in page.text


def test_saved_view_has_its_own_feed(client: TestClient) -> None:
    form = {
        "csrf": csrf(client),
        "name": "New BCMA or GPRC5D trials in China",
        "query": "country=CN&target=BCMA&target=GPRC5D",
        "curator": "ana",
    }
    saved = client.post("/views", data=form, follow_redirects=False)
    assert saved.status_code == 303
    listing = client.get("/views").text
    assert "New BCMA or GPRC5D trials in China" in listing
    feed = client.get("/views/new-bcma-or-gprc5d-trials-in-china/feed.atom")
    assert feed.status_code == 200
    assert "<title>New BCMA or GPRC5D trials in China</title>" in feed.text
    opened = client.get("/views/new-bcma-or-gprc5d-trials-in-china", follow_redirects=False)
    assert opened.headers["location"] == "/?country=CN&target=BCMA&target=GPRC5D"


def test_geography_tables_and_tile_map(client: TestClient) -> None:
    page = client.get("/geo?target=BCMA")
    assert page.status_code == 200
    land = client.app.state.explorer.landscape(Counting(), TrialFilter.of(target=["BCMA"]))  # type: ignore[attr-defined]
    regions = land.tables["focus_regions"]
    top = regions.iloc[0]
    assert f"<title>{top['region']}: {top['n']:,} trials</title>" in page.text
    assert page.text.count('class="abbr') == 34  # every province, Taiwan, Hong Kong and Macao
    assert "cn_tiles.csv" in page.text


def test_concurrent_first_requests_of_different_filters(db: Path, tmp_path: Path) -> None:
    """Threads computing filtered landscapes at once each count publications on their own connection."""
    copy = fresh_copy(tmp_path, built_database(tmp_path), "concurrent.duckdb")
    urls = [
        f"/?{q}"
        for q in (
            "target=CD19",
            "target=BCMA",
            "platform=CAR-NK",
            "branch=autoimmune",
            "country=US",
            "phase=Phase+2",
            "sponsor_type=Industry",
            "source=allogeneic",
        )
    ]
    with TestClient(create_app(Settings(db=copy), warm=False), base_url=BASE) as c:
        c.get("/help")
        c.app.state.explorer.counted(Counting())  # type: ignore[attr-defined]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(c.get, urls))
    assert [a.status_code for a in answers] == [200] * len(urls)


def test_a_cached_page_carries_each_visitors_own_token_and_name(client: TestClient) -> None:
    first = client.get("/?target=CD22")
    token = re.search(r'name="csrf" value="([^"]+)"', first.text)
    assert token and token.group(1) == client.cookies.get("cartatlas_csrf")
    # A second browser (no `with`: entering the client would run the app's shutdown and close the database).
    other = TestClient(client.app, base_url=BASE, cookies={"cartatlas_curator": quote('<b>"zoë"</b>')})
    second = other.get("/?target=CD22")
    theirs = re.search(r'name="csrf" value="([^"]+)"', second.text)
    assert theirs and theirs.group(1) != token.group(1)
    assert 'value="&lt;b&gt;&#34;zoë&#34;&lt;/b&gt;"' in second.text
    nonce = re.search(r"'nonce-([^']+)'", second.headers["content-security-policy"])
    assert nonce and f'nonce="{nonce.group(1)}"' in second.text


# -- security ------------------------------------------------------------------------------------------


def test_pages_carry_a_strict_policy_and_no_unnonced_inline_script(client: TestClient) -> None:
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    for tag in re.findall(r"<script[^>]*>", page.text):
        assert 'src="/static/' in tag and f'nonce="{nonce.group(1)}"' in tag
    assert "style=" not in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_loopback_explorer_answers_only_loopback_hosts(client: TestClient) -> None:
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/help", headers={"host": "localhost:8765"}).status_code == 200


def test_read_only_and_token(tmp_path: Path) -> None:
    copy = fresh_copy(tmp_path, built_database(tmp_path), "ro.duckdb")
    with TestClient(create_app(Settings(db=copy, read_only=True), warm=False), base_url=BASE) as c:
        page = c.get("/trial/NCT05066646")
        assert "Override a label" not in page.text and "Read-only" in page.text
        form = {
            "csrf": csrf(c),
            "kind": "review",
            "registration": "ctgov:NCT05066646",
            "field": "branch",
            "verdict": "accepted",
            "reason": "x",
            "curator": "y",
        }
        assert c.post("/trial/NCT05066646/curate", data=form).status_code == 403
    with TestClient(create_app(Settings(db=copy, token="s3cret"), warm=False), base_url=BASE) as c:
        page = c.get("/trial/NCT05066646")
        form = {
            "csrf": csrf(c),
            "etag": etag_of(page.text),
            "kind": "review",
            "registration": "ctgov:NCT05066646",
            "field": "branch",
            "verdict": "accepted",
            "reason": "token test",
            "curator": "y",
        }
        assert c.post("/trial/NCT05066646/curate", data=form).status_code == 403
        assert c.post("/login", data={"token": "wrong"}).status_code == 403
        assert c.post("/login", data={"token": "s3cret"}, follow_redirects=False).status_code == 303
        assert c.post("/trial/NCT05066646/curate", data=form, follow_redirects=False).status_code == 303


def test_serve_refuses_an_open_address_without_a_token(db: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--db", str(db), "--host", "0.0.0.0"], env={"CARTATLAS_TOKEN": ""})
    assert isinstance(result.exception, CliError) and "--token" in str(result.exception)


def test_counting_per_registration(client: TestClient) -> None:
    page = client.get("/?per=registration&target=BCMA")
    assert page.status_code == 200
    expected = atlas_of(client).landscape(per="registration", where=TrialFilter.of(target=["BCMA"]))
    assert number(page.text, "total") == expected.facts["totals"]["units"] > 0
    assert client.get("/trials?per=registration&target=BCMA&cols=registrations").status_code == 200


def test_serve_prints_its_url_and_serves(tmp_path: Path) -> None:
    """`cartatlas serve` as a real process: the URL it prints answers (loopback, read-only here)."""
    copy = fresh_copy(tmp_path, built_database(tmp_path), "served.duckdb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "cartatlas", "serve", "--db", str(copy), "--port", str(port), "--read-only"]
    server = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url and url.group(0) == f"http://127.0.0.1:{port}/", line
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(url.group(0) + "help", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the served explorer did not answer"
                time.sleep(0.2)
        assert answer.status_code == 200 and "Keys and help" in answer.text
    finally:
        server.terminate()
        server.wait(20)


# -- last: it closes the module's explorer ----------------------------------------------------------


def test_curation_round_trips_with_the_cli(client: TestClient, db: Path, tmp_path: Path) -> None:
    """What the browser records, `curate --export` writes, and `curate` re-applies to other copies."""
    # Make sure the browser has recorded at least one override.
    trial = "NCT04561557"
    page = client.get(f"/trial/{trial}")
    form = {
        "csrf": csrf(client),
        "etag": etag_of(page.text),
        "kind": "override",
        "registration": f"ctgov:{trial}",
        "field": "relation",
        "value": "ancillary",
        "reason": "round trip",
        "curator": "ana",
    }
    assert client.post(f"/trial/{trial}/curate", data=form, follow_redirects=False).status_code == 303
    labels = read(
        client,
        "SELECT trial_id, relation, targets, branch, curated_fields FROM classifications "
        "WHERE len(curated_fields) > 0 ORDER BY trial_id",
    )
    client.app.state.explorer.close()  # type: ignore[attr-defined]  # DuckDB: one process writes a file
    runner = CliRunner()
    exported = tmp_path / "exported.csv"
    result = runner.invoke(cli_app, ["curate", "--export", str(exported), "--db", str(db)])
    assert result.exit_code == 0, result.output
    text = exported.read_text(encoding="utf-8")
    assert "round trip" in text and "ana" in text and "accepted: labels checked" in text and ",link," in text
    other = fresh_copy(tmp_path, built_database(tmp_path), "other.duckdb")
    result = runner.invoke(cli_app, ["curate", str(exported), "--db", str(other)])
    assert result.exit_code == 0, result.output
    with cartatlas.open(other) as atlas:
        again = atlas.sql(  # a fenced connection of its own: nothing else holds this file
            "SELECT trial_id, relation, targets, branch, curated_fields FROM classifications "
            "WHERE len(curated_fields) > 0 ORDER BY trial_id"
        )
    assert plain(again) == plain(labels) != []


def plain(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {k: list(v) if not isinstance(v, str) and hasattr(v, "__len__") else v for k, v in r.items()}
        for r in frame.to_dict("records")
    ]
