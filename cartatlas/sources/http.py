"""The polite HTTP client behind every live source (ClinicalTrials.gov, PubMed, ChiCTR).

A harvest of a public registry meets the same trouble whichever registry it
reads: throttling (429 with ``Retry-After``), server and proxy errors, dropped
connections, bodies cut short or trickled out for ever, and answers that are
well-formed HTTP but the wrong thing (an HTML error page instead of JSON, a
firewall's challenge page instead of a trial page).  ``PoliteClient`` owns the
answer to all of it once, so that the registry clients only build requests and
judge bodies:

- a ``Pacer`` keeps a minimum interval between requests (retries included), so
  a harvest stays under what the registry tolerates from one address;
- a ``Backoff`` spaces retries exponentially with jitter, or follows the
  server's ``Retry-After`` (delta-seconds or an HTTP date) up to a cap;
- every attempt is bounded by a per-read timeout and by a deadline for the
  whole response, and the attempts per request by ``max_retries``: no loop
  here runs unbounded;
- each request carries a validator that turns a whole body into the caller's
  result or into ``Retry`` ("truncated JSON, ask again"); a client-wide
  ``screen`` sees every answer first and may raise to stop at once (ChiCTR's
  firewall, which waiting does not lift).

The clocks, sleep and random source are parameters so that tests replay faults
deterministically without waiting.  The response deadline has a clock of its
own (``deadline_clock``, real by default even when pacing runs on a fake one),
because it measures bytes arriving from a real socket.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx

from cartatlas.version import __version__

log = logging.getLogger(__name__)

#: Statuses worth asking again besides any 5xx: a timeout, "too early" and throttling.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: How much of a refused answer's body an error message quotes.
EXCERPT_CHARS = 300
#: How many of the last problems an exhausted-retries message names.
PROBLEMS_SHOWN = 3

T = TypeVar("T")


def given(**options: Any) -> dict[str, Any]:
    """The options a caller set: a client's own default stands wherever the caller passed None."""
    return {name: value for name, value in options.items() if value is not None}


def user_agent() -> str:
    """Who is asking: registries ask harvesters to say so, and the version helps them tell runs apart."""
    return f"cartatlas/{__version__} (CAR cell-therapy trial atlas; python-httpx/{httpx.__version__})"


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (None if neither).

    A date in the past means "now" (0.0); a date without a zone is read as UTC,
    which is what HTTP dates are.  The cap is the caller's (``Backoff.max_wait``).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A body on one line, cut to ``limit`` characters: enough of a refusal to say what it was."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


# -- outcomes of one attempt ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    """Why an attempt's answer cannot be used although another attempt may succeed.

    ``retry_after`` is the wait the server asked for, in seconds, when it asked.
    Validators return one for bodies that are incomplete or not what was asked
    for; the client returns one for retryable statuses and network failures.
    """

    text: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response as received: what screens and validators judge."""

    method: str
    #: The URL the answer came from (after redirects), as ``public_url`` shows it.
    url: str
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    #: The charset the server declared, else UTF-8.
    encoding: str

    @property
    def text(self) -> str:
        return self.body.decode(self.encoding, errors="replace")

    @property
    def shown(self) -> str:
        """The URL for messages and stored sources; a POST's parameters are not in it, so it says POST."""
        return f"{self.url} (POST)" if self.method == "POST" else self.url


# -- pacing and backoff ------------------------------------------------------------------------


class Pacer:
    """Keeps at least ``1 / rate`` seconds between the starts of consecutive requests.

    Counting from the start of the last request (not its end) keeps the
    average at the rate however long answers take; ``wait`` does the sleeping
    so the owner can record every wait it chose.
    """

    def __init__(self, rate: float, *, monotonic: Callable[[], float], wait: Callable[[float], None]) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive (requests per second), not {rate}")
        self.rate = rate
        self._monotonic = monotonic
        self._wait = wait
        self._last: float | None = None

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def wait_turn(self) -> None:
        """Sleep until the next request may start, then mark it started."""
        if self._last is not None:
            remaining = self._last + self.interval - self._monotonic()
            if remaining > 0:
                self._wait(remaining)
        self._last = self._monotonic()


@dataclass(slots=True)
class Backoff:
    """How long to wait before retry ``attempt`` (1 for the first retry).

    Exponential from ``base``, capped at ``ceiling``, with jitter in the upper
    half of the interval: clients that failed together spread out, yet none
    retries sooner than half the nominal wait.  A server's ``Retry-After`` is
    followed instead, up to ``max_wait`` (a server asking for an hour does not
    get to stall a harvest for one).
    """

    base: float
    ceiling: float
    max_wait: float
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry: Retry) -> float:
        if retry.retry_after is not None:
            return min(retry.retry_after, self.max_wait)
        nominal = min(self.ceiling, self.base * 2 ** (attempt - 1))
        return nominal * (0.5 + self.rng.random() / 2)


# -- the client --------------------------------------------------------------------------------


class _TooSlow(Exception):
    """A response body still arriving at its deadline."""


