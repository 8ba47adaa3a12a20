"""Versioned schema migrations, each recorded in ``schema_migrations``.

Two kinds of table live in a cartatlas database.  Raw tables (raw_records,
runs, rejects, sync_state) are the source of truth and only ever change by
additive, hand-written migrations.  Derived tables (trials and the views over
it) can always be rebuilt from the raw versions, so a migration that changes
them simply recreates them and asks for a rebuild; an old database therefore
never needs a lossy conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from cartatlas.knowledge.labels import BASE_SCHEMA, BY_NAME, LABELS, Label
from cartatlas.store.schema import trials_ddl
from cartatlas.store.schema.lines import DDL as LINES_DDL
from cartatlas.store.schema.lookups import LOOKUPS, lookups_ddl

RAW_DDL = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,            -- import | sync | rebuild
    registry VARCHAR,
    source VARCHAR,                   -- file paths, or the API base URL
    params JSON,                      -- query, since, options as given
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,          -- running | ok | partial | failed | interrupted
    seen BIGINT DEFAULT 0,
    new BIGINT DEFAULT 0,
    changed BIGINT DEFAULT 0,
    unchanged BIGINT DEFAULT 0,
    rejected BIGINT DEFAULT 0,
    cartatlas_version VARCHAR
);
CREATE TABLE raw_records (
    version_id BIGINT PRIMARY KEY,
    registry VARCHAR NOT NULL,
    record_id VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    format VARCHAR NOT NULL,          -- ctgov_v2 | ctgov_classic | ctgov_xml | ctgov_csv | ...
    source_kind VARCHAR NOT NULL,     -- api | file | bulk
    source VARCHAR NOT NULL,          -- file path or request URL
    locator VARCHAR,                  -- line, member, index or page within the source
    fetched_at TIMESTAMPTZ NOT NULL,
    record_updated DATE,              -- the registry's own last-update date
    run_id VARCHAR NOT NULL,
    -- the record as received (JSON text, XML text, CSV row as JSON); zstd shrinks it about sevenfold, where
    -- DuckDB's own choice (files before 2026-11-25) stores long texts uncompressed
    payload VARCHAR NOT NULL USING COMPRESSION zstd
);

CREATE TABLE rejects (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    locator VARCHAR,
    record_id VARCHAR,
    problem VARCHAR NOT NULL,
    logged_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE sync_state (
    sync_key VARCHAR PRIMARY KEY,     -- registry + query: one checkpoint per query
    registry VARCHAR NOT NULL,
    query VARCHAR NOT NULL,
    since DATE,                       -- lower bound of LastUpdatePostDate for this pass
    page_token VARCHAR,               -- next page to ask for; NULL at the start of a pass
    pages_done BIGINT DEFAULT 0,
    records_done BIGINT DEFAULT 0,
    total BIGINT,
    status VARCHAR NOT NULL,          -- running | done
    run_id VARCHAR,
    pass_started_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,      -- when the last complete pass finished
    last_success_from DATE            -- the registry date that pass started from
);
"""

DERIVED_VIEWS = """
CREATE OR REPLACE VIEW trial_sites AS
    SELECT registry, trial_id, site_no, UNNEST(site) FROM (
        SELECT registry, trial_id, UNNEST(sites) AS site, generate_subscripts(sites, 1) AS site_no
        FROM trials);
CREATE OR REPLACE VIEW trial_countries AS
    SELECT DISTINCT registry, trial_id, UNNEST(countries) AS country_code FROM trials;
CREATE OR REPLACE VIEW trial_interventions AS
    SELECT registry, trial_id, intervention_no, UNNEST(iv) FROM (
        SELECT registry, trial_id, UNNEST(interventions) AS iv,
               generate_subscripts(interventions, 1) AS intervention_no
        FROM trials);
CREATE OR REPLACE VIEW trial_secondary_ids AS
    SELECT registry, trial_id, UNNEST(sid) FROM (
        SELECT registry, trial_id, UNNEST(secondary_ids) AS sid FROM trials);
CREATE OR REPLACE VIEW record_versions AS
    SELECT registry, record_id, version_id,
           ROW_NUMBER() OVER (PARTITION BY registry, record_id ORDER BY version_id) AS version_no,
           content_hash, format, source_kind, source, locator, fetched_at, record_updated, run_id
    FROM raw_records;
"""


