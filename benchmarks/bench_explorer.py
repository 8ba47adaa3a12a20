"""Explorer load benchmark (issue 15): 8 concurrent clients against ``cartatlas serve`` on 100,000+ trials.

Builds (or reuses, ``--db``) a database of N trials: the 2,587-record monitor corpus and the 100-study
"leukemia" answer repeated with new NCT ids, each copy given a first-posted date (its start date, else
its last update) so that it is dated like a real registration.  Starts the explorer in its own process on
127.0.0.1 (loopback only), waits for it, then for each kind of page:

1. cold: the first request of each URL (the counting for a new filter is computed here, then cached per
   filter and data version);
2. load: 8 client threads request the page's URLs round-robin, bounded by ``--requests`` per kind and
   ``--seconds`` per kind, and the script prints p50 / p95 / max latency and requests per second.

Kinds: the filtered landscape page (several filters), the trial table (filters, sorts and pages), and
the trial page (a different trial each request).  The server's resident memory is sampled throughout
and its peak printed.  Goals: p95 < 300 ms for landscape and table, < 100 ms for the trial page.

    python benchmarks/bench_explorer.py [--trials 100000] [--db PATH] [--requests 400] [--seconds 60]
"""

from __future__ import annotations

import argparse
import gzip
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ctgov"
CORPUS = DATA / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
LEUKEMIA = DATA / "api_v2" / "leukemia_query_100.json"
CLIENTS = 8

LANDSCAPE = [
    "/?country=CN&target=BCMA&phase=Phase+1",
    "/?country=CN&target=BCMA&target=GPRC5D",
    "/?target=CD19&country=US",
    "/?platform=CAR-NK",
    "/?branch=autoimmune&phase=Phase+1",
    "/?sponsor_type=Industry&country=CN",
]
TABLE = [
    "/trials?country=CN&target=BCMA",
    "/trials?country=CN&target=BCMA&page=3",
    "/trials?country=CN&target=BCMA&sort=sponsor",
    "/trials?target=CD19&sort=enrollment&desc=1&size=100",
    "/trials?platform=CAR-NK&page=2",
    "/trials?branch=autoimmune&sort=title",
]


def studies() -> list[dict[str, object]]:
    out = [orjson.loads(line) for line in gzip.decompress(CORPUS.read_bytes()).splitlines()]
    out += orjson.loads(LEUKEMIA.read_bytes())
    return out


def replicate(n: int, out: Path) -> None:
    """n studies with new NCT ids, each with a first-posted date (the monitor corpus lacks them)."""
    base = studies()
    with gzip.open(out, "wb", compresslevel=1) as fh:
        for i in range(n):
            study = base[i % len(base)]
            section = dict(study["protocolSection"])  # type: ignore[call-overload]
            ident = dict(section["identificationModule"])
            ident["nctId"] = f"NCT{90000000 + i:08d}"
            status = dict(section["statusModule"])
            if "studyFirstPostDateStruct" not in status:
                date = (status.get("startDateStruct") or status.get("lastUpdatePostDateStruct") or {}).get("date")
                date = date or "2020-01-01"
                status["studyFirstPostDateStruct"] = {"date": date if len(date) == 10 else date[:7] + "-01"}
            section["identificationModule"], section["statusModule"] = ident, status
            fh.write(orjson.dumps({**study, "protocolSection": section}) + b"\n")


def build(n: int, db: Path) -> None:
    import cartatlas

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "replicated.jsonl.gz"
        started = time.perf_counter()
        replicate(n, source)
        with cartatlas.open(db) as atlas:
            atlas.import_files([source])
        print(f"built {db} with {n:,} trials in {time.perf_counter() - started:.0f} s (import and screening)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load(base: str, urls: Callable[[int], str], requests: int, seconds: float) -> tuple[list[float], float]:
    """Latencies (ms) of ``requests`` requests from 8 threads (at most ``seconds``), and the elapsed time."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                answer = http.get(urls(i))
                took = (time.perf_counter() - started) * 1000
                if answer.status_code != 200:
                    raise RuntimeError(f"{urls(i)} answered {answer.status_code}")
                with lock:
                    latencies.append(took)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="reuse (or build here) this database")
    parser.add_argument("--requests", type=int, default=400, help="requests per kind of page")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per kind of page")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        if not db.exists():
            build(args.trials, db)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "cartatlas", "serve", "--db", str(db), "--port", str(port), "--read-only"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,  # the URL line; errors still reach stderr
        )
        proc = psutil.Process(server.pid)
        peak = 0
        sampling = True

        def sample() -> None:
            nonlocal peak
            while sampling:
                try:
                    peak = max(peak, proc.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            started = time.perf_counter()
            while True:
                try:
                    if httpx.get(base + "/help", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("the explorer did not start")
                time.sleep(0.2)
            print(
                f"explorer up in {time.perf_counter() - started:.1f} s; "
                f"server RSS {proc.memory_info().rss / 2**20:.0f} MiB"
            )
            trials = httpx.get(base + "/trials.csv?cols=trial", timeout=600).text.splitlines()[1:]
            ids = [t.strip() for t in trials if t.strip()]
            print(f"{len(ids):,} counted trials (as of today, therapy and follow-up)")
            rng = random.Random(15)
            kinds: dict[str, Callable[[int], str]] = {
                "landscape (filtered)": lambda i: LANDSCAPE[i % len(LANDSCAPE)],
                "trial table": lambda i: TABLE[i % len(TABLE)],
                "trial page": lambda i: f"/trial/{ids[rng.randrange(len(ids))]}",
            }
            for name, urls in kinds.items():
                cold = []
                if name != "trial page":
                    for url in LANDSCAPE if name.startswith("landscape") else TABLE:
                        t = time.perf_counter()
                        httpx.get(base + url, timeout=600).raise_for_status()
                        cold.append((time.perf_counter() - t) * 1000)
                latencies, elapsed = load(base, urls, args.requests, args.seconds)
                cold_text = f"; first request per URL {min(cold):,.0f}-{max(cold):,.0f} ms" if cold else ""
                print(
                    f"{name:22} {len(latencies):4} requests in {elapsed:5.1f} s ({len(latencies) / elapsed:6.1f}/s): "
                    f"p50 {statistics.median(latencies):6.1f} ms, p95 {percentile(latencies, 95):6.1f} ms, "
                    f"max {max(latencies):6.1f} ms{cold_text}"
                )
            print(f"server peak RSS {peak / 2**20:,.0f} MiB")
        finally:
            sampling = False
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
