"""One trial as a reader sees it: every registration of it, its labels with evidence, links and articles.

A trial registered in several registries is one group of linked
registrations (``trial_links``, statuses auto and confirmed).  The group is
found by following the links from the registration asked for, so a page for
one trial never computes the ``trial_clusters`` view over every trial.  Any
registration's id (or a secondary id a record gives) finds the whole group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cartatlas.knowledge import labels
from cartatlas.store.db import Store
from cartatlas.store.schema.links import ACTIVE_STATUSES

Key = tuple[str, str]

#: What a trial page shows of each registration: everything but the long free texts (summary,
#: description, criteria), which cost most of the read and are one query away in ``trials``.
RECORD_COLUMNS = (
    "registry", "trial_id", "nct_id", "org_study_id", "secondary_ids", "brief_title", "official_title", "acronym",
    "overall_status", "study_type", "phases", "first_submitted", "first_posted", "start_date",
    "primary_completion_date", "completion_date", "last_update_posted", "lead_sponsor", "lead_sponsor_class",
    "collaborators", "conditions", "keywords", "interventions", "enrollment", "enrollment_type", "sites", "countries",
    "has_results", "source_format", "brief_title_local", "official_title_local", "lead_sponsor_local",
    "conditions_local", "language", "source_register", "web_address", "phase_text", "version_id", "content_hash",
)  # fmt: skip
#: The labels of each registration.  Read apart from the trial row: DuckDB filters both tables by id while
#: scanning, where a join read the whole labels table.
LABEL_COLUMNS = (*(label.name for label in labels.LABELS), "flags", "curated_fields", "evidence")
_LABELS_QUERY = (
    "SELECT registry, trial_id, "
    + ", ".join(label.name for label in labels.LABELS)
    + """, flags, CAST(evidence AS VARCHAR) AS evidence, curated_fields,
       {bookkeeping}
