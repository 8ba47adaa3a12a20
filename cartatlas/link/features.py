"""Each registration's link features, kept by content hash so that a re-link redoes only what changed.

Finding registry ids in free text and building a registration's matching
profile are most of the cost of linking (about 0.4 ms per registration; at
560,000 registrations, minutes), and both depend on the registration's own
row alone (and on the knowledge base's id formats).  ``link_features`` keeps
them with the content hash of the row they were made from and a version of
the code and knowledge that made them; ``stored_registrations`` computes those
of new and changed registrations (or all, after a knowledge change), stores
them, and reads every registration's in the order the passes read them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pyarrow as pa

from cartatlas import knowledge
from cartatlas.link import (
    _COLUMNS,
    MAX_BLOCK,
    FeatureMap,
    Key,
    Mention,
    Registrations,
    id_text_pairs,
    identity_keys,
    registration_features,
)
from cartatlas.link.match import Corpus, Idf, Profile
from cartatlas.store.db import Store, rollback
from cartatlas.version import __version__

#: Raised when what ``features`` computes changes: every stored feature is made again.
FEATURES_VERSION = "2"
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
        ("tokens", pa.list_(pa.string())),
        ("corpus_tokens", pa.list_(pa.string())),
        ("identities", pa.list_(pa.string())),
    ]
)

#: The kinds of token rarity (``match.Corpus``), as prefixes of ``corpus_tokens``.
_KINDS = ("w", "b", "i", "s")


def _kind_tokens(p: Profile) -> tuple[set[str], set[str], set[str], set[str]]:
    """The tokens each rarity of ``match.Corpus`` counts for a profile, in the order of ``_KINDS``."""
    return p.title_words, p.title_bigrams, p.intervention_words, set().union(*p.sponsor_words, *p.sponsor_bigrams)


def corpus_tokens(p: Profile) -> list[str]:
    """A profile's tokens for the rarities, each prefixed by its kind ("w:car", "b:细胞", ...)."""
    return sorted(f"{kind}:{t}" for kind, tokens in zip(_KINDS, _kind_tokens(p), strict=True) for t in tokens)


def _ident(key: Key) -> str:
    return f"{key[0]}\t{key[1]}"


def _key(ident: str) -> Key:
    registry, _, identifier = ident.partition("\t")
    return (registry, identifier)


def feature_table(rows: pa.Table, version: str) -> pa.Table:
    """The ``link_features`` rows of these trials rows (``content_hash`` and the columns linking reads)."""
    out: dict[str, list[Any]] = {name: [] for name in _FEATURE_SCHEMA.names}
    for row in rows.to_pylist():
        f = registration_features(row)
        out["registry"].append(row["registry"])
        out["trial_id"].append(row["trial_id"])
        out["content_hash"].append(row["content_hash"])
        out["version"].append(version)
        out["mentions"].append(mentions_json(f.mentions).decode())
        out["profile"].append(profile_json(f.profile).decode())
        out["tokens"].append(sorted(f.profile.title_words | f.profile.title_bigrams))
        out["corpus_tokens"].append(corpus_tokens(f.profile))
        out["identities"].append(sorted(_ident(k) for k in identity_keys(row["registry"], row["trial_id"])))
    return pa.table(out, schema=_FEATURE_SCHEMA)


def _stale_rows(store: Store, stale: list[tuple[str, str]]) -> Iterator[pa.Table]:
    """The trials rows of these registrations, ``CHUNK`` at a time."""
    for start in range(0, len(stale), CHUNK):
        keys = stale[start : start + CHUNK]
        key_table = pa.table({"registry": [k[0] for k in keys], "trial_id": [k[1] for k in keys]})
        cursor = store.cursor()
        try:
            cursor.register("_feature_keys", key_table)
            yield cursor.sql(
                f"SELECT content_hash, {_COLUMNS} FROM trials "
                "WHERE (registry, trial_id) IN (SELECT (registry, trial_id) FROM _feature_keys)"
            ).to_arrow_table()
        finally:
            cursor.close()


def refresh_features(store: Store, map_tables: FeatureMap | None = None) -> int:
    """Compute and store the features of registrations that have none for their current row; returns how many.

    ``map_tables`` computes them instead of this process (in worker processes;
    it must give what ``feature_table`` gives).
    """
    con = store.con
    version = features_version()
    stale = con.execute(
        "SELECT t.registry, t.trial_id FROM trials t LEFT JOIN link_features f USING (registry, trial_id) "
        "WHERE f.trial_id IS NULL OR f.content_hash IS DISTINCT FROM t.content_hash OR f.version <> ? "
        "ORDER BY ALL",
        [version],
    ).fetchall()
    con.execute(
        "DELETE FROM link_features f WHERE NOT EXISTS "
        "(SELECT 1 FROM trials t WHERE t.registry = f.registry AND t.trial_id = f.trial_id)"
    )
    batches = _stale_rows(store, stale)
    if map_tables is not None:
        results = map_tables(batches, len(stale))
    else:
        results = (feature_table(rows, version) for rows in batches)
    for table in results:
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("_features", table)
            con.execute(
                "DELETE FROM link_features WHERE (registry, trial_id) IN (SELECT (registry, trial_id) FROM _features)"
            )
            con.execute("INSERT INTO link_features BY NAME SELECT * FROM _features")
            con.unregister("_features")
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
    return len(stale)


#: The current features (after ``refresh_features``, every registration has them).
_CURRENT = "(SELECT f.* FROM link_features f JOIN trials t USING (registry, trial_id, content_hash))"

