"""The whole registry, two ways: a paged pass of every study (``sync ctgov --all``) and the bulk export (``--bulk``).

A local server replays real ClinicalTrials.gov v2 studies (``replay_server.py``)
both as API pages (``countTotal``, ``nextPageToken``) and as the registry's
zip export (``studies/download?format=json.zip``: one JSON file per study,
sharded by the NCT id's last two digits).  Both routes must give the same
database; faults on the way (throttling, server errors, dropped connections,
a download cut short) must change nothing but the time taken.
"""

from __future__ import annotations

import datetime as dt
import random
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from export_server import ExportServer, export_zip
from replay_server import Fault, http_date, nct_id, real_studies
from test_sync import WALL, FakeClock, flat, make_client, run_cli

import cartatlas
from cartatlas.cli.ctgov_whole import Pace
from cartatlas.model import RawRecord, Reject
from cartatlas.pipeline.harvest.ctgov import SyncProgress
from cartatlas.pipeline.harvest.ctgov_bulk import read_export
from cartatlas.pipeline.harvest.estimate import IMPORT_RATE, SCREEN_RATE, duration, estimate_pass
from cartatlas.sources.ctgov.api import ALL_STUDIES, DEFAULT_RATE, MAX_PAGE_SIZE
from cartatlas.sources.ctgov.bulk import BulkDownloadError, bulk_url_for
from cartatlas.sources.files import read_path
from cartatlas.store import sync_state

#: Real studies served: enough for five pages of 200, in NCT order across the monitor corpus and the API samples.
N = 1000
PAGE = 200


@pytest.fixture
def server() -> Iterator[ExportServer]:
    with ExportServer(real_studies(N)) as srv:
        yield srv


def comparable(atlas: cartatlas.Atlas, out: Path) -> dict[str, Any]:
    """What must be equal between two databases of the same records: rows, labels, the exported CSV."""
    trials = atlas.sql("SELECT * EXCLUDE (version_id) FROM trials ORDER BY registry, trial_id")
    labels = atlas.sql("SELECT * EXCLUDE (classified_at) FROM classifications ORDER BY registry, trial_id")
    versions = atlas.sql("SELECT record_id, content_hash, format FROM raw_records ORDER BY record_id")
    atlas.export("csv", out)
    return {"trials": trials, "labels": labels, "versions": versions, "csv": out.read_bytes()}


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    pd.testing.assert_frame_equal(a["trials"], b["trials"])
    pd.testing.assert_frame_equal(a["labels"], b["labels"])
    pd.testing.assert_frame_equal(a["versions"], b["versions"])
    assert a["csv"] == b["csv"]


# -- the estimate ------------------------------------------------------------------------------


def test_the_estimate_for_the_whole_registry_at_the_polite_rate() -> None:
    plan = estimate_pass(560_000, MAX_PAGE_SIZE, DEFAULT_RATE)
    assert plan.pages == 560
    assert plan.request_seconds == 1120.0  # 560 requests, one every 2 s at 0.5 requests/s
    assert duration(plan.request_seconds) == "19 minutes"
    assert plan.screen_seconds == 560_000 / SCREEN_RATE == 280.0
    assert plan.import_seconds == 560_000 / IMPORT_RATE == 140.0  # overlaps the requests, which take longer
    assert plan.total_seconds == 1400.0
    assert plan.describe() == (
        "560,000 records: about 560 pages of 1,000 at the polite rate of 0.5 requests/s, at least 19 minutes "
        "of requests; then screening, about 5 minutes (about 23 minutes in all)"
    )
    # One record past a whole page is one more page; the CAR query is a few pages and seconds.
    assert estimate_pass(560_001, 1000, 0.5).pages == 561
    small = estimate_pass(2_587, 1000, 0.5)
    assert (small.pages, duration(small.request_seconds)) == (3, "6 seconds")
    assert estimate_pass(0, 1000, 0.5).pages == 1
    assert duration(5400) == "1.5 hours" and duration(1) == "1 second"
    with pytest.raises(ValueError):
        estimate_pass(10, 0, 0.5)
    with pytest.raises(ValueError):
        estimate_pass(10, 100, 0.0)


# -- every study, paged ------------------------------------------------------------------------------


def test_a_pass_of_every_study_sends_no_query_and_has_its_own_checkpoint(
    server: ExportServer, atlas: cartatlas.Atlas
) -> None:
    stats = atlas.sync_ctgov(ALL_STUDIES, client=make_client(server, FakeClock(), page_size=PAGE))
    requests = server.study_requests()
    assert len(requests) == N // PAGE
    assert all("query.term" not in r.params for r in requests)
    assert requests[0].params["countTotal"] == "true"
    assert stats.new == N
    state = sync_state.load(atlas.store, "ctgov", ALL_STUDIES)
    assert state is not None and state.status == "done" and state.total == state.records_done == N
    assert sync_state.load(atlas.store, "ctgov", "anything else") is None


