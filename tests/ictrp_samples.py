"""The WHO ICTRP and ChiCTR samples, read in place from ../shared/data, and counted independently.

``sample_db()`` imports every file under ``ictrp/`` and ``chictr/`` once per test
session (about 8 s) and links them; tests open it read-only.  The counting
helpers read the files with the csv module and lxml, not with cartatlas, so
that a test compares cartatlas with the files themselves.
"""

from __future__ import annotations

import atexit
import csv
import functools
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from lxml import etree

import cartatlas

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
ICTRP = DATA / "ictrp"
CHICTR = DATA / "chictr"
CSV_FILES = sorted(ICTRP.glob("*.csv"))
XML_FILES = sorted(ICTRP.glob("*.xml"))

#: ICTRP "Source Register" spellings in the samples -> cartatlas registry, written out here on purpose
#: (not read from the knowledge file the code uses).
REGISTERS = {
    "ChiCTR": "chictr",
    "ClinicalTrials.gov": "ctgov",
    "EU Clinical Trials Register": "euctr",
    "ISRCTN": "isrctn",
    "JPRN": "jprn",
    "ANZCTR": "anzctr",
    "CTRI": "ctri",
    "German Clinical Trials Register": "drks",
    "IRCT": "irct",
    "Netherlands Trial Register": "ntr",
    "TCTR": "tctr",
    "REBEC": "rebec",
    "PACTR": "pactr",
    "SLCTR": "slctr",
}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def register_of(row: dict[str, str]) -> str:
    return row.get("Source Register") or row.get("Source_Register") or ""


def xml_trials(path: Path) -> list[dict[str, str]]:
    root = etree.parse(str(path)).getroot()
    return [{str(c.tag): (c.text or "") for c in trial} for trial in root if trial.tag == "Trial"]


def counts_in_file(path: Path) -> Counter[str]:
    """Records per cartatlas registry in one ICTRP file, counted with csv / lxml."""
    if path.suffix == ".xml":
        return Counter(REGISTERS[t["Source_Register"]] for t in xml_trials(path))
    return Counter(REGISTERS[register_of(r)] for r in csv_rows(path))


def distinct_trials() -> dict[str, set[str]]:
    """Trial ids per registry over every ICTRP file (a trial in two exports is one record)."""
    out: dict[str, set[str]] = {}
    for path in CSV_FILES:
        for row in csv_rows(path):
            out.setdefault(REGISTERS[register_of(row)], set()).add(row["TrialID"].strip())
    for path in XML_FILES:
        for trial in xml_trials(path):
            out.setdefault(REGISTERS[trial["Source_Register"]], set()).add(trial["TrialID"].strip())
    return out


@functools.cache
def sample_db() -> Path:
    """A database holding every ICTRP and ChiCTR sample, linked (built once per session)."""
    tmp = Path(tempfile.mkdtemp(prefix="cartatlas-ictrp-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    db = tmp / "samples.duckdb"
    with cartatlas.open(db) as atlas:
        stats = atlas.import_files([ICTRP, CHICTR], classify=False)
        if stats.rejected:
            raise AssertionError(f"sample import rejected records: {[str(r) for r in stats.rejects[:5]]}")
        atlas.link()
    return db
