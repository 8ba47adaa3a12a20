"""Skipping the lines of a record file that an earlier import stored: a weekly re-import parses only what changed.

A registry's whole export, imported again a week later, differs from last
week's in about 1% of its lines, yet parsing, serialising and hashing every
line is most of an import.  Each line of a JSON-lines file that gave exactly
one stored record is therefore kept in ``line_digests`` (migration 11) by a
128-bit digest of the line's bytes, with the record (registry, id, content
hash) it gave.  An import (``save_records(skip_known=True)``) loads the
digests whose record version is still stored (``seen_lines``); the preparing
code (``prepare_lines``) digests each line, leaves out those it knows and
counts them as seen and unchanged, which is what parsing them would have
concluded: the same record, a version stored already.

The digest covers the line and a stamp of the code that turns a line into a
record and a content hash (``code_stamp``): after an upgrade of the readers
or normalisers no old digest matches, and every line is parsed once more.
A line longer than the record limit is never skipped (it is a reject).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from cartatlas.pipeline.prepare import LINE_DIGEST, Batch, KnownHashes, prepare
from cartatlas.sources.base import LineBatch
from cartatlas.store.db import Store
from cartatlas.version import __version__

_PACKAGE = Path(__file__).resolve().parents[1]
#: What turns a line into records and content hashes: a change to any of these changes every digest.
_CODE = ("sources", "normalise", "model.py", "pipeline/prepare.py", "pipeline/lines.py", "knowledge/registries.csv")


@functools.cache
def code_stamp() -> bytes:
    """A digest of the readers', normalisers' and preparing code's source, and of the cartatlas version."""
    h = hashlib.sha256(__version__.encode())
    for part in _CODE:
        path = _PACKAGE / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            h.update(str(file.relative_to(_PACKAGE)).encode())
            h.update(file.read_bytes())
    return h.digest()


def line_tag(parse: Callable[..., object], max_line: int) -> bytes:
    """What a line's digest starts with: the code stamp, the line parser and the record size limit."""
    return b"%s|%s.%s|%d|" % (code_stamp(), parse.__module__.encode(), parse.__qualname__.encode(), max_line)


def digest_lines(lines: list[bytes], tag: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Each line's 128-bit digest as two arrays of 64-bit halves (``hi``, ``lo``)."""
    raw = b"".join(hashlib.sha256(tag + line).digest()[:16] for line in lines)
    halves = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    return halves[:, 0].copy(), halves[:, 1].copy()


@dataclass(frozen=True, slots=True)
class SeenLines:
    """Digests of lines stored before an import began, sorted (``hi`` then ``lo``)."""

    hi: np.ndarray
    lo: np.ndarray

    def contains(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """A boolean per digest: is it one of these?

        Two stored digests sharing their first 64 bits (chance about 1 in 10^7
        at a million lines) make the second one unfindable, so its line is
        parsed again: slower, never wrong.
        """
        if not len(self.hi) or not len(hi):
            return np.zeros(len(hi), dtype=bool)
        at = np.minimum(np.searchsorted(self.hi, hi), len(self.hi) - 1)
        return np.asarray((self.hi[at] == hi) & (self.lo[at] == lo))

    def __len__(self) -> int:
        return len(self.hi)

    def save(self, path: str) -> None:
        np.save(path, np.stack([self.hi, self.lo]))

    @classmethod
    def load(cls, path: str) -> SeenLines:
        both = np.load(path, mmap_mode="r")
        return cls(both[0], both[1])


def seen_lines(store: Store) -> SeenLines | None:
    """The digests of lines whose record version is still stored (None when there are none)."""
    table = store.con.sql(
        "SELECT DISTINCT d.hi, d.lo FROM line_digests d "
        "SEMI JOIN raw_records r ON r.registry = d.registry AND r.record_id = d.record_id "
        "AND r.content_hash = d.content_hash ORDER BY d.hi, d.lo"
    ).to_arrow_table()
    if table is None or table.num_rows == 0:
        return None
    return SeenLines(table.column("hi").to_numpy(), table.column("lo").to_numpy())


def prepare_lines(batch: LineBatch, known: KnownHashes | None = None, seen: SeenLines | None = None) -> Batch:
    """Prepare a batch of lines (``prepare``), leaving out the lines in ``seen``.

    Each prepared record that is its line's only record carries the line's
    digest (``LINE_DIGEST``), for the importer to store with it.
    """
    lines = batch.lines()
    hi, lo = digest_lines(lines, line_tag(batch.parse, batch.max_line))
    skip: set[int] = set()
    if seen is not None:
        fits = np.fromiter((len(line) <= batch.max_line for line in lines), dtype=bool, count=len(lines))
        skip = {int(i) for i in np.flatnonzero(seen.contains(hi, lo) & fits)}
    prepared = prepare(batch.items(skip), known)
    prepared.stats.seen += len(skip)
    prepared.stats.unchanged += len(skip)
    records = prepared.records
    if records.num_rows:
        # A line's only record has the locator "line N"; one of several has "line N item K" and no digest.
        index = {f"line {batch.first_line + i}": i for i in range(len(lines)) if i not in skip}
        rows = [index.get(loc) for loc in records.column("locator").to_pylist()]
        digests = [None if i is None else int(hi[i]).to_bytes(8, "big") + int(lo[i]).to_bytes(8, "big") for i in rows]
        column = records.schema.get_field_index(LINE_DIGEST)
        prepared.records = records.set_column(column, LINE_DIGEST, pa.array(digests, pa.binary(16)))
    return prepared


def digest_rows(records: pa.Table, dropped: set[int]) -> pa.Table | None:
    """``line_digests`` rows for the prepared records that carry a line digest (None when none do)."""
    column = records.column(LINE_DIGEST)
    if column.null_count == records.num_rows:
        return None
    keep = [i for i, d in enumerate(column.to_pylist()) if d is not None and i not in dropped]
    if not keep:
        return None
    chosen = records.take(pa.array(keep, pa.int64()))
    raw = b"".join(chosen.column(LINE_DIGEST).to_pylist())
    halves = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    return pa.table(
        {
            "hi": pa.array(halves[:, 0], pa.uint64()),
            "lo": pa.array(halves[:, 1], pa.uint64()),
            "registry": chosen.column("registry"),
            "record_id": chosen.column("record_id"),
            "content_hash": chosen.column("content_hash"),
        }
    )
