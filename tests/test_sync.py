"""``cartatlas sync ctgov`` end to end against a local server replaying real ClinicalTrials.gov records.

The server (``tests/replay_server.py``) speaks API v2 paging and filtering and
injects faults by request number; the client's sleeps go to a fake clock, so
Retry-After and backoff are checked by what the client chose to wait, never by
the wall clock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from replay_server import Fault, ReplayServer, http_date, real_studies

import cartatlas
from cartatlas.cli import main as cli_main
from cartatlas.pipeline.harvest.ctgov import plan_sync
from cartatlas.sources.ctgov.api import (
    DEFAULT_QUERY,
    ApiError,
    CtgovClient,
    RetriesExhausted,
    essie_or,
    since_filter,
)
from cartatlas.sources.http import parse_retry_after
from cartatlas.store import sync_state

REPO = Path(__file__).resolve().parents[1]
#: What the fake wall clock says when a client parses an HTTP-date Retry-After.
WALL = dt.datetime(2026, 8, 23, 12, 0, 0, tzinfo=dt.UTC)
#: Enough real studies for three pages of 200: fault tests need pages, not volume.
SUBSET = 600
#: How long a "slow" answer is held when the client is meant to time out first.
MAX_SLOW = 5.0


class FakeClock:
    """Monotonic time that moves only when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t


def make_client(server: ReplayServer, clock: FakeClock, **options: Any) -> CtgovClient:
    settings: dict[str, Any] = {
        "rate": 2.0,
        "max_retries": 4,
        "page_size": 200,
        "timeout": 10.0,
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "wall_clock": lambda: WALL,
        "rng": random.Random(7),
    }
    settings.update(options)
    return CtgovClient(server.url, **settings)


def versions(atlas: cartatlas.Atlas) -> set[tuple[str, str]]:
    rows = atlas.store.con.execute("SELECT record_id, content_hash FROM raw_records").fetchall()
    return {(r[0], r[1]) for r in rows}


def version_count(atlas: cartatlas.Atlas) -> int:
    row = atlas.store.con.execute("SELECT count(*) FROM raw_records").fetchone()
    assert row is not None
    return int(row[0])


def state_of(atlas: cartatlas.Atlas, query: str = DEFAULT_QUERY) -> sync_state.SyncState:
    state = sync_state.load(atlas.store, "ctgov", query)
    assert state is not None
    return state


def fixed_clock(when: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: when


@pytest.fixture
def subset_server() -> Iterator[ReplayServer]:
    with ReplayServer(real_studies(SUBSET)) as server:
        yield server


@pytest.fixture(scope="module")
def subset_reference(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(record_id, content_hash) of an uninterrupted, fault-free sync of the subset."""
    db = tmp_path_factory.mktemp("ref") / "subset.duckdb"
    with ReplayServer(real_studies(SUBSET)) as server, cartatlas.open(db) as atlas:
        atlas.sync_ctgov(client=make_client(server, FakeClock()))
        return versions(atlas)


@pytest.fixture(scope="module")
def full_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted sync of every real record, and what the server saw."""
    db = tmp_path_factory.mktemp("ref") / "full.duckdb"
    with ReplayServer(real_studies()) as server, cartatlas.open(db) as atlas:
        client = make_client(server, FakeClock(), page_size=500)
        stats = atlas.sync_ctgov(client=client)
        per_record = atlas.store.con.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM raw_records GROUP BY record_id)"
        ).fetchone()
        return {
            "stats": stats,
            "versions": versions(atlas),
            "served": {s["protocolSection"]["identificationModule"]["nctId"] for s in server.served()},
            "requests": list(server.study_requests()),
            "state": state_of(atlas),
            "max_versions_per_record": per_record[0] if per_record else None,
            "sources": atlas.sql("SELECT DISTINCT source_kind FROM raw_records")["source_kind"].tolist(),
            "run": atlas.sql("SELECT kind, status, params, seen, new FROM runs").to_dict("records"),
            "user_agent": server.study_requests()[0].headers.get("user-agent", ""),
        }


