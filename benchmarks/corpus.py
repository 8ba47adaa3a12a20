"""A registry-like benchmark corpus (issue 16): all of ClinicalTrials.gov plus ICTRP in shape, from the samples.

The real registry holds about 560,000 studies of which about 1% are CAR trials, and most of
it is API v2 full studies (long records).  This module builds, deterministically (fixed seed,
fixed order of the sample files), a corpus of that shape from the real sample records in
``../shared/data``:

- the sample's **non-CAR** records of every format the importers read (API v2 full studies,
  the classic API, legacy per-study XML, the website's CSV downloads in both layouts, WHO
  ICTRP CSV and XML rows); "non-CAR" means the current rules give relation ``none`` (hard
  negatives that mention CAR-T without testing it stay in, as in the real registry);
- the 2,587 CAR trials of the reconstructed monitor corpus, repeated to about 1% of the total;
- every record with a new, unique id: NCT numbers for ClinicalTrials.gov shapes (and ICTRP
  rows of ClinicalTrials.gov), the registry's own prefix plus a serial for other registries.

Files written (all importable by ``cartatlas import``): ``ctgov_v2.jsonl.gz`` (v2 studies, CAR
trials shuffled among them), ``ctgov_classic/part-NNNN.json`` (``FullStudiesResponse``
documents), ``ctgov_xml.zip`` (per-study XML, as the AllPublicXML zip), ``ctgov_csv_*.csv``
(one file per website layout), ``ictrp_*.csv`` (one per export layout) and ``ictrp.xml``.

    python benchmarks/corpus.py OUT_DIR [--scale S] [--records N]

The output never goes into the repository (a path inside it is refused).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import random
import re
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT.parent / "shared" / "data").resolve()
CAR_CORPUS = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
#: Folders whose trial records feed the non-CAR pools (PubMed holds articles, not trials).
SOURCES = ("ctgov/api_v2", "ctgov/classic_api", "ctgov/legacy_xml", "ctgov/website_csv", "ictrp")
SEED = 16
#: Records at scale 1: the size of ClinicalTrials.gov today.
RECORDS = 560_000
CAR_SHARE = 0.01
#: Shares of the non-CAR records by format (most of the registry is API v2 full studies).
SHARES = {
    "ctgov_v2": 0.900,
    "ctgov_classic": 0.020,
    "ctgov_xml": 0.015,
    "ctgov_csv": 0.027,
    "ictrp_csv": 0.028,
    "ictrp_xml": 0.010,
}
#: New NCT numbers start here (bench_import uses 90,000,000 and up).
NCT_BASE = 30_000_000
CLASSIC_PER_FILE = 500


@dataclass
class CorpusInfo:
    """What ``build_corpus`` wrote: the files, records per format, and how many are CAR trials."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    car: int = 0
    #: Pool sizes: distinct sample records each format was drawn from.
    pools: dict[str, int] = field(default_factory=dict)
    #: Uncompressed bytes of the records written (the text a screening must read).
    raw_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.records.values())


@dataclass
class _Pool:
    """Sample records of one format, each cut at its own id so a new id is a join."""

    parts: list[list[bytes]] = field(default_factory=list)
    #: For CSV rows: the header of each record (the file it goes to).
    headers: list[tuple[str, ...]] = field(default_factory=list)
    #: For ICTRP rows: the id prefix of each record ("" for NCT ids).
    prefixes: list[str] = field(default_factory=list)


def _split(text: bytes, old: str) -> list[bytes]:
    return text.split(old.encode())


_PREFIX = re.compile(r"^(.*?)(?=\d)")


def _load_pools() -> dict[str, _Pool]:
    """The sample's non-CAR trial records by format, in the fixed order of the sample files."""
    from cartatlas.classify import classify_trial
    from cartatlas.model import RawRecord
    from cartatlas.normalise.formats import format_spec
    from cartatlas.sources.files import iter_paths, read_path

    pools: dict[str, _Pool] = {name: _Pool() for name in SHARES}
    for path, _ in iter_paths([DATA / s for s in SOURCES]):
        for item in read_path(path, strict=False):
            if not isinstance(item, RawRecord) or item.format not in pools:
                continue
            spec = format_spec(item.format)
            if classify_trial(spec.to_trial(item.payload))["relation"] != "none":
                continue
            pool = pools[item.format]
            old = item.record_id
            payload = item.payload
            if isinstance(payload, dict):
                if item.format in ("ctgov_csv", "ictrp_csv"):
                    pool.headers.append(tuple(payload))
                    pool.parts.append(_split(orjson.dumps(list(payload.values())), old))
                else:
                    pool.parts.append(_split(orjson.dumps(payload), old))
            else:
                pool.parts.append(_split(str(payload).encode(), old))
            if item.format.startswith("ictrp"):
                m = _PREFIX.match(old)
                prefix = m.group(1) if m else old
                pool.prefixes.append("" if prefix == "NCT" else prefix)
    return pools