def test_count_asks_for_one_record_with_the_total(server: ExportServer) -> None:
    with make_client(server, FakeClock()) as client:
        assert client.count(ALL_STUDIES) == N
        assert client.count(ALL_STUDIES, dt.date(2026, 1, 1)) == sum(
            1
            for s in server.served()
            if s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] >= "2026-01-01"
        )
    first = server.study_requests()[0]
    assert first.params["pageSize"] == "1" and first.params["countTotal"] == "true"
    assert "query.term" not in first.params


# -- the bulk export -----------------------------------------------------------------------------------


def test_bulk_and_paged_passes_give_the_same_database_despite_faults(server: ExportServer, tmp_path: Path) -> None:
    # The paged route meets throttling, a server error and a connection dropped mid-page.
    server.faults = {
        2: Fault.throttle(http_date(WALL + dt.timedelta(seconds=9))),
        4: Fault.error(503),
        6: Fault.reset(keep=0.3),
    }
    clock = FakeClock()
    with cartatlas.open(tmp_path / "paged.duckdb") as paged:
        stats = paged.sync_ctgov(ALL_STUDIES, full=True, client=make_client(server, clock, page_size=PAGE))
        assert (stats.new, stats.rejected) == (N, 0)
        assert [r.fault for r in server.study_requests()].count(None) == N // PAGE
        assert 9.0 in clock.sleeps
        paged_side = comparable(paged, tmp_path / "paged.csv")

    # The bulk route: the first attempt is throttled, the second cut off mid-body; the third arrives whole.
    before = len(server.requests)
    server.faults = {before + 1: Fault.throttle("4"), before + 2: Fault.reset(keep=0.5)}
    waits: list[float] = []
    with cartatlas.open(tmp_path / "bulk.duckdb") as bulk:
        stats = bulk.sync_ctgov_bulk(bulk_url_for(server.url), sleep=waits.append, rng=random.Random(3))
        assert (stats.seen, stats.new, stats.rejected) == (N, N, 0)
        assert len(server.export_requests()) == 3 and waits[0] == 4.0
        # The third attempt asks only for the bytes the dropped one did not bring.
        first, cut, resumed = server.export_requests()
        assert "range" not in first.headers and "range" not in cut.headers
        assert resumed.status == 206 and resumed.headers["range"].startswith("bytes=")
        assert int(resumed.headers["range"][6:-1]) > 0 and resumed.headers["if-range"].startswith('"')
        kinds = bulk.sql("SELECT DISTINCT source_kind FROM raw_records")["source_kind"].tolist()
        assert kinds == ["bulk"]
        source = bulk.sql("SELECT min(source) AS s FROM raw_records")["s"][0]
        assert source.startswith(bulk_url_for(server.url) + "!") and source.endswith(".json")
        bulk_side = comparable(bulk, tmp_path / "bulk.csv")
        # The bulk import completes a pass of every study: the next `sync ctgov --all` is incremental.
        state = sync_state.load(bulk.store, "ctgov", ALL_STUDIES)
        assert state is not None and state.status == "done" and state.total == N

    assert len(paged_side["trials"]) == N
    relations = paged_side["labels"]["relation"].value_counts().to_dict()
    assert relations == {"therapy": 913, "none": 67, "ancillary": 11, "follow_up": 9}
    assert_same(paged_side, bulk_side)


def test_a_download_cut_short_is_refused_and_leaves_nothing(server: ExportServer, tmp_path: Path) -> None:
    # The body stops half-way with a Content-Length that matches: only the zip's missing end can tell.
    server.faults = {1: Fault.truncated(keep=0.5)}
    keep = tmp_path / "kept" / "ctg-studies.json.zip"
    with cartatlas.open(tmp_path / "cut.duckdb") as atlas:
        with pytest.raises(BulkDownloadError, match=r"not a whole zip archive .*cut short or damaged") as err:
            atlas.sync_ctgov_bulk(bulk_url_for(server.url), keep=keep, sleep=lambda s: None)
        assert bulk_url_for(server.url) in str(err.value) and "ctg-studies.json.zip.part" in str(err.value)
        assert list(keep.parent.iterdir()) == []
        assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 0
        assert sync_state.load(atlas.store, "ctgov", ALL_STUDIES) is None
        assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["failed"]


