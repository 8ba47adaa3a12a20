"""What changed between two dates for a filter: the counts, targets, regions, sponsors and new trials.

A small seam of the explorer's own: it compares the counted trials of two
landscapes (``Atlas.counted(as_of=...)``, filtered the same way), nothing
else.  A fuller comparison of landscapes (``cartatlas.analysis.diff``,
built separately) can replace ``compare`` without touching the pages, which
only read a ``Changes``.

Feeds (Atom and JSON Feed) list a view's trials newest first, so a feed
reader shows each trial that starts to match, e.g. "new BCMA or GPRC5D
trials in China", as a new entry.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson
import pandas as pd

from cartatlas.analysis.filters import CountedTrials, TrialFilter
from cartatlas.normalise.countries import country_name


@dataclass(frozen=True)
class Delta:
    label: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass
class Changes:
    start: dt.date
    end: dt.date
    before: int
    after: int
    groups: list[Delta] = field(default_factory=list)
    targets: list[Delta] = field(default_factory=list)
    regions: list[Delta] = field(default_factory=list)
    sponsors: list[Delta] = field(default_factory=list)
    phases: list[Delta] = field(default_factory=list)
    new_trials: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    story: list[str] = field(default_factory=list)


def _counts(units: pd.DataFrame, column: str) -> Counter[str]:
    counter: Counter[str] = Counter()
    for value in units[column]:
        items = value if isinstance(value, list | tuple) else [value]
        for item in dict.fromkeys(str(v) for v in items if v not in (None, "")):
            counter[item] += 1
    return counter


def _deltas(before: pd.DataFrame, after: pd.DataFrame, column: str, *, top: int = 12,
            skip: tuple[str, ...] = ()) -> list[Delta]:  # fmt: skip
    a, b = _counts(before, column), _counts(after, column)
    keys = [k for k in set(a) | set(b) if k not in skip]
    rows = [Delta(k, a.get(k, 0), b.get(k, 0)) for k in keys]
    rows.sort(key=lambda d: (-abs(d.change), -d.after, d.label))
    return [d for d in rows if d.change][:top]


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


def compare(start: CountedTrials, end: CountedTrials, where: TrialFilter, *, new_limit: int = 200) -> Changes:
    """The filter's trials as of two dates (``start`` and ``end`` counted as of each), compared."""
    before, after = start.select(where), end.select(where)
    out = Changes(start.options.as_of or dt.date.today(), end.options.as_of or dt.date.today(), len(before), len(after))
    out.groups = _deltas(before, after, "groups", top=8)
    out.targets = _deltas(before, after, "targets", skip=("unknown",))
    out.regions = _deltas(before, after, "focus_regions")
    out.sponsors = _deltas(before, after, "lead_sponsor")
    out.phases = _deltas(before, after, "phase_category")
    known = set(before["unit_id"])
    fresh = after[~after["unit_id"].isin(known)]
    fresh = fresh.sort_values(["registration_date", "unit_id"], ascending=[False, True])
    out.new_trials = [_trial(r) for _, r in fresh.head(new_limit).iterrows()]
    was = dict(zip(before["unit_id"], before["status_as_of"], strict=True))
    for _, r in after[after["unit_id"].isin(known)].iterrows():
        old = was.get(r["unit_id"])
        if old != r["status_as_of"] and old is not None and r["status_as_of"] is not None:
            out.status_changes.append({"trial_id": r["unit_id"], "before": old, "after": r["status_as_of"],
                                       "title": r["brief_title"] or ""})  # fmt: skip
    out.story = _story(out, len(fresh))
    return out


def _story(c: Changes, new: int) -> list[str]:
    sentences = []
    change = c.after - c.before
    pct = f" ({change / c.before:+.0%})" if c.before else ""
    sentences.append(
        f"Between {c.start} and {c.end}, {new:,} trial{'s' if new != 1 else ''} matching this view "
        f"{'were' if new != 1 else 'was'} registered: {c.before:,} → {c.after:,}{pct}."
    )
    for deltas, what in ((c.targets, "targets"), (c.regions, "provinces / states"), (c.sponsors, "sponsors")):
        grown = [d for d in deltas if d.change > 0][:3]
        if grown:
            parts = ", ".join(f"{d.label} +{d.change}" for d in grown)
            sentences.append(f"Most new trials by {what}: {parts}.")
    if c.status_changes:
        sentences.append(f"{len(c.status_changes):,} trials changed status between the two dates (stored versions).")
    return sentences


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
