"""The shared polite HTTP client (``cartatlas.sources.http``) on its own.

Answers come from ``httpx.MockTransport`` (nothing leaves the process); time
is a fake clock that moves only when the client sleeps, so every wait is
asserted as the number the client chose, never measured.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cartatlas import __version__
from cartatlas.sources.http import (
    Answer,
    Backoff,
    Pacer,
    PoliteClient,
    Retry,
    excerpt,
    given,
    parse_retry_after,
    user_agent,
)

NOW = dt.datetime(2026, 8, 23, 12, 0, 0, tzinfo=dt.UTC)
URL = "http://127.0.0.1:9/data"


class FakeClock:
    """Monotonic time that moves only when someone sleeps; every sleep is recorded."""

    def __init__(self, start: float = 100.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t


class Refused(RuntimeError):
    pass


class Exhausted(RuntimeError):
    pass


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A transport handler giving ``answers`` in turn (the last one again once they run out)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def client(handler: Handler, clock: FakeClock | None = None, **options: Any) -> PoliteClient:
    clock = clock or FakeClock()
    settings: dict[str, Any] = {
        "name": "Test",
        "rate": 1000.0,
        "max_retries": 3,
        "timeout": 5.0,
        "backoff_base": 2.0,
        "backoff_max": 60.0,
        "max_wait": 300.0,
        "refused": Refused,
        "exhausted": Exhausted,
        "transport": httpx.MockTransport(handler),
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "wall_clock": lambda: NOW,
        "rng": random.Random(3),
    }
    settings.update(options)
    return PoliteClient(**settings)


def body_text(answer: Answer) -> str | Retry:
    return answer.text


def json_object(answer: Answer) -> str | Retry:
    """A validator as the clients write them: a body cut short is worth asking for again."""
    text = answer.text
    return text if text.endswith("}") else Retry(f"truncated JSON ({len(answer.body)} bytes)")


# -- pacing -------------------------------------------------------------------------------


def test_the_pacer_keeps_the_interval_between_request_starts() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, monotonic=clock.monotonic, wait=clock.sleep)
    pacer.wait_turn()  # the first request never waits
    pacer.wait_turn()  # at once again: the whole interval
    clock.t += 0.3  # the answer took 0.3 s
    pacer.wait_turn()  # the rest of the interval only
    clock.t += 5.0  # a slow answer: the interval has passed
    pacer.wait_turn()
    assert clock.sleeps == pytest.approx([0.5, 0.2])


def test_pacing_covers_every_attempt_retries_included() -> None:
    handler, seen = scripted(httpx.Response(503), httpx.Response(200, text="ok"))
    clock = FakeClock()
    http = client(handler, clock, rate=0.5, backoff_base=0.1, backoff_max=0.1)
    assert http.request("GET", URL, body_text) == "ok"
    assert len(seen) == 2
    backoff, pace = clock.sleeps
    assert 0.05 <= backoff <= 0.1
    assert pace == pytest.approx(2.0 - backoff)  # the backoff counts towards the 2 s interval
    assert http.waits == clock.sleeps


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        Pacer(0, monotonic=FakeClock().monotonic, wait=FakeClock().sleep)
    with pytest.raises(ValueError, match="max retries cannot be negative"):
        client(scripted(httpx.Response(200))[0], max_retries=-1)


# -- backoff --------------------------------------------------------------------------------


class Fixed(random.Random):
    """A random source that always says the same number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_with_jitter_in_the_upper_half_up_to_the_ceiling() -> None:
    backoff = Backoff(base=2.0, ceiling=40.0, max_wait=300.0, rng=random.Random(11))
    for attempt in range(1, 10):
        nominal = min(40.0, 2.0 * 2 ** (attempt - 1))
        for _ in range(20):
            assert nominal / 2 <= backoff.delay(attempt, Retry("HTTP 503")) <= nominal
    assert Backoff(2.0, 40.0, 300.0, Fixed(0.0)).delay(3, Retry("x")) == 4.0  # the lower bound: half of 8
    assert Backoff(2.0, 40.0, 300.0, Fixed(0.999999)).delay(3, Retry("x")) == pytest.approx(8.0)
    assert Backoff(2.0, 40.0, 300.0, Fixed(0.999999)).delay(30, Retry("x")) == pytest.approx(40.0)


def test_the_waits_of_a_failing_request_grow() -> None:
    handler, _ = scripted(httpx.Response(500), httpx.Response(502), httpx.Response(504), httpx.Response(200, text="ok"))
    http = client(handler, backoff_base=1.0)
    assert http.request("GET", URL, body_text) == "ok"
    backoffs = [w for w in http.waits if w > 0.01]  # pacing at 1000/s waits 1 ms at most
    assert len(backoffs) == 3
    for n, wait in enumerate(backoffs):
        assert 2**n / 2 <= wait <= 2**n


# -- Retry-After --------------------------------------------------------------------------------


def http_date(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 120 ", NOW) == 120.0
    assert parse_retry_after(http_date(NOW + dt.timedelta(seconds=42)), NOW) == 42.0
    assert parse_retry_after(http_date(NOW - dt.timedelta(hours=1)), NOW) == 0.0  # past: no wait
    assert parse_retry_after("Sun, 23 Aug 2026 12:00:30", NOW) == 30.0  # no zone: HTTP dates are UTC
    for useless in (None, "", "  ", "soon", "-5", "1.5"):
        assert parse_retry_after(useless, NOW) is None


def test_retry_after_is_followed_and_capped() -> None:
    assert Backoff(2.0, 60.0, max_wait=30.0).delay(1, Retry("HTTP 429", retry_after=12.0)) == 12.0
    assert Backoff(2.0, 60.0, max_wait=30.0).delay(1, Retry("HTTP 429", retry_after=86_400.0)) == 30.0

    in_an_hour = http_date(NOW + dt.timedelta(hours=1))
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": in_an_hour}),
        httpx.Response(200, text="ok"),
    )
    http = client(handler, max_wait=90.0)
    assert http.request("GET", URL, body_text) == "ok"
    assert 7.0 in http.waits and 90.0 in http.waits


