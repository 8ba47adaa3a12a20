"""Registry dates in their many spellings, read into ``datetime.date``.

Registries give full dates ("2023-07-20", "May 11, 2018", WHO ICTRP's
"17 February 2020", "27/01/2020" and compact "20200127", ChiCTR's
"2020年2月17日"), month dates ("2016-01", "October 2014") and years.  A landscape counts by day, so a coarser
date is placed on the first day of its period; the schema documents this.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

#: Month names and their abbreviations, lower case (shared with PubMed's dates).
MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}

_ISO = re.compile(r"^(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?(?:[T ].*)?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_MONTH_NAME = re.compile(r"^([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})$")
_DAY_MONTH_NAME = re.compile(r"^(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})$")
#: ICTRP's "Date registration3" column: YYYYMMDD without separators.
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
#: Chinese registry dates: 2020年2月17日, 2020年02月.
_CJK = re.compile(r"^(\d{4})\s*年\s*(?:(\d{1,2})\s*月\s*(?:(\d{1,2})\s*日)?)?$")


def _make(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def parse_date(text: str | None) -> dt.date | None:
    """Return the date a registry string means, or None when it means none.

    Day-first numeric dates (``31/12/2019``) are what WHO ICTRP exports use;
    ambiguous US-style numeric dates do not occur in the registries read here.
    """
    if not text:
        return None
    s = text.strip()
    if not s or s.lower() in {"null", "none", "n/a", "na"}:
        return None
    m = _COMPACT.match(s) or _CJK.match(s)
    if m:
        return _make(int(m[1]), int(m[2] or 1), int(m[3] or 1))
    m = _ISO.match(s)
    if m:
        year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
        return _make(year, month, day)
    m = _MONTH_NAME.match(s)
    if m and m[1].lower() in MONTHS:
        return _make(int(m[3]), MONTHS[m[1].lower()], int(m[2] or 1))
    m = _DAY_MONTH_NAME.match(s)
    if m and m[2].lower() in MONTHS:
        return _make(int(m[3]), MONTHS[m[2].lower()], int(m[1]))
    m = _DMY.match(s)
    if m:
        return _make(int(m[3]), int(m[2]), int(m[1]))
    return None
