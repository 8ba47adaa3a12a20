"""A record's history: every stored version, and what changed from one to the next, in words.

Each stored payload is normalised again with today's normaliser (so two
versions are compared field by field, never as raw text) and compared with
the version before it on the fields a reader of a trial cares about: status,
phase, enrolment, dates, sites, sponsor, title, conditions, interventions.
Versions stored from different formats (a website CSV row, then the API
record) carry different fields; a field is compared only when both versions
carry it, so a poorer format never reads as "sites removed".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from cartatlas.normalise import format_spec
from cartatlas.store.db import Store

#: Compared fields: (field, label).  Lists are compared as sets, sites by facility and city.
FIELDS: tuple[tuple[str, str], ...] = (
    ("overall_status", "Status"),
    ("phases", "Phase"),
    ("enrollment", "Enrolment"),
    ("enrollment_type", "Enrolment type"),
    ("start_date", "Start date"),
    ("primary_completion_date", "Primary completion date"),
    ("completion_date", "Completion date"),
    ("first_posted", "First posted"),
    ("last_update_posted", "Last update posted"),
    ("brief_title", "Title"),
    ("lead_sponsor", "Sponsor"),
    ("conditions", "Conditions"),
    ("interventions", "Interventions"),
    ("countries", "Countries"),
    ("sites", "Sites"),
)


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: str
    after: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass
class StoredVersion:
    version_id: int
    version_no: int
    format: str
    record_updated: dt.date | None
    fetched_at: Any
    source: str
    #: What changed from the previous version (empty for the first, or when nothing compared changed).
    changes: list[Change] = field(default_factory=list)
    #: Fields this version's format does not carry, so they were not compared.
    not_compared: list[str] = field(default_factory=list)
    error: str | None = None
    summary: dict[str, str] = field(default_factory=dict)


def _present(value: Any) -> bool:
    return value not in (None, "", [], ())


def _site_key(site: dict[str, Any]) -> str:
    parts = [site.get("facility"), site.get("city"), site.get("country")]
    return ", ".join(str(p) for p in parts if p)


def _items(name: str, value: Any) -> list[str]:
    if not value:
        return []
    if name == "sites":
        return [_site_key(s) for s in value if isinstance(s, dict)]
    if name == "interventions":
        return [str(i.get("name")) for i in value if isinstance(i, dict) and i.get("name")]
    return [str(v) for v in value]


def _show(name: str, value: Any) -> str:
    if not _present(value):
        return "—"
    if name in ("sites", "interventions", "conditions", "countries", "phases"):
        items = _items(name, value)
        if name == "sites":
            return f"{len(items)} site{'s' if len(items) != 1 else ''}"
        return ", ".join(items)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def compare(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[Change], list[str]]:
    """The changes from one normalised version to the next, and the fields not compared."""
    changes: list[Change] = []
    skipped: list[str] = []
    for name, label in FIELDS:
        old, new = before.get(name), after.get(name)
        if not (_present(old) and _present(new)):
            if _present(old) != _present(new):
                skipped.append(label)
            continue
        if name in ("sites", "interventions", "conditions", "countries", "phases"):
            a, b = _items(name, old), _items(name, new)
            if set(a) == set(b):
                continue
            added = tuple(x for x in dict.fromkeys(b) if x not in set(a))
            removed = tuple(x for x in dict.fromkeys(a) if x not in set(b))
            changes.append(Change(name, label, _show(name, old), _show(name, new), added, removed))
        elif old != new:
            changes.append(Change(name, label, _show(name, old), _show(name, new)))
    return changes, skipped


def record_history(store: Store, registry: str, record_id: str) -> list[StoredVersion]:
    """Every stored version of one record in the registry's date order, each with what changed since the one before.

    Versions are ordered by the registry's own update date (then storage
    order), not by when they were imported: a 2018 website download imported
    after the 2026 API record is history, not a change back.  ``version_no``
    is the storage order, as in ``record_versions``.
    """
    # A plain lookup (the record_id index), numbered and ordered here: a window and a sort in SQL
    # doubled the cost of this query, which every trial page runs.
    found = store.con.execute(
        "SELECT version_id, format, record_updated, fetched_at, source, CAST(fetched_at AS DATE) "
        "FROM raw_records WHERE registry = ? AND record_id = ?",
        [registry, record_id],
    ).fetchall()
    number = {vid: no for no, vid in enumerate(sorted(r[0] for r in found), start=1)}
    found.sort(key=lambda r: (r[2] or r[5], r[0]))
    rows = [(*r[:5], number[r[0]]) for r in found]
    if len(rows) == 1:  # nothing to compare: the payload is not read (it is the current normalised row)
        version_id, fmt, updated, fetched, source, no = rows[0]
        return [StoredVersion(int(version_id), int(no), str(fmt), updated, fetched, str(source))]
    ids = [int(r[0]) for r in rows]
    payloads = dict(
        store.con.execute(
            f"SELECT version_id, payload FROM raw_records WHERE version_id IN ({', '.join('?' for _ in ids)})", ids
        ).fetchall()
    )
    rows = [(*r[:5], payloads.get(r[0]), r[5]) for r in rows]
    versions: list[StoredVersion] = []
    previous: dict[str, Any] | None = None
    for version_id, fmt, updated, fetched, source, payload, no in rows:
        version = StoredVersion(int(version_id), int(no), str(fmt), updated, fetched, str(source))
        try:
            spec = format_spec(fmt)
            trial = dict(spec.to_trial(orjson.loads(payload) if spec.is_json else payload))
        except Exception as exc:  # an old payload today's normaliser cannot read: say so, keep going
            version.error = f"cannot be read as {fmt}: {exc}"
            versions.append(version)
            continue
        version.summary = {label: _show(name, trial.get(name)) for name, label in FIELDS[:5]}
        if previous is not None:
            version.changes, version.not_compared = compare(previous, trial)
        previous = trial
        versions.append(version)
    return versions