# -- giving up ------------------------------------------------------------------------------------


def test_exhausted_retries_name_the_request_and_its_last_problems() -> None:
    handler, seen = scripted(
        httpx.ConnectError("connection refused"),
        httpx.Response(500),
        httpx.Response(503),
        httpx.Response(503),
    )
    http = client(handler, max_retries=3)
    with pytest.raises(Exhausted) as caught:
        http.request("GET", URL, body_text, label="the data page")
    message = str(caught.value)
    assert message == (
        "the data page: no usable answer after 4 attempts "
        "(last: HTTP 500 Internal Server Error; HTTP 503 Service Unavailable)"
    )
    assert len(seen) == 4 and http.requests_made == 4


def test_the_url_names_a_request_without_a_label_and_network_errors_say_what_failed() -> None:
    handler, _ = scripted(httpx.ConnectError("connection refused"))
    with pytest.raises(Exhausted, match=r"^http://127\.0\.0\.1:9/data: .* after 1 attempts .*ConnectError"):
        client(handler, max_retries=0).request("GET", URL, body_text)


def test_a_status_retrying_cannot_change_is_refused_at_once_with_what_the_server_said() -> None:
    handler, seen = scripted(httpx.Response(403, text="<html><body>  Forbidden:\n no robots </body></html>"))
    with pytest.raises(Refused) as caught:
        client(handler).request("GET", URL, body_text, params={"q": "x"})
    assert str(caught.value) == f"{URL}?q=x: HTTP 403: <html><body> Forbidden: no robots </body></html>"
    assert len(seen) == 1
    assert excerpt(b"a" * 400).endswith("a...") and len(excerpt(b"a" * 400)) == 303


def test_accepted_statuses_go_to_the_validator() -> None:
    handler, _ = scripted(httpx.Response(404, text="not here"))
    seen: list[int] = []

    def validate(answer: Answer) -> str | Retry:
        seen.append(answer.status)
        return "missing"

    assert client(handler).request("GET", URL, validate, accept=(200, 404)) == "missing"
    assert seen == [404]


# -- validators and screens -------------------------------------------------------------------------


def test_a_validator_can_ask_for_another_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    handler, seen = scripted(httpx.Response(200, text='{"studies": ['), httpx.Response(200, text='{"studies": []}'))
    http = client(handler, logger=logging.getLogger("cartatlas.test"))
    assert http.request("GET", URL, json_object, what="Test studies") == '{"studies": []}'
    assert len(seen) == 2
    assert "Test studies: truncated JSON (13 bytes); retry 1 of 3 in" in caplog.text
    assert caplog.records[0].name == "cartatlas.test"


def test_a_screen_stops_at_once_whatever_the_status() -> None:
    class Blocked(RuntimeError):
        pass

    def screen(answer: Answer) -> None:
        if "challenge" in answer.text:
            raise Blocked(f"{answer.url}: a challenge page")

    for status in (200, 503):
        handler, seen = scripted(httpx.Response(status, text="<script>challenge</script>"))
        with pytest.raises(Blocked):
            client(handler, screen=screen).request("GET", URL, body_text)
        assert len(seen) == 1


def test_a_body_trickling_past_its_deadline_is_retried() -> None:
    deadline_clock = FakeClock()

    def trickle() -> Iterator[bytes]:
        for _ in range(10):
            deadline_clock.t += 1.0  # each piece takes a second of the deadline's clock
            yield b"x" * 10

    answers = iter([httpx.Response(200, content=trickle()), httpx.Response(200, text="whole")])
    http = client(lambda request: next(answers), max_request_seconds=4.0, deadline_clock=deadline_clock.monotonic)
    assert http.request("GET", URL, body_text) == "whole"
    assert http.requests_made == 2


def test_requests_say_who_asks_and_keep_secrets_out_of_urls() -> None:
    handler, seen = scripted(httpx.Response(200, text="ok"))
    urls: list[str] = []

    def validate(answer: Answer) -> str | Retry:
        urls.append(answer.shown)
        return answer.text

    http = client(handler, headers={"Accept": "text/plain"}, public_url=lambda url: url.split("?")[0])
    http.request("GET", URL, validate, params={"api_key": "SECRET"})
    http.request("POST", URL, validate, data={"term": "CAR-T"})
    assert seen[0].headers["user-agent"] == user_agent() and user_agent().startswith(f"cartatlas/{__version__} ")
    assert seen[0].headers["accept"] == "text/plain"
    assert seen[0].url.params["api_key"] == "SECRET"  # sent, but shown nowhere
    assert seen[1].content == b"term=CAR-T"
    assert urls == [URL, f"{URL} (POST)"]


def test_given_keeps_falsy_options_and_drops_only_none() -> None:
    """A caller's 0 (say, no retries) is an option; only None leaves the client's default."""
    assert given(rate=None, max_retries=0, page_size=1000, base="") == {"max_retries": 0, "page_size": 1000, "base": ""}
