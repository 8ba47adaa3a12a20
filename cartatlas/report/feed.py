"""The feed of new and changed CAR trials as Atom (RFC 4287) and JSON Feed 1.1 files.

``cartatlas.analysis.feed`` decides what is in the feed; this module writes
it: ``feed.atom`` and ``feed.json`` in a directory (the report directory by
default), each replaced atomically.  Ids are stable URNs (a UUID derived from
the registration and the content hash of its version), so a feed reader
shows an entry once, and again only when the record changes again.  Registry
text is untrusted: lxml escapes it in the XML, and characters that XML 1.0
cannot carry are dropped.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from cartatlas.analysis.feed import Feed, FeedEntry, compute_feed
from cartatlas.store.db import Store
from cartatlas.version import __version__

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_FILE = "feed.atom"
JSON_FILE = "feed.json"
TITLE = "cartatlas: new and changed CAR trials"
KIND_WORDS = {"new": "New CAR trial", "changed": "Changed", "no_longer_car": "No longer screened as a CAR trial"}

#: Characters XML 1.0 does not allow (C0 controls but tab, newline and carriage return; lone surrogates; FFFE/FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: Any) -> str:
    return _NOT_XML.sub("", "" if text is None else str(text))


def registry_url(registry: str, trial_id: str) -> str | None:
    """The registration's page, or None for an id that is not well formed (no link is made from it)."""
    from cartatlas.report.html import registry_url as url

    return url(registry, trial_id)


def _urn(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "cartatlas:" + ":".join(parts)).urn


def feed_id(feed: Feed) -> str:
    """One id per database, whatever the window: a reader keeps one subscription."""
    return _urn("feed", str(Path(feed.database).resolve()) if feed.database != ":memory:" else feed.database)


def entry_id(entry: FeedEntry) -> str:
    return _urn(entry.kind, entry.registry, entry.trial_id, entry.content_hash)


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _value(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list | tuple):
        return "/".join(map(str, value))
    if hasattr(value, "tolist"):
        return _value(value.tolist())
    return str(value)


def entry_title(entry: FeedEntry) -> str:
    return clean(f"{KIND_WORDS[entry.kind]}: {entry.trial_id}, {entry.title}")


def entry_summary(entry: FeedEntry) -> str:
    """One line: what changed, or what the new trial is."""
    if entry.changes:
        return clean("; ".join(f"{c.label} {_value(c.before)} -> {_value(c.after)}" for c in entry.changes))
    if entry.kind == "changed":
        return "the registry record was updated; none of the fields the feed follows changed"
    bits = [
        f"targets {'+'.join(entry.targets)}" if entry.targets else "target not stated",
        "/".join(entry.platforms) or "CAR",
        f"status {entry.status or 'not stated'}",
        f"phases {_value(entry.phases)}",
    ]
    if entry.sponsor:
        bits.append(f"sponsor {entry.sponsor}")
    return clean("; ".join(bits))


def entry_text(entry: FeedEntry) -> str:
    """The entry's content: every detail a subscriber needs to decide whether to open the registry."""
    lines = [
        f"{entry.registry}:{entry.trial_id}"
        + (f" (counted as trial {entry.cluster_id})" if entry.cluster_id != entry.trial_id else ""),
        f"Title: {entry.title}",
        f"Sponsor: {entry.sponsor or 'not stated'}",
        f"Registered: {entry.registered or 'not stated'}",
        f"Status: {entry.status or 'not stated'}; phases: {_value(entry.phases)}",
        f"Screening: {entry.relation}; platforms {_value(entry.platforms)}; targets {_value(entry.targets)}",
    ]
    if entry.changes:
        lines.append("Changes since the version stored before:")
        lines += [f"- {c.label}: {_value(c.before)} -> {_value(c.after)}" for c in entry.changes]
    lines.append(
        f"Version {entry.version_id} (registry update {entry.record_updated or 'not stated'}), "
        f"first fetched {_rfc3339(entry.fetched_at)} by run {entry.run_id}"
    )
    return clean("\n".join(lines))


def subtitle(feed: Feed) -> str:
    return clean(f"{feed.describe()}; database {feed.database}")