# -- the query and the protocol ----------------------------------------------------------


def test_default_query_is_an_essie_or_of_quoted_car_phrases() -> None:
    for term in ("chimeric antigen receptor", "CAR-T", "CAR T", "CART", "CAR-NK", "CAR NK", "CAAR-T", "CAR-Treg"):
        assert f'"{term}"' in DEFAULT_QUERY
    assert '"CAR-M"' in DEFAULT_QUERY
    assert DEFAULT_QUERY.count('"') == 2 * (DEFAULT_QUERY.count(" OR ") + 1)
    assert essie_or(['say "hi"  there', ""]) == '"say hi there"'
    assert since_filter(dt.date(2024, 1, 1)) == "AREA[LastUpdatePostDate]RANGE[2024-01-01,MAX]"


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("7", WALL) == 7.0
    assert parse_retry_after(http_date(WALL + dt.timedelta(seconds=42)), WALL) == 42.0
    assert parse_retry_after(http_date(WALL - dt.timedelta(seconds=42)), WALL) == 0.0
    assert parse_retry_after("soon", WALL) is None
    assert parse_retry_after(None, WALL) is None


def test_full_sync_stores_every_real_record_exactly_once(full_reference: dict[str, Any]) -> None:
    ref = full_reference
    served = ref["served"]
    assert len(served) > 2600  # the reconstructed corpus plus the api_v2 samples
    assert {rid for rid, _ in ref["versions"]} == served
    assert len(ref["versions"]) == len(served)
    assert ref["max_versions_per_record"] == 1
    assert ref["stats"].new == len(served) and ref["stats"].rejected == 0
    assert ref["sources"] == ["api"]
    requests = ref["requests"]
    assert len(requests) == -(-len(served) // 500)  # one request per page, no retries
    assert requests[0].params["countTotal"] == "true"
    assert all("countTotal" not in r.params for r in requests[1:])
    assert all(r.params["pageSize"] == "500" and r.params["query.term"] == DEFAULT_QUERY for r in requests)
    assert all("filter.advanced" not in r.params for r in requests)
    assert ref["user_agent"].startswith(f"cartatlas/{cartatlas.__version__}")
    state = ref["state"]
    assert state.status == "done" and state.page_token is None
    assert state.records_done == state.total == len(served)
    assert state.last_success_at is not None and state.last_success_from is None
    (run,) = ref["run"]
    assert run["kind"] == "sync" and run["status"] == "ok" and run["new"] == len(served)
    params = json.loads(run["params"])
    assert params["query"] == DEFAULT_QUERY and params["since"] is None


def test_sources_name_the_page_url(subset_server: ReplayServer, atlas: cartatlas.Atlas) -> None:
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    rows = atlas.sql("SELECT DISTINCT source, split_part(locator, ' studies', 1) AS page FROM raw_records")
    assert len(rows) == 3
    assert all(src.startswith(subset_server.url + "/studies?") for src in rows["source"])
    assert sum("pageToken=" in src for src in rows["source"]) == 2


# -- faults --------------------------------------------------------------------------


FAULTS = {
    "429 Retry-After seconds": Fault.throttle("7"),
    "429 Retry-After HTTP date": Fault.throttle(http_date(WALL + dt.timedelta(seconds=12))),
    "500": Fault.error(500),
    "503": Fault.error(503),
    "connection reset mid-body": Fault.reset(),
    "truncated JSON": Fault.truncated(),
    "HTML error page": Fault.html(),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_is_survived(
    name: str, subset_server: ReplayServer, atlas: cartatlas.Atlas, subset_reference: set[tuple[str, str]]
) -> None:
    subset_server.faults = {2: FAULTS[name]}
    clock = FakeClock()
    client = make_client(subset_server, clock)
    stats = atlas.sync_ctgov(client=client)
    assert versions(atlas) == subset_reference
    assert version_count(atlas) == SUBSET
    assert stats.new == SUBSET
    requests = subset_server.study_requests()
    assert len(requests) == 4  # three pages and one retry
    assert requests[1].fault is not None and requests[2].fault is None
    assert requests[1].params.get("pageToken") == requests[2].params.get("pageToken") is not None
    # What the client waited for between the failed attempt and its retry.
    if "Retry-After seconds" in name:
        assert 7.0 in client.waits
    elif "HTTP date" in name:
        assert 12.0 in client.waits
    else:
        assert any(1.0 <= w <= 2.0 for w in client.waits)  # first backoff: base 2 s, jitter in the upper half
    assert clock.sleeps == client.waits


def test_slow_response_within_the_timeout_is_waited_for(subset_server: ReplayServer, atlas: cartatlas.Atlas) -> None:
    subset_server.faults = {2: Fault.slow(0.2)}
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    assert len(subset_server.study_requests()) == 3
    assert version_count(atlas) == SUBSET


def test_slow_response_past_the_timeout_is_retried(
    subset_server: ReplayServer, atlas: cartatlas.Atlas, subset_reference: set[tuple[str, str]]
) -> None:
    subset_server.faults = {2: Fault.slow(MAX_SLOW)}
    client = make_client(subset_server, FakeClock(), timeout=0.3)
    atlas.sync_ctgov(client=client)
    subset_server.release()
    assert len(subset_server.study_requests()) == 4
    assert versions(atlas) == subset_reference


def test_a_response_trickling_past_its_deadline_is_retried(
    subset_server: ReplayServer, atlas: cartatlas.Atlas, subset_reference: set[tuple[str, str]]
) -> None:
    # Every wait for bytes is short, so only the whole-response deadline can stop this one.
    subset_server.faults = {2: Fault.trickle(MAX_SLOW)}
    client = make_client(subset_server, FakeClock(), timeout=2.0, max_request_seconds=0.3)
    atlas.sync_ctgov(client=client)
    subset_server.release()
    assert len(subset_server.study_requests()) == 4
    assert versions(atlas) == subset_reference


def test_backoff_grows_exponentially_with_jitter(subset_server: ReplayServer, atlas: cartatlas.Atlas) -> None:
    subset_server.faults = {2: Fault.error(503), 3: Fault.error(500), 4: Fault.error(502)}
    client = make_client(subset_server, FakeClock(), rate=1000.0, backoff_base=2.0)
    atlas.sync_ctgov(client=client)
    backoffs = [w for w in client.waits if w >= 0.5]
    assert len(backoffs) == 3
    for n, wait in enumerate(backoffs):
        assert 2.0 * 2**n / 2 <= wait <= 2.0 * 2**n
    assert version_count(atlas) == SUBSET


def test_requests_are_paced_to_the_rate(subset_server: ReplayServer, atlas: cartatlas.Atlas) -> None:
    clock = FakeClock()
    atlas.sync_ctgov(client=make_client(subset_server, clock, rate=0.5))
    # Three requests at 0.5/s: two waits that together make up the 2 s interval after each request.
    assert len(clock.sleeps) == 2 and all(1.9 < s <= 2.0 for s in clock.sleeps)


def test_exhausted_retries_give_a_clear_error_and_a_resumable_checkpoint(
    subset_server: ReplayServer, atlas: cartatlas.Atlas, subset_reference: set[tuple[str, str]]
) -> None:
    subset_server.faults = {n: Fault.error(503) for n in (2, 3, 4)}
    with pytest.raises(RetriesExhausted, match=r"no usable answer after 3 attempts .*HTTP 503"):
        atlas.sync_ctgov(client=make_client(subset_server, FakeClock(), max_retries=2))
    state = state_of(atlas)
    assert state.status == "running" and state.pages_done == 1 and state.records_done == 200
    assert state.total == SUBSET
    stuck_token = subset_server.study_requests()[1].params["pageToken"]
    assert state.page_token == stuck_token
    assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["failed"]
    assert version_count(atlas) == 200

    subset_server.clear_faults()
    before = len(subset_server.requests)
    stats = atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    resumed = subset_server.study_requests()[before:]
    assert resumed[0].params["pageToken"] == stuck_token and "countTotal" not in resumed[0].params
    assert len(resumed) == 2
    assert stats.new == SUBSET - 200
    assert versions(atlas) == subset_reference and version_count(atlas) == SUBSET
    assert state_of(atlas).status == "done"


def test_expired_page_token_mid_pass_restarts_the_pass(
    subset_server: ReplayServer,
    atlas: cartatlas.Atlas,
    subset_reference: set[tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    subset_server.faults = {3: Fault.expired_token()}
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    requests = subset_server.study_requests()
    assert [r.status for r in requests] == [200, 200, 400, 200, 200, 200]
    assert "pageToken" not in requests[3].params and requests[3].params["countTotal"] == "true"
    assert "refused the page token" in caplog.text and "from the first page" in caplog.text
    assert versions(atlas) == subset_reference and version_count(atlas) == SUBSET


def test_stored_page_token_refused_on_resume_restarts_the_pass(
    subset_server: ReplayServer, atlas: cartatlas.Atlas, subset_reference: set[tuple[str, str]]
) -> None:
    subset_server.faults = {3: Fault.error(500), 4: Fault.error(500)}
    with pytest.raises(RetriesExhausted):
        atlas.sync_ctgov(client=make_client(subset_server, FakeClock(), max_retries=1))
    assert state_of(atlas).pages_done == 2
    subset_server.clear_faults()
    subset_server.expire_tokens()  # the server forgot the stored token meanwhile
    notes: list[str] = []
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()), on_page=lambda p, s: notes.extend(p.notes))
    assert any("refused the page token" in n for n in notes)
    assert versions(atlas) == subset_reference and version_count(atlas) == SUBSET
    assert state_of(atlas).status == "done"


def test_a_server_that_refuses_the_query_is_an_error_not_a_retry(
    subset_server: ReplayServer, atlas: cartatlas.Atlas
) -> None:
    subset_server.faults = {1: Fault.error(400)}
    with pytest.raises(ApiError, match="HTTP 400"):
        atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    assert len(subset_server.study_requests()) == 1


# -- incremental -----------------------------------------------------------------------


def _set_status(value: str) -> Callable[[dict[str, Any]], None]:
    def change(study: dict[str, Any]) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = value

    return change


def test_incremental_sync_asks_only_for_updates_and_adds_only_changed_versions(
    subset_server: ReplayServer, atlas: cartatlas.Atlas
) -> None:
    first_pass = dt.datetime(2026, 8, 23, 9, 30, tzinfo=dt.UTC)
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()), clock=fixed_clock(first_pass))
    assert version_count(atlas) == SUBSET
    ids = sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in subset_server.served())

    # The registry posts changes to three trials.
    for rid in ids[10:13]:
        subset_server.update(rid, _set_status("TERMINATED"), "2026-09-01")
    before = len(subset_server.requests)

    second_pass = dt.datetime(2026, 9, 1, 18, 0, tzinfo=dt.UTC)
    stats = atlas.sync_ctgov(
        since=dt.date(2026, 9, 1), client=make_client(subset_server, FakeClock()), clock=fixed_clock(second_pass)
    )
    (request,) = subset_server.study_requests()[before:]
    assert request.params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2026-09-01,MAX]"
    assert request.returned == 3
    assert (stats.seen, stats.new, stats.changed, stats.unchanged) == (3, 0, 3, 0)
    assert version_count(atlas) == SUBSET + 3
    changed = atlas.sql("SELECT record_id FROM raw_records GROUP BY 1 HAVING count(*) > 1")["record_id"].tolist()
    assert sorted(changed) == ids[10:13]
    current = atlas.trials().set_index("trial_id")
    assert (current.loc[ids[10:13], "overall_status"] == "TERMINATED").all()
    state = state_of(atlas)
    assert state.last_success_from == dt.date(2026, 9, 1) and state.status == "done"

    # Without --since: since the last complete pass began (2026-09-01), less the overlap.
    subset_server.update(ids[30], _set_status("WITHDRAWN"), "2026-09-03")
    before = len(subset_server.requests)
    versions_before = version_count(atlas)
    stats = atlas.sync_ctgov(
        client=make_client(subset_server, FakeClock()),
        clock=fixed_clock(dt.datetime(2026, 9, 4, tzinfo=dt.UTC)),
    )
    (request,) = subset_server.study_requests()[before:]
    assert request.params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2026-08-29,MAX]"
    # The three from the last pass come back unchanged and add nothing; the new change adds one version.
    assert (stats.seen, stats.new, stats.changed, stats.unchanged) == (4, 0, 1, 3)
    assert version_count(atlas) == versions_before + 1
    runs = atlas.sql("SELECT params FROM runs ORDER BY started_at")["params"].tolist()
    assert json.loads(runs[-1])["since"] == "2026-08-29"


