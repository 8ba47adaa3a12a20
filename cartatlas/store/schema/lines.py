"""The ``line_digests`` table (migration 11): lines of record files imported before.

A weekly re-import of a whole registry export brings the same lines as last
week but for about 1%.  Each line of a JSON-lines file that gave exactly one
stored record is kept here by a 128-bit digest of its bytes (and of the code
that reads it: ``cartatlas.pipeline.lines``), with the record it gave.  The
next import skips a line whose digest is here while that record's version is
still stored, without decompressing it twice or parsing it: the outcome is the
one parsing it would give (an unchanged version).
"""

from __future__ import annotations

DDL = """
CREATE TABLE IF NOT EXISTS line_digests (
    hi UBIGINT NOT NULL,              -- the line's digest: first 64 bits
    lo UBIGINT NOT NULL,              -- and the next 64
    registry VARCHAR NOT NULL,        -- the record the line gave, and the version's content hash
    record_id VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL
)
"""
