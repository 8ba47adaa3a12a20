"""Curators' actions from outside the CSV editor (the explorer): written as lines of the curation file.

The curation file stays the one record of every curator's decision, so an
action taken in the browser behaves exactly like a line typed into the file:
it is applied after the rules, re-applied after every re-classification,
flagged stale when the registry changes the record later, and ``cartatlas
curate FILE`` re-applies it.  Two kinds of line are written:

* a label override: ``field`` is a curatable label (targets, relation, ...).
  Accepting or dismissing an item of the review queue (``cartatlas.review``)
  is one too: it sets the label to the value it has, with the verdict in the
  reason, so the label is a curator's from then on and leaves the queue
  until the registry changes the record;
* a link decision: ``field`` is ``link``, ``value`` ``same:<registry>:<id>``
  or ``different:<registry>:<id>`` (``cartatlas.link.curation``).

Each line carries who (``curator``), why (``reason``), the day (``date``, as
the file format asks) and the moment (``recorded_at``, an extra column the
readers ignore).  The file holds one line per trial and label (two would
clash, and neither would apply) and one per pair of registrations: a new
decision replaces the line it supersedes, and ``curation_log`` keeps every
line each application read.

Two curators may edit the same trial.  The state a form was filled in from
is summarised by ``trial_etag`` (the trial's lines in the file, its labels
and links); ``record`` refuses, with ``StaleEdit``, an action based on a
state that has changed since, instead of silently overwriting the other edit.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartatlas.analysis.trial_record import TrialRecord
from cartatlas.curation import Override, _validate, remembered_curation_file
from cartatlas.curation_file import REQUIRED_COLUMNS
from cartatlas.knowledge import labels
from cartatlas.link.curation import LINK_FIELD, parse_value
from cartatlas.store.classifications import CURATABLE
from cartatlas.store.db import Store

#: Verdicts on a review-queue item, written at the start of the override's reason.
REVIEW_VERDICTS = ("accepted", "dismissed")
#: What of a registration's labels the etag covers: every label a curator can see (and the version classified).
ETAG_LABELS = ("curated_fields", *(label.name for label in labels.LABELS))
REVIEW_VERDICTS = ("accepted", "dismissed")
#: Columns written by actions, after the required ones (readers ignore columns they do not know).
EXTRA_COLUMNS = ("registry", "recorded_at")

_lock = threading.Lock()


class StaleEdit(Exception):
    """The trial changed since the form was filled in: the action was not recorded."""

    def __init__(self, message: str, current_etag: str) -> None:
        super().__init__(message)
        self.current_etag = current_etag


@dataclass(frozen=True)
class CurationAction:
    """One decision of one curator about one registration."""

    trial_id: str
    registry: str | None
    field: str
    value: str
    reason: str
    curator: str

    def row(self, at: dt.datetime) -> dict[str, str]:
        return {
            "trial_id": self.trial_id,
            "field": self.field,
            "value": self.value,
            "reason": self.reason,
            "curator": self.curator,
            "date": at.date().isoformat(),
            "registry": self.registry or "",
            "recorded_at": at.isoformat(timespec="seconds"),
        }


def curation_path(store: Store) -> Path:
    """The file actions are written to: the one last applied, else ``<database>.curation.csv`` beside it."""
    remembered = remembered_curation_file(store)
    if remembered is not None:
        return remembered
    if store.path == ":memory:":
        raise ValueError("an in-memory database has no place for a curation file; apply one with curate() first")
    db = Path(store.path).resolve()
    return db.with_name(db.name.removesuffix(".duckdb") + ".curation.csv")


def validate(action: CurationAction) -> str | None:
    """Why the action cannot be recorded, or None: the same rules as a line of the file."""
    if not action.trial_id.strip():
        return "no trial id"
    if not action.reason.strip():
        return "a reason is required"
    if not action.curator.strip():
        return "a curator name is required"
    if any(ch in action.value + action.reason + action.curator for ch in "\r\n\x00"):
        return "line breaks are not allowed in a value, reason or curator name"
    if action.field == LINK_FIELD:
        return (
            None
            if parse_value(action.value)
            else "a link decision is same:<registry>:<id> or different:<registry>:<id>"
        )
    if action.field not in CURATABLE:
        return f"unknown field {action.field!r} (curatable: {', '.join(CURATABLE)}, link)"
    override = Override(0, action.trial_id, action.registry, action.field, action.value, action.reason,
                        action.curator, dt.date.today())  # fmt: skip
    return _validate(override, dt.date.today().isoformat())


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The file's columns and rows (an absent file has none)."""
    if not path.exists():
        return [], []
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), [dict(r) for r in reader]