#: Pairs in different registries sharing at least two title tokens that at most ``MAX_BLOCK``
#: registrations have (each pair once, the smaller key first, as ``pair_key``).
_PAIRS = f"""
WITH postings AS (SELECT DISTINCT unnest(tokens) AS token, registry, trial_id FROM {_CURRENT}),
blocks AS (SELECT token FROM postings GROUP BY token HAVING count(*) BETWEEN 2 AND {MAX_BLOCK}),
blocked AS (SELECT * FROM postings SEMI JOIN blocks USING (token))
SELECT a.registry, a.trial_id, b.registry, b.trial_id
FROM blocked a JOIN blocked b ON a.token = b.token AND a.registry <> b.registry
    AND (a.registry, a.trial_id) < (b.registry, b.trial_id)
GROUP BY ALL HAVING count(*) >= 2
ORDER BY ALL
"""


def _rows(store: Store, query: str, params: list[Any] | None = None, **tables: pa.Table) -> list[tuple[Any, ...]]:
    cursor = store.cursor()
    try:
        for name, table in tables.items():
            cursor.register(name, table)
        return cursor.execute(query, params or []).fetchall()
    finally:
        cursor.close()


def read_registrations(store: Store, *, recompute: bool = False, map_tables: FeatureMap | None = None) -> Registrations:
    """What the passes read (``Registrations``), with the database doing the whole-corpus work.

    Computes the features of new and changed registrations first (all of
    them with ``recompute``; with ``map_tables``, as ``refresh_features``).
    Python then holds the ids records give, the pairs to compare, their
    profiles and the rarities of their tokens: memory grows with what links,
    not with the registry.
    """
    if recompute:
        store.con.execute("DELETE FROM link_features")
    refresh_features(store, map_tables)
    return _read_registrations(store)  # under the store's memory limit: the whole-corpus queries spill to disk


def _read_registrations(store: Store) -> Registrations:
    n = _rows(store, f"SELECT count(*) FROM {_CURRENT}")[0][0]
    mentions = {
        (str(r), str(t)): mentions_from_json(m)
        for r, t, m in _rows(
            store, f"SELECT registry, trial_id, mentions FROM {_CURRENT} WHERE mentions <> '[]' ORDER BY ALL"
        )
    }
    named = sorted({_ident(m.key) for found in mentions.values() for m in found})
    by_identity: dict[Key, list[Key]] = {}
    query = (
        f"SELECT i.ident, i.registry, i.trial_id FROM (SELECT unnest(identities) AS ident, registry, trial_id "
        f"FROM {_CURRENT}) i SEMI JOIN _named n ON i.ident = n.ident ORDER BY i.registry, i.trial_id"
    )
    for ident, registry, trial_id in _rows(store, query, _named=pa.table({"ident": pa.array(named, pa.string())})):
        by_identity.setdefault(_key(ident), []).append((registry, trial_id))
    # Which ids are shared first (a count, which spills to disk), then only their registrations: list
    # aggregates over every id ran out of memory at 1,120,000 registrations.
    shared_rows = _rows(
        store,
        f"WITH ids AS (SELECT unnest(identities) AS ident, registry, trial_id FROM {_CURRENT}), "
        "shared AS (SELECT ident FROM ids GROUP BY ident HAVING count(*) >= 2) "
        "SELECT ident, registry, trial_id FROM ids SEMI JOIN shared USING (ident) ORDER BY ALL",
    )
    groups: dict[str, list[Key]] = {}
    for ident, registry, trial_id in shared_rows:
        groups.setdefault(ident, []).append((registry, trial_id))
    shared_ids = sorted(((_key(ident), keys) for ident, keys in groups.items()), key=lambda g: (g[1][0], g[0]))
    pairs = [((a, b), (c, d)) for a, b, c, d in _rows(store, _PAIRS)]
    needed = {k for pair in pairs for k in pair} | id_text_pairs(mentions, by_identity)
    profiles = load_profiles(store, needed)
    return Registrations(
        n=n,
        mentions=mentions,
        by_identity=by_identity,
        shared_ids=shared_ids,
        pairs=pairs,
        profiles=profiles,
        corpus=_corpus(store, n, profiles.values()),
        all_keys=lambda: [(str(r), str(t)) for r, t in _rows(store, f"SELECT registry, trial_id FROM {_CURRENT}")],
    )


def _corpus(store: Store, n: int, profiles: Iterable[Profile]) -> Corpus:
    """Token rarities over every registration, counted by the database for the tokens of these profiles."""
    needed = sorted({t for p in profiles for t in corpus_tokens(p)})
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in _KINDS}
    query = (
        f"SELECT t, count(*) FROM (SELECT unnest(corpus_tokens) AS t FROM {_CURRENT}) "
        "SEMI JOIN _needed USING (t) GROUP BY t"
    )
    for token, count in _rows(store, query, _needed=pa.table({"t": pa.array(needed, pa.string())})):
        kind, _, word = token.partition(":")
        counts[kind][word] = count
    w, b, i, s = (Idf(n=n, df=counts[kind]) for kind in _KINDS)
    return Corpus(w, b, i, s)


def load_profiles(store: Store, keys: set[Key]) -> dict[Key, Profile]:
    """The stored profiles of these registrations (their current rows')."""
    if not keys:
        return {}
    table = pa.table({"registry": [k[0] for k in keys], "trial_id": [k[1] for k in keys]})
    rows = _rows(
        store,
        f"SELECT f.registry, f.trial_id, f.profile FROM _profile_keys k JOIN {_CURRENT} f USING (registry, trial_id)",
        _profile_keys=table,
    )
    return {(r, t): profile_from_json(r, t, data) for r, t, data in rows}