def _create_derived(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS trials CASCADE")
    con.execute(trials_ddl())
    con.execute(lookups_ddl("trials"))  # recreated trials keep their lookup index (migration 9)
    con.execute(DERIVED_VIEWS)


def _create_publications(con: duckdb.DuckDBPyConnection) -> None:
    """PubMed articles (issue 6): both tables are derived, so a re-run recreates them."""
    from cartatlas.store.schema.publications import LINKS_DDL, VIEWS, publications_ddl

    con.execute("DROP TABLE IF EXISTS publication_links")
    con.execute("DROP TABLE IF EXISTS publications CASCADE")
    con.execute(publications_ddl())
    con.execute(LINKS_DDL)
    con.execute(VIEWS)


def _label_ddl(label: Label) -> str:
    """A label's column in ``classifications``, with its note."""
    line = f"    {label.name} {label.sql_type}{' NOT NULL' if label.required else ''},"
    return f"{line:<39}-- {label.comment}" if label.comment else line


_FLAGS_NOTE = "why a curator might look: conflict:relation, unknown-target, ..."


def _classification_ddl() -> str:
    """The classifications table as migration 3 created it: the labels of ``BASE_SCHEMA``, from the declaration."""
    columns: list[str] = []
    for label in LABELS:
        if label.schema_version > BASE_SCHEMA:
            continue
        if label.name == "confidence":
            columns.append(f"{'    flags VARCHAR[],':<39}-- {_FLAGS_NOTE}")
        columns.append(_label_ddl(label))
        if label.name == "confidence":
            columns.append("    confidence_score DOUBLE,")
    return (
        """
CREATE TABLE classifications (
    registry VARCHAR NOT NULL,
    trial_id VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,     -- the trial version that was classified
"""
        + "\n".join(columns)
        + """
    evidence JSON,                     -- [{decision, field, text, rule}, ...]
    auto JSON,                         -- the rules' values of every curated field, before curation
    curated_fields VARCHAR[],          -- fields whose value a curator set
    classifier_version VARCHAR NOT NULL,
    kb_version VARCHAR NOT NULL,
    classified_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registry, trial_id)
);
"""
    )


CLASSIFICATION_DDL = (
    _classification_ddl()
    + """CREATE TABLE curation_log (
    run_id VARCHAR NOT NULL,
    curation_file VARCHAR NOT NULL,
    line INTEGER,
    registry VARCHAR,
    trial_id VARCHAR,
    field VARCHAR,
    value VARCHAR,
    reason VARCHAR,
    curator VARCHAR,
    curated_on DATE,
    status VARCHAR NOT NULL,           -- applied | stale | unknown_trial | invalid
    message VARCHAR,
    logged_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE settings (key VARCHAR PRIMARY KEY, value VARCHAR);
"""
)


def _add_label_columns(names: tuple[str, ...]) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A migration adding the columns of declared labels to ``classifications`` (present ones are kept).

    Existing rows get NULL; the classifier version moves with a new rule (``classify/engine.py``), so the
    next ``derive`` screens every trial again and fills the column.
    """

    def run(con: duckdb.DuckDBPyConnection) -> None:
        # DuckDB refuses to alter a table an index depends on: the lookup index (migration 9) is dropped
        # for the change and made again after it.
        indexes = [name for name, table, _ in LOOKUPS if table == "classifications"]
        for index in indexes:
            con.execute(f"DROP INDEX IF EXISTS {index}")
        for name in names:
            label = BY_NAME[name]
            con.execute(f'ALTER TABLE classifications ADD COLUMN IF NOT EXISTS "{name}" {label.sql_type}')
        con.execute(lookups_ddl("classifications"))

    return run


def _label_migrations(taken: set[int]) -> list[Migration]:
    """One migration per ``schema_version`` above ``BASE_SCHEMA`` in the label declaration.

    A label declared with ``schema_version`` N gets its column from migration N, so a database made before
    gains it at its next writable open, and one opened read-only is told to upgrade (``Store.open``).
    ``taken`` are the versions of the other migrations: a label cannot share one.
    """
    versions = sorted({la.schema_version for la in LABELS if la.schema_version > BASE_SCHEMA})
    out = []
    for version in versions:
        if version in taken:
            free = max(taken | set(versions)) + 1
            raise ValueError(f"knowledge/labels.py: schema_version {version} is taken by a migration; use {free}")
        names = tuple(la.name for la in LABELS if la.schema_version == version)
        name = f"label columns of classifications: {', '.join(names)}"
        out.append(Migration(version, name, _add_label_columns(names)))
    return out


def _ordered(migrations: list[Migration]) -> list[Migration]:
    """The migrations by version, which must run 1, 2, 3, ... with none missing or doubled."""
    out = sorted(migrations, key=lambda m: m.version)
    versions = [m.version for m in out]
    if versions != list(range(1, len(out) + 1)):
        raise ValueError(f"migration versions must be 1..{len(out)} with no gap or repeat: {versions}")
    return out


def _create_links(con: duckdb.DuckDBPyConnection) -> None:
    """Registries beyond ClinicalTrials.gov (issue 5).

    The trials table gains columns for local-language text and registry
    details (so it is recreated and rebuilt from raw versions); cross-registry
    links get their table, and trial_clusters its view.
    """
    from cartatlas.store.schema.links import CLUSTERS_VIEW, LINKS_DDL

    _create_derived(con)
    con.execute(LINKS_DDL)
    con.execute(CLUSTERS_VIEW)


def _create_state(con: duckdb.DuckDBPyConnection) -> None:
    """Issue 12: staleness of derived data, and linked registrations that disagree on CAR."""
    from cartatlas.store.schema.links import DISAGREEMENTS_VIEW
    from cartatlas.store.schema.state import DDL

    con.execute(DDL)
    con.execute(DISAGREEMENTS_VIEW)


def _create_landscape(con: duckdb.DuckDBPyConnection) -> None:
    """Numbers a reviewer can trust (issue 12).

    ``trials`` gains results dates, the sponsor's country and normalised
    places of sites (so it is recreated and rebuilt from raw versions);
    registration dates get their table and ``trial_landscape`` its view.
    """
    from cartatlas.store.schema.landscape import REGISTRATION_DATES_DDL, TRIAL_LANDSCAPE_VIEW

    _create_derived(con)
    con.execute(REGISTRATION_DATES_DDL)
    con.execute(TRIAL_LANDSCAPE_VIEW)


def _create_link_features(con: duckdb.DuckDBPyConnection) -> None:
    """Issue 16: link features kept by content hash, so a weekly re-link redoes only what changed."""
    from cartatlas.store.schema.links import LINK_FEATURES_DDL

    con.execute(LINK_FEATURES_DDL)


def _recreate_link_features(con: duckdb.DuckDBPyConnection) -> None:
    """Issue 16: the link features gain the columns the database links with; a cache, so made again."""
    from cartatlas.store.schema.links import LINK_FEATURES_DDL

    con.execute("DROP TABLE IF EXISTS link_features")
    con.execute(LINK_FEATURES_DDL)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]
    #: True when derived tables must be rebuilt from raw records afterwards.
    rebuild: bool = False
    #: Steps of the pipeline to run once the migrations are applied (``cartatlas.pipeline.upgrade``).
    then: tuple[str, ...] = ()


def _sql(script: str) -> Callable[[duckdb.DuckDBPyConnection], None]:
    def run(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(script)

    return run


MIGRATIONS: list[Migration] = [
    Migration(1, "raw record store, runs, rejects, sync checkpoints", _sql(RAW_DDL)),
    Migration(2, "normalised trials table and its views", _create_derived, rebuild=True),
    Migration(3, "classifications, curation log and settings", _sql(CLASSIFICATION_DDL)),
    Migration(
        4,
        "ChiCTR and ICTRP columns of trials; cross-registry trial_links and trial_clusters",
        _create_links,
        rebuild=True,
    ),
    Migration(5, "publications, publication links and their views", _create_publications, rebuild=True),
    Migration(
        6,
        "derived_state (what derived tables were made from); cluster_disagreements view",
        _create_state,
        then=("publication_labels_state",),
    ),
    Migration(
        7,
        "results dates, sponsor country and normalised site places in trials; registration_dates, trial_landscape",
        _create_landscape,
        rebuild=True,
    ),
    Migration(8, "link_features: each registration's link features by content hash", _create_link_features),
    Migration(
        9, "indexes to read one trial by its id (trials, labels, versions, links, articles)", _sql(lookups_ddl())
    ),
    # 10: the costim_domains label's column (its schema_version in knowledge/labels.py).
    Migration(11, "line_digests: lines of record files imported before, so a re-import skips them", _sql(LINES_DDL)),
    Migration(
        12,
        "link_features with blocking tokens, rarity tokens and identities, so the database does whole-corpus work",
        _recreate_link_features,
    ),
]
MIGRATIONS = _ordered(MIGRATIONS + _label_migrations({m.version for m in MIGRATIONS}))

LATEST_VERSION = MIGRATIONS[-1].version