def _mentions(row: dict[str, str], ids: set[str]) -> bool:
    if (row.get("trial_id") or "").strip() in ids:
        return True
    if (row.get("field") or "").strip().casefold() == LINK_FIELD:
        parsed = parse_value(row.get("value") or "")
        return parsed is not None and parsed[2] in ids
    return False


def trial_rows(path: Path, ids: Iterable[str]) -> list[dict[str, str]]:
    """The file's lines about any of these registrations (as trial or as the other side of a link)."""
    wanted = set(ids)
    return [r for r in read_rows(path)[1] if _mentions(r, wanted)]


def trial_etag(store: Store, path: Path, keys: list[tuple[str, str]]) -> str:
    """A short fingerprint of what a curator sees of these registrations: their file lines, labels and links."""
    return trial_etags(store, path, [keys])[0]


def trial_etags(store: Store, path: Path, groups: list[list[tuple[str, str]]]) -> list[str]:
    """``trial_etag`` of many trials at once (one read of the file, two queries): for a page of them."""
    lines = read_rows(path)[1]
    every = sorted({k for keys in groups for k in keys})
    labels: dict[tuple[str, str], tuple[Any, ...]] = {}
    links: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    if every:
        ids = sorted({k[1] for k in every})
        marks = ", ".join("?" for _ in ids)  # an IN list filters while scanning; (registry, id) pairs joined
        con = store.con
        for label in con.execute(
            f"""
            SELECT registry, trial_id, content_hash, {", ".join(ETAG_LABELS)}
            FROM classifications WHERE trial_id IN ({marks})
            """,
            ids,
        ).fetchall():
            labels[(label[0], label[1])] = tuple(label)
        for link in con.execute(
            f"""
            SELECT registry_a, trial_id_a, registry_b, trial_id_b, status FROM trial_links
            WHERE trial_id_a IN ({marks}) OR trial_id_b IN ({marks})
            """,
            [*ids, *ids],
        ).fetchall():
            for key in ((link[0], link[1]), (link[2], link[3])):
                links.setdefault(key, []).append(tuple(link))
    return [_digest(lines, keys, labels, links) for keys in groups]


def record_etag(path: Path, record: TrialRecord) -> str:
    """``trial_etag`` of a trial already read (its labels and links are in the record): no query."""
    labels = {
        (r["registry"], r["trial_id"]): (
            r["registry"], r["trial_id"], r.get("classified_hash"), *(r.get(c) for c in ETAG_LABELS)
        )
        for r in record.registrations
        if r.get("classified_hash") is not None
    }  # fmt: skip
    links: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for link in record.links:
        row = (link["registry_a"], link["trial_id_a"], link["registry_b"], link["trial_id_b"], link["status"])
        for key in (row[0:2], row[2:4]):
            links.setdefault((str(key[0]), str(key[1])), []).append(row)
    return _digest(read_rows(path)[1], record.keys, labels, links)


def _digest(
    lines: list[dict[str, str]],
    keys: list[tuple[str, str]],
    labels: dict[tuple[str, str], tuple[Any, ...]],
    links: dict[tuple[str, str], list[tuple[Any, ...]]],
) -> str:
    digest = hashlib.sha256()
    wanted = {k[1] for k in keys}
    for line in lines:
        if _mentions(line, wanted):
            digest.update(repr(sorted(line.items())).encode())
    for key in sorted(keys):
        digest.update(repr(labels.get(key)).encode())
        digest.update(repr(sorted(set(links.get(key, [])))).encode())
    return digest.hexdigest()[:16]


