"""Size limits on input, so that one bad or hostile file costs a reject, not the machine.

Two settings, read from the environment each time a file is opened (so a test
or a long-running process can change them):

``CARTATLAS_MAX_RECORD_BYTES`` (default 32 MiB)
    The largest single record: a line of a JSON-lines file, or the stored text
    of any record (its JSON, XML or CSV row).  The largest real
    ClinicalTrials.gov study with results is a few MiB, so the default leaves
    ample room while keeping a record's parse and screening within a few
    hundred MB of memory.  A longer record is a reject naming its line; the
    lines after it import as usual.

``CARTATLAS_MAX_DOCUMENT_BYTES`` (default 256 MiB)
    The largest input that must be read whole to be parsed: a JSON document
    (a list of studies, an API page), a per-study XML document, a saved web
    page.  Streamed formats (JSON lines, ICTRP and PubMed XML, CSV) have no
    such limit.  Reading stops one byte past the limit, so a small archive
    that unpacks to gigabytes (a "zip bomb") costs at most this much memory.

Values are bytes, or a number with a unit: ``64MiB``, ``1GiB``, ``500KB``.
"""

from __future__ import annotations

import os
import re

RECORD_LIMIT_ENV = "CARTATLAS_MAX_RECORD_BYTES"
DOCUMENT_LIMIT_ENV = "CARTATLAS_MAX_DOCUMENT_BYTES"
DEFAULT_RECORD_LIMIT = 32 * 2**20
DEFAULT_DOCUMENT_LIMIT = 256 * 2**20

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.I)


class TooLarge(Exception):
    """An input past a size limit; the message says which limit and how to raise it."""


def parse_size(text: str) -> int:
    """``"32MiB"`` -> 33554432; a ValueError that names the accepted forms otherwise."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: give bytes, or a number with KB, MB, GB, KiB, MiB or GiB")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"{text!r} is not a size: it must be more than 0 bytes")
    return size


def _setting(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ValueError(f"${name}: {exc}") from None


def max_record_bytes() -> int:
    """The per-record limit (``$CARTATLAS_MAX_RECORD_BYTES``, default 32 MiB)."""
    return _setting(RECORD_LIMIT_ENV, DEFAULT_RECORD_LIMIT)


def max_document_bytes() -> int:
    """The limit on an input read whole (``$CARTATLAS_MAX_DOCUMENT_BYTES``, default 256 MiB)."""
    return _setting(DOCUMENT_LIMIT_ENV, DEFAULT_DOCUMENT_LIMIT)


def check_limits() -> None:
    """Read both settings now: a ValueError naming the setting, before any work starts."""
    max_record_bytes()
    max_document_bytes()


def describe_size(n: int) -> str:
    """A size as people read it: ``32 MiB``, ``1.5 GiB``, ``812 bytes``."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def record_too_large(size: int, limit: int) -> str:
    """The reject message for a record past the limit."""
    return (
        f"record is larger than the per-record limit ({describe_size(size)}, limit {describe_size(limit)}; "
        f"${RECORD_LIMIT_ENV} raises it)"
    )