def _updated(feed: Feed) -> dt.datetime:
    times = [e.fetched_at for e in feed.entries] + [r["finished_at"] or r["started_at"] for r in feed.runs]
    return max(times) if times else feed.generated_at


def render_atom(feed: Feed) -> bytes:
    """An Atom 1.0 document (RFC 4287): feed id, title, updated, author; per entry id, title, updated, link."""

    def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: clean(v) for k, v in attrs.items()})
        if text is not None:
            el.text = clean(text)
        return el

    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})  # type: ignore[dict-item]
    sub(root, "id", feed_id(feed))
    sub(root, "title", TITLE)
    sub(root, "subtitle", subtitle(feed))
    sub(root, "updated", _rfc3339(_updated(feed)))
    author = sub(root, "author")
    sub(author, "name", "cartatlas")
    sub(root, "generator", "cartatlas", version=__version__)
    sub(root, "link", rel="self", href=ATOM_FILE, type="application/atom+xml")
    sub(root, "link", rel="alternate", href=JSON_FILE, type="application/feed+json")
    for entry in feed.entries:
        e = sub(root, "entry")
        sub(e, "id", entry_id(entry))
        sub(e, "title", entry_title(entry))
        sub(e, "updated", _rfc3339(entry.fetched_at))
        url = registry_url(entry.registry, entry.trial_id)
        if url is not None:
            sub(e, "link", rel="alternate", type="text/html", href=url)
        sub(e, "category", term=entry.kind, label=KIND_WORDS[entry.kind])
        for target in entry.targets:
            sub(e, "category", term=target, label=f"target {target}")
        sub(e, "summary", entry_summary(entry), type="text")
        sub(e, "content", entry_text(entry), type="text")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def render_json(feed: Feed) -> bytes:
    """A JSON Feed 1.1 document; cartatlas's own fields sit in ``_cartatlas`` extensions."""
    items = []
    for entry in feed.entries:
        items.append(
            {
                "id": entry_id(entry),
                **({"url": url} if (url := registry_url(entry.registry, entry.trial_id)) else {}),
                "title": entry_title(entry),
                "summary": entry_summary(entry),
                "content_text": entry_text(entry),
                "date_published": _rfc3339(entry.fetched_at),
                "tags": [entry.kind, *entry.targets],
                "_cartatlas": {
                    "kind": entry.kind,
                    "registry": entry.registry,
                    "trial_id": entry.trial_id,
                    "cluster_id": entry.cluster_id,
                    "version_id": entry.version_id,
                    "record_updated": entry.record_updated.isoformat() if entry.record_updated else None,
                    "run_id": entry.run_id,
                    "status": entry.status,
                    "phases": entry.phases,
                    "registered": entry.registered.isoformat() if entry.registered else None,
                    "relation": entry.relation,
                    "targets": entry.targets,
                    "platforms": entry.platforms,
                    "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in entry.changes],
                },
            }
        )
    document = {
        "version": JSON_FEED_VERSION,
        "title": TITLE,
        "description": subtitle(feed),
        "authors": [{"name": "cartatlas"}],
        "language": "en",
        "items": items,
        "_cartatlas": {
            "since": _rfc3339(feed.since) if feed.since else None,
            "runs": [
                {
                    "run_id": r["run_id"],
                    "kind": r["kind"],
                    "registry": r["registry"],
                    "source": r["source"],
                    "started_at": _rfc3339(r["started_at"]),
                    "status": r["status"],
                }
                for r in feed.runs
            ],
            "counts": feed.counts(),
        },
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str)


@dataclass
class FeedFiles:
    feed: Feed
    paths: list[Path] = field(default_factory=list)


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep a published feed from its web server
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_feed(
    store: Store, out: Path, *, runs: int = 1, since: dt.datetime | dt.date | None = None, feed: Feed | None = None
) -> FeedFiles:
    """Write ``feed.atom`` and ``feed.json`` into ``out`` (created if needed), each atomically."""
    feed = feed or compute_feed(store, runs=runs, since=since)
    out.mkdir(parents=True, exist_ok=True)
    result = FeedFiles(feed)
    for name, data in ((ATOM_FILE, render_atom(feed)), (JSON_FILE, render_json(feed))):
        _replace(out / name, data)
        result.paths.append(out / name)
    return result
