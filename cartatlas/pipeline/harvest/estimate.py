"""How long a harvest will take, said before it starts: pages, requests at the polite rate, import and screening.

A pass over the whole of ClinicalTrials.gov is some 560 pages of 1,000 studies.
The client starts a request at most every ``1 / rate`` seconds (its ``Pacer``
counts from the start of each request, so storing a page overlaps the wait for
the next one), which makes ``pages / rate`` the least time the requests can
take; a page that takes longer than the interval to download and store only
adds to it.  After the last page, the new records are screened (``refresh``).
The rates for storing and screening are the ones measured in
``docs/performance.md`` on a shared 2-core machine, taken at their slow end so
that the estimate errs long; the bar's own ETA, from the rate actually seen,
replaces it as pages arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Records stored per second (hashing, versioning, normalising, DuckDB writes): docs/performance.md measured
#: 4,200-5,600/s for large imports; pages of 1,000 parsed studies go through the same path.
IMPORT_RATE = 4_000.0
#: Trials screened per second: docs/performance.md measured 1,600-7,000/s (fewest for CAR trials, which run
#: every rule); the slow end, since a registry-wide pass is mostly screened once.
SCREEN_RATE = 2_000.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """The plan of a pass in numbers: what the registry counted and what it will cost."""

    records: int
    page_size: int
    #: Requests per second the client keeps to.
    rate: float
    pages: int
    #: The least time the requests take at the polite rate (retries and slow pages add to it).
    request_seconds: float
    #: Storing every record (overlaps the requests when a page is stored faster than the interval).
    import_seconds: float
    #: Screening every record after the last page.
    screen_seconds: float

    @property
    def total_seconds(self) -> float:
        """Requests (or storing, if slower), then screening: the pass as a whole."""
        return max(self.request_seconds, self.import_seconds) + self.screen_seconds

    def describe(self) -> str:
        """One honest sentence for the terminal, before the first page of a pass."""
        return (
            f"{self.records:,} records: about {self.pages:,} page{'s' if self.pages != 1 else ''} of "
            f"{self.page_size:,} at the polite rate of {self.rate:g} requests/s, at least "
            f"{duration(self.request_seconds)} of requests; then screening, about {duration(self.screen_seconds)} "
            f"(about {duration(self.total_seconds)} in all)"
        )


def estimate_pass(
    records: int,
    page_size: int,
    rate: float,
    *,
    import_rate: float = IMPORT_RATE,
    screen_rate: float = SCREEN_RATE,
) -> Estimate:
    """The estimate for ``records`` fetched ``page_size`` at a time, ``rate`` requests per second."""
    if records < 0:
        raise ValueError(f"a record count cannot be negative ({records})")
    if page_size < 1:
        raise ValueError(f"page size must be at least 1, not {page_size}")
    if rate <= 0 or import_rate <= 0 or screen_rate <= 0:
        raise ValueError("rates must be positive")
    pages = max(1, math.ceil(records / page_size))
    return Estimate(
        records=records,
        page_size=page_size,
        rate=rate,
        pages=pages,
        request_seconds=pages / rate,
        import_seconds=records / import_rate,
        screen_seconds=records / screen_rate,
    )


def duration(seconds: float) -> str:
    """A duration in words at the precision an estimate has: "40 seconds", "19 minutes", "2.5 hours"."""
    if seconds < 90:
        whole = max(1, round(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = seconds / 60
    if minutes < 90:
        return f"{round(minutes)} minutes"
    return f"{minutes / 60:.1f} hours"
