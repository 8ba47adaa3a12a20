"""The explorer end to end: a real Chromium (Playwright) through an analyst's main journeys.

Search for a product, filter to China + BCMA + phase 1, open a trial, read
its evidence, override its target with a reason, see the count change,
download the filtered CSV and check its rows, share the URL and get the same
view, go back and forward, open the changes feed; the keyboard drives the
table; every main page is photographed at desktop and phone width (into
``$CARTATLAS_SCREENSHOTS`` when set, else a temporary folder) and must not
scroll sideways on a phone.  The browser is Debian's Chromium at
/usr/bin/chromium (``.ci/run`` installs it).
"""

from __future__ import annotations

import csv
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cartatlas.explorer import Settings, create_app
from tests.explorer_support import built_database, fresh_copy

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PAGES = {
    "landscape": "/?country=CN&target=BCMA",
    "trials": "/trials?country=CN&target=BCMA&phase=Phase+1",
    "trial": "/trial/NCT05066646",
    "search": "/search?q=CT103A",
    "review": "/review",
    "changes": "/changes?country=CN&target=BCMA&target=GPRC5D",
    "geo": "/geo",
    "views": "/views",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    import uvicorn

    directory = tmp_path_factory.mktemp("e2e")
    db = fresh_copy(directory, built_database(tmp_path_factory.mktemp("e2e-base")), "e2e.duckdb")
    port = _free_port()
    app = create_app(Settings(db=db, port=port))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            pytest.fail("the explorer did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("CARTATLAS_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    yield tab
    context.close()
    assert problems == [], f"the browser reported errors (a CSP violation shows here too): {problems}"


def total(tab: Any) -> int:
    return int(tab.get_by_test_id("total").inner_text().replace(",", ""))


def counted(app: Any, **filters: str) -> int:
    return len(app.state.explorer.reader().units(**filters))


def test_search_for_a_product(server: tuple[str, Any], page: Any) -> None:
    base, _ = server
    page.goto(base + "/")
    page.fill("#q", "CT103A")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=CT103A"))
    assert page.locator("mark").first.inner_text() == "CT103A"
    assert page.locator('a.id[href="/trial/NCT05066646"]').count() == 1


def test_filter_open_override_count_download_share(server: tuple[str, Any], page: Any, browser: Any) -> None:
    base, app = server
    page.goto(base + "/")
    # Ticking a box applies it at once (the page script submits the filter form).
    page.locator('input[name="country"][value="CN"]').check()
    page.wait_for_url(re.compile(r"country=CN"))
    page.locator('input[name="target"][value="BCMA"]').check()
    page.wait_for_url(re.compile(r"target=BCMA"))
    page.locator('input[name="phase"][value="Phase 1"]').check()
    page.wait_for_url(re.compile(r"phase=Phase\+1"))
    before = total(page)
    assert before == counted(app, country="CN", target="BCMA", phase="Phase 1") > 100
    landscape_url = page.url

    # Back and forward move between views.
    page.go_back()
    page.wait_for_url(re.compile(r"target=BCMA(?!.*phase)"))
    assert total(page) == counted(app, country="CN", target="BCMA")
    page.go_forward()
    page.wait_for_url(landscape_url)
    assert total(page) == before

    # The table of these trials; the keyboard opens the first one.
    page.get_by_role("link", name=re.compile(r"Open these .* trials as a table")).click()
    page.wait_for_url(re.compile(r"/trials\?"))
    assert int(page.get_by_test_id("table-total").inner_text().replace(",", "")) == before
    first = page.locator("table.trials tbody tr").first.get_attribute("data-href")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(str(first)) + "$"))

    # Read the evidence of its targets, then override them with a reason.
    evidence = page.locator("table.labels tr", has=page.locator('th:text-is("targets")')).first
    assert "BCMA" in evidence.inner_text()
    form = page.get_by_test_id("override-form")
    form.locator('select[name="field"]').select_option("targets")
    form.locator('input[name="value"]').fill("CD19")
    form.locator('input[name="reason"]').fill("e2e: the protocol's construct is anti-CD19")
    form.locator('input[name="curator"]').fill("e2e")
    form.get_by_role("button", name="Save override").click()
    assert "Override saved" in page.get_by_test_id("saved").inner_text()
    assert "e2e: the protocol's construct is anti-CD19" in page.get_by_test_id("curation-log").inner_text()
    # The trial page shows the new label at once (nothing cached from before the write), and what the rules said.
    targets = page.locator("table.labels tr", has=page.locator('th:text-is("targets")')).first.inner_text()
    assert targets.startswith("targets\tCD19") and "curated" in targets and "rules said: BCMA" in targets

    # The count changes.
    page.goto(landscape_url)
    assert total(page) == before - 1

    # The filtered CSV holds exactly the table's rows.
    page.goto(landscape_url.replace("/?", "/trials?"))
    with page.expect_download() as download_info:
        page.get_by_test_id("download-csv").click()
    path = download_info.value.path()
    rows = list(csv.reader(Path(path).read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0][0] == "Trial" and len(rows) - 1 == before - 1
    expected = app.state.explorer.reader().units(country="CN", target="BCMA", phase="Phase 1")
    assert {r[0] for r in rows[1:]} == set(expected["unit_id"])

    # The URL is the view: another browser gets the same numbers.
    other = browser.new_context(viewport=PHONE)
    try:
        shared = other.new_page()
        shared.goto(landscape_url)
        assert total(shared) == before - 1
    finally:
        other.close()


def test_open_the_changes_feed(server: tuple[str, Any], page: Any) -> None:
    base, _ = server
    page.goto(base + "/changes?country=CN&target=BCMA&target=GPRC5D")
    story = page.get_by_test_id("story").inner_text()
    assert "the CAR trials counted grew from" in story and "trials are new to the count" in story
    href = page.get_by_test_id("feed-atom").get_attribute("href")
    feed = page.request.get(base + str(href))
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    assert feed.text().count("<entry>") > 0


def test_review_queue_by_keyboard(server: tuple[str, Any], page: Any) -> None:
    base, _ = server
    page.goto(base + "/review")
    pending = int(page.get_by_test_id("review-total").inner_text().replace(",", ""))
    page.keyboard.press("j")
    first = page.locator("ol.queue li.selected")
    trial = str(first.get_attribute("data-href")).rsplit("/", 1)[1]
    page.keyboard.press("d")  # dismiss: the reason box takes the focus
    page.keyboard.type("e2e: an ancillary study, no CAR product given")
    page.locator("ol.queue li.selected input[name=curator]").fill("e2e")
    page.locator("ol.queue li.selected [data-reason]").press("Enter")
    page.wait_for_url(re.compile(r"/review\?show=pending"))
    assert int(page.get_by_test_id("review-total").inner_text().replace(",", "")) == pending - 1
    page.goto(base + "/review?show=decided")
    assert f"/trial/{trial}" in page.content()
    assert "dismissed: e2e: an ancillary study, no CAR product given" in page.content()


def test_pages_at_desktop_and_phone_width(server: tuple[str, Any], browser: Any, shots: Path) -> None:
    base, _ = server
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        tab = context.new_page()
        try:
            for name, url in PAGES.items():
                tab.goto(base + url)
                tab.screenshot(path=str(shots / f"{name}-{size}.png"))
                if size == "phone":
                    overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px on a phone"
        finally:
            context.close()
    assert len(list(shots.glob("*.png"))) >= 2 * len(PAGES)