def test_a_server_without_ranges_gets_asked_for_the_whole_archive_again(server: ExportServer, tmp_path: Path) -> None:
    server.ranges = False
    server.faults = {1: Fault.reset(keep=0.6)}
    with cartatlas.open(tmp_path / "again.duckdb") as atlas:
        stats = atlas.sync_ctgov_bulk(bulk_url_for(server.url), sleep=lambda s: None)
    assert stats.new == N
    assert [("range" in r.headers, r.status) for r in server.export_requests()] == [(False, 200), (False, 200)]


def test_an_html_page_instead_of_the_archive_is_refused(server: ExportServer, tmp_path: Path) -> None:
    server.faults = {1: Fault.html()}
    with cartatlas.open(tmp_path / "html.duckdb") as atlas:
        with pytest.raises(BulkDownloadError, match=r"not a zip archive \(starts with '<html>"):
            atlas.sync_ctgov_bulk(bulk_url_for(server.url), sleep=lambda s: None)
        assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 0
    assert not list(tmp_path.glob("cartatlas-bulk-*"))


def test_a_download_that_keeps_failing_gives_up_naming_the_url(server: ExportServer, tmp_path: Path) -> None:
    server.fault_from = (1, Fault.error(503, retry_after="1"))
    with (
        cartatlas.open(tmp_path / "down.duckdb") as atlas,
        pytest.raises(BulkDownloadError, match=r"no whole download after 3 attempts \(last: HTTP 503"),
    ):
        atlas.sync_ctgov_bulk(bulk_url_for(server.url), max_retries=2, sleep=lambda s: None)
    assert len(server.export_requests()) == 3


def test_a_refused_download_is_not_retried(server: ExportServer, tmp_path: Path) -> None:
    with (
        cartatlas.open(tmp_path / "refused.duckdb") as atlas,
        pytest.raises(BulkDownloadError, match=r"HTTP 400: format: only json.zip"),
    ):
        atlas.sync_ctgov_bulk(server.url + "/studies/download?format=csv", sleep=lambda s: None)
    assert len(server.export_requests()) == 1


def test_a_broken_study_in_the_archive_is_a_reject_naming_its_member(server: ExportServer, tmp_path: Path) -> None:
    # A real study with its NCT id removed, filed under a name of its own.
    broken = real_studies(N + 1)[-1]
    del broken["protocolSection"]["identificationModule"]["nctId"]
    server.add(broken, "NCT99999999")
    with cartatlas.open(tmp_path / "reject.duckdb") as atlas:
        stats = atlas.sync_ctgov_bulk(bulk_url_for(server.url), sleep=lambda s: None)
        assert (stats.new, stats.rejected) == (N, 1)
        (problem,) = atlas.sql("SELECT source, problem FROM rejects").to_dict("records")
    assert problem["source"] == bulk_url_for(server.url) + "!99/NCT99999999.json"
    assert "no NCT id" in problem["problem"]


def test_the_export_reader_reads_each_member_as_an_import_of_the_zip_would(tmp_path: Path) -> None:
    studies = real_studies(300)
    archive = tmp_path / "ctg-studies.json.zip"
    archive.write_bytes(export_zip({nct_id(s): s for s in studies}))
    with zipfile.ZipFile(archive, "a") as extra:
        extra.writestr("README.txt", "ClinicalTrials.gov export\n")  # not a record: skipped, as in a folder
        extra.writestr("00/NCT00000000.json", b'{"protocolSection": {"identificationModule": ')  # cut short
        extra.writestr("01/lines.json", b"\n".join(orjson.dumps(s) for s in studies[:3]))  # JSON lines

    def shown(items: Iterable[Any]) -> list[tuple[Any, ...]]:
        out = []
        for item in items:
            if isinstance(item, RawRecord):
                out.append(("record", item.source, item.locator, item.record_id, orjson.dumps(item.payload)))
            else:
                out.append((type(item).__name__, item.source, str(item)))
        return out

    fast = shown(read_export(archive))
    assert fast == shown(read_path(archive))
    assert sum(row[0] == "record" for row in fast) == 303
    assert [row[0] for row in fast].count("Reject") == 1 and [row[0] for row in fast].count("Skipped") == 1


def test_a_damaged_member_is_a_reject_naming_it(tmp_path: Path) -> None:
    archive = tmp_path / "ctg-studies.json.zip"
    data = bytearray(export_zip({nct_id(s): s for s in real_studies(3)}))
    # Flip a byte inside the second member's compressed data: its CRC check fails when it is read.
    second = data.find(b"PK\x03\x04", 4)
    data[second + 100] ^= 0xFF
    archive.write_bytes(bytes(data))
    items = list(read_export(archive))
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len([i for i in items if isinstance(i, RawRecord)]) == 2
    (reject,) = rejects
    assert reject.source.endswith(".json") and "!" in reject.source
    assert "cannot read this member of the archive" in reject.problem