def test_a_query_of_ones_own_has_its_own_checkpoint(subset_server: ReplayServer, atlas: cartatlas.Atlas) -> None:
    own = '"CAR-NK"   OR "CAR NK"'
    subset_server.faults = {2: Fault.error(503)}
    with pytest.raises(RetriesExhausted):
        atlas.sync_ctgov(query=own, client=make_client(subset_server, FakeClock(), max_retries=0))
    assert subset_server.study_requests()[0].params["query.term"] == '"CAR-NK" OR "CAR NK"'
    # The default query neither resumes nor disturbs the other query's interrupted pass.
    atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
    assert state_of(atlas).status == "done"
    mine = state_of(atlas, own)
    assert mine.status == "running" and mine.pages_done == 1
    before = len(subset_server.requests)
    atlas.sync_ctgov(query=own, client=make_client(subset_server, FakeClock()))
    resumed = subset_server.study_requests()[before:]
    assert len(resumed) == 2 and resumed[0].params["pageToken"] == mine.page_token
    assert state_of(atlas, own).status == "done"


def test_plan_resumes_an_interrupted_pass_unless_another_is_asked_for() -> None:
    started = dt.datetime(2026, 9, 1, 23, 0, tzinfo=dt.UTC)
    state = sync_state.SyncState(
        "ctgov:q", "ctgov", "q", dt.date(2026, 8, 1), "tok", 3, 300, 900, "running", "r1", started, started, None, None
    )
    assert plan_sync(state, "q", None, False).resume is state
    assert plan_sync(state, "q", dt.date(2026, 8, 1), False).resume is state
    other = plan_sync(state, "q", dt.date(2026, 8, 15), False)
    assert other.resume is None and other.since == dt.date(2026, 8, 15)
    full = plan_sync(state, "q", None, True)
    assert full.resume is None and full.since is None
    state.status = "done"
    state.last_success_at = started
    assert plan_sync(state, "q", None, False).since == dt.date(2026, 8, 29)
    assert plan_sync(None, "q", None, False).since is None
    with pytest.raises(ValueError):
        plan_sync(None, "q", dt.date(2026, 1, 1), True)