def _car_records() -> list[list[bytes]]:
    lines = gzip.decompress(CAR_CORPUS.read_bytes()).splitlines()
    out = []
    for line in lines:
        if line.strip():
            nct = orjson.loads(line)["protocolSection"]["identificationModule"]["nctId"]
            out.append(_split(line, nct))
    return out


class _Ids:
    """Fresh ids: NCT numbers from one counter, other registries' prefixes with their own serial."""

    def __init__(self) -> None:
        self.nct = NCT_BASE
        self.other: dict[str, int] = {}

    def next_nct(self) -> str:
        self.nct += 1
        return f"NCT{self.nct:08d}"

    def next_for(self, prefix: str) -> str:
        if not prefix:
            return self.next_nct()
        n = self.other.get(prefix, 0) + 1
        self.other[prefix] = n
        if prefix == "ChiCTR":
            return f"ChiCTR26{n:08d}"
        return f"{prefix}{n:08d}"


def counts(total: int) -> dict[str, int]:
    """Records per format for a corpus of ``total`` records (CAR trials under ``car``)."""
    car = round(total * CAR_SHARE)
    rest = total - car
    out = {name: int(rest * share) for name, share in SHARES.items()}
    out["ctgov_v2"] += rest - sum(out.values())
    out["car"] = car
    return out


