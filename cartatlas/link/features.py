"""Each registration's link features, kept by content hash so that a re-link redoes only what changed.

Finding registry ids in free text and building a registration's matching
profile are most of the cost of linking (about 0.4 ms per registration; at
560,000 registrations, minutes), and both depend on the registration's own
row alone (and on the knowledge base's id formats).  ``link_features`` keeps
them with the content hash of the row they were made from and a version of
the code and knowledge that made them; ``cached_features`` computes those of
new and changed registrations (or all, after a knowledge change), stores
them, and returns every registration's, in the order the passes read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa

from cartatlas import knowledge
from cartatlas.link import _COLUMNS, Features, Key, Mention, registration_features
from cartatlas.link.match import Profile
from cartatlas.store.db import Store, rollback
from cartatlas.version import __version__

#: Raised when what ``features`` computes changes: every stored feature is made again.
FEATURES_VERSION = "1"
#: Registrations whose features are computed and written together.
CHUNK = 5000


def features_version() -> str:
    """The code (features and cartatlas versions) and knowledge base that features are made with.

    ``rebuild``, which re-normalises rows under unchanged content hashes, empties the table.
    """
    return f"{FEATURES_VERSION}:{__version__}:{knowledge.knowledge_version()}"


def _sorted(values: set[str]) -> list[str]:
    return sorted(values)


def profile_json(p: Profile) -> bytes:
    """A profile as JSON (sets as sorted lists, dates as ISO strings)."""
    return orjson.dumps(
        [
            _sorted(p.title_words),
            _sorted(p.title_bigrams),
            [_sorted(s) for s in p.latin_titles],
            [_sorted(s) for s in p.chinese_titles],
            p.has_latin_title,
            [_sorted(s) for s in p.sponsor_words],
            [_sorted(s) for s in p.sponsor_bigrams],
            p.registered.isoformat() if p.registered else None,
            p.start.isoformat() if p.start else None,
            p.enrollment,
            _sorted(p.intervention_words),
        ]
    )


def profile_from_json(registry: str, trial_id: str, data: str | bytes) -> Profile:
    tw, tb, lt, ct, hl, sw, sb, reg, start, enrollment, iw = orjson.loads(data)
    return Profile(
        registry,
        trial_id,
        set(tw),
        set(tb),
        [set(s) for s in lt],
        [set(s) for s in ct],
        hl,
        [set(s) for s in sw],
        [set(s) for s in sb],
        dt.date.fromisoformat(reg) if reg else None,
        dt.date.fromisoformat(start) if start else None,
        enrollment,
        set(iw),
    )


def mentions_json(mentions: list[Mention]) -> bytes:
    return orjson.dumps([[m.key[0], m.key[1], m.method, m.field, m.text] for m in mentions])


def mentions_from_json(data: str | bytes) -> list[Mention]:
    return [Mention((reg, ident), method, field, text) for reg, ident, method, field, text in orjson.loads(data)]


_FEATURE_SCHEMA = pa.schema(
    [
        ("registry", pa.string()),
        ("trial_id", pa.string()),
        ("content_hash", pa.string()),
        ("version", pa.string()),
        ("mentions", pa.string()),
        ("profile", pa.string()),
    ]
)


def refresh_features(store: Store) -> int:
    """Compute and store the features of registrations that have none for their current row; returns how many."""
    con = store.con
    version = features_version()
    stale = con.execute(
        "SELECT t.registry, t.trial_id FROM trials t LEFT JOIN link_features f USING (registry, trial_id) "
        "WHERE f.trial_id IS NULL OR f.content_hash IS DISTINCT FROM t.content_hash OR f.version <> ?",
        [version],
    ).fetchall()
    con.execute(
        "DELETE FROM link_features f WHERE NOT EXISTS "
        "(SELECT 1 FROM trials t WHERE t.registry = f.registry AND t.trial_id = f.trial_id)"
    )
    for start in range(0, len(stale), CHUNK):
        keys = stale[start : start + CHUNK]
        key_table = pa.table({"registry": [k[0] for k in keys], "trial_id": [k[1] for k in keys]})
        cursor = store.cursor()
        try:
            cursor.register("_feature_keys", key_table)
            cur = cursor.execute(
                f"SELECT content_hash, {_COLUMNS} FROM trials "
                "WHERE (registry, trial_id) IN (SELECT (registry, trial_id) FROM _feature_keys)"
            )
            names = [d[0] for d in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cursor.close()
        out: dict[str, list[Any]] = {name: [] for name in _FEATURE_SCHEMA.names}
        for row in rows:
            f = registration_features(row)
            out["registry"].append(row["registry"])
            out["trial_id"].append(row["trial_id"])
            out["content_hash"].append(row["content_hash"])
            out["version"].append(version)
            out["mentions"].append(mentions_json(f.mentions).decode())
            out["profile"].append(profile_json(f.profile).decode())
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("_feature_keys", key_table)
            con.execute(
                "DELETE FROM link_features WHERE (registry, trial_id) IN "
                "(SELECT (registry, trial_id) FROM _feature_keys)"
            )
            con.unregister("_feature_keys")
            con.register("_features", pa.table(out, schema=_FEATURE_SCHEMA))
            con.execute("INSERT INTO link_features BY NAME SELECT * FROM _features")
            con.unregister("_features")
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
    return len(stale)


def _stored(store: Store, batch_size: int = 20_000) -> Iterator[tuple[str, str, str, str]]:
    cur = store.con.execute(
        "SELECT f.registry, f.trial_id, f.mentions, f.profile FROM trials t "
        "JOIN link_features f USING (registry, trial_id, content_hash) ORDER BY registry, trial_id"
    )
    while rows := cur.fetchmany(batch_size):
        yield from rows


def cached_features(store: Store) -> dict[Key, Features]:
    """Every registration's features, in (registry, trial_id) order, computing only the missing ones."""
    refresh_features(store)
    out: dict[Key, Features] = {}
    for registry, trial_id, mentions, profile in _stored(store):
        key = (str(registry), str(trial_id))
        out[key] = Features(mentions_from_json(mentions), profile_from_json(key[0], key[1], profile))
    return out
