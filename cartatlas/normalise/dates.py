"""Dates as registries write them: re-exported from ``cartatlas.dates``.

The parser moved below the readers and the normalisers (``cartatlas/dates.py``), since a reader
needs a record's update date to tell its versions apart; the normalisers and earlier callers
import it from here.
"""

from __future__ import annotations

from cartatlas.dates import MONTHS as MONTHS
from cartatlas.dates import parse_date as parse_date
