"""Benchmark: classification alone, on the 2,587-record monitor corpus and on it replicated to 250,000.

Records are normalised once up front (normalisation has its own benchmark); the
timed loop only classifies.  The replicated run streams: it cycles over the
normalised corpus instead of holding 250,000 trials.  Both are compared with
plain orjson parsing of the same JSON lines, so the ratio says how much
classification costs relative to merely reading the data.

    python benchmarks/bench_classify.py [--n 250000]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import time
from pathlib import Path

import orjson

from cartatlas.classify import classify_trial, knowledge
from cartatlas.normalise import format_spec

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CORPUS = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=250_000, help="records in the replicated run")
    args = parser.parse_args()
    lines = gzip.decompress(CORPUS.read_bytes()).splitlines()
    to_trial = format_spec("ctgov_v2").to_trial
    trials = [to_trial(orjson.loads(line)) for line in lines]
    t0 = time.perf_counter()
    knowledge()
    print(f"knowledge base compiled in {time.perf_counter() - t0:.3f} s")

    def parse_rate(n: int) -> float:
        t = time.perf_counter()
        for line in itertools.islice(itertools.cycle(lines), n):
            orjson.loads(line)
        return n / (time.perf_counter() - t)

    def classify_rate(n: int) -> float:
        t = time.perf_counter()
        for trial in itertools.islice(itertools.cycle(trials), n):
            classify_trial(trial)
        return n / (time.perf_counter() - t)

    for label, n in (("corpus", len(trials)), ("replicated", args.n)):
        classify_trial(trials[0])  # warm
        c = classify_rate(n)
        p = parse_rate(n)
        print(
            f"{label:>10}: {n:>7,} trials  classify {c:>8,.0f} trials/s  orjson parse {p:>9,.0f} records/s  "
            f"classify is {p / c:.1f}x slower than parsing"
        )


if __name__ == "__main__":
    main()
