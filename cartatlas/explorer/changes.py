"""What changed between two dates for a filter, and the feeds of a view.

The comparison itself is ``cartatlas.analysis.diff`` (counts, ranks, new
and dropped trials, real status and phase changes, the paragraph in words),
run on the two filtered landscapes: the page and ``cartatlas diff`` share
one implementation and so show the same numbers.

Feeds (Atom and JSON Feed) list a view's trials newest first, so a feed
reader shows each trial that starts to match, e.g. "new BCMA or GPRC5D
trials in China", as a new entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson
import pandas as pd

from cartatlas.analysis import diff as diffs
from cartatlas.analysis.filters import CountedTrials, TrialFilter
from cartatlas.normalise.countries import country_name
from cartatlas.store.db import Store


def compare(start: CountedTrials, end: CountedTrials, where: TrialFilter, store: Store) -> dict[str, Any]:
    """The filter's trials as of two dates (``start`` and ``end`` counted as of each), compared.

    The comparison is ``cartatlas.analysis.diff``'s, the one ``cartatlas diff``
    prints: each side is the filtered landscape made comparable, so an
    unfiltered view shows the CLI's numbers to the trial.
    """
    sides = [diffs.comparable(counted.landscape(where, store=store), store) for counted in (start, end)]
    return diffs.diff_summaries(sides[0], sides[1], store=store)


def changed_rows(section: dict[str, Any], top: int = 12) -> list[dict[str, Any]]:
    """A diff section's rows that moved, largest change first (the page lists those, not every row)."""
    rows = [r for r in section.get("rows") or [] if r.get("change")]
    rows.sort(key=lambda r: (-abs(r["change"]), -(r["after"] or 0), r["key"]))
    return rows[:top]


def _trial(row: pd.Series) -> dict[str, Any]:
    date = row["registration_date"]
    return {
        "trial_id": row["unit_id"],
        "title": row["brief_title"] or "",
        "sponsor": row["lead_sponsor"] or "",
        "registered": date.isoformat() if isinstance(date, dt.date) else "",
        "date_source": row["registration_date_source"],
        "targets": [t for t in row["targets"] if t],
        "countries": [country_name(c) or c for c in row["country_codes"]],
        "phase": row["phase_category"],
        "status": row["status_as_of"] or "",
    }


# -- feeds -------------------------------------------------------------------------------------


def feed_entries(counted: CountedTrials, where: TrialFilter, limit: int = 50) -> list[dict[str, Any]]:
    """The view's trials, newest registration first, as feed entries."""
    units = counted.select(where).sort_values(["registration_date", "unit_id"], ascending=[False, True])
    return [_trial(r) for _, r in units.head(limit).iterrows()]


def _stamp(date: str) -> str:
    return f"{date}T00:00:00Z" if date else "1970-01-01T00:00:00Z"


def _summary(e: dict[str, Any]) -> str:
    bits = [e["sponsor"], ", ".join(e["targets"]) or "target not stated", e["phase"], ", ".join(e["countries"])]
    return " · ".join(b for b in bits if b)


def atom(title: str, self_url: str, page_url: str, trial_url: str, entries: list[dict[str, Any]]) -> str:
    """An Atom 1.0 document; ``trial_url`` has a ``{id}`` placeholder."""
    updated = max((_stamp(e["registered"]) for e in entries), default=_stamp(""))
    x = xml_escape
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{x(title)}</title>",
        f'<link rel="self" href="{x(self_url)}"/>',
        f'<link rel="alternate" type="text/html" href="{x(page_url)}"/>',
        f"<id>{x(self_url)}</id>",
        f"<updated>{updated}</updated>",
        "<author><name>cartatlas explorer</name></author>",
    ]
    for e in entries:
        url = trial_url.format(id=e["trial_id"])
        out += [
            "<entry>",
            f"<title>{x(e['trial_id'])}: {x(e['title'])}</title>",
            f'<link rel="alternate" type="text/html" href="{x(url)}"/>',
            f"<id>{x(url)}</id>",
            f"<updated>{_stamp(e['registered'])}</updated>",
            f"<summary>{x(_summary(e))}</summary>",
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def json_feed(title: str, self_url: str, page_url: str, trial_url: str, entries: list[dict[str, Any]]) -> bytes:
    """A JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/)."""
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": page_url,
        "feed_url": self_url,
        "items": [
            {
                "id": trial_url.format(id=e["trial_id"]),
                "url": trial_url.format(id=e["trial_id"]),
                "title": f"{e['trial_id']}: {e['title']}",
                "content_text": _summary(e),
                "date_published": _stamp(e["registered"]),
                "tags": e["targets"],
                "_cartatlas": e,
            }
            for e in entries
        ],
    }
    return orjson.dumps(doc)