FROM classifications WHERE trial_id IN ({ids})
"""
)
#: What a labels row has besides ``LABEL_COLUMNS``: small columns, cheap to read for a known trial.
_BOOKKEEPING = (
    "confidence_score, CAST(auto AS VARCHAR) AS auto_text, content_hash AS classified_hash, classifier_version, "
    "classified_at"
)
#: Labels a caller already holds, by registration (``CountedTrials.registration_labels``): their large
#: columns (evidence) are then not read again.
KnownLabels = Callable[[list[tuple[str, str]]], dict[tuple[str, str], dict[str, Any]]]


def _rows(store: Store, query: str, params: list[Any]) -> list[dict[str, Any]]:
    """A small result as dicts, read at once on the store's own connection (a reader thread's is private)."""
    result = store.con.execute(query, params)
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _marks(n: int) -> str:
    """Placeholders for n parameters.  An ``IN`` list of values lets DuckDB filter while it scans; a join
    on (registry, id) pairs made a trial page scan and join the whole table (200 ms at 100,000 trials)."""
    return ", ".join("?" for _ in range(n))


@dataclass
class TrialRecord:
    """A trial: its canonical id (the group's NCT id, else ChiCTR id, else smallest) and its parts."""

    trial_id: str
    registrations: list[dict[str, Any]]
    links: list[dict[str, Any]] = field(default_factory=list)
    publications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def keys(self) -> list[Key]:
        return [(r["registry"], r["trial_id"]) for r in self.registrations]


def canonical_id(keys: list[Key]) -> str:
    """The id a group of registrations is known by, as the ``trial_clusters`` view chooses it."""
    rank = {"ctgov": 0, "chictr": 1}
    return min(keys, key=lambda k: (rank.get(k[0], 2), k[1]))[1]


def find_registrations(store: Store, identifier: str) -> list[Key]:
    """Registrations named by an id: a registry id, an NCT id a record carries, or a secondary id."""
    ident = identifier.strip()
    if not ident:
        return []
    con = store.con
    # The id as given first (DuckDB skips row groups on an equality); then case-insensitive, then other ids.
    rows = con.execute("SELECT registry, trial_id FROM trials WHERE trial_id = ?", [ident]).fetchall()
    if not rows:
        rows = con.execute("SELECT registry, trial_id FROM trials WHERE upper(trial_id) = upper(?)", [ident]).fetchall()
    if not rows:
        rows = con.execute(
            """
            SELECT registry, trial_id FROM trials
            WHERE upper(nct_id) = upper($id) OR upper(org_study_id) = upper($id)
               OR list_contains([upper(s.id) FOR s IN coalesce(secondary_ids, [])], upper($id))
            """,
            {"id": ident},
        ).fetchall()
    return sorted((str(r), str(t)) for r, t in rows)


def linked_group(store: Store, keys: list[Key]) -> list[Key]:
    """Every registration linked to these (transitively), through links in force (auto or confirmed)."""
    return _group_and_links(store, keys)[0]


def _group_and_links(store: Store, keys: list[Key]) -> tuple[list[Key], list[dict[str, Any]]]:
    """The linked group of these registrations, and every link row touching it (in force or not).

    One query per step of the walk (usually one in all): the rows that make
    the group are the rows a trial page lists.
    """
    group = set(keys)
    frontier = set(keys)
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    while frontier:
        ids = sorted({k[1] for k in frontier})
        marks = _marks(len(ids))
        found = set()
        for r in _rows(
            store,
            # Two lookups, not one scan: DuckDB uses an id index for a plain IN, never for an OR of two.
            f"""
            SELECT registry_a, trial_id_a, registry_b, trial_id_b, method, score,
                   CAST(evidence AS VARCHAR) AS evidence, status, linked_at
            FROM trial_links WHERE trial_id_a IN ({marks})
            UNION ALL
            SELECT registry_a, trial_id_a, registry_b, trial_id_b, method, score,
                   CAST(evidence AS VARCHAR) AS evidence, status, linked_at
            FROM trial_links WHERE trial_id_b IN ({marks})
            """,
            [*ids, *ids],
        ):
            a, b = (r["registry_a"], r["trial_id_a"]), (r["registry_b"], r["trial_id_b"])
            if a not in frontier and b not in frontier:
                continue  # the same id in another registry
            rows[(*a, *b)] = r
            if r["status"] in ACTIVE_STATUSES:
                found |= {a, b}
        frontier = found - group
        group |= found
    return sorted(group), list(rows.values())


@dataclass(frozen=True)
class Lookups:
    """Which ids have any link or article row, for one data version (``trial_lookups``).

    A reader that keeps these (the explorer, per data version) spares most
    trial pages two queries: most trials have neither.
    """

    linked: frozenset[str]
    with_articles: frozenset[str]


def trial_lookups(store: Store) -> Lookups:
    """The ids named by any link or article row (valid until links or articles change)."""
    con = store.con  # each result is read before the next query: a connection holds one result at a time
    linked = frozenset(
        r[0]
        for r in con.execute("SELECT trial_id_a FROM trial_links UNION SELECT trial_id_b FROM trial_links").fetchall()
    )
    articles = frozenset(r[0] for r in con.execute("SELECT DISTINCT trial_id FROM publication_links").fetchall())
    return Lookups(linked, articles)


#: A registration's row, read through the trials id index (migration 9).  Its classified version is read
#: apart: a join with classifications cost more than the second lookup (a hash join built per page).
_RECORD_QUERY = "SELECT " + ", ".join(f'"{c}"' for c in RECORD_COLUMNS) + " FROM trials WHERE trial_id IN ({ids})"


def trial_record(
    store: Store, identifier: str, *, known_labels: KnownLabels | None = None, lookups: Lookups | None = None
) -> TrialRecord | None:
    """The trial an id names, with all its registrations, or None when no registration has that id.

    ``known_labels`` gives the labels of registrations the caller already
    holds in memory (the explorer's counted trials): for those only the
    small bookkeeping columns are read.  ``lookups`` (``trial_lookups`` of
    the current data) tells which ids have links or articles to read.
    """
    ident = identifier.strip()
    # Most pages are asked for by a registration's own id: its row doubles as the lookup.
    frame = _rows(store, _RECORD_QUERY.format(ids="?"), [ident]) if ident else []
    keys = [(r["registry"], r["trial_id"]) for r in frame] or find_registrations(store, identifier)
    if not keys:
        return None
    group: list[Key] = sorted(set(keys))
    link_rows: list[dict[str, Any]] = []
    if lookups is None or any(k[1] in lookups.linked for k in keys):
        group, link_rows = _group_and_links(store, keys)
    have = {(r["registry"], r["trial_id"]) for r in frame}
    missing = sorted({k[1] for k in group if k not in have})
    if missing:
        frame += _rows(store, _RECORD_QUERY.format(ids=_marks(len(missing))), missing)
    wanted = set(group)
    frame = [r for r in frame if (r["registry"], r["trial_id"]) in wanted]
    known = known_labels(sorted(group)) if known_labels is not None else {}
    unknown = sorted({k[1] for k in group if k not in known})
    labels: dict[Key, dict[str, Any]] = {}
    if unknown:
        query = _LABELS_QUERY.format(bookkeeping=_BOOKKEEPING, ids=_marks(len(unknown)))
        labels.update({(r["registry"], r["trial_id"]): r for r in _rows(store, query, unknown)})
    if known:
        # Only the version classified, and the rules' own values where a curator overrode some.
        kids = sorted({k[1] for k in known})
        query = "SELECT registry, trial_id, content_hash AS classified_hash FROM classifications WHERE trial_id IN ({})"
        for r in _rows(store, query.format(_marks(len(kids))), kids):
            key = (r["registry"], r["trial_id"])
            if key in known:
                labels[key] = {**known[key], **r}
        curated = sorted({k[1] for k, v in known.items() if v.get("curated_fields")})
        if curated:
            query = (
                "SELECT registry, trial_id, CAST(auto AS VARCHAR) AS auto_text FROM classifications "
                "WHERE trial_id IN ({})"
            )
            for r in _rows(store, query.format(_marks(len(curated))), curated):
                key = (r["registry"], r["trial_id"])
                if key in labels:
                    labels[key]["auto_text"] = r["auto_text"]
    for row in frame:
        row.update(labels.get((row["registry"], row["trial_id"]), {}))
    rank = {"ctgov": 0, "chictr": 1}
    frame.sort(key=lambda r: (rank.get(r["registry"], 2), r["trial_id"]))
    for row in frame:
        row["evidence"] = orjson.loads(row["evidence"]) if row.get("evidence") else []
        row["auto"] = orjson.loads(row["auto_text"]) if row.get("auto_text") else {}
    stored = [(r["registry"], r["trial_id"]) for r in frame]
    record = TrialRecord(canonical_id(group), frame)
    record.links = _links(link_rows, stored)
    if lookups is None or any(k[1] in lookups.with_articles for k in stored):
        record.publications = _publications(store, stored)
    return record


def _links(rows: list[dict[str, Any]], keys: list[Key]) -> list[dict[str, Any]]:
    """The link rows touching these registrations, in force or not (candidates, curators' splits)."""
    wanted = set(keys)
    out = [
        dict(r) for r in rows
        if (r["registry_a"], r["trial_id_a"]) in wanted or (r["registry_b"], r["trial_id_b"]) in wanted
    ]  # fmt: skip
    out.sort(key=lambda r: (r["status"], -(r["score"] or 0.0)))
    for row in out:
        row["evidence"] = orjson.loads(row["evidence"]) if row.get("evidence") else {}
    return out


def _publications(store: Store, keys: list[Key]) -> list[dict[str, Any]]:
    if not keys:
        return []
    ids = sorted({k[1] for k in keys})
    wanted = set(keys)
    # The links first (an index lookup; most trials have none), then their articles by PMID: a join
    # would scan every article for each trial page.
    links = [
        r
        for r in _rows(
            store,
            "SELECT trial_registry, pmid, trial_id, method, score, evidence FROM publication_links "
            f"WHERE trial_id IN ({_marks(len(ids))})",
            ids,
        )
        if (r["trial_registry"], r["trial_id"]) in wanted
    ]
    if not links:
        return []
    pmids = sorted({r["pmid"] for r in links})
    articles: dict[Any, dict[str, Any]] = {}
    for a in _rows(
        store,
        f"SELECT pmid, title, journal, pub_year, kind, doi FROM publications WHERE pmid IN ({_marks(len(pmids))})",
        pmids,
    ):
        articles.setdefault(a["pmid"], a)
    empty = {"title": None, "journal": None, "pub_year": None, "kind": None, "doi": None}
    found = [{**r, **{k: v for k, v in articles.get(r["pmid"], empty).items() if k != "pmid"}} for r in links]
    found.sort(key=lambda r: (r["pub_year"] is None, -(r["pub_year"] or 0), r["pmid"]))
    return found
