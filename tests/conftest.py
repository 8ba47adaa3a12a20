"""Shared fixtures.  Sample data is read in place from ../shared/data (never copied)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import cartatlas

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
CTGOV = DATA / "ctgov"
#: 100 real API v2 studies from a "leukemia" search: about 15 CAR-T trials, hard negatives and plain leukemia trials.
LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"sample data not found at {DATA}: the repository expects ../shared/data beside it")
    return DATA


@pytest.fixture
def atlas(tmp_path: Path) -> Iterator[cartatlas.Atlas]:
    with cartatlas.open(tmp_path / "test.duckdb") as a:
        yield a


@pytest.fixture(scope="session")
def leukemia_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of the 100 leukemia-search studies, imported and screened once per session."""
    path = tmp_path_factory.mktemp("leukemia") / "built.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([LEUKEMIA])
    return path


@pytest.fixture
def leukemia_db(leukemia_built: Path, tmp_path: Path) -> Path:
    """A fresh copy of ``leukemia_built`` per test: what one test breaks or attacks must not spoil the next."""
    copy = tmp_path / "atlas.duckdb"
    shutil.copy(leukemia_built, copy)
    return copy
