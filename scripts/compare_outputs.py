"""Digest the sample build's outputs, to show a refactoring changed no number.

Usage::

    python scripts/compare_outputs.py --save FILE    # build the sample, write the digests to FILE
    python scripts/compare_outputs.py --check FILE   # build it again; exit 1 naming every output that differs
    python scripts/compare_outputs.py --check FILE --ignore-labels-since 10  # ... leaving out labels added since

The build is the README's main job on ../shared/data (every sample folder imported, screened, linked,
articles linked), then the trials export (CSV), the publications export (CSV) and the report as of the
sample's "today" (tables and summary.json, without figures).  Each output is digested on its own, so a
difference names the file: the export CSVs and every report table as their header and their set of
rows, summary.json after dropping what differs from run to run by nature (times, paths, software
and knowledge-file version stamps; ``VOLATILE``).

Order is left out on purpose, and the hash seed is fixed: two builds of the same code on the same data
were seen to differ in the order of rows that tie on a count (DuckDB's parallel sort), in the order of
a cell's tied counts (``{"CD138": 1, "CD79b": 1}``) and in one site's region code (a Python set of
strings, whose order changes with the hash seed from one process to the next).  So the build runs with
``PYTHONHASHSEED=0`` (the script re-executes itself with it), rows are compared as a sorted list, and
a cell holding a JSON object is compared with its keys sorted.  The comparison is about the numbers.

A change that adds a label (``cartatlas/knowledge/labels.py``) adds a column to the exports and the
trials table, a count table and its key in summary.json, and moves nothing else.  ``--ignore-labels-since N``
digests this build without the labels declared with ``schema_version`` N or later (their columns, their
count tables and their summary keys), so the check proves that every output that existed is identical.

No digest is kept in the repository: other changes legitimately move the numbers.  Save one before a
change that must not move them, check after it.  ``tests/test_compare_outputs.py`` checks the mechanism
on a small build.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FOLDERS = ("ctgov", "ictrp", "chictr", "pubmed")
#: The day the sample's reports are read as of (tests/full_sample.py).
TODAY = "2026-12-02"
#: The hash seed of every build (see the module's docstring).
HASH_SEED = "0"
#: summary.json keys whose values differ between two runs of the same build: dropped wherever they occur.
VOLATILE = frozenset(
    {
        "generated_at",
        "first_fetched",
        "last_fetched",
        "fetched_at",
        "started_at",
        "finished_at",
        "cartatlas_version",
        # A stamp of the knowledge files' bytes: reorganising them (one registries.csv for two files)
        # moves it without moving a number.  The numbers made from the knowledge are compared.
        "knowledge_base_version",
        "classified_with_kb",
        "database",
        "db",
        "path",
        "out",
        "curation_file",
    }
)


#: Names left out of this build's digests (``--ignore-labels-since``): columns, summary keys and tables.
IGNORED: set[str] = set()


def ignore_labels_since(version: int) -> list[str]:
    """Leave out the labels declared with ``schema_version`` >= ``version``; returns their names."""
    from cartatlas.knowledge.labels import LABELS

    names = []
    for label in LABELS:
        if label.schema_version >= version:
            names.append(label.name)
            IGNORED.update({label.name, label.count_column or label.name})
    return names


def _canonical(value: Any) -> Any:
    """``value`` without the ``VOLATILE`` keys and with every list sorted, at any depth."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if k not in VOLATILE and k not in IGNORED}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    return value


