"""End-to-end benchmark (issue 16): import + screen + link + report, then the weekly re-run after a 1% change.

For each scale it builds the registry-like corpus (``benchmarks/corpus.py``:
560,000 records at scale 1, about 1% CAR trials, every format), then measures
in one run, each stage in a fresh process so that its peak memory is its own:

1. baseline: decompress (ISA-L, as cartatlas) and parse every JSON line with orjson
   (nothing else; the JSON-lines file holds about 90% of the records);
2. import (``Atlas.import_files(..., classify=False)``);
3. screen (``Atlas.classify()``);
4. link (``Atlas.refresh()``: registrations, publication labels and links,
   registration dates; ``CARTATLAS_RELINK_MAX`` is raised so it always links);
5. report (``Atlas.report``, with figures).

Then the "next week" corpus: the same files with 1% of the studies changed
(every 100th: a status change, every 200th also a new site) and a tenth as
many new CAR trials as there are (copies of CAR studies with new NCT ids), and the same four
stages again on the same database, as a weekly ``cartatlas build`` would run
them.  It prints each stage's records/s, its ratio to the parse baseline,
wall time and peak RSS (the process; separately, its largest child, an
import worker; and the largest total of the process and its workers together,
sampled every 0.1 s), and the weekly re-run's time as a percentage of the full
run.  ``--verify`` also builds the next-week corpus from scratch and checks
that the re-run's tables equal the fresh build's (labels, links, report
summary).

    python benchmarks/bench_e2e.py [--scale 1 2] [--records N] [--verify] [--keep DIR]

``--records N`` sets the records at scale 1 (default 560,000, the size of ClinicalTrials.gov).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Share of studies changed for the weekly re-run; one new CAR study per this many CAR studies.
CHANGED_EVERY = 100
NEW_EVERY_CAR = 10


def build_corpus(out: Path, scale: float, records: int | None) -> tuple[str, int]:
    """The registry-like corpus of ``benchmarks/corpus.py``: (what it is, records)."""
    import corpus

    info = corpus.build_corpus(out, scale, round(records * scale) if records else None)
    return f"registry-like corpus (benchmarks/corpus.py), {info.car:,} CAR trials", info.total


def _open(path: Path, mode: str) -> Any:
    return gzip.open(path, mode, compresslevel=1) if path.suffix == ".gz" else open(path, mode)


def next_week(src: Path, dst: Path) -> dict[str, int]:
    """The corpus a week later: 1% of studies changed, 0.1% new CAR studies; other files copied as they are."""
    counts = {"changed": 0, "new": 0, "studies": 0}
    dst.mkdir(parents=True, exist_ok=True)
    serial = car = 0
    for path in sorted(src.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
            shutil.copyfile(path, target)
            continue
        with _open(path, "rb") as fh, _open(target, "wb") as out:
            for line in fh:
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):
                    line += b"\n"
                counts["studies"] += 1
                i = counts["studies"]
                changed = i % CHANGED_EVERY == 0
                # Parsing every line made this take as long as the import; most lines are copied as they are.
                maybe_car = b"CAR" in line or b"himeric" in line
                if not (changed or maybe_car):
                    out.write(line)
                    continue
                study = orjson.loads(line)
                protocol = study.get("protocolSection") if isinstance(study, dict) else None
                if not isinstance(protocol, dict):
                    out.write(line)
                    continue
                if changed:
                    _change(protocol, i)
                    counts["changed"] += 1
                    line = orjson.dumps(study) + b"\n"
                out.write(line)
                if maybe_car and _is_car(protocol):
                    car += 1
                    if car % NEW_EVERY_CAR == 0:
                        serial += 1
                        copy = orjson.loads(line)
                        copy["protocolSection"]["identificationModule"]["nctId"] = f"NCT{80000000 + serial:08d}"
                        out.write(orjson.dumps(copy) + b"\n")
                        counts["new"] += 1
    return counts


def _is_car(protocol: dict[str, Any]) -> bool:
    parts = (protocol.get("identificationModule", {}), protocol.get("armsInterventionsModule", {}))
    text = " ".join(json.dumps(p) for p in parts)
    return "CAR" in text or "chimeric" in text.lower()


def _change(protocol: dict[str, Any], i: int) -> None:
    """A status change (and every second time a new site), as a registry's weekly update would show."""
    status = protocol.setdefault("statusModule", {})
    status["overallStatus"] = "COMPLETED" if status.get("overallStatus") != "COMPLETED" else "TERMINATED"
    status["lastUpdatePostDateStruct"] = {"date": "2026-12-01", "type": "ACTUAL"}
    if i % (2 * CHANGED_EVERY) == 0:
        locations = protocol.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
        locations.append({"facility": "Benchmark Hospital", "city": "Basel", "country": "Switzerland"})