# -- the command line ----------------------------------------------------------------------


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["cartatlas", *args])
    with pytest.raises(SystemExit) as exited:
        cli_main()
    code = exited.value.code
    return code if isinstance(code, int) else 1


def cli_args(server: ReplayServer, db: Path, *extra: str) -> list[str]:
    return ["sync", "ctgov", "--base-url", server.url, "--db", str(db), "--page-size", "200", "--rate", "200", *extra]


def test_cli_exit_codes(
    subset_server: ReplayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "cli.duckdb"
    assert run_cli(monkeypatch, *cli_args(subset_server, db)) == 0
    err = flat(capsys.readouterr().err)
    assert f"sync ctgov: {SUBSET:,} records read; {SUBSET:,} new, 0 changed, 0 unchanged; 0 rejected" in err
    assert "full pass" in err

    # --since asks the server for updates only; nothing changed, so nothing is stored.
    before = len(subset_server.requests)
    assert run_cli(monkeypatch, *cli_args(subset_server, db, "--since", "2026-08-01")) == 0
    assert all(
        r.params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2026-08-01,MAX]"
        for r in subset_server.study_requests()[before:]
    )
    assert "0 new, 0 changed" in flat(capsys.readouterr().err)

    # A record the registry serves without an NCT id (a real study with its id removed) is rejected: exit 1.
    broken = real_studies(SUBSET + 1)[-1]
    del broken["protocolSection"]["identificationModule"]["nctId"]
    subset_server.add(broken, "ZZZ-broken")
    assert run_cli(monkeypatch, *cli_args(subset_server, db, "--full")) == 1
    err = flat(capsys.readouterr().err)
    assert "1 rejected" in err and "no NCT id" in err

    # The server failing past the retry budget: exit 2, a clear message, and the advice to re-run.
    subset_server.faults = {len(subset_server.requests) + n: Fault.error(503, retry_after="0") for n in (2, 3)}
    assert run_cli(monkeypatch, *cli_args(subset_server, db, "--full", "--max-retries", "1")) == 2
    err = flat(capsys.readouterr().err)
    assert "no usable answer after 2 attempts" in err and "run the same command again to resume" in err

    assert run_cli(monkeypatch, *cli_args(subset_server, db, "--full", "--since", "2026-01-01")) == 2
    assert "exclude each other" in flat(capsys.readouterr().err)
    assert run_cli(monkeypatch, *cli_args(subset_server, db, "--since", "last week")) == 2
    assert "YYYY-MM-DD" in flat(capsys.readouterr().err)

    with cartatlas.open(db) as atlas:
        statuses = atlas.sql("SELECT status FROM runs WHERE kind = 'sync' ORDER BY started_at")["status"].tolist()
    assert statuses == ["ok", "ok", "partial", "failed"]


