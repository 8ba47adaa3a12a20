"""Report benchmark (issue 4): how long the landscape and the report take on the sample corpus.

Builds a database from ../shared/data (ClinicalTrials.gov, ICTRP, ChiCTR, PubMed samples) once, then
times, in one run: counting the landscape as of 2020-06-30 (the API call every number comes from),
the report without figures (tables, summary.json, HTML) and the full report with figures (PNG and
SVG through vl-convert).  Prints seconds and trials counted.

Usage: python benchmarks/bench_report.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cartatlas

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t = time.perf_counter()
        with cartatlas.open(db) as atlas:
            atlas.import_files([DATA / name for name in ("ctgov", "ictrp", "chictr", "pubmed")])
            atlas.link()
            atlas.link_publications()
        print(f"build (import, screen, link) of the samples: {time.perf_counter() - t:.1f} s")
        with cartatlas.open(db, read_only=True) as atlas:
            t = time.perf_counter()
            land = atlas.landscape("2020-06-30", "CN")
            counted = time.perf_counter() - t
            t = time.perf_counter()
            atlas.report(Path(tmp) / "plain", as_of="2020-06-30", figures=False)
            plain = time.perf_counter() - t
            t = time.perf_counter()
            result = atlas.report(Path(tmp) / "full", as_of="2020-06-30")
            full = time.perf_counter() - t
        print(f"landscape as of 2020-06-30: {counted:.2f} s for {len(land.units):,} trials")
        print(f"report without figures: {plain:.2f} s")
        print(f"report with {len(result.figures)} figure files: {full:.2f} s")


if __name__ == "__main__":
    main()
