"""Large JSON-lines imports: line batches and worker processes store exactly what the plain path stores."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest

import cartatlas
from cartatlas.pipeline import ingest, workers
from cartatlas.sources.ctgov.json_files import _read, parse_line
from cartatlas.sources.files import Input, line_batches
from tests.conftest import CTGOV

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


def _lines(n: int) -> list[bytes]:
    """n corpus records, each with its own NCT id (the corpus repeated)."""
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines()
    out = []
    for i in range(n):
        line = lines[i % len(lines)]
        nct = orjson.loads(line)["protocolSection"]["identificationModule"]["nctId"]
        out.append(line.replace(nct.encode(), f"NCT{80000000 + i:08d}".encode()))
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_line_batches_yield_what_the_streaming_reader_yields(size: int, newline: bytes, final_newline: bool) -> None:
    records = _lines(4)
    parts = [records[0], b"", b'{"broken": ', records[1], b"  ", b"[1, 2]", records[2], records[3]]
    data = newline.join(parts) + (newline if final_newline else b"")
    expected = list(_read(Input.from_bytes("f.jsonl", data)))
    batches = list(line_batches("f.jsonl", io.BytesIO(data), parse_line, size))
    assert [item for batch in batches for item in batch.items()] == expected
    assert sum(batch.n_lines for batch in batches) == len(parts)
    assert all(batch.n_lines == size for batch in batches[:-1])


def _content(atlas: cartatlas.Atlas) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "raw": "SELECT * EXCLUDE (fetched_at, run_id) FROM raw_records ORDER BY version_id",
        "trials": "SELECT * FROM trials ORDER BY registry, trial_id",
        "rejects": "SELECT source, locator, record_id, problem FROM rejects ORDER BY ALL",
    }
    return {name: [tuple(r) for r in atlas.store.con.execute(q).fetchall()] for name, q in queries.items()}


def test_workers_store_the_same_as_the_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of more than one batch goes to worker processes; versions, hashes and rows do not change."""
    monkeypatch.setattr(workers, "WORKERS_AFTER", 0)  # workers from the first full batch on
    lines = _lines(ingest.BATCH_SIZE + 150)
    lines.insert(5, b'{"not json')
    first = tmp_path / "first.jsonl.gz"
    first.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    # The same records again, a third with a changed title: changed versions replace normalised rows.
    second = tmp_path / "second.jsonl"
    with second.open("wb") as fh:
        for i, line in enumerate(lines[:2100]):
            if i % 3 == 0 and line.startswith(b"{"):
                study = orjson.loads(line)
                study["protocolSection"]["identificationModule"]["briefTitle"] += " (amended)"
                line = orjson.dumps(study)
            fh.write(line + b"\n")
    contents = []
    for n_workers in ("0", "1"):
        monkeypatch.setenv(workers.WORKERS_ENV, n_workers)
        with cartatlas.open(tmp_path / f"w{n_workers}.duckdb") as atlas:
            stats = [atlas.import_files([path], classify=False) for path in (first, second)]
            contents.append(_content(atlas))
        assert (stats[0].new, stats[0].rejected) == (ingest.BATCH_SIZE + 150, 1)
        assert (stats[1].changed, stats[1].unchanged, stats[1].rejected) == (700, 1399, 1)
    assert contents[0] == contents[1]


def test_workers_start_only_after_a_few_full_batches() -> None:
    """A small file is prepared in this process; past WORKERS_AFTER full batches the workers take over, in order."""
    data = b"\n".join(_lines(10 * (workers.WORKERS_AFTER + 2))) + b"\n"
    preparer = workers.Preparer(workers=1, batch_size=10)
    prepared = []
    try:
        for i, batch in enumerate(line_batches("f.jsonl", io.BytesIO(data), parse_line, 10)):
            prepared.extend(preparer.push(batch))
            assert (preparer.pool is not None) == (i + 1 >= workers.WORKERS_START_AT)
            assert (preparer.pool is not None and preparer.pool.used) == (i >= workers.WORKERS_AFTER)
        prepared.extend(preparer.drain())
    finally:
        preparer.close()
    ids = [rid for b in prepared for rid in b.records.column("record_id").to_pylist()]
    assert ids == [f"NCT{80000000 + i:08d}" for i in range(10 * (workers.WORKERS_AFTER + 2))]
