"""Benchmark: screening a record with one enormous field, and importing it.

A real record from the monitor corpus gets one field replaced by a phrase
repeated to the given size ("CAR-T " by default: a mention every six
characters, the densest a field can be), and by plain text of the same size
for comparison.  Each run is a fresh process, so its peak memory is its own:

    python benchmarks/bench_pathological.py [--mb 50] [--phrase "CD19 CAR-T "] [--field brief_summary]

Prints, per text: classification time and peak memory of the process, the
labels, and then what ``cartatlas import`` does with a JSON-lines file holding
the record (above ``CARTATLAS_MAX_RECORD_BYTES`` it is a reject naming its
line, read in flat memory).  Numbers measured on the development machine are
in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CORPUS = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
PLAIN = "lorem ipsum dolor sit amet "


def _study(field: str, phrase: str, mb: float) -> dict[str, object]:
    with gzip.open(CORPUS) as fh:
        study = orjson.loads(fh.readline())
    text = phrase * int(mb * 1e6 / len(phrase))
    module = "identificationModule" if field == "briefTitle" else "descriptionModule"
    study["protocolSection"].setdefault(module, {})[field] = text
    return study  # type: ignore[no-any-return]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def classify_one(field: str, phrase: str, mb: float) -> dict[str, object]:
    """In a child process: classify the record once; time, peak memory, labels."""
    from cartatlas.classify import classify_trial, knowledge
    from cartatlas.normalise import format_spec

    kb = knowledge()
    trial = format_spec("ctgov_v2").to_trial(_study(field, phrase, mb))
    before = _peak_mb()
    t = time.perf_counter()
    result = classify_trial(trial, kb)
    seconds = time.perf_counter() - t
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb()),
        "peak_before_mb": round(before),
        "relation": result["relation"],
        "targets": result["targets"],
        "platforms": result["platforms"],
        "evidence": len(result["evidence"]),
        "flags": result["flags"],
    }


def import_one(field: str, phrase: str, mb: float) -> dict[str, object]:
    """In a child process: import a JSON-lines file of three corpus records with the big one in the middle."""
    import cartatlas

    with gzip.open(CORPUS) as fh:
        lines = [fh.readline().rstrip(b"\n") for _ in range(3)]
    lines[1] = orjson.dumps(_study(field, phrase, mb))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        del lines
        t = time.perf_counter()
        with cartatlas.open(Path(tmp) / "b.duckdb") as atlas:
            stats = atlas.import_files([path])
        seconds = time.perf_counter() - t
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb()),
        "new": stats.new,
        "rejects": [f"{r.locator}: {r.problem}" for r in stats.rejects],
    }


def _child(what: str, field: str, phrase: str, mb: float) -> dict[str, object]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_pathological as b; "
        "print(json.dumps(getattr(b, sys.argv[2])(sys.argv[3], sys.argv[4], float(sys.argv[5]))))"
    )
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", code, here, what, field, phrase, str(mb)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the field in MB (default 50)")
    parser.add_argument("--phrase", default="CAR-T ", help='the repeated phrase (default "CAR-T ")')
    parser.add_argument("--field", default="briefSummary", help="v2 field replaced (briefSummary, briefTitle, ...)")
    parser.add_argument("--no-import", action="store_true", help="skip the import measurement")
    args = parser.parse_args()
    for label, phrase in ((repr(args.phrase), args.phrase), ("plain text", PLAIN)):
        result = _child("classify_one", args.field, phrase, args.mb)
        print(f"classify, {args.mb:g} MB of {label} in {args.field}: {json.dumps(result)}")
    if not args.no_import:
        result = _child("import_one", args.field, args.phrase, args.mb)
        print(f"import, {args.mb:g} MB of {args.phrase!r} in {args.field}: {json.dumps(result)}")


if __name__ == "__main__":
    main()
