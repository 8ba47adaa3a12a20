"""The README's main job on the whole sample (ClinicalTrials.gov, ICTRP, ChiCTR, PubMed), built once per session.

``full_sample_db()`` imports every sample folder, screens, links registrations
and articles (about 15 s) and returns the database path; tests open it
read-only.  Numbers the tests pin were read from this build.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import cartatlas

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
FOLDERS = ("ctgov", "ictrp", "chictr", "pubmed")
#: The day the sample's reports are read as of ("today" in the issues that describe them).
TODAY = "2026-12-02"


@functools.cache
def full_sample_db() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="cartatlas-full-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    db = tmp / "sample.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files([DATA / name for name in FOLDERS])
        atlas.link()
        atlas.link_publications()
    return db
