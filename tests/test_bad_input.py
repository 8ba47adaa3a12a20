"""Bad input never costs good records (issue 11, part 4).

Every case starts from real sample records, copied into a temporary folder
and edited: a JSON-lines file whose first record is large or broken, a gzip
file cut short, a record past the size limit, an archive that unpacks to far
more than it weighs.  The good records around the bad one import; the bad one
is a reject naming the file, the line and the problem.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zipfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cartatlas
from cartatlas.model import RawRecord, Reject
from cartatlas.sources import limits
from cartatlas.sources.base import Input, LineBatch, line_batches
from cartatlas.sources.ctgov.json_files import parse_line
from cartatlas.sources.files import read_input, read_path
from tests.conftest import CTGOV

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"


def corpus_lines() -> list[bytes]:
    return gzip.decompress(CORPUS.read_bytes()).splitlines()


def split(items: list[object]) -> tuple[list[RawRecord], list[Reject]]:
    records = [i for i in items if isinstance(i, RawRecord)]
    rejects = [i for i in items if isinstance(i, Reject)]
    return records, rejects


# -- a gzip file cut short ---------------------------------------------------------------------------


def _cut_corpus(tmp_path: Path, size: int = 700_000) -> tuple[Path, int]:
    """The monitor corpus cut after ``size`` compressed bytes, and how many whole lines survive the cut."""
    path = tmp_path / "cart_monitor_cut.jsonl.gz"
    path.write_bytes(CORPUS.read_bytes()[:size])
    decoder = gzip.zlib.decompressobj(31)  # type: ignore[attr-defined]
    whole = decoder.decompress(path.read_bytes()).count(b"\n")
    return path, whole


def test_a_cut_gzip_keeps_every_complete_record_and_names_the_line_where_it_ends(tmp_path: Path) -> None:
    path, whole = _cut_corpus(tmp_path)
    assert whole == 1164  # counted by zlib alone: the lines before the break
    records, rejects = split(list(read_path(path)))
    assert len(records) == 1164
    assert [r.locator for r in records[:2]] == ["line 1", "line 2"]
    (reject,) = rejects
    assert reject.source == str(path) and reject.locator == "line 1165"
    assert "file ends mid-record" in reject.problem and "truncated gzip stream" in reject.problem


def test_a_cut_gzip_imports_every_complete_record(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    path, _ = _cut_corpus(tmp_path)
    stats = atlas.import_files([path], classify=False)
    assert (stats.new, stats.rejected) == (1164, 1)
    assert str(stats.rejects[0]).startswith(f"{path}, line 1165: file ends mid-record")
    assert atlas.sql("SELECT count(*) AS n FROM trials")["n"][0] == 1164


@pytest.mark.parametrize("size", [20_000, 150_000, 1_500_000])
def test_any_cut_keeps_what_zlib_can_read(tmp_path: Path, size: int) -> None:
    """Short cuts too (the head that sniffs the format must not lose them) and cuts past a 4 MiB block."""
    path, whole = _cut_corpus(tmp_path, size)
    records, rejects = split(list(read_path(path)))
    assert len(records) == whole > 0
    assert [r.locator for r in rejects] == [f"line {whole + 1}"]


# -- JSON lines whose first line is large or broken --------------------------------------------------


def _jsonl(tmp_path: Path, lines: list[bytes], name: str = "edited.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _enlarged(line: bytes, size: int) -> bytes:
    """A corpus record with a detailed description long enough to make the line ``size`` bytes or more."""
    study = orjson.loads(line)
    summary = study["protocolSection"]["descriptionModule"]["briefSummary"]
    repeats = size // len(summary) + 1
    study["protocolSection"]["descriptionModule"]["detailedDescription"] = "\n\n".join([summary] * repeats)
    return orjson.dumps(study)


def test_a_first_record_over_one_mib_does_not_turn_the_file_into_one_document(tmp_path: Path) -> None:
    lines = corpus_lines()[:50]
    lines[0] = _enlarged(lines[0], 1_200_000)
    assert len(lines[0]) > 2**20
    records, rejects = split(list(read_path(_jsonl(tmp_path, lines))))
    assert rejects == []
    assert len(records) == 50
    assert len(records[0].payload["protocolSection"]["descriptionModule"]["detailedDescription"]) > 1_100_000


def test_a_broken_first_line_is_rejected_by_number_and_the_rest_imports(atlas: cartatlas.Atlas, tmp_path: Path) -> None:
    lines = corpus_lines()[:50]
    lines[0] = lines[0][: len(lines[0]) // 2]  # cut mid-record
    path = _jsonl(tmp_path, lines)
    stats = atlas.import_files([path], classify=False)
    assert (stats.new, stats.rejected) == (49, 1)
    (reject,) = stats.rejects
    assert reject.locator == "line 1" and reject.problem.startswith("invalid JSON")


def test_a_broken_first_line_with_one_good_line_after_it(tmp_path: Path) -> None:
    """No two whole lines in a row: the file fails as one document and is then read line by line."""
    first, second = corpus_lines()[:2]
    path = _jsonl(tmp_path, [first[:-40], second])
    records, rejects = split(list(read_path(path)))
    assert [r.locator for r in records] == ["line 2"]
    assert [r.locator for r in rejects] == ["line 1"]


def test_a_broken_json_document_is_still_one_reject(tmp_path: Path) -> None:
    """A pretty-printed document cut short has no record on any line: one reject for the file, not one per line."""
    text = orjson.dumps(orjson.loads(LEUKEMIA.read_bytes())[:3], option=orjson.OPT_INDENT_2)
    path = tmp_path / "cut.json"
    path.write_bytes(text[: len(text) // 2])
    records, rejects = split(list(read_path(path)))
    assert records == [] and len(rejects) == 1 and "invalid or truncated JSON" in rejects[0].problem


# -- records past the size limit ---------------------------------------------------------------------


def test_a_line_past_the_record_limit_is_rejected_and_never_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(limits.RECORD_LIMIT_ENV, "1MiB")
    lines = corpus_lines()[:30]
    lines[10] = _enlarged(lines[10], 12 * 2**20)
    path = _jsonl(tmp_path, lines)
    with path.open("rb") as fh:
        batches = list(line_batches(str(path), fh, parse_line, size=7))
    # No batch carries the long line: it is dropped while read, block by block.
    assert max(len(b.data) for b in batches if isinstance(b, LineBatch)) < 2**20
    records, rejects = split(list(read_path(path)))
    assert len(records) == 29
    (reject,) = rejects
    assert reject.locator == "line 11"
    assert "larger than the per-record limit" in reject.problem and "limit 1 MiB" in reject.problem
    assert [r.locator for r in records[9:11]] == ["line 10", "line 12"]


def test_a_line_just_past_the_limit_inside_a_block_is_rejected_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(limits.RECORD_LIMIT_ENV, "100KiB")
    lines = corpus_lines()[:5]
    lines[2] = _enlarged(lines[2], 150_000)
    records, rejects = split(list(read_path(_jsonl(tmp_path, lines))))
    assert [r.locator for r in rejects] == ["line 3"] and len(records) == 4


def test_an_import_rejects_a_record_past_the_limit_whatever_its_format(
    atlas: cartatlas.Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON document is read whole (within its own limit), but each record in it is held to the record limit."""
    studies = orjson.loads(LEUKEMIA.read_bytes())[:5]
    studies[3] = orjson.loads(_enlarged(orjson.dumps(studies[3]), 300_000))
    path = tmp_path / "five.json"
    path.write_bytes(orjson.dumps(studies))
    monkeypatch.setenv(limits.RECORD_LIMIT_ENV, "200KiB")
    stats = atlas.import_files([path], classify=False)
    assert (stats.new, stats.rejected) == (4, 1)
    assert stats.rejects[0].locator == "item 3" and "per-record limit" in stats.rejects[0].problem