#: Plain parsing, decompressing with ISA-L as cartatlas does (zlib's gzip module took 2.7 times as long to
#: inflate the corpus), so that the ratios compare with the fastest plain reading of the same file.
BASELINE = """
import sys, time, orjson
from isal import igzip as gzip
from pathlib import Path
t = time.perf_counter(); n = 0
for path in sorted(Path(sys.argv[1]).rglob("*")):
    if path.name.endswith(".jsonl.gz") or path.name.endswith(".jsonl"):
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            for line in fh:
                if line.strip():
                    orjson.loads(line); n += 1
print(n, time.perf_counter() - t, 0, 0)
"""

_STAGE_HEAD = """
import resource, sys, time, cartatlas
t = time.perf_counter()
with cartatlas.open(sys.argv[2]) as atlas:
"""
_STAGE_TAIL = """
el = time.perf_counter() - t
print(n, el, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
STAGES = {
    "import": "    s = atlas.import_files([sys.argv[1]], classify=False); n = s.seen",
    "screen": "    atlas.classify(); n = atlas.sql('SELECT count(*) FROM trials').iat[0, 0]",
    "link": "    atlas.refresh(); n = atlas.sql('SELECT count(*) FROM trials').iat[0, 0]",
    "report": (
        "    r = atlas.report(sys.argv[3]); n = atlas.sql('SELECT count(*) FROM trials').iat[0, 0]\n"
        "    print('units', r.summary['facts']['totals']['units'], file=sys.stderr)"
    ),
}


@dataclass
class Stage:
    name: str
    n: int
    seconds: float
    rss_mib: float
    child_mib: float
    #: The largest total RSS of the stage's process and all its children at once (sampled every 0.1 s).
    tree_mib: float = 0.0

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0


def _tree_rss(proc: psutil.Process) -> int:
    """The resident memory of a process and all its children now (bytes; 0 for those gone)."""
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def run(name: str, code: str, *args: str) -> Stage:
    env = dict(os.environ, CARTATLAS_RELINK_MAX="100000000", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=out, stderr=err, text=True, cwd=ROOT, env=env
        )
        proc = psutil.Process(child.pid)
        tree = 0
        while child.poll() is None:
            tree = max(tree, _tree_rss(proc))
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode:
        print(f"  stage {name} failed (exit {child.returncode}):\n{stderr[-4000:]}", file=sys.stderr)
        raise subprocess.CalledProcessError(child.returncode, name, stdout, stderr)
    n, seconds, rss, largest = stdout.strip().splitlines()[-1].split()
    return Stage(name, int(n), float(seconds), int(rss) / 1024, int(largest) / 1024, tree / 2**20)


def pipeline(data: Path, db: Path, report: Path) -> list[Stage]:
    return [
        run(name, _STAGE_HEAD + body + _STAGE_TAIL, str(data), str(db), str(report)) for name, body in STAGES.items()
    ]


def table(title: str, stages: list[Stage], base_rate: float) -> None:
    print(f"  {title}")
    head = (
        f"{'stage':<8} {'records':>9} {'seconds':>8} {'records/s':>10} {'ratio':>7} {'RSS MiB':>8} {'child MiB':>9} "
        f"{'all MiB':>8}"
    )
    print(f"    {head}")
    for s in stages:
        print(
            f"    {s.name:<8} {s.n:>9,} {s.seconds:>8.1f} {s.rate:>10,.0f} {s.rate / base_rate:>7.3f} "
            f"{s.rss_mib:>8.0f} {s.child_mib:>9.0f} {s.tree_mib:>8.0f}"
        )
    total = sum(s.seconds for s in stages)
    peak = max(s.tree_mib for s in stages)
    print(f"    {'total':<8} {'':>9} {total:>8.1f}   peak RSS of a stage and its workers together {peak:,.0f} MiB")


def compare(a: Path, b: Path) -> list[str]:
    """Tables of the re-run database that differ from a fresh build's (empty: equal)."""
    import duckdb

    queries = {
        "trials": "SELECT * EXCLUDE (version_id) FROM trials",
        "classifications": "SELECT * EXCLUDE (classified_at) FROM classifications",
        "trial_links": "SELECT * EXCLUDE (linked_at) FROM trial_links",
        "trial_clusters": "SELECT * FROM trial_clusters",
        "publication_links": "SELECT * FROM publication_links",
    }
    out = []
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    for name, query in queries.items():
        qa, qb = query.replace(" FROM ", " FROM a."), query.replace(" FROM ", " FROM b.")
        try:
            diff = con.execute(f"SELECT count(*) FROM (({qa} EXCEPT ALL {qb}) UNION ALL ({qb} EXCEPT ALL {qa}))")
            n = diff.fetchone()[0]  # type: ignore[index]
        except duckdb.Error as exc:
            out.append(f"{name}: cannot compare ({exc})")
            continue
        if n:
            out.append(f"{name}: {n} rows differ")
    return out


