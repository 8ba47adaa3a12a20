"""Tables of cross-registry linking: ``trial_links`` and the ``trial_clusters`` view (migration 4).

``trial_links`` holds one row per pair of registrations judged to be the same
trial (or judged not to be, by a curator).  ``trial_clusters`` is a view, so it
is never stale: after any import, every trial in ``trials`` appears in it
exactly once, with the canonical id of the group it is linked into.

Canonical id: the NCT id if the group has one, else the ChiCTR id, else the
smallest id.  Ids named by a link but not (yet) imported count too, so a
ChiCTR trial that names its NCT id has that NCT id as its cluster id before the
ClinicalTrials.gov record arrives, and keeps it after.
"""

from __future__ import annotations

from cartatlas.knowledge.registries import cluster_id_registries

#: status: auto (accepted by the rules), candidate (scored below the threshold: kept for curators, not
#: used), confirmed (a curator said same), rejected (a curator said different).
LINKS_DDL = """
CREATE TABLE IF NOT EXISTS trial_links (
    registry_a VARCHAR NOT NULL,
    trial_id_a VARCHAR NOT NULL,
    registry_b VARCHAR NOT NULL,
    trial_id_b VARCHAR NOT NULL,
    method VARCHAR NOT NULL,        -- secondary_id | id_in_title | id_in_text | same_eudract | score | curated
    score DOUBLE,                   -- 0..1; 1 for an id given by a record itself
    evidence JSON,                  -- why: the field and id, or each similarity feature
    status VARCHAR NOT NULL,        -- auto | candidate | confirmed | rejected
    linked_at TIMESTAMPTZ,
    PRIMARY KEY (registry_a, trial_id_a, registry_b, trial_id_b)
)
"""

#: Each registration's link features (``cartatlas.link.features``), by the content hash they were made
#: from: a cache, so that a re-link computes them only for new and changed registrations (migration 8).
LINK_FEATURES_DDL = """
CREATE TABLE IF NOT EXISTS link_features (
    registry VARCHAR NOT NULL,
    trial_id VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,  -- of the trials row the features were made from
    version VARCHAR NOT NULL,       -- features code and knowledge base that made them
    mentions VARCHAR NOT NULL,      -- JSON: the registry ids the record gives, with where
    profile VARCHAR NOT NULL,       -- JSON: title, sponsor, date, size and intervention tokens
    tokens VARCHAR[],               -- title words and Chinese bigrams (blocking)
    corpus_tokens VARCHAR[],        -- the tokens whose rarity is weighed, by kind ("w:car", "s:hospital", ...)
    identities VARCHAR[],           -- the ids the registration is ("registry<TAB>id")
    PRIMARY KEY (registry, trial_id)
)
"""

#: Statuses that join two registrations into one trial.
ACTIVE_STATUSES = ("auto", "confirmed")

CLUSTERS_VIEW_TEMPLATE = """
CREATE OR REPLACE VIEW trial_clusters AS
WITH RECURSIVE edges(a_reg, a_id, b_reg, b_id) AS (
    SELECT registry_a, trial_id_a, registry_b, trial_id_b FROM trial_links WHERE status IN ('auto', 'confirmed')
    UNION
    SELECT registry_b, trial_id_b, registry_a, trial_id_a FROM trial_links WHERE status IN ('auto', 'confirmed')
),
reach(registry, trial_id, m_reg, m_id) AS (
    SELECT registry, trial_id, registry, trial_id FROM trials
    UNION
    SELECT r.registry, r.trial_id, e.b_reg, e.b_id
    FROM reach r JOIN edges e ON r.m_reg = e.a_reg AND r.m_id = e.a_id
),
canon AS (
    SELECT registry, trial_id,
           arg_min(m_id, ({cluster_rank}, m_id)) AS cluster_id
    FROM reach
    GROUP BY registry, trial_id
)
SELECT registry, trial_id, cluster_id, count(*) OVER (PARTITION BY cluster_id) AS cluster_size
FROM canon
"""


def _cluster_rank() -> str:
    """The SQL that ranks a registry for naming a cluster: ``cluster_ids`` registries in order, then the rest."""
    ranked = cluster_id_registries()
    whens = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(ranked))
    return f"CASE m_reg {whens} ELSE {len(ranked)} END"


#: The view, with the registries whose ids name clusters read from knowledge/registries.csv.
CLUSTERS_VIEW = CLUSTERS_VIEW_TEMPLATE.format(cluster_rank=_cluster_rank())


#: Linked registrations of one trial that disagree on whether it is a CAR trial (one registration
#: screened as therapy or follow-up, another as ancillary, none, or not screened yet).  Such a
#: trial is counted, by the rule documented in docs/architecture.md, as a CAR trial from its CAR
#: registrations, and listed here for a curator: a ``relation`` override on a registration, or a
#: ``link`` row saying the registrations are different trials, settles it.
DISAGREEMENTS_VIEW = """
CREATE OR REPLACE VIEW cluster_disagreements AS
WITH members AS (
    SELECT k.cluster_id, k.cluster_size, k.registry, k.trial_id, t.brief_title, c.relation,
           coalesce(c.relation IN ('therapy', 'follow_up'), false) AS is_car,
           coalesce(list_contains(c.curated_fields, 'relation'), false) AS curated
    FROM trial_clusters k
    JOIN trials t USING (registry, trial_id)
    LEFT JOIN classifications c USING (registry, trial_id)
    WHERE k.cluster_size > 1
)
SELECT cluster_id,
       'relation' AS disagreement,
       'counted as a CAR trial, from its CAR registrations' AS counted_as,
       count(*) AS registrations,
       list(registry || ':' || trial_id ORDER BY registry, trial_id) FILTER (WHERE is_car) AS car_registrations,
       list(registry || ':' || trial_id ORDER BY registry, trial_id) FILTER (WHERE NOT is_car) AS other_registrations,
       list({'registration': registry || ':' || trial_id, 'relation': coalesce(relation, 'not screened'),
             'curated': curated, 'title': brief_title} ORDER BY registry, trial_id) AS detail
FROM members
GROUP BY cluster_id
HAVING bool_or(is_car) AND NOT bool_and(is_car)
"""
