"""The explorer tests' database: real sample records, built once per test session and copied per module.

The ClinicalTrials.gov monitor corpus (2,587 CAR trials), the 100-study
"leukemia" API answer (whose NCT02650414 is a second, older version of a
monitor record), ChiCTR's own pages (Chinese titles and sponsors) and one
WHO ICTRP export (ChiCTR registrations of NCT trials: cross-registry links).
"""

from __future__ import annotations

import shutil
import threading
import warnings
from pathlib import Path

import cartatlas

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2 in its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from tests.conftest import CTGOV, DATA

SOURCES = (
    CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz",
    CTGOV / "api_v2" / "leukemia_query_100.json",
    DATA / "chictr",
    DATA / "ictrp" / "COVID19-927-trials_7Apr2020.csv",
)

__all__ = ["TestClient", "built_database", "fresh_copy"]

_built: Path | None = None
_lock = threading.Lock()


def built_database(directory: Path) -> Path:
    """The sample database, built on first use in this process (later calls return the same file)."""
    global _built
    with _lock:
        if _built is None or not _built.exists():
            path = directory / "explorer-base.duckdb"
            with cartatlas.open(path) as atlas:
                atlas.import_files(SOURCES)
                atlas.link()
            _built = path
        return _built


def fresh_copy(directory: Path, base: Path, name: str) -> Path:
    """A private copy of the database for a module that writes (curation, saved views)."""
    target = directory / name
    shutil.copyfile(base, target)
    return target
