"""ClinicalTrials.gov's own export of every study: one zip of per-study JSON files, downloaded whole.

The registry offers all its studies as one download, ``ctg-studies.json.zip``
(about 2.5 GB compressed, 10 GB unpacked in 2026): a member per study, named by
its NCT id and sharded by its last two digits (``35/NCT02252835.json``), each
the study in the API v2 layout.  One request instead of some 560 paced pages
makes it the fast route to the whole registry (``docs/formats.md``,
``docs/performance.md``); the paged API stays the route for a query and for
incremental updates.

``download`` streams the archive to a ``.part`` file beside its destination,
with the byte count for a progress bar, and renames it only once it is whole:
as many bytes as the server announced, a zip whose central directory (at its
very end, so a cut download never has one) opens and lists files.  A download
that fails leaves no file behind and says which URL, which file and what was
wrong.  Throttling, server errors and dropped connections are retried like
the paged API's (``Retry-After`` honoured, exponential backoff with jitter);
a retry asks only for the bytes still missing when the server serves ranges
of a version it names (``_Partial``), else starts the file again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from cartatlas.sources.ctgov.api import DEFAULT_BASE_URL, ApiError
from cartatlas.sources.http import RETRY_STATUSES, Backoff, Retry, excerpt, parse_retry_after, user_agent

log = logging.getLogger(__name__)

#: Where the export lives below an API v2 root.
EXPORT_PATH = "/studies/download?format=json.zip"
#: The export of every study as JSON (the website's "Download" of an empty search gives the same archive).
DEFAULT_BULK_URL = DEFAULT_BASE_URL + EXPORT_PATH


def bulk_url_for(base_url: str) -> str:
    """The export's URL below an API v2 root (the registry's, a mirror's, a test server's)."""
    return base_url.rstrip("/") + EXPORT_PATH


DEFAULT_MAX_RETRIES = 4


class BulkDownloadError(ApiError):
    """The export could not be downloaded whole; nothing of it was kept."""


@dataclass(frozen=True, slots=True)
class Download:
    """A verified archive on disk."""

    path: Path
    url: str
    size: int
    #: Files in the archive (not folders).
    members: int
    started_at: dt.datetime


def download(
    url: str,
    dest: Path,
    *,
    on_bytes: Callable[[int, int | None], None] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 60.0,
    backoff_base: float = 5.0,
    backoff_max: float = 300.0,
    max_wait: float = 900.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    rng: random.Random | None = None,
) -> Download:
    """Stream ``url`` to ``dest`` and verify it is a whole zip archive; ``on_bytes(done, total)`` as it arrives.

    ``total`` is the announced Content-Length (None when the server gives
    none).  Raises ``BulkDownloadError`` naming the URL, the file and the
    problem; ``dest`` and its ``.part`` file are then absent.
    """
    part = dest.with_name(dest.name + ".part")
    backoff = Backoff(backoff_base, backoff_max, max_wait, rng or random.Random())
    started = wall_clock()
    problems: list[str] = []
    partial = _Partial()
    headers = {"User-Agent": user_agent(), "Accept": "application/zip", "Accept-Encoding": "identity"}
    with httpx.Client(
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
        transport=transport,
        follow_redirects=True,
    ) as http:
        retry: Retry | None = None
        for attempt in range(max_retries + 1):
            if retry is not None:
                wait = backoff.delay(attempt, retry)
                log.warning("%s: %s; retry %d of %d in %.1fs", url, retry.text, attempt, max_retries, wait)
                sleep(wait)
            try:
                outcome = _attempt(http, url, part, partial, on_bytes, wall_clock)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            if isinstance(outcome, Retry):
                if not partial.resumable:
                    part.unlink(missing_ok=True)
                    partial.size = 0
                problems.append(outcome.text)
                retry = outcome
                continue
            try:
                members = verify(part)
            except BulkDownloadError as exc:
                part.unlink(missing_ok=True)
                raise BulkDownloadError(f"{url}: downloaded to {part}: {exc}; the file was removed") from None
            part.replace(dest)
            return Download(dest, url, outcome, members, started)
    part.unlink(missing_ok=True)
    shown = "; ".join(problems[-3:])
    raise BulkDownloadError(
        f"{url}: no whole download after {max_retries + 1} attempts (last: {shown}); nothing was kept of {part}"
    )


@dataclass(slots=True)
class _Partial:
    """What of the archive is in the ``.part`` file, and how to ask for the rest.

    A retry continues where the last attempt stopped (``Range``) only when
    the server said it serves ranges and named the archive's version (a
    strong ``ETag``, else ``Last-Modified``), sent back as ``If-Range``: if
    the export was rebuilt meanwhile, the server answers with the whole new
    one and the file starts again, so two versions are never spliced.
    """

    size: int = 0
    total: int | None = None
    validator: str | None = None

    @property
    def resumable(self) -> bool:
        return self.validator is not None and self.size > 0


#: An error page's bytes quoted at most.
_ERROR_BODY = 4096


def _attempt(
    http: httpx.Client,
    url: str,
    part: Path,
    partial: _Partial,
    on_bytes: Callable[[int, int | None], None] | None,
    wall_clock: Callable[[], dt.datetime],
) -> int | Retry:
    """The archive's size once ``part`` holds all of it, or why this attempt is worth repeating.

    Raises ``BulkDownloadError`` for answers that repeating will not change.
    """
    ranged = partial.resumable
    request_headers = {"Range": f"bytes={partial.size}-", "If-Range": str(partial.validator)} if ranged else {}
    try:
        with http.stream("GET", url, headers=request_headers) as response:
            status = response.status_code
            if status in RETRY_STATUSES or status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), wall_clock())
                return Retry(f"HTTP {status} {response.reason_phrase}".rstrip(), retry_after)
            if ranged and status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != partial.size:
                    partial.validator = None
                    return Retry(f"the server resumed at byte {start}, not {partial.size:,}")
                mode = "ab"
            elif ranged and status == 416:
                partial.validator = None
                return Retry(f"the server refused the range from byte {partial.size:,}")
            elif status == 200:
                mode = "wb"
                partial.size = 0
                announced = response.headers.get("Content-Length")
                total = int(announced) if announced and announced.isdigit() else None
                etag = response.headers.get("ETag")
                validator = etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified")
                ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes"
                partial.validator = validator if ranges and total is not None else None
            else:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) >= _ERROR_BODY:
                        break
                raise BulkDownloadError(f"{url}: HTTP {status}: {excerpt(body)}")
            partial.total = total
            with part.open(mode) as out:
                # As the bytes arrive (a fixed chunk size would hold back what came before a break), and as
                # sent: the archive is asked for without content coding, so they count against Content-Length.
                for chunk in response.iter_raw():
                    out.write(chunk)
                    partial.size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(partial.size, total)
    except httpx.TimeoutException as exc:
        return Retry(f"timed out ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return Retry(f"network error ({type(exc).__name__}: {exc})")
    if total is not None and partial.size != total:
        return Retry(f"the body ended after {partial.size:,} of {total:,} bytes")
    return partial.size


def _content_range(value: str | None) -> tuple[int, int | None]:
    """(first byte, whole size) of ``Content-Range: bytes first-last/size``; (-1, None) when unreadable."""
    if not value or not value.startswith("bytes "):
        return -1, None
    span, _, size = value[6:].partition("/")
    first = span.partition("-")[0]
    if not first.isdigit():
        return -1, None
    return int(first), int(size) if size.isdigit() else None


def verify(path: Path) -> int:
    """The number of files in a whole zip archive at ``path``; ``BulkDownloadError`` says what is wrong otherwise."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":
        with path.open("rb") as fh:
            start = fh.read(200)
        raise BulkDownloadError(f"not a zip archive (starts with {excerpt(start, 80)!r})")
    try:
        with zipfile.ZipFile(path) as archive:
            members = sum(1 for m in archive.infolist() if not m.is_dir())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BulkDownloadError(f"not a whole zip archive ({exc}): the download was cut short or damaged") from None
    if members == 0:
        raise BulkDownloadError("the zip archive holds no files")
    return members