def test_limit_settings_are_checked() -> None:
    assert limits.parse_size("32MiB") == 32 * 2**20
    assert limits.parse_size("1.5 GiB") == 3 * 2**29
    assert limits.parse_size("500000") == 500_000
    for bad in ("lots", "12 parsecs", "0", "-1MiB"):
        with pytest.raises(ValueError, match="not a size"):
            limits.parse_size(bad)


# -- archives that unpack to far more than they weigh ------------------------------------------------


def _bomb(tmp_path: Path, padding: int) -> Path:
    """A zip whose one member is the leukemia sample followed by ``padding`` bytes of white space (valid JSON)."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("studies.json", "w") as member:
        member.write(LEUKEMIA.read_bytes())
        block = b" " * 2**20
        for _ in range(padding // len(block)):
            member.write(block)
    return path


def test_a_zip_member_read_whole_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _bomb(tmp_path, 48 * 2**20)
    assert path.stat().st_size < 2**20
    monkeypatch.setenv(limits.DOCUMENT_LIMIT_ENV, "4MiB")
    tracemalloc.start()
    try:
        items = list(read_path(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (reject,) = items
    assert isinstance(reject, Reject) and reject.source == f"{path}!studies.json"
    assert "larger than" in reject.problem and limits.DOCUMENT_LIMIT_ENV in reject.problem
    assert peak < 24 * 2**20  # the 49 MiB member was never held whole


def test_a_document_within_the_limit_reads_as_before(tmp_path: Path) -> None:
    path = _bomb(tmp_path, 2 * 2**20)
    records, rejects = split(list(read_path(path)))
    assert (len(records), rejects) == (100, [])


def test_head_of_a_cut_stream_is_what_could_be_read() -> None:
    data = gzip.compress(LEUKEMIA.read_bytes())[:1000]  # about 1.9 KB of text
    inp = Input("cut.json.gz", lambda: gzip.GzipFile(fileobj=io.BytesIO(data)))  # type: ignore[arg-type, return-value]
    assert inp.head(4096).startswith(b"[")


# -- the invariant, for any mix of good and broken lines -----------------------------------------------

_LINES = corpus_lines()[:12]


@settings(max_examples=40, deadline=None)
@given(
    broken=st.lists(st.booleans(), min_size=2, max_size=len(_LINES)),
    cut=st.floats(min_value=0.05, max_value=0.95),
    gz=st.booleans(),
)
def test_every_good_line_is_kept_and_every_broken_one_named(broken: list[bool], cut: float, gz: bool) -> None:
    lines = [line[: int(len(line) * cut)] if bad else line for line, bad in zip(_LINES, broken, strict=False)]
    data = b"\n".join(lines) + b"\n"
    if gz:
        data = gzip.compress(data)
    records, rejects = split(list(read_input(Input.from_bytes("mixed.jsonl", data))))
    good = [i + 1 for i, bad in enumerate(broken) if not bad]
    bad_lines = [i + 1 for i, bad in enumerate(broken) if bad]
    if good:
        assert [r.locator for r in records] == [f"line {i}" for i in good]
        assert [r.locator for r in rejects] == [f"line {i}" for i in bad_lines]
    else:
        assert records == [] and len(rejects) >= 1


def test_a_limit_that_is_not_a_size_stops_the_command_before_it_starts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cartatlas.cli import app
    from cartatlas.cli.common import CliError

    result = CliRunner().invoke(
        app, ["import", "--db", str(tmp_path / "x.duckdb"), str(LEUKEMIA)], env={limits.RECORD_LIMIT_ENV: "lots"}
    )
    # The entry point prints a CliError as one line and exits 2; the runner shows the error itself.
    assert isinstance(result.exception, CliError)
    assert limits.RECORD_LIMIT_ENV in str(result.exception) and "not a size" in str(result.exception)
    assert not (tmp_path / "x.duckdb").exists()


_SMALL_GZ = gzip.compress(b"\n".join(corpus_lines()[:40]) + b"\n")


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=30, max_value=len(_SMALL_GZ) - 1))
def test_a_gzip_cut_anywhere_keeps_exactly_the_whole_lines_before_the_cut(cut: int) -> None:
    data = _SMALL_GZ[:cut]
    whole = gzip.zlib.decompressobj(31).decompress(data).count(b"\n")  # type: ignore[attr-defined]
    records, rejects = split(list(read_input(Input.from_bytes("cut.jsonl.gz", data))))
    if whole >= 2 or (whole == 1 and records):
        assert [r.locator for r in records] == [f"line {i}" for i in range(1, whole + 1)]
    assert len(rejects) == 1 and rejects[0].source == "cut.jsonl.gz"
    assert "truncated gzip stream" in rejects[0].problem
