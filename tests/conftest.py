"""Shared fixtures.  Sample data is read in place from ../shared/data (never copied)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cartatlas

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
CTGOV = DATA / "ctgov"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"sample data not found at {DATA}: the repository expects ../shared/data beside it")
    return DATA


@pytest.fixture
def atlas(tmp_path: Path) -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(tmp_path / "test.duckdb") as a:
        yield a
