"""The gzip reader (ISA-L's inflater) gives what the standard library gives, and keeps what precedes a break."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartatlas.sources.base import _READ_ERRORS, gunzip, read_block


def _read_all(data: bytes) -> tuple[bytes, BaseException | None]:
    fh = gunzip(io.BytesIO(data))
    parts = []
    while True:
        block, error = read_block(fh, 1 << 16)
        parts.append(block)
        if error is not None or not block:
            return b"".join(parts), error


@settings(max_examples=80, deadline=None)
@given(members=st.lists(st.binary(max_size=3000), min_size=1, max_size=4), level=st.integers(0, 9))
def test_every_member_in_turn(members: list[bytes], level: int) -> None:
    data = b"".join(gzip.compress(m, compresslevel=level) for m in members)
    out, error = _read_all(data)
    assert error is None and out == b"".join(members) == gzip.decompress(data)


@settings(max_examples=80, deadline=None)
@given(text=st.binary(min_size=1, max_size=200_000), cut=st.floats(0.01, 0.99))
def test_a_cut_stream_keeps_what_came_before_and_says_so(text: bytes, cut: float) -> None:
    data = gzip.compress(text * 3, compresslevel=1)
    out, error = _read_all(data[: max(1, int(len(data) * cut))])
    assert (text * 3).startswith(out)
    assert isinstance(error, EOFError) or (error is not None and isinstance(error, _READ_ERRORS))
    # Nothing the standard library's streaming inflater could recover is lost.
    inflater = zlib.decompressobj(31)
    try:
        recoverable = inflater.decompress(data[: max(1, int(len(data) * cut))])
    except zlib.error:
        recoverable = b""
    assert len(out) >= len(recoverable)


def test_corrupt_data_is_a_read_error_not_a_crash() -> None:
    data = bytearray(gzip.compress(b"NCT01234567 " * 20000))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    out, error = _read_all(bytes(data))
    assert error is not None and isinstance(error, _READ_ERRORS)
    assert (b"NCT01234567 " * 20000).startswith(out)


def test_an_empty_file_is_an_empty_stream() -> None:
    assert _read_all(b"") == (b"", None)


@pytest.mark.parametrize("size", [0, 1, 100, 1 << 20, 3 << 20])
def test_read_and_readinto_agree(size: int) -> None:
    payload = bytes(range(256)) * 5000 + bytes(range(7, 256)) * 9000  # more than one inflated chunk
    fh = gunzip(io.BytesIO(gzip.compress(payload)))
    assert fh.read(size) == payload[:size]
    buffer = bytearray(1000)
    n = fh.readinto(buffer)  # type: ignore[attr-defined]
    assert bytes(buffer[:n]) == payload[size : size + n]