def bench(scale: float, records: int | None, tmp: Path, verify: bool) -> None:
    data, week2 = tmp / f"corpus_{scale}", tmp / f"corpus_{scale}_week2"
    db = tmp / f"e2e_{scale}.duckdb"
    t = time.perf_counter()
    marker = data / ".bench_e2e_complete"
    if marker.exists():  # --keep: a corpus built by an earlier run (building one at scale 1 takes minutes)
        kind, total = marker.read_text().rsplit("\t", 1)[0], int(marker.read_text().rsplit("\t", 1)[1])
    else:
        kind, total = build_corpus(data, scale, records)
        marker.write_text(f"{kind}\t{total}")
    if week2.exists():
        shutil.rmtree(week2)
    counts = next_week(data, week2)
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20
    for old in tmp.glob(f"e2e_{scale}*.duckdb*"):  # a database of an earlier run (--keep)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    made = time.perf_counter() - t
    print(f"\nscale {scale}: {total:,} records, {kind} ({size:,.0f} MiB), made in {made:.0f} s")
    print(
        f"  next week: {counts['changed']:,} of the {counts['studies']:,} JSON-lines studies changed, "
        f"{counts['new']:,} new CAR studies (other files as they were)"
    )
    base = run("parse", BASELINE, str(data))
    full = pipeline(data, db, tmp / f"report_{scale}")
    base2 = run("parse", BASELINE, str(week2))
    weekly = pipeline(week2, db, tmp / f"report_{scale}_week2")
    base_rate = max(base.rate, base2.rate)
    print(f"  baseline gzip (ISA-L) + orjson parse: {base_rate:,.0f} records/s (better of two runs)")
    table("full run", full, base_rate)
    table("weekly re-run (1% changed)", weekly, base_rate)
    full_s, weekly_s = sum(s.seconds for s in full), sum(s.seconds for s in weekly)
    print(f"  weekly re-run: {weekly_s:.1f} s = {100 * weekly_s / full_s:.1f}% of the full run ({full_s:.1f} s)")
    for f, w in zip(full, weekly, strict=True):
        print(f"    {f.name:<8} {100 * w.seconds / full_s:5.1f}% of the full run ({w.seconds:.1f} s)")
    if verify:
        fresh = tmp / f"e2e_{scale}_fresh.duckdb"
        pipeline(week2, fresh, tmp / f"report_{scale}_fresh")
        problems = compare(db, fresh)
        print("  verify: the re-run equals a fresh build" if not problems else f"  verify FAILED: {problems}")
        a = json.loads((tmp / f"report_{scale}_week2" / "summary.json").read_text())["facts"]
        b = json.loads((tmp / f"report_{scale}_fresh" / "summary.json").read_text())["facts"]
        print(f"  report facts equal: {a == b}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, nargs="*", default=[1.0])
    parser.add_argument("--records", type=int, help="records at scale 1 (default: the corpus's 560,000)")
    parser.add_argument("--verify", action="store_true", help="compare the re-run with a fresh build")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, import workers: {os.environ.get('CARTATLAS_IMPORT_WORKERS') or 'default'}")
    print("the machine may be shared: compare ratios measured in one run, not absolute times")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for scale in args.scale:
            bench(scale, args.records, args.keep, args.verify)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        for scale in args.scale:
            bench(scale, args.records, Path(tmp), args.verify)


if __name__ == "__main__":
    main()
