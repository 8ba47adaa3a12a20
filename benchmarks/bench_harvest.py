"""The two routes to the whole registry, timed on the local replay server: paged API (``--all``) and bulk export.

Serves N real ClinicalTrials.gov studies (the monitor corpus and the API v2
samples, repeated with fresh NCT ids past their 2,7xx) from the test suite's
replay server, both as API pages of 1,000 and as the registry's zip export,
then fills one new database each way and prints, per route, the seconds and
records/s of fetching and storing, and of the screening that follows.  The
paged route runs unpaced here (rate 1,000 requests/s): what it measures is
cartatlas's own cost per page; against the real registry the polite rate
(0.5 requests/s) bounds it, which is what ``sync ctgov --estimate`` prints.

    python benchmarks/bench_harvest.py [N]      (default 20000)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from export_server import ExportServer, export_zip  # noqa: E402
from replay_server import real_studies  # noqa: E402

import cartatlas  # noqa: E402
from cartatlas.sources.ctgov.api import ALL_STUDIES, CtgovClient  # noqa: E402
from cartatlas.sources.ctgov.bulk import bulk_url_for  # noqa: E402


def studies(n: int) -> list[dict[str, Any]]:
    """N real studies: all of them once, then copies with fresh NCT ids."""
    real = real_studies()
    out = list(real[:n])
    i = 0
    while len(out) < n:
        copy = orjson.loads(orjson.dumps(real[i % len(real)]))
        copy["protocolSection"]["identificationModule"]["nctId"] = f"NCT{90000000 + i:08d}"
        out.append(copy)
        i += 1
    return out


def paged(server: ExportServer, db: Path) -> tuple[float, float, int]:
    marks: list[float] = []
    start = time.perf_counter()
    with cartatlas.open(db) as atlas:
        client = CtgovClient(server.url, rate=1000.0, page_size=1000)
        stats = atlas.sync_ctgov(
            ALL_STUDIES, full=True, client=client, on_page=lambda p, s: marks.append(time.perf_counter())
        )
    end = time.perf_counter()
    return marks[-1] - start, end - marks[-1], stats.new


def bulk(server: ExportServer, db: Path) -> tuple[float, float, float, int]:
    marks: dict[str, float] = {}
    start = time.perf_counter()
    with cartatlas.open(db) as atlas:
        stats = atlas.sync_ctgov_bulk(
            bulk_url_for(server.url),
            on_downloaded=lambda got: marks.__setitem__("downloaded", time.perf_counter()),
            on_batch=lambda s: marks.__setitem__("stored", time.perf_counter()),
        )
    end = time.perf_counter()
    return marks["downloaded"] - start, marks["stored"] - marks["downloaded"], end - marks["stored"], stats.new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=20_000)
    n = parser.parse_args().n
    with ExportServer(studies(n)) as server, tempfile.TemporaryDirectory() as tmp:
        server._archive = export_zip(
            {s["protocolSection"]["identificationModule"]["nctId"]: s for s in server.served()}
        )
        print(f"{n:,} studies: the export is {len(server._archive) / 1e6:,.1f} MB")
        fetch, screen, new = paged(server, Path(tmp) / "paged.duckdb")
        print(
            f"paged, {new:,} records: fetch and store {fetch:.1f} s ({new / fetch:,.0f} records/s), "
            f"then screening {screen:.1f} s ({new / screen:,.0f}/s)"
        )
        download, store, screen, new = bulk(server, Path(tmp) / "bulk.duckdb")
        print(
            f"bulk, {new:,} records: download {download:.1f} s, import {store:.1f} s "
            f"({new / store:,.0f} records/s), then screening {screen:.1f} s ({new / screen:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