# -- the command line -------------------------------------------------------------------------------


def test_cli_all_prints_the_plan_then_pages_and_the_bulk_route_matches(
    server: ExportServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paged_db, bulk_db = tmp_path / "cli-paged.duckdb", tmp_path / "cli-bulk.duckdb"
    base = ["sync", "ctgov", "--base-url", server.url, "--page-size", str(PAGE), "--rate", "500", "--no-feed"]

    assert run_cli(monkeypatch, *base, "--db", str(paged_db), "--all", "--estimate") == 0
    captured = capsys.readouterr()
    assert flat(captured.out) == (
        f"{N:,} records: about 5 pages of 200 at the polite rate of 500 requests/s, at least 1 second of requests; "
        "then screening, about 1 second (about 1 second in all)"
    )
    assert "full pass (no earlier complete pass of this query)" in flat(captured.err)

    assert run_cli(monkeypatch, *base, "--db", str(paged_db), "--all", "--full") == 0
    err = flat(capsys.readouterr().err)
    assert "sync ctgov: full pass" in err
    assert f"sync ctgov: {N:,} records: about 5 pages of 200 at the polite rate of 500 requests/s" in err
    assert f"pass complete: 5 pages, {N:,} records (server counted {N:,})" in err

    assert run_cli(monkeypatch, *base, "--db", str(bulk_db), "--bulk", "--keep", str(tmp_path / "ctg.zip")) == 0
    err = flat(capsys.readouterr().err)
    assert f"downloading {bulk_url_for(server.url)}" in err
    assert f"{N:,} files; importing" in err
    assert f"sync ctgov --bulk: {N:,} records read; {N:,} new, 0 changed, 0 unchanged; 0 rejected" in err
    with zipfile.ZipFile(tmp_path / "ctg.zip") as kept:
        assert len(kept.namelist()) == N

    with cartatlas.open(paged_db) as a, cartatlas.open(bulk_db) as b:
        assert_same(comparable(a, tmp_path / "a.csv"), comparable(b, tmp_path / "b.csv"))

    assert run_cli(monkeypatch, *base, "--db", str(bulk_db), "--all", "--query", "CAR") == 2
    assert "exclude each other" in flat(capsys.readouterr().err)
    assert run_cli(monkeypatch, *base, "--db", str(bulk_db), "--bulk", "--since", "2026-01-01") == 2
    assert "takes no --query, --since" in flat(capsys.readouterr().err)


def test_the_bar_shows_pages_of_all_and_this_runs_records_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]
    pace = Pace(0.5, 1000, clock=lambda: now[0])
    progress = SyncProgress(query=ALL_STUDIES, since=None, resumed=True, pages_done=40, records_done=40_000)
    # A resumed pass: 40 pages were committed by an earlier run; the estimate is for what is left.
    pace.start(40_000, 560_000)
    assert flat(capsys.readouterr().err) == (
        "sync ctgov: left: 520,000 records: about 520 pages of 1,000 at the polite rate of 0.5 requests/s, at "
        "least 17 minutes of requests; then screening, about 4 minutes (about 22 minutes in all) "
        "note: the registry's own export is the fast route to this many studies: `cartatlas sync ctgov --bulk` "
        "downloads every study in one request (about 2.5 GB) and imports it (docs/performance.md)"
    )
    pace.start(0, 560_000)  # said once
    assert capsys.readouterr().err == ""
    now[0] += 20.0
    progress.pages_done, progress.records_done, progress.total = 50, 50_000, 560_000
    assert pace.describe(progress) == "page 50/560, 500 records/s"
    progress.total = None
    assert pace.describe(progress) == "page 50/?, 500 records/s"


def test_cli_resumes_an_interrupted_pass_of_every_study_and_says_what_is_left(
    server: ExportServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "resume.duckdb"
    base = ["sync", "ctgov", "--all", "--base-url", server.url, "--page-size", str(PAGE), "--rate", "500"]
    server.faults = {3: Fault.error(503)}
    assert run_cli(monkeypatch, *base, "--db", str(db), "--no-feed", "--max-retries", "0") == 2
    assert "run the same command again to resume from page 3" in flat(capsys.readouterr().err)
    assert run_cli(monkeypatch, *base, "--db", str(db), "--no-feed") == 0
    err = flat(capsys.readouterr().err)
    assert "resuming the interrupted pass at page 3 (400 of 1,000 records done)" in err
    assert "sync ctgov: left: 600 records: about 3 pages of 200" in err
    assert [r.params.get("pageToken") is None for r in server.study_requests()] == [True] + [False] * 5
