"""Curators' link decisions: the ``link`` rows of the curation file.

The curation file (``trial_id,field,value,reason,curator,date``, optionally
``registry``; see ``cartatlas.curation``) holds classification overrides and,
with ``field`` = ``link``, decisions about two registrations::

    trial_id,field,value,reason,curator,date
    ChiCTR2000031319,link,same:ctgov:NCT04336254,"same sponsor, design and dates",jdoe,2026-11-20
    ChiCTR2000030138,link,different:ctgov:NCT04273646,"two MSC trials of different hospitals",jdoe,2026-11-20

``same`` joins the two into one trial whatever the rules said; ``different``
removes the link between them (a group still linked through a third record
needs that link split too).  Decisions are applied after the automatic links,
on every linking run, so they survive re-imports.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from cartatlas.curation_file import curation_rows
from cartatlas.dates import parse_date

log = logging.getLogger(__name__)

LINK_FIELD = "link"
VERDICTS = ("same", "different")


@dataclass(frozen=True, slots=True)
class LinkDecision:
    line: int
    trial_id: str
    #: The registry of ``trial_id`` when the file says (column ``registry``); else found from the id.
    registry: str | None
    verdict: str
    other_registry: str
    other_id: str
    reason: str
    curator: str
    date: dt.date | None


def parse_value(value: str) -> tuple[str, str, str] | None:
    """``same:ctgov:NCT04336254`` -> (same, ctgov, NCT04336254), or None when malformed."""
    parts = [p.strip() for p in value.split(":", 2)]
    if len(parts) != 3 or parts[0].casefold() not in VERDICTS or not parts[1] or not parts[2]:
        return None
    return parts[0].casefold(), parts[1].casefold(), parts[2]


def read_link_decisions(path: Path) -> tuple[list[LinkDecision], list[str]]:
    """The ``link`` rows of a curation file, and a message for every row that cannot be used."""
    decisions: list[LinkDecision] = []
    problems: list[str] = []
    for lineno, row in curation_rows(path):
        if (row.get("field") or "").strip().casefold() != LINK_FIELD:
            continue
        where = f"{path}:{lineno}"
        trial_id = (row.get("trial_id") or "").strip()
        parsed = parse_value(row.get("value") or "")
        reason = (row.get("reason") or "").strip()
        curator = (row.get("curator") or "").strip()
        if not trial_id:
            problems.append(f"{where}: no trial_id")
        elif parsed is None:
            problems.append(
                f"{where}: value {row.get('value')!r} is not same:<registry>:<id> or different:<registry>:<id>"
            )
        elif not reason or not curator:
            problems.append(f"{where}: a link decision needs a reason and a curator")
        else:
            verdict, other_registry, other_id = parsed
            decisions.append(
                LinkDecision(
                    line=lineno,
                    trial_id=trial_id,
                    registry=(row.get("registry") or "").strip().casefold() or None,
                    verdict=verdict,
                    other_registry=other_registry,
                    other_id=other_id,
                    reason=reason,
                    curator=curator,
                    date=parse_date(row.get("date")),
                )
            )
    return decisions, problems
