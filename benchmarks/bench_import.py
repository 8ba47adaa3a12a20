"""Import benchmark (issue 2): streaming memory and speed against plain orjson parsing.

Replicates the 2,587-record monitor corpus to N records with new NCT ids into a
gzipped JSON-lines file, then measures in one run, each in a fresh process:

1. baseline: decompress and parse every line with orjson (nothing else);
2. import: ``cartatlas import`` of the same file into a new database
   (hashing, versioning, normalisation, DuckDB writes).

It prints records/s of both, their ratio (the issue asks import >= 1/3 of the
baseline) and the import's peak RSS (the issue asks well under 1 GiB at 250k).
Usage: python benchmarks/bench_import.py [N]   (default 250000)
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


def replicate(n: int, out: Path) -> None:
    """Write n records: the corpus repeated, each copy with fresh, unique NCT ids."""
    with gzip.open(CORPUS, "rb") as fh:
        lines = fh.read().splitlines()
    with gzip.open(out, "wb", compresslevel=1) as fh:
        for i in range(n):
            line = lines[i % len(lines)]
            nct = json.loads(line)["protocolSection"]["identificationModule"]["nctId"]
            fh.write(line.replace(nct.encode(), f"NCT{90000000 + i:08d}".encode()) + b"\n")


BASELINE = """
import gzip, sys, time, orjson
t = time.perf_counter(); n = 0
with gzip.open(sys.argv[1], "rb") as fh:
    for line in fh:
        orjson.loads(line); n += 1
print(n, time.perf_counter() - t)
"""

IMPORT = """
import resource, sys, time, cartatlas
t = time.perf_counter()
with cartatlas.open(sys.argv[2]) as atlas:
    stats = atlas.import_files([sys.argv[1]])
    n = atlas.sql("SELECT count(*) AS n FROM trials")["n"][0]
el = time.perf_counter() - t
print(stats.new, el, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)
"""


def run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 250_000
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        data = Path(tmp) / "replicated.jsonl.gz"
        t = time.perf_counter()
        replicate(n, data)
        print(f"replicated corpus to {n:,} records ({data.stat().st_size / 2**20:.0f} MiB gz) in "
              f"{time.perf_counter() - t:.0f} s")
        base_n, base_s = run(BASELINE, str(data))
        imp_n, imp_s, rss_kib, trials = run(IMPORT, str(data), str(Path(tmp) / "bench.duckdb"))
        base_rate = int(base_n) / float(base_s)
        imp_rate = int(imp_n) / float(imp_s)
        print(f"baseline gzip+orjson parse: {base_rate:,.0f} records/s ({float(base_s):.1f} s)")
        print(f"cartatlas import+normalise: {imp_rate:,.0f} records/s ({float(imp_s):.1f} s), "
              f"{int(trials):,} trials stored")
        print(f"ratio import/baseline: {imp_rate / base_rate:.3f} (target >= 0.333)")
        print(f"import peak RSS: {int(rss_kib) / 1024:.0f} MiB (target well under 1024 MiB)")


if __name__ == "__main__":
    main()
