"""What each derived table was made from: the ``derived_state`` table (migration 6).

Classifications, curation, cross-registry links, publication labels and
publication links are all derived from the stored versions and the knowledge
base.  Each time one of them is refreshed, a row here records when, with which
knowledge-base and classifier versions, and a fingerprint of the inputs it was
computed from; comparing those with the database and the installed cartatlas
now is how ``cartatlas.pipeline.staleness`` tells a report that something is
out of date, and how ``cartatlas.pipeline.derive`` knows what to redo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from cartatlas.store.db import Store, now
from cartatlas.version import __version__


@dataclass(frozen=True)
class State:
    product: str
    made_at: dt.datetime
    inputs: str
    knowledge_version: str | None
    classifier_version: str | None
    cartatlas_version: str | None
    detail: dict[str, Any]


def read_state(store: Store) -> dict[str, State]:
    """Every recorded product; an empty dict for a database that predates the table."""
    rows = store.con.execute(
        "SELECT product, made_at, inputs, knowledge_version, classifier_version, cartatlas_version, "
        "CAST(detail AS VARCHAR) FROM derived_state"
    ).fetchall()
    return {r[0]: State(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]) if r[6] else {}) for r in rows}


def record_state(
    store: Store,
    product: str,
    inputs: str,
    *,
    knowledge_version: str | None,
    classifier_version: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    store.con.execute(
        "INSERT OR REPLACE INTO derived_state VALUES (?, ?, ?, ?, ?, ?, CAST(? AS JSON))",
        [
            product,
            now(),
            inputs,
            knowledge_version,
            classifier_version,
            __version__,
            orjson.dumps(detail or {}, default=str).decode(),
        ],
    )
