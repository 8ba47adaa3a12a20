"""The ``derived_state`` table (migration 6): what each derived table was made from.

Read and written by ``cartatlas.store.derived_state``; defined here with every other table.
"""

from __future__ import annotations

DDL = """
CREATE TABLE IF NOT EXISTS derived_state (
    product VARCHAR PRIMARY KEY,      -- classifications, curation, trial_links, publication_labels, ...
    made_at TIMESTAMPTZ NOT NULL,
    inputs VARCHAR NOT NULL,          -- fingerprint of what it was computed from
    knowledge_version VARCHAR,        -- cartatlas.knowledge.knowledge_version() at the time
    classifier_version VARCHAR,
    cartatlas_version VARCHAR,
    detail JSON                       -- counts of the refresh, for people reading the table
)
"""