def _check_out_dir(out_dir: Path) -> Path:
    out_dir = out_dir.resolve()
    if out_dir == ROOT or ROOT in out_dir.parents:
        raise SystemExit(f"{out_dir}: the corpus is large; write it outside the repository")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def build_corpus(out_dir: Path, scale: float = 1.0, records: int | None = None) -> CorpusInfo:
    """Write the registry-like corpus into ``out_dir``: ``records`` in all, or ``RECORDS * scale``.

    Deterministic: the same arguments give byte-identical record content (gzip and zip stamps
    aside) for the same sample data and rules.
    """
    out_dir = _check_out_dir(Path(out_dir))
    total = records if records is not None else round(RECORDS * scale)
    n = counts(total)
    rng = random.Random(SEED)
    pools = _load_pools()
    car = _car_records()
    ids = _Ids()
    info = CorpusInfo(out_dir, pools={k: len(p.parts) for k, p in pools.items()} | {"car": len(car)})

    # API v2: the non-CAR studies and the CAR trials, shuffled together.
    v2 = pools["ctgov_v2"].parts
    order = [("v2", rng.randrange(len(v2))) for _ in range(n["ctgov_v2"])]
    order += [("car", i % len(car)) for i in range(n["car"])]
    rng.shuffle(order)
    path = out_dir / "ctgov_v2.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        buf: list[bytes] = []
        for kind, k in order:
            parts = v2[k] if kind == "v2" else car[k]
            rec = ids.next_nct().encode().join(parts)
            info.raw_bytes += len(rec) + 1
            buf.append(rec)
            if len(buf) >= 2000:
                fh.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    info.files.append(path)
    info.records["ctgov_v2"] = n["ctgov_v2"]
    info.records["car"] = info.car = n["car"]

    # Classic API: FullStudiesResponse documents of CLASSIC_PER_FILE studies each.
    classic = pools["ctgov_classic"].parts
    folder = out_dir / "ctgov_classic"
    folder.mkdir(exist_ok=True)
    picks = [rng.randrange(len(classic)) for _ in range(n["ctgov_classic"])]
    for part, start in enumerate(range(0, len(picks), CLASSIC_PER_FILE)):
        studies = []
        for rank, k in enumerate(picks[start : start + CLASSIC_PER_FILE], start + 1):
            study = ids.next_nct().encode().join(classic[k])
            info.raw_bytes += len(study)
            studies.append(b'{"Rank":%d,"Study":%s}' % (rank, study))
        doc = b'{"FullStudiesResponse":{"APIVrs":"1.01.02","FullStudies":[' + b",".join(studies) + b"]}}"
        path = folder / f"part-{part:04d}.json"
        path.write_bytes(doc)
        info.files.append(path)
    info.records["ctgov_classic"] = len(picks)

    # Legacy XML: one member per study, as in the AllPublicXML zip.
    xml = pools["ctgov_xml"].parts
    path = out_dir / "ctgov_xml.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for _ in range(n["ctgov_xml"]):
            nct = ids.next_nct()
            text = nct.encode().join(xml[rng.randrange(len(xml))])
            info.raw_bytes += len(text)
            zinfo = zipfile.ZipInfo(f"{nct[:7]}xxxx/{nct}.xml", date_time=(2026, 12, 2, 0, 0, 0))
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zinfo, text, compresslevel=1)
    info.files.append(path)
    info.records["ctgov_xml"] = n["ctgov_xml"]

    # CSV rows (website downloads, ICTRP exports): one file per header layout.
    for fmt, stem in (("ctgov_csv", "ctgov_csv"), ("ictrp_csv", "ictrp")):
        pool = pools[fmt]
        layouts = sorted(set(pool.headers))
        writers: dict[tuple[str, ...], tuple[io.TextIOWrapper, csv.writer]] = {}  # type: ignore[valid-type]
        for i, header in enumerate(layouts):
            path = out_dir / f"{stem}_{i + 1}.csv"
            fh_csv = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115  (closed below)
            w = csv.writer(fh_csv, quoting=csv.QUOTE_MINIMAL)
            w.writerow(header)
            writers[header] = (fh_csv, w)
            info.files.append(path)
        for _ in range(n[fmt]):
            k = rng.randrange(len(pool.parts))
            new = ids.next_for(pool.prefixes[k]) if pool.prefixes else ids.next_nct()
            row = orjson.loads(new.encode().join(pool.parts[k]))
            info.raw_bytes += sum(len(v) for v in row)
            writers[pool.headers[k]][1].writerow(row)
        for fh_csv, _ in writers.values():
            fh_csv.close()
        info.records[fmt] = n[fmt]

    # ICTRP XML: one export document.
    pool = pools["ictrp_xml"]
    path = out_dir / "ictrp.xml"
    with open(path, "wb") as fh_xml:
        fh_xml.write(b"<?xml version='1.0' encoding='UTF-8' ?><Trials_downloaded_from_ICTRP>\n")
        for _ in range(n["ictrp_xml"]):
            k = rng.randrange(len(pool.parts))
            text = ids.next_for(pool.prefixes[k]).encode().join(pool.parts[k])
            info.raw_bytes += len(text)
            fh_xml.write(b"  " + text + b"\n")
        fh_xml.write(b"</Trials_downloaded_from_ICTRP>\n")
    info.files.append(path)
    info.records["ictrp_xml"] = n["ictrp_xml"]
    return info


def iter_v2_lines(info: CorpusInfo) -> Iterator[bytes]:
    """The JSON lines of the corpus's v2 file (for benchmarks that read it directly)."""
    with gzip.open(info.out_dir / "ctgov_v2.jsonl.gz", "rb") as fh:
        yield from fh


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("out_dir", type=Path, nargs="?", default=Path("/tmp/cartatlas-registry-corpus"))
    ap.add_argument("--scale", type=float, default=1.0, help=f"multiple of {RECORDS:,} records")
    ap.add_argument("--records", type=int, default=None, help="total records (overrides --scale)")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    info = build_corpus(args.out_dir, args.scale, args.records)
    el = time.perf_counter() - t
    share = info.car / max(info.total, 1)
    print(f"{info.total:,} records ({info.car:,} CAR, {share:.2%}) in {info.out_dir}, {el:.0f} s")
    for fmt, k in info.records.items():
        print(f"  {fmt:14} {k:>9,}  (pool {info.pools.get(fmt, 0):,} sample records)")
    print(f"  {info.raw_bytes / 1e9:.2f} GB of record text in {len(info.files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
