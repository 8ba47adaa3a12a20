"""Screening benchmark (issue 16): the whole screening of a registry-like corpus against plain parsing.

On the API v2 file of the registry-like corpus (``benchmarks/corpus.py``: about 90% of the registry's
records, ~1.1% of them CAR trials) it measures in one run, each step in a fresh process:

1. baseline: decompress and parse every line with orjson (nothing else);
2. screening with the prefilter: decompress, parse, ``prefilter.screen_study`` (a view of the text,
   the prefilter, the rules on its context; normalisation and the full rules only where something
   about CAR may be found);
3. screening with the full rules: decompress, parse, normalise, ``classify_trial``;
4. the prefilter's hit rate: how many records reach the full rules, and why (first reason found).

It prints records/s, the ratio of each time to the baseline's (the issue's goal: screening at most
1.5 times the baseline), CPU time per record and peak memory, and checks that (2) and (3) give the
same labels (a digest of every classification).  The machine may be shared: ratios are measured in
one run; the baseline runs before and after and the faster is kept.

    python benchmarks/bench_screen.py [--corpus DIR] [--scale S] [--records N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import build_corpus  # noqa: E402

COMMON = """
import gzip, hashlib, itertools, resource, sys, time, orjson
n_max = int(sys.argv[2]) or None
def lines():
    with gzip.open(sys.argv[1], "rb") as fh:
        yield from itertools.islice(fh, n_max)
def done(n, t0, digest=""):
    el = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(n, el, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, digest)
"""

BASELINE = (
    COMMON
    + """
t0 = time.perf_counter(); n = 0
for line in lines():
    orjson.loads(line); n += 1
done(n, t0)
"""
)

FAST = (
    COMMON
    + """
from cartatlas.classify import knowledge
from cartatlas.classify.prefilter import prefilter, screen_study
kb = knowledge(); prefilter(kb)
h = hashlib.sha256(); t0 = time.perf_counter(); n = 0
for line in lines():
    h.update(orjson.dumps(screen_study(orjson.loads(line), kb))); n += 1
done(n, t0, h.hexdigest())
"""
)

FULL = (
    COMMON
    + """
from cartatlas.classify import classify_trial, knowledge
from cartatlas.normalise.ctgov import normalise_ctgov
kb = knowledge()
h = hashlib.sha256(); t0 = time.perf_counter(); n = 0
for line in lines():
    h.update(orjson.dumps(classify_trial(normalise_ctgov(orjson.loads(line)), kb))); n += 1
done(n, t0, h.hexdigest())
"""
)

REASONS = (
    COMMON
    + """
import collections
from cartatlas.classify import classify_trial, knowledge
from cartatlas.classify.prefilter import full_rules_reason
from cartatlas.normalise.ctgov import normalise_ctgov, screening_view
kb = knowledge(); kinds = collections.Counter(); top = collections.Counter(); car = 0; n = 0
for line in lines():
    study = orjson.loads(line); n += 1
    reason = full_rules_reason(screening_view(study), kb)
    if not reason:
        continue
    if classify_trial(normalise_ctgov(study), kb)["relation"] in ("therapy", "follow_up"):
        car += 1
        continue
    kinds[reason.split(" (")[0].split(":")[0]] += 1
    top[reason] += 1
print(orjson.dumps({"n": n, "car": car, "kinds": kinds.most_common(), "top": top.most_common(12)}).decode())
"""
)


def run(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--corpus", type=Path, default=None, help="a corpus built by corpus.py (built if missing)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--records", type=int, default=0, help="only the first N lines of the v2 file")
    ap.add_argument("--reasons", type=int, default=50_000, help="lines read for the hit rate (0: all)")
    args = ap.parse_args(argv)
    corpus = args.corpus or Path(f"/tmp/cartatlas-registry-corpus-x{args.scale:g}")
    v2 = corpus / "ctgov_v2.jsonl.gz"
    if not v2.exists():
        info = build_corpus(corpus, args.scale)
        print(f"built {info.total:,} records ({info.car:,} CAR) in {corpus}")
    n_arg = str(args.records)
    rows = []
    base = [float(x) for x in run(BASELINE, str(v2), n_arg).split()[:4]]
    for name, code in (("prefilter", FAST), ("full rules", FULL)):
        parts = run(code, str(v2), n_arg).split()
        rows.append((name, [float(x) for x in parts[:4]], parts[4]))
    again = [float(x) for x in run(BASELINE, str(v2), n_arg).split()[:4]]
    if again[1] < base[1]:
        base = again
    n = int(base[0])
    print(f"{n:,} API v2 records of {v2}")
    print(f"{'step':<12} {'records/s':>10} {'ratio':>6} {'CPU µs/rec':>11} {'peak MiB':>9}")
    print(f"{'baseline':<12} {n / base[1]:>10,.0f} {1.0:>6.2f} {base[2] / n * 1e6:>11.0f} {base[3] / 1024:>9.0f}")
    for name, (k, el, cpu, rss), _ in rows:
        print(f"{name:<12} {k / el:>10,.0f} {el / base[1]:>6.2f} {cpu / k * 1e6:>11.0f} {rss / 1024:>9.0f}")
    same = rows[0][2] == rows[1][2]
    print(f"labels identical (digest of every classification): {same}")
    reasons = run(REASONS, str(v2), str(args.reasons))
    print(f"to the full rules (first {args.reasons or n:,} records): {reasons}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