def _spawn(server: ReplayServer, db: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CARTATLAS_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cartatlas", *cli_args(server, db, *extra)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_request(server: ReplayServer, number: int, proc: subprocess.Popen[str], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while len(server.requests) < number:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"sync exited early with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server saw {len(server.requests)} requests, expected {number}")
        time.sleep(0.02)


def test_sync_killed_with_sigkill_resumes_to_the_same_versions(tmp_path: Path, full_reference: dict[str, Any]) -> None:
    db = tmp_path / "killed.duckdb"
    with ReplayServer(real_studies()) as server:
        # Pages 1-3 answer at once; the fourth request is held until the process is dead.
        server.fault_from = (4, Fault.slow(30))
        proc = _spawn(server, db, "--page-size", "500")
        try:
            _wait_for_request(server, 4, proc)  # page 3 is checkpointed before page 4 is asked for
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        held_token = server.requests[3].params["pageToken"]
        server.clear_faults()

        with cartatlas.open(db) as atlas:
            state = state_of(atlas)
            assert state.status == "running" and state.pages_done == 3 and state.page_token == held_token
            assert version_count(atlas) == 1500
            # The killed process never wrote its run's end; opening the file for writing does.
            assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["interrupted"]

        before = len(server.requests)
        resumed = _spawn(server, db, "--page-size", "500")
        _out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        assert "resuming the interrupted pass at page 4" in flat(err)
        again = server.study_requests()[before:]
        assert again[0].params["pageToken"] == held_token
        assert len(again) == 3  # pages 4, 5 and 6 only

    with cartatlas.open(db) as atlas:
        assert versions(atlas) == full_reference["versions"]
        assert version_count(atlas) == len(full_reference["versions"])
        assert state_of(atlas).status == "done"
        assert atlas.sql("SELECT status FROM runs ORDER BY started_at")["status"].tolist() == ["interrupted", "ok"]


def test_ctrl_c_exits_130_and_the_rerun_resumes(
    subset_server: ReplayServer, tmp_path: Path, subset_reference: set[tuple[str, str]]
) -> None:
    db = tmp_path / "interrupted.duckdb"
    subset_server.fault_from = (2, Fault.slow(30))
    proc = _spawn(subset_server, db)
    try:
        _wait_for_request(subset_server, 2, proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume from page 2" in flat(err)
    subset_server.clear_faults()
    with cartatlas.open(db) as atlas:
        assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["interrupted"]
        atlas.sync_ctgov(client=make_client(subset_server, FakeClock()))
        assert versions(atlas) == subset_reference and version_count(atlas) == SUBSET