class PoliteClient:
    """One registry's HTTP connection: paced, retried, bounded.

    ``name`` starts the retry log lines ("ClinicalTrials.gov: HTTP 503 ...;
    retry 1 of 6 in 2.3s"), which go to ``logger`` so that they carry the
    registry client's logger name.  ``refused`` is raised for an answer that
    retrying will not change (a status neither retryable nor accepted) and
    ``exhausted`` when the retry budget is spent: each registry keeps its own
    exception classes.  ``public_url`` shows a URL without secrets (PubMed's
    API key) in messages, logs and ``Answer.url``.
    """

    def __init__(
        self,
        *,
        name: str,
        rate: float,
        max_retries: int,
        timeout: float,
        backoff_base: float,
        backoff_max: float,
        max_wait: float,
        max_request_seconds: float = 600.0,
        headers: Mapping[str, str] | None = None,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        screen: Callable[[Answer], None] | None = None,
        public_url: Callable[[str], str] | None = None,
        refused: type[Exception] = RuntimeError,
        exhausted: type[Exception] = RuntimeError,
        logger: logging.Logger = log,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
        deadline_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max retries cannot be negative ({max_retries})")
        if max_request_seconds <= 0:
            raise ValueError(f"the response deadline must be positive, not {max_request_seconds}")
        self.name = name
        self.max_retries = max_retries
        self.max_request_seconds = max_request_seconds
        self.retry_statuses = frozenset(retry_statuses)
        self.pacer = Pacer(rate, monotonic=monotonic, wait=self._wait)
        self.backoff = Backoff(backoff_base, backoff_max, max_wait, rng or random.Random())
        self._screen = screen
        self._public_url = public_url or (lambda url: url)
        self._refused = refused
        self._exhausted = exhausted
        self._log = logger
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._deadline_clock = deadline_clock
        #: Every wait the client chose (pacing and backoff), in seconds, for the log and for tests.
        self.waits: list[float] = []
        #: Attempts sent, retries included.
        self.requests_made = 0
        self._http = httpx.Client(
            headers={"User-Agent": user_agent(), **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            transport=transport,
            follow_redirects=True,
        )

    @property
    def rate(self) -> float:
        return self.pacer.rate

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        validate: Callable[[Answer], T | Retry],
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        accept: Collection[int] = (200,),
        label: str | None = None,
        what: str | None = None,
    ) -> T:
        """``validate``'s result for the first usable answer; retried while answers are worth retrying.

        Answers with a status in ``accept`` go to ``validate``; retryable
        statuses and network failures are retried; any other status raises
        ``refused``.  ``label`` names the request in the exhausted-retries
        error (default: ``url``), ``what`` in the retry log (default: ``name``).
        """
        problems: list[Retry] = []
        for attempt in range(self.max_retries + 1):
            if problems:
                delay = self.backoff.delay(attempt, problems[-1])
                self._log.warning(
                    "%s: %s; retry %d of %d in %.1fs",
                    what or self.name,
                    problems[-1].text,
                    attempt,
                    self.max_retries,
                    delay,
                )
                self._wait(delay)
            self.pacer.wait_turn()
            outcome = self._attempt(method, url, params, data, validate, accept)
            if not isinstance(outcome, Retry):
                return outcome
            problems.append(outcome)
        shown = "; ".join(dict.fromkeys(p.text for p in problems[-PROBLEMS_SHOWN:]))
        raise self._exhausted(f"{label or url}: no usable answer after {self.max_retries + 1} attempts (last: {shown})")

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        validate: Callable[[Answer], T | Retry],
        accept: Collection[int],
    ) -> T | Retry:
        received = self._receive(method, url, params, data)
        if isinstance(received, Retry):
            return received
        answer = received
        if self._screen is not None:
            self._screen(answer)
        if answer.status in self.retry_statuses or answer.status >= 500:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), self._wall_clock())
            return Retry(f"HTTP {answer.status} {answer.reason}".rstrip(), retry_after)
        if answer.status not in accept:
            raise self._refused(f"{answer.shown}: HTTP {answer.status}: {excerpt(answer.text)}")
        return validate(answer)

    def _receive(
        self, method: str, url: str, params: Mapping[str, str] | None, data: Mapping[str, str] | None
    ) -> Answer | Retry:
        """One whole answer, or why none arrived.

        httpx's timeout bounds each wait for bytes, not the whole body: a server
        trickling a page could hold a harvest for ever without the deadline.
        """
        self.requests_made += 1
        deadline = self._deadline_clock() + self.max_request_seconds
        try:
            with self._http.stream(method, url, params=params, data=data) as response:
                body = b"".join(_read_until(response, deadline, self._deadline_clock))
                return Answer(
                    method=method,
                    url=self._public_url(str(response.request.url)),
                    status=response.status_code,
                    reason=response.reason_phrase,
                    headers=response.headers,
                    body=body,
                    encoding=response.charset_encoding or "utf-8",
                )
        except _TooSlow:
            return Retry(f"the response took longer than {self.max_request_seconds:.0f}s")
        except httpx.TimeoutException as exc:
            return Retry(f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return Retry(f"network error ({type(exc).__name__}: {exc})")

    def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._sleep(seconds)


class PoliteSource:
    """A registry client built on a ``PoliteClient`` (``self.http``): what callers read of it, and its lifetime.

    ``rate`` and ``max_retries`` go into run records; ``waits`` (every wait
    chosen, pacing and backoff) and ``requests_made`` are for logs and tests.
    """

    http: PoliteClient

    @property
    def rate(self) -> float:
        return self.http.rate

    @property
    def max_retries(self) -> int:
        return self.http.max_retries

    @property
    def waits(self) -> list[float]:
        return self.http.waits

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_until(response: httpx.Response, deadline: float, clock: Callable[[], float]) -> Iterator[bytes]:
    for chunk in response.iter_bytes():
        yield chunk
        if clock() > deadline:
            raise _TooSlow
