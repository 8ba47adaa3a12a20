"""The E-utilities client and harvest against a local server with injected faults (issue 6).

No wall clock: the client gets a fake monotonic clock and a sleep that only
records, so waits are asserted exactly and nothing waits for real.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cartatlas
from cartatlas.cli import app
from cartatlas.cli.common import CliError
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.pubmed import Progress
from cartatlas.sources.http import Retry
from cartatlas.sources.pubmed import eutils
from cartatlas.sources.pubmed.eutils import (
    EutilsClient,
    RetriesExhausted,
    _parse_esearch,
)
from tests.eutils_server import EutilsState, eutils_server, sample_state

N_ARTICLES = 45  # 1 + 4 efetch sample articles and 40 baseline citations


class FakeTime:
    """A monotonic clock that advances only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def state() -> EutilsState:
    return sample_state()


@pytest.fixture
def server(state: EutilsState) -> Iterator[str]:
    with eutils_server(state) as url:
        yield url


def _client(url: str, clock: FakeTime | None = None, **kwargs: object) -> EutilsClient:
    clock = clock or FakeTime()
    options: dict[str, object] = {
        "email": "curator@example.org",
        "batch_size": 10,
        "use_env": False,
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "rng": random.Random(1),
        "timeout": 10.0,
    }
    options.update(kwargs)
    return EutilsClient(url, **options)  # type: ignore[arg-type]


def _sync(atlas: cartatlas.Atlas, client: EutilsClient, **kwargs: object) -> tuple[ImportStats, Progress]:
    return atlas.sync_pubmed("CAR-T", client=client, **kwargs)  # type: ignore[no-any-return]


def test_harvest_stores_every_article_with_history_batches(
    atlas: cartatlas.Atlas, state: EutilsState, server: str
) -> None:
    with _client(server) as client:
        stats, progress = _sync(atlas, client)
    assert (stats.seen, stats.new, stats.rejected) == (N_ARTICLES, N_ARTICLES, 0)
    assert progress.done and progress.total == N_ARTICLES and progress.batches_done == 5
    assert atlas.sql("SELECT count(*) AS n FROM publications")["n"][0] == N_ARTICLES
    raw = atlas.sql("SELECT DISTINCT registry, format, source_kind FROM raw_records")
    assert raw.values.tolist() == [["pubmed", "pubmed_xml", "api"]]
    (search,) = state.calls("esearch.fcgi")
    assert search["usehistory"] == "y" and search["db"] == "pubmed" and search["term"] == "CAR-T"
    fetches = state.calls("efetch.fcgi")
    assert [f["retstart"] for f in fetches] == ["0", "10", "20", "30", "40"]
    assert {f["WebEnv"] for f in fetches} == {"MCID_000001"} and {f["query_key"] for f in fetches} == {"1"}
    # tool and email on every call; no api_key without one
    for _, _, params in state.requests:
        assert params["tool"] == "cartatlas" and params["email"] == "curator@example.org"
        assert "api_key" not in params
    # the stored source is the request URL without the e-mail address
    sources = atlas.sql("SELECT DISTINCT source FROM raw_records")["source"].tolist()
    assert all("efetch.fcgi" in s and "curator" not in s and "WebEnv=MCID_000001" in s for s in sources)
    again_stats, _ = _sync(atlas, _client(server), full=True)
    assert (again_stats.new, again_stats.unchanged) == (0, N_ARTICLES)


def test_rates_are_ncbis_documented_ceilings(server: str) -> None:
    clock = FakeTime()
    with _client(server, clock) as client:
        assert client.rate == 3.0
        search = client.esearch("x")
        client.efetch(search, 0)
        client.efetch(search, 10)
    assert clock.slept == pytest.approx([1 / 3, 1 / 3])
    keyed = FakeTime()
    with _client(server, keyed, api_key="SECRET-KEY") as client:
        assert client.rate == 10.0
        search = client.esearch("x")
        client.efetch(search, 0)
    assert keyed.slept == pytest.approx([0.1])
    with pytest.raises(ValueError, match="above NCBI's limit"):
        _client(server, rate=5.0)


