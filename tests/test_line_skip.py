"""A re-import leaves out the lines an earlier import stored, and stores exactly what parsing them would."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import ImportStats, RawRecord
from cartatlas.pipeline import lines as lines_module
from cartatlas.pipeline import workers
from cartatlas.pipeline.ingest import save_records
from cartatlas.sources.base import line_batches
from cartatlas.sources.ctgov.json_files import parse_line
from cartatlas.sources.files import read_path_batches
from tests.conftest import CTGOV

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
BATCH = 100


def _corpus_lines(n: int) -> list[bytes]:
    return gzip.decompress(CORPUS.read_bytes()).splitlines()[:n]


def _retitle(line: bytes, suffix: str) -> bytes:
    study = orjson.loads(line)
    study["protocolSection"]["identificationModule"]["briefTitle"] += suffix
    return orjson.dumps(study)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _import(db: Path, paths: list[Path], skip: bool) -> list[tuple[int, int, int, int, int]]:
    out = []
    with cartatlas.open(db) as atlas:
        for path in paths:
            stats: ImportStats = save_records(
                atlas.store, read_path_batches(path), "run", batch_size=BATCH, skip_known=skip
            )
            out.append((stats.seen, stats.new, stats.changed, stats.unchanged, stats.rejected))
    return out


def _content(db: Path) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "raw": "SELECT * EXCLUDE (fetched_at, run_id) FROM raw_records ORDER BY version_id",
        "trials": "SELECT * FROM trials ORDER BY registry, trial_id",
        "rejects": "SELECT source, locator, record_id, problem FROM rejects ORDER BY ALL",
    }
    with cartatlas.open(db, read_only=True) as atlas:
        return {name: [tuple(r) for r in atlas.store.con.execute(q).fetchall()] for name, q in queries.items()}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The record ids of the lines prepared (parsed), in this process (no import workers)."""
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    seen: list[str] = []
    real = lines_module.prepare

    def spy(items: Any, known: Any = None) -> Any:
        items = list(items)
        seen.extend(i.record_id for i in items if isinstance(i, RawRecord))
        return real(items, known)

    monkeypatch.setattr(lines_module, "prepare", spy)
    return seen


def _week_two(tmp_path: Path) -> tuple[Path, Path, set[str]]:
    """Last week's file (450 real studies and a broken line) and this week's: 1 in 9 retitled, 3 dropped,
    the broken line still there, and one new line that is another study's copy under a new id."""
    lines = _corpus_lines(450)
    first = _write(tmp_path / "week1.jsonl", [*lines[:200], b'{"broken', *lines[200:]])
    changed = {orjson.loads(lines[i])["protocolSection"]["identificationModule"]["nctId"] for i in range(0, 450, 9)}
    second_lines = [_retitle(line, " (amended)") if i % 9 == 0 else line for i, line in enumerate(lines)]
    del second_lines[300:303]
    copy = orjson.loads(lines[5])
    copy["protocolSection"]["identificationModule"]["nctId"] = "NCT89999999"
    second_lines = [*second_lines[:200], b'{"broken', *second_lines[200:], orjson.dumps(copy)]
    second = _write(tmp_path / "week2.jsonl", second_lines)
    return first, second, changed | {"NCT89999999"}


def test_a_re_import_parses_only_new_and_changed_lines(tmp_path: Path, parsed: list[str]) -> None:
    first, second, changed = _week_two(tmp_path)
    stats = _import(tmp_path / "skip.duckdb", [first, second], skip=True)
    second_parsed = parsed[450:]
    assert len(parsed[:450]) == 450  # the first import parses everything
    assert sorted(second_parsed) == sorted(changed)
    # Seen, new, changed, unchanged and rejected are what parsing every line gives.
    assert stats == _import(tmp_path / "plain.duckdb", [first, second], skip=False)
    assert stats[1] == (448, 1, 50, 397, 1)
    assert _content(tmp_path / "skip.duckdb") == _content(tmp_path / "plain.duckdb")


