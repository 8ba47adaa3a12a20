"""``sync chictr`` against a local server serving ChiCTR's real pages, with faults injected."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.cli.common import CliError
from cartatlas.sources.chictr.sync import ChictrClient, ChictrError, RetriesExhausted, WafBlocked
from cartatlas.store import sync_state
from tests.chictr_server import REAL_PROJ, REAL_REGNO, ChictrServer, Fault

QUERY = "KRAS"


def _client(server: ChictrServer, waits: list[float] | None = None, **options: object) -> ChictrClient:
    sink = waits if waits is not None else []
    return ChictrClient(server.url, rate=1000.0, sleep=sink.append, **options)  # type: ignore[arg-type]


def _stored(atlas: cartatlas.Atlas) -> list[str]:
    return list(atlas.sql("SELECT trial_id FROM trials WHERE registry = 'chictr' ORDER BY 1")["trial_id"])


def _state(atlas: cartatlas.Atlas) -> sync_state.SyncState:
    state = sync_state.load(atlas.store, "chictr", QUERY)
    assert state is not None
    return state


def test_a_pass_walks_every_result_page_and_stores_every_trial_page(atlas: cartatlas.Atlas) -> None:
    with ChictrServer(rows_per_page=4) as server, _client(server) as client:
        stats = atlas.sync_chictr(QUERY, client=client)
        listed = [regno for regno, _ in server.listed]
        paths = [r.path for r in server.requests]
    assert stats.new == 11 and stats.rejected == 0
    assert _stored(atlas) == sorted(listed)
    assert paths.count("/searchproj.html") == 3 and paths.count("/showproj.html") == 11
    real = atlas.sql(
        "SELECT source_format, brief_title_local, lead_sponsor, web_address FROM trials WHERE trial_id = ?",
        [REAL_REGNO],
    ).iloc[0]
    assert real.source_format == "chictr_html"
    assert real.brief_title_local.startswith("SUNRAY-01，")
    assert real.lead_sponsor == "Jilin Cancer Hospital"
    assert real.web_address.endswith(f"/showproj.html?proj={REAL_PROJ}")
    kinds = set(atlas.sql("SELECT DISTINCT source_kind FROM raw_records WHERE registry = 'chictr'")["source_kind"])
    assert kinds == {"api"}
    state = _state(atlas)
    assert state.status == sync_state.DONE and state.records_done == 11 and state.total == 11


def test_server_errors_resets_and_cut_pages_are_retried(atlas: cartatlas.Atlas) -> None:
    faults = {
        1: Fault.error(503, retry_after="7"),
        3: Fault.reset(),
        4: Fault.truncated(),
        6: Fault.error(500),
        9: Fault.truncated(),
    }
    waits: list[float] = []
    with ChictrServer(rows_per_page=4, faults=faults) as server, _client(server, waits, backoff_base=0.01) as client:
        stats = atlas.sync_chictr(QUERY, client=client)
        retried = [r.number for r in server.requests if r.fault]
    assert stats.new == 11 and stats.rejected == 0
    assert retried == sorted(faults)
    assert 7.0 in waits  # Retry-After honoured


def test_the_firewall_challenge_stops_the_harvest_plainly_and_a_rerun_resumes(atlas: cartatlas.Atlas) -> None:
    # Requests: 1 result page 1, 2-5 its four trials, 6 result page 2 -> the WAF answers.
    with (
        ChictrServer(rows_per_page=4, faults={6: Fault.challenge()}) as server,
        _client(server) as client,
        pytest.raises(WafBlocked) as caught,
    ):
        atlas.sync_chictr(QUERY, client=client)
    message = str(caught.value)
    assert "firewall" in message and "JavaScript challenge" in message and "ICTRP" in message
    assert len(_stored(atlas)) == 4
    leaked = atlas.sql("SELECT count(*) AS n FROM raw_records WHERE payload LIKE '%acw_sc__v2%'")["n"][0]
    assert leaked == 0
    state = _state(atlas)
    assert state.running and state.page_token == "2:0" and state.records_done == 4
    with ChictrServer(rows_per_page=4) as server, _client(server) as client:
        stats = atlas.sync_chictr(QUERY, client=client)
        first = server.requests[0]
        details = [r.params["proj"] for r in server.requests if r.path == "/showproj.html"]
    assert (first.path, first.params["page"]) == ("/searchproj.html", "2")
    assert len(details) == 7 and stats.new == 7
    assert len(_stored(atlas)) == 11
    assert _state(atlas).status == sync_state.DONE
    runs = atlas.sql("SELECT status FROM runs WHERE kind = 'sync' ORDER BY started_at")["status"]
    assert list(runs) == ["failed", "ok"]


def test_a_challenge_instead_of_a_trial_page_keeps_the_row_to_resume_from(atlas: cartatlas.Atlas) -> None:
    # Request 4 is the third trial of result page 1.
    with (
        ChictrServer(rows_per_page=4, limit=5, faults={4: Fault.challenge()}) as server,
        _client(server) as c,
        pytest.raises(WafBlocked),
    ):
        atlas.sync_chictr(QUERY, client=c)
    assert _state(atlas).page_token == "1:2"
    with ChictrServer(rows_per_page=4, limit=5) as server, _client(server) as client:
        atlas.sync_chictr(QUERY, client=client)
        details = [r.params["proj"] for r in server.requests if r.path == "/showproj.html"]
        third = server.listed[2][1]
    assert details[0] == third and len(details) == 4
    assert len(_stored(atlas)) == 6


def test_http_405_is_the_firewall_too(atlas: cartatlas.Atlas) -> None:
    with ChictrServer(faults={1: Fault.blocked()}) as server, _client(server) as client:
        with pytest.raises(WafBlocked, match="405"):
            atlas.sync_chictr(QUERY, client=client)
        assert len(server.requests) == 1  # no retry: waiting does not lift the block
    assert _stored(atlas) == []


def test_a_missing_trial_page_is_rejected_and_the_others_are_kept(atlas: cartatlas.Atlas) -> None:
    with ChictrServer(rows_per_page=4, limit=3) as server:
        regno, proj = server.listed[1]
        server.missing.add(proj)
        with _client(server) as client:
            stats = atlas.sync_chictr(QUERY, client=client)
    assert stats.rejected == 1 and stats.new == 3
    [reject] = stats.rejects
    assert reject.record_id == regno and "404" in reject.problem and proj in reject.source
    logged = atlas.sql("SELECT record_id FROM rejects")["record_id"]
    assert list(logged) == [regno]
    assert list(atlas.sql("SELECT status FROM runs WHERE kind = 'sync'")["status"]) == ["partial"]


def test_a_result_page_that_never_arrives_stops_with_the_checkpoint_kept(atlas: cartatlas.Atlas) -> None:
    faults = {n: Fault.error(502) for n in range(4, 4 + 3)}
    with (
        ChictrServer(rows_per_page=2, limit=5, faults=faults) as server,
        _client(server, max_retries=2, backoff_base=0.01) as c,
        pytest.raises(RetriesExhausted, match="3 attempts"),
    ):
        atlas.sync_chictr(QUERY, client=c)
    assert isinstance(RetriesExhausted("x"), ChictrError)
    assert _state(atlas).page_token == "2:0" and len(_stored(atlas)) == 2


def test_a_site_repeating_the_same_results_is_not_walked_forever(atlas: cartatlas.Atlas) -> None:
    with ChictrServer(rows_per_page=100, limit=2, include_real_detail=False) as server:
        server.rows = server.rows * 3  # data-total now says 6, but every page shows the same rows
        server.rows_per_page = 2
        original = server.search_page
        server.search_page = lambda page: original(1)  # type: ignore[method-assign]
        with _client(server) as client, pytest.raises(ChictrError, match="same results"):
            atlas.sync_chictr(QUERY, client=client)


def test_the_cli_harvests_and_says_plainly_when_the_firewall_answers(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    runner = CliRunner()
    with ChictrServer(rows_per_page=2, limit=2) as server:
        args = ["sync", "chictr", "--query", QUERY, "--base-url", server.url, "--rate", "1000", "--db", str(db)]
        ok = runner.invoke(app, args)
        assert ok.exit_code == 0, ok.output
        assert "sync chictr: 3 records read; 3 new" in ok.output
    with ChictrServer(faults={1: Fault.challenge()}) as server:
        args = ["sync", "chictr", "--query", "other", "--base-url", server.url, "--rate", "1000", "--db", str(db)]
        blocked = runner.invoke(app, args)
    # The CLI's entry point prints a CliError as one line and exits 2; the runner shows the error itself.
    assert isinstance(blocked.exception, CliError)
    text = " ".join(str(blocked.exception).split())
    assert "firewall" in text and "nothing from this answer was stored" in text and "resumes" in text