def test_api_key_is_sent_but_never_logged_or_stored(
    atlas: cartatlas.Atlas, state: EutilsState, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state.fault("efetch.fcgi", "status", 500)
    with _client(server, api_key="SECRET-KEY") as client:
        _sync(atlas, client)
    assert all(p.get("api_key") == "SECRET-KEY" for _, _, p in state.requests)
    assert "SECRET-KEY" not in caplog.text
    stored = atlas.sql("SELECT string_agg(source, ' ') AS s FROM raw_records")["s"][0]
    assert "SECRET-KEY" not in stored
    assert "SECRET-KEY" not in atlas.sql("SELECT string_agg(CAST(params AS VARCHAR), ' ') AS p FROM runs")["p"][0]


def test_faults_are_retried_honouring_retry_after(atlas: cartatlas.Atlas, state: EutilsState, server: str) -> None:
    state.fault("esearch.fcgi", "status", 429, {"Retry-After": "7"})
    state.fault("efetch.fcgi", "status", 500)
    state.fault("efetch.fcgi", "reset")
    state.fault("efetch.fcgi", "truncate", 900)
    state.fault("efetch.fcgi", "status", 503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    clock = FakeTime()
    with _client(server, clock) as client:
        stats, progress = _sync(atlas, client)
        waits = client.waits
    assert stats.new == N_ARTICLES and progress.done
    assert 7.0 in waits  # Retry-After in seconds
    assert 0.0 in waits  # an HTTP date in the past: no wait beyond pacing
    # 500, reset and truncated XML: exponential backoff with jitter (base 1 s: 0.5-1, 1-2, 2-4)
    backoffs = [w for w in waits if w not in (7.0, 0.0) and abs(w - 1 / 3) > 1e-9]
    assert len(backoffs) == 3
    assert 0.5 <= backoffs[0] <= 1 and 0.5 <= backoffs[1] <= 2 and 0.5 <= backoffs[2] <= 4
    assert atlas.sql("SELECT count(*) AS n FROM rejects")["n"][0] == 0


def test_retries_run_out_and_the_checkpoint_is_kept(atlas: cartatlas.Atlas, state: EutilsState, server: str) -> None:
    for _ in range(3):
        state.fault("efetch.fcgi", "status", 502)
    state.faults["efetch.fcgi"].insert(0, ("pass",))  # the first batch arrives
    with pytest.raises(RetriesExhausted, match="3 attempts"), _client(server, max_retries=2) as client:
        _sync(atlas, client)
    assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["failed"]
    assert atlas.sql("SELECT count(*) AS n FROM publications")["n"][0] == 10
    checkpoint = atlas.sql("SELECT status, records_done FROM sync_state WHERE registry = 'pubmed'")
    assert checkpoint.values.tolist() == [["running", 10]]
    with _client(server) as client:
        stats, progress = _sync(atlas, client)
    assert progress.resumed and stats.new == N_ARTICLES - 10
    assert [f["retstart"] for f in state.calls("efetch.fcgi")][-4:] == ["10", "20", "30", "40"]


def test_interrupted_sync_resumes_from_its_checkpoint(atlas: cartatlas.Atlas, state: EutilsState, server: str) -> None:
    def stop_after_two(progress: Progress, _: ImportStats) -> None:
        if progress.batches_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _client(server) as client:
        _sync(atlas, client, on_batch=stop_after_two)
    assert atlas.sql("SELECT status FROM runs")["status"].tolist() == ["interrupted"]
    assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == 20
    before = len(state.requests)
    with _client(server) as client:
        stats, progress = _sync(atlas, client)
    resumed = state.requests[before:]
    # The history set is still held: no new search, efetch continues at record 20 with the same WebEnv.
    assert [e for e, _, _ in resumed] == ["efetch.fcgi"] * 3
    assert [p["retstart"] for _, _, p in resumed] == ["20", "30", "40"]
    assert {p["WebEnv"] for _, _, p in resumed} == {"MCID_000001"}
    assert progress.resumed and progress.records_done == N_ARTICLES
    assert stats.new == N_ARTICLES - 20
    assert atlas.sql("SELECT count(*) AS n FROM raw_records")["n"][0] == N_ARTICLES
    assert atlas.sql("SELECT status FROM sync_state WHERE registry = 'pubmed'")["status"][0] == "done"


def test_expired_history_is_searched_again(atlas: cartatlas.Atlas, state: EutilsState, server: str) -> None:
    state.faults["efetch.fcgi"] = [("pass",), ("expire",)]
    with _client(server) as client:
        stats, progress = _sync(atlas, client)
    assert stats.new == N_ARTICLES and progress.searches == 2
    searches = state.calls("esearch.fcgi")
    assert len(searches) == 2
    fetches = state.calls("efetch.fcgi")
    # batch 2 failed with "Unable to obtain query #1"; the same count lets the pass go on at record 10
    assert [(f["WebEnv"], f["retstart"]) for f in fetches] == [
        ("MCID_000001", "0"),
        ("MCID_000001", "10"),
        ("MCID_000002", "10"),
        ("MCID_000002", "20"),
        ("MCID_000002", "30"),
        ("MCID_000002", "40"),
    ]


def test_a_search_larger_than_pubmeds_window_is_split_by_publication_date(
    atlas: cartatlas.Atlas, state: EutilsState, server: str
) -> None:
    state.window = 15  # the busiest publication day of the sample has 14 articles
    with _client(server, window=15, batch_size=5) as client:
        stats, progress = _sync(atlas, client)
    assert stats.new == N_ARTICLES and progress.done and not progress.notes
    assert all(int(f["retstart"]) + int(f["retmax"]) <= 15 for f in state.calls("efetch.fcgi"))
    assert any('[dp] : "' in s["term"] for s in state.calls("esearch.fcgi"))
    assert atlas.sql("SELECT count(DISTINCT record_id) AS n FROM raw_records")["n"][0] == N_ARTICLES


def test_since_asks_for_records_modified_since_and_later_passes_are_incremental(
    atlas: cartatlas.Atlas, state: EutilsState, server: str
) -> None:
    with _client(server) as client:
        stats, _ = _sync(atlas, client, since=dt.date(2019, 1, 1))
    (search,) = state.calls("esearch.fcgi")
    assert (search["datetype"], search["mindate"]) == ("mdat", "2019/01/01")
    assert stats.new == 3  # 29768149, 36400559 and 11446611: revised by NLM in 2019 or later
    clock = lambda: dt.datetime(2026, 3, 10, tzinfo=dt.UTC)  # noqa: E731
    with _client(server) as client:
        _sync(atlas, client, full=True, clock=clock)
    with _client(server) as client:
        _sync(atlas, client, clock=clock)
    assert state.calls("esearch.fcgi")[-1]["mindate"] == "2026/03/07"


def test_esearch_xml_answers_and_errors_are_understood() -> None:
    xml = (
        b'<?xml version="1.0" encoding="UTF-8" ?><eSearchResult><Count>42</Count><RetMax>0</RetMax>'
        b"<RetStart>0</RetStart><QueryKey>3</QueryKey><WebEnv>MCID_abc</WebEnv><IdList/></eSearchResult>"
    )
    search = _parse_esearch(xml, "u", "t")
    assert isinstance(search, eutils.Search)
    assert (search.count, search.query_key, search.webenv) == (42, "3", "MCID_abc")
    with pytest.raises(eutils.EutilsError, match="refused the search"):
        _parse_esearch(b'{"esearchresult": {"ERROR": "Invalid query"}}', "u", "t")
    assert isinstance(_parse_esearch(b'{"esearchresult": {"count": "4"', "u", "t"), Retry)


def test_cli_sync_pubmed_then_export(tmp_path: Path, state: EutilsState, server: str) -> None:
    db = tmp_path / "cli.duckdb"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sync", "pubmed", "--db", str(db), "--base-url", server, "--email", "me@example.org", "--batch-size", "50"],
    )
    assert result.exit_code == 0, result.output
    assert "45 new" in result.output.replace(",", "")
    out = tmp_path / "pubs.csv"
    result = runner.invoke(app, ["export", "--db", str(db), "--what", "publications", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("pmid,registry,title") and len(lines) > N_ARTICLES
    assert "linked_trials" in lines[0]
    result = runner.invoke(app, ["export", "--db", str(db), "--what", "sites", "--out", str(out)])
    assert isinstance(result.exception, CliError) and "choose trials or publications" in str(result.exception)