def summary_digest(path: Path) -> str:
    """SHA-256 of summary.json without the volatile keys, keys and lists sorted."""
    data = _canonical(json.loads(path.read_text(encoding="utf-8")))
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _cell(text: str) -> str:
    """A cell as compared: a JSON object with its keys sorted, anything else as it is."""
    if text.startswith("{") and text.endswith("}"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text


def _without_ignored_evidence(text: str) -> str:
    """An evidence cell without the items that decide an ignored label (the rest as written, compact JSON)."""
    if not (text.startswith("[{") and '"decision"' in text):
        return text
    try:
        items = json.loads(text)
    except ValueError:
        return text
    kept = [i for i in items if not (isinstance(i, dict) and i.get("decision") in IGNORED)]
    if len(kept) == len(items):
        return text
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def csv_digest(path: Path) -> str:
    """SHA-256 of a CSV file's header and its rows, sorted (every cell byte for byte, but see ``_cell``)."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [[_cell(c) for c in row] for row in csv.reader(handle)]
    if IGNORED and rows:
        keep = [i for i, name in enumerate(rows[0]) if name not in IGNORED]
        rows = [[_without_ignored_evidence(row[i]) for i in keep] for row in rows]
    header, body = (rows[0], sorted(rows[1:])) if rows else ([], [])
    return hashlib.sha256(json.dumps([header, body], ensure_ascii=False).encode()).hexdigest()


def digest_outputs(export_csv: Path, publications_csv: Path | None, report_dir: Path) -> dict[str, str]:
    """One digest per output, keyed by a stable name (``export.csv``, ``summary.json``, ``tables/NAME``)."""
    digests = {"export.csv": csv_digest(export_csv)}
    if publications_csv is not None:
        digests["publications.csv"] = csv_digest(publications_csv)
    digests["summary.json"] = summary_digest(report_dir / "summary.json")
    for table in sorted((report_dir / "tables").glob("*.csv")):
        if table.stem in IGNORED:
            continue
        digests[f"tables/{table.name}"] = csv_digest(table)
    return digests


def build_and_digest(folders: Iterable[Path], work: Path, *, as_of: str = TODAY) -> dict[str, str]:
    """Build a database from ``folders`` in ``work``, write its outputs there, and digest them."""
    import cartatlas

    db = work / "sample.duckdb"
    with cartatlas.open(db) as atlas:
        atlas.import_files(list(folders))
        atlas.export("csv", work / "export.csv")
        atlas.export("csv", work / "publications.csv", what="publications")
        atlas.report(work / "report", as_of=as_of, figures=False)
    return digest_outputs(work / "export.csv", work / "publications.csv", work / "report")


def compare(saved: dict[str, str], current: dict[str, str]) -> list[str]:
    """The outputs that differ, were added or went missing, one line each (empty when identical)."""
    lines = []
    for name in sorted(saved.keys() | current.keys()):
        if name not in current:
            lines.append(f"{name}: missing now")
        elif name not in saved:
            lines.append(f"{name}: new (not in the saved digests)")
        elif saved[name] != current[name]:
            lines.append(f"{name}: differs")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", type=Path, metavar="FILE", help="write the digests of this build to FILE")
    mode.add_argument("--check", type=Path, metavar="FILE", help="compare this build with the digests in FILE")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR and keep the outputs there")
    parser.add_argument(
        "--ignore-labels-since",
        type=int,
        metavar="N",
        help="leave out the labels declared with schema_version N or later (columns, count tables, summary keys)",
    )
    args = parser.parse_args(argv)
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        # Same code, same data, another hash seed: other outputs.  Fix the seed for this process and its workers.
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])])
    if args.ignore_labels_since is not None:
        names = ignore_labels_since(args.ignore_labels_since)
        print(f"leaving out the labels added since schema {args.ignore_labels_since}: {', '.join(names) or 'none'}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        digests = build_and_digest([DATA / name for name in FOLDERS], args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="cartatlas-compare-") as tmp:
            digests = build_and_digest([DATA / name for name in FOLDERS], Path(tmp))
    if args.save:
        args.save.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"saved {len(digests)} digests to {args.save}")
        return 0
    saved = json.loads(args.check.read_text(encoding="utf-8"))
    differences = compare(saved, digests)
    for line in differences:
        print(line)
    print(f"{len(digests)} outputs compared, {len(differences)} differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
