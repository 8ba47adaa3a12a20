"""One trial as a reader sees it: every registration of it, its labels with evidence, links and articles.

A trial registered in several registries is one group of linked
registrations (``trial_links``, statuses auto and confirmed).  The group is
found by following the links from the registration asked for, so a page for
one trial never computes the ``trial_clusters`` view over every trial.  Any
registration's id (or a secondary id a record gives) finds the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cartatlas.link.schema import ACTIVE_STATUSES
from cartatlas.store.db import Store

Key = tuple[str, str]

#: Columns of a registration shown on a trial page (the trials table's, then the labels').
_REGISTRATION_QUERY = """
SELECT t.*, c.relation, c.platforms, c.targets, c.target_strategy, c.branch, c.disease_entity,
       c.product_source, c.combinations, c.products, c.flags, c.confidence, c.confidence_score,
       CAST(c.evidence AS VARCHAR) AS evidence, CAST(c.auto AS VARCHAR) AS auto, c.curated_fields,
       c.content_hash AS classified_hash, c.classifier_version, c.classified_at
FROM trials t LEFT JOIN classifications c USING (registry, trial_id)
WHERE (t.registry, t.trial_id) IN (SELECT (UNNEST($registries), UNNEST($ids)))
"""


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
    cursor = store.cursor()
    try:
        rows = cursor.execute(
            "SELECT registry, trial_id FROM trials WHERE trial_id = ? OR upper(trial_id) = upper(?)", [ident, ident]
        ).fetchall()
        if not rows:
            rows = cursor.execute(
                """
                SELECT registry, trial_id FROM trials
                WHERE upper(nct_id) = upper($id) OR upper(org_study_id) = upper($id)
                   OR list_contains([upper(s.id) FOR s IN coalesce(secondary_ids, [])], upper($id))
                """,
                {"id": ident},
            ).fetchall()
    finally:
        cursor.close()
    return sorted((str(r), str(t)) for r, t in rows)


def linked_group(store: Store, keys: list[Key]) -> list[Key]:
    """Every registration linked to these (transitively), through links in force (auto or confirmed)."""
    group = set(keys)
    frontier = set(keys)
    cursor = store.cursor()
    try:
        while frontier:
            regs, ids = zip(*frontier, strict=True)
            rows = cursor.execute(
                f"""
                SELECT registry_a, trial_id_a, registry_b, trial_id_b FROM trial_links
                WHERE status IN ({", ".join("?" for _ in ACTIVE_STATUSES)})
                  AND ((registry_a, trial_id_a) IN (SELECT (UNNEST(?), UNNEST(?)))
                    OR (registry_b, trial_id_b) IN (SELECT (UNNEST(?), UNNEST(?))))
                """,
                [*ACTIVE_STATUSES, list(regs), list(ids), list(regs), list(ids)],
            ).fetchall()
            found = {(a, b) for a, b, _, _ in rows} | {(c, d) for _, _, c, d in rows}
            frontier = found - group
            group |= found
    finally:
        cursor.close()
    return sorted(group)


def trial_record(store: Store, identifier: str) -> TrialRecord | None:
    """The trial an id names, with all its registrations, or None when no registration has that id."""
    keys = find_registrations(store, identifier)
    if not keys:
        return None
    group = linked_group(store, keys)
    frame = store.arrow(
        _REGISTRATION_QUERY, {"registries": [k[0] for k in group], "ids": [k[1] for k in group]}
    ).to_pylist()
    rank = {"ctgov": 0, "chictr": 1}
    frame.sort(key=lambda r: (rank.get(r["registry"], 2), r["trial_id"]))
    for row in frame:
        row["evidence"] = orjson.loads(row["evidence"]) if row.get("evidence") else []
        row["auto"] = orjson.loads(row["auto"]) if row.get("auto") else {}
    stored = [(r["registry"], r["trial_id"]) for r in frame]
    record = TrialRecord(canonical_id(group), frame)
    record.links = _links(store, stored)
    record.publications = _publications(store, stored)
    return record


def _links(store: Store, keys: list[Key]) -> list[dict[str, Any]]:
    """Every link row touching these registrations, in force or not (candidates, curators' splits)."""
    if not keys:
        return []
    regs, ids = [k[0] for k in keys], [k[1] for k in keys]
    rows = store.arrow(
        """
        SELECT registry_a, trial_id_a, registry_b, trial_id_b, method, score, CAST(evidence AS VARCHAR) AS evidence,
               status, linked_at
        FROM trial_links
        WHERE (registry_a, trial_id_a) IN (SELECT (UNNEST($r), UNNEST($i)))
           OR (registry_b, trial_id_b) IN (SELECT (UNNEST($r), UNNEST($i)))
        ORDER BY status, score DESC
        """,
        {"r": regs, "i": ids},
    ).to_pylist()
    for row in rows:
        row["evidence"] = orjson.loads(row["evidence"]) if row.get("evidence") else {}
    return rows


def _publications(store: Store, keys: list[Key]) -> list[dict[str, Any]]:
    if not keys:
        return []
    return store.arrow(
        """
        SELECT l.pmid, l.trial_id, l.method, l.score, l.evidence, p.title, p.journal, p.pub_year, p.kind, p.doi
        FROM publication_links l LEFT JOIN publications p USING (pmid)
        WHERE (l.trial_registry, l.trial_id) IN (SELECT (UNNEST($r), UNNEST($i)))
        ORDER BY p.pub_year DESC NULLS LAST, l.pmid
        """,
        {"r": [k[0] for k in keys], "i": [k[1] for k in keys]},
    ).to_pylist()