def test_a_third_import_of_the_same_file_parses_nothing(tmp_path: Path, parsed: list[str]) -> None:
    first, second, _ = _week_two(tmp_path)
    stats = _import(tmp_path / "db.duckdb", [first, second, second, first], skip=True)
    assert len(parsed) == 450 + 51  # the last two imports find every line (and the broken one is a reject)
    assert stats[2] == (448, 0, 0, 448, 1) and stats[3] == (450, 0, 0, 450, 1)


def test_new_code_parses_every_line_again(tmp_path: Path, parsed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest covers the readers' and normalisers' code: after an upgrade no old digest matches."""
    first, _, _ = _week_two(tmp_path)
    _import(tmp_path / "db.duckdb", [first], skip=True)
    monkeypatch.setattr(lines_module, "code_stamp", lambda: b"another version")
    stats = _import(tmp_path / "db.duckdb", [first], skip=True)
    assert len(parsed) == 2 * 450 and stats == [(450, 0, 0, 450, 1)]


def test_a_line_whose_version_is_gone_is_parsed_again(tmp_path: Path, parsed: list[str]) -> None:
    first, _, _ = _week_two(tmp_path)
    _import(tmp_path / "db.duckdb", [first], skip=True)
    with cartatlas.open(tmp_path / "db.duckdb") as atlas:
        gone = atlas.store.con.execute("SELECT record_id FROM raw_records ORDER BY version_id LIMIT 1").fetchone()
        assert gone is not None
        for table, column in (("raw_records", "record_id"), ("trials", "trial_id")):  # as if never imported
            atlas.store.con.execute(f"DELETE FROM {table} WHERE {column} = ?", [gone[0]])
        seen = lines_module.seen_lines(atlas.store)
        assert seen is not None and len(seen) == 449
    stats = _import(tmp_path / "db.duckdb", [first], skip=True)
    assert parsed[450:] == [gone[0]] and stats == [(450, 1, 0, 449, 1)]


def test_workers_skip_the_same_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes map the stored digests and leave out the same lines as this process."""
    monkeypatch.setattr(workers, "WORKERS_AFTER", 0)
    first, second, _ = _week_two(tmp_path)
    contents, all_stats = [], []
    for n in ("0", "1"):
        monkeypatch.setenv(workers.WORKERS_ENV, n)
        all_stats.append(_import(tmp_path / f"w{n}.duckdb", [first, second], skip=True))
        contents.append(_content(tmp_path / f"w{n}.duckdb"))
    assert all_stats[0] == all_stats[1] and contents[0] == contents[1]


def test_a_line_over_the_record_limit_is_never_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    first, _, _ = _week_two(tmp_path)
    _import(tmp_path / "db.duckdb", [first], skip=True)
    longest = max(len(line) for line in _corpus_lines(450))
    monkeypatch.setenv("CARTATLAS_MAX_RECORD_BYTES", str(longest - 1))
    stats = _import(tmp_path / "db.duckdb", [first], skip=True)
    assert stats[0][4] == 2  # the broken line and the longest line are rejects, as without the digests


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30),
    per_batch=st.integers(min_value=1, max_value=6),
    batch_bytes=st.integers(min_value=1, max_value=120),
    final_newline=st.booleans(),
)
def test_line_batches_keep_to_their_bytes(
    sizes: list[int], per_batch: int, batch_bytes: int, final_newline: bool
) -> None:
    """Every line once, in order; no batch over its line count, nor over its bytes unless it is one line."""
    lines = [bytes([97 + i % 26]) * n for i, n in enumerate(sizes)]
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    batches = list(line_batches("f.jsonl", io.BytesIO(data), parse_line, per_batch, batch_bytes=batch_bytes))
    assert b"".join(b.data for b in batches) == data  # type: ignore[union-attr]
    expected = data.split(b"\n")
    if data.endswith(b"\n"):
        expected.pop()
    assert [line.rstrip(b"\n") for b in batches for line in b.lines()] == (expected if data else [])  # type: ignore[union-attr]
    first = 1
    for batch in batches:
        assert batch.first_line == first and 1 <= batch.n_lines <= per_batch  # type: ignore[union-attr]
        assert len(batch.data) <= batch_bytes or batch.n_lines == 1  # type: ignore[union-attr]
        first += batch.n_lines  # type: ignore[union-attr]