def _supersedes(row: dict[str, str], action: CurationAction) -> bool:
    """Whether a line of the file says what the action now decides (and must give way to it)."""
    if (row.get("trial_id") or "").strip() != action.trial_id or (row.get("field") or "").strip() != action.field:
        return False
    if action.field == LINK_FIELD:
        old, new = parse_value(row.get("value") or ""), parse_value(action.value)
        return old is not None and new is not None and old[1:] == new[1:]
    registry = (row.get("registry") or "").strip()
    return not registry or not action.registry or registry == action.registry


def put(path: Path, action: CurationAction, at: dt.datetime | None = None) -> dict[str, str]:
    """Write the action as a line of the file, in place of any line it supersedes; atomically.

    Columns the file lacks (``registry``, ``recorded_at``) are added; every
    other line keeps its values and its place.
    """
    stamp = at or dt.datetime.now(dt.UTC)
    row = action.row(stamp)
    columns, rows = read_rows(path)
    columns = columns or list(REQUIRED_COLUMNS)
    columns += [c for c in (*REQUIRED_COLUMNS, *EXTRA_COLUMNS) if c not in columns]
    rows = [r for r in rows if not _supersedes(r, action)]
    rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return row


def record(
    store: Store,
    action: CurationAction,
    keys: list[tuple[str, str]],
    expected_etag: str | None,
) -> Path:
    """Write the action to the curation file if the trial is as the curator saw it; returns the file.

    ``keys`` are the registrations of the trial the form showed (the etag
    covers all of them).  Raises ValueError for an invalid action and
    StaleEdit when ``expected_etag`` no longer matches.  The caller applies
    the file afterwards (``Atlas.record_curation`` does both).
    """
    problem = validate(action)
    if problem:
        raise ValueError(f"{action.trial_id} {action.field}: {problem}")
    path = curation_path(store)
    with _lock:
        if expected_etag is not None:
            current = trial_etag(store, path, keys)
            if current != expected_etag:
                last = trial_rows(path, [k[1] for k in keys])
                who = (
                    f" (last change: {last[-1].get('field')} by {last[-1].get('curator')}, "
                    f"{last[-1].get('recorded_at') or last[-1].get('date')}: {last[-1].get('reason')})"
                    if last
                    else ""
                )
                raise StaleEdit(
                    f"{action.trial_id} was changed since this page was loaded{who}. "
                    "Nothing was saved: reload the page, check the change, and apply yours again if it still holds.",
                    current,
                )
        put(path, action)
    return path


IN_FORCE_QUERY = """
SELECT l.trial_id, l.registry, l.field, l.value, l.reason, l.curator, l.curated_on AS date, l.status, l.line
FROM curation_log l
WHERE l.run_id = (SELECT run_id FROM runs WHERE kind = 'curate' ORDER BY started_at DESC, run_id DESC LIMIT 1)
  AND l.status NOT IN ('invalid', 'unknown_trial')
ORDER BY l.line, l.status
"""


def in_force(store: Store) -> list[dict[str, Any]]:
    """The curation lines the database last applied (from its own log), one per line of that file.

    Written out as CSV this is a curation file that reproduces the current
    curation on any database holding the same records, even if the original
    file is gone.
    """
    result = store.con.execute(IN_FORCE_QUERY)
    names = [d[0] for d in result.description or []]
    rows = result.fetchall()
    seen: set[int] = set()
    out = []
    for values in rows:
        row = dict(zip(names, values, strict=True))
        if row["line"] in seen:  # an override of two registrations sharing an id is logged twice
            continue
        seen.add(row["line"])
        out.append(row)
    return out


def write_in_force(store: Store, out: Path) -> int:
    """Write ``in_force`` as a curation file (``cartatlas curate --export``); returns the lines written."""
    rows = in_force(store)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*REQUIRED_COLUMNS, "registry"])
    for r in rows:
        date = r["date"].isoformat() if isinstance(r["date"], dt.date) else (r["date"] or "")
        writer.writerow([r["trial_id"], r["field"], r["value"], r["reason"], r["curator"], date, r["registry"] or ""])
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return len(rows)
