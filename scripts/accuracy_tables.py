"""Write the numbers of docs/accuracy.md from the screening code, so the document never drifts from it.

Usage::

    python scripts/accuracy_tables.py           # rewrite the generated blocks of docs/accuracy.md
    python scripts/accuracy_tables.py --check   # exit 1 if the document differs from what the code gives

Every number of the document sits in a block between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; this script computes each block by classifying the sample records
(../shared/data) exactly as ``cartatlas evaluate`` and ``cartatlas classify`` do, and replaces the
block's text.  ``tests/test_accuracy_doc.py`` runs the same computation and fails when the document
is out of date.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from cartatlas.classify import CLASSIFIER_VERSION, Classification, classify_trial
from cartatlas.classify.evaluate import (
    SET_FIELDS,
    ClassScore,
    FieldScore,
    Report,
    class_f1,
    class_scores,
    current_versions,
    evaluate,
    load_labels,
)
from cartatlas.classify.types import LANDSCAPE_RELATIONS
from cartatlas.cli.classify import iter_trials
from cartatlas.model import Reject, Trial

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "accuracy.md"
DATA = ROOT.parent / "shared" / "data"
RECON = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"
PEER_LABELS = DATA / "ctgov" / "reconstructed" / "cart_monitor_2026-08-22.peer_labels.csv"
ONC_BENCHMARK = DATA / "peers" / "onc-cart-monitor" / "benchmark_set.csv"
RHEUM_BENCHMARK = DATA / "peers" / "rheum-cart-monitor" / "benchmark_set.csv"
LLM_OVERRIDES = DATA / "peers" / "onc-cart-monitor" / "llm_overrides.json"
LEUKEMIA = DATA / "ctgov" / "api_v2" / "leukemia_query_100.json"
LEGACY_CSV = DATA / "ctgov" / "website_csv" / "legacy_site_b_cell_query_2018.csv"

_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


@cache
def classified(*paths: Path) -> dict[str, Classification]:
    """The current version of every trial of the files classified, by trial id (as ``cartatlas evaluate`` does)."""
    rejects: list[Reject] = []
    return {tid: classify_trial(t) for tid, t in current_versions(iter_trials(list(paths), rejects)).items()}


@cache
def records(*paths: Path) -> tuple[Classification, ...]:
    """Every record of the files classified, one per record (for counting a file's records)."""
    rejects: list[Reject] = []
    return tuple(classify_trial(t) for t in iter_trials(list(paths), rejects))


def _n(x: int) -> str:
    return f"{x:,}"


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _scores(labels: Path, *paths: Path) -> dict[str, FieldScore]:
    return evaluate(load_labels(labels), classified(*paths)).scores


def version_block() -> str:
    return f"Numbers of classifier {CLASSIFIER_VERSION} (rewritten by `python scripts/accuracy_tables.py`).\n"


def peer_corpus_block() -> str:
    s = _scores(PEER_LABELS, RECON)
    yes_p, yes_r, yes_f = class_f1(s["landscape"].per_class.get("yes", [0, 0, 0]))
    rows = [
        [
            "landscape (therapy or follow_up)",
            _n(s["landscape"].n),
            _f(s["landscape"].accuracy),
            f"{_f(yes_p, 2)} (class yes)",
            _f(yes_r, 2),
            _f(yes_f, 2),
        ]
    ]
    for fld, label in (("targets", "targets (trial x antigen, micro)"), ("disease_entity", "disease_entity (micro)")):
        x = s[fld]
        rows.append([label, _n(x.n), _f(x.accuracy), _f(x.precision), _f(x.recall), _f(x.f1)])
    rows.insert(2, ["branch", _n(s["branch"].n), _f(s["branch"].accuracy), "", "", _f(s["branch"].accuracy)])
    x = s["platforms"]
    rows.append(["platforms", _n(x.n), _f(x.accuracy), _f(x.precision), _f(x.recall), _f(x.f1)])
    x = s["product_source"]
    rows.append(["product_source", _n(x.n), _f(x.accuracy), "", "", "see below"])
    return _table(["field", "n", "exact", "precision", "recall", "F1"], rows)


def benchmarks_block() -> str:
    rows = []
    for name, labels in (("ONC benchmark", ONC_BENCHMARK), ("Rheum benchmark", RHEUM_BENCHMARK)):
        s = _scores(labels, RECON)
        land = s["landscape"]
        branch = f"{s['branch'].exact}/{s['branch'].n}" if s["branch"].n else "-"
        rows.append(
            [
                f"{name} ({land.n} trials)",
                f"{land.exact}/{land.n}",
                _f(s["targets"].f1),
                branch,
                _f(s["disease_entity"].f1),
                _f(s["platforms"].f1),
                _f(s["product_source"].accuracy),
            ]
        )
    header = ["set", "landscape", "targets F1", "branch", "disease F1", "platforms F1", "product_source exact"]
    return _table(header, rows)


def _relations(cs: Iterable[Classification]) -> Counter[str]:
    return Counter(c["relation"] for c in cs)


def hard_negatives_block() -> str:
    rows = []
    for name, path in (
        ("`api_v2/leukemia_query_100.json`", LEUKEMIA),
        ("`website_csv/legacy_site_b_cell_query_2018.csv`", LEGACY_CSV),
    ):
        rel = _relations(records(path))
        rows.append(
            [
                name,
                _n(sum(rel.values())),
                _n(rel["therapy"]),
                _n(rel["follow_up"]),
                _n(rel["ancillary"]),
                _n(rel["none"]),
            ]
        )
    exclusions = [lab for lab in load_labels(LLM_OVERRIDES) if lab.get("landscape") == "no"]
    sample = classified(DATA / "ctgov")
    found = [sample[lab["trial_id"]] for lab in exclusions if lab["trial_id"] in sample]
    rel = _relations(found)
    rows.append(
        [
            f"`llm_overrides.json` exclusions with a sample record (of {_n(len(exclusions))})",
            _n(len(found)),
            _n(rel["therapy"]),
            _n(rel["follow_up"]),
            _n(rel["ancillary"]),
            _n(rel["none"]),
        ]
    )
    return _table(["records", "n", "therapy", "follow_up", "ancillary", "none"], rows)


def _peer_rows() -> list[dict[str, str]]:
    with PEER_LABELS.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def differences_block() -> str:
    cs = classified(RECON)
    peers = _peer_rows()
    missed = [cs[r["NCTId"]] for r in peers if cs[r["NCTId"]]["relation"] not in LANDSCAPE_RELATIONS]
    rel = _relations(missed)
    no_product = sum(
        any(e["rule"] == "relation.no_car_product" for e in c["evidence"]) for c in missed if c["relation"] == "none"
    )
    oncology = [r for r in peers if r["Scope"] == "oncology"]
    unresolved = [r for r in oncology if r["TargetCategory"] in ("Other_or_unknown", "CAR-T_unspecified")]
    by_category = Counter(r["TargetCategory"] for r in unresolved)
    resolved = [r for r in unresolved if cs[r["NCTId"]]["targets"] not in ([], ["unknown"])]
    resolved_by = Counter(r["TargetCategory"] for r in resolved)
    called_none = sum(cs[r["NCTId"]]["relation"] == "none" for r in unresolved)
    autologous = [r for r in peers if r["ProductType"] == "Autologous"]
    sources = Counter(r["ProductTypeSource"] for r in autologous)
    ours = Counter(c["product_source"] for c in cs.values())
    rows = [
        ["peer-kept trials cartatlas does not count (landscape no)", _n(len(missed))],
        ["... of which `none`", _n(rel["none"])],
        ["... of which `ancillary`", _n(rel["ancillary"])],
        ["... `none` by `relation.no_car_product` (no CAR word in the record)", _n(no_product)],
        ["peer oncology trials", _n(len(oncology))],
        ["... with no resolved target (`Other_or_unknown` + `CAR-T_unspecified`)", _n(len(unresolved))],
        ["... `Other_or_unknown`", _n(by_category["Other_or_unknown"])],
        ["... `CAR-T_unspecified`", _n(by_category["CAR-T_unspecified"])],
        ["... resolved by cartatlas", _n(len(resolved))],
        ["... resolved, of `Other_or_unknown`", _n(resolved_by["Other_or_unknown"])],
        ["... resolved, of `CAR-T_unspecified`", _n(resolved_by["CAR-T_unspecified"])],
        ["... called `none` by cartatlas", _n(called_none)],
        ["peer `Autologous` labels", _n(len(autologous))],
        ["... `default_autologous_no_allo_markers`", _n(sources["default_autologous_no_allo_markers"])],
        ["... `llm_override`", _n(sources["llm_override"])],
        ["cartatlas `product_source = unknown`", _n(ours["unknown"])],
    ]
    return _table(["count", "n"], rows)


def adjudicated_winners_block() -> str:
    """Who was right, per disputed field, in the adjudicated set (read from the file itself)."""
    path = ROOT / "tests" / "fixtures" / "adjudicated.csv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    winners = ("cartatlas", "peer", "both", "neither", "undecided")
    fields = list(dict.fromkeys(r["field"] for r in rows))
    counts = Counter((r["field"], r["winner"]) for r in rows)
    return _table(
        ("field", "rows", *winners),
        ((f, _n(sum(counts[f, w] for w in winners)), *(_n(counts[f, w]) for w in winners)) for f in fields),
    )


ADJUDICATED = ROOT / "tests" / "fixtures" / "adjudicated.csv"


def _pct(lo_hi: tuple[float, float]) -> str:
    return f"{lo_hi[0]:.3f}-{lo_hi[1]:.3f}"


def adjudicated_scores_block() -> str:
    """Exact accuracy per field on the adjudicated set, with its 95% Wilson interval (``cartatlas evaluate``)."""
    s = _scores(ADJUDICATED, DATA / "ctgov")
    rows = []
    for fld in ("relation", "landscape", "targets", "platforms"):
        x = s[fld]
        rows.append([fld, _n(x.n), _n(x.exact), _f(x.accuracy), _pct(x.accuracy_interval)])
    return _table(["field", "decided rows", "right", "exact", "95% CI"], rows)


def _per_label_rows(scores: dict[str, FieldScore], fields: Iterable[str]) -> list[list[str]]:
    """Per label (single-label fields) or micro over items (set fields): precision and recall with 95% CIs."""
    rows = []
    report = Report(scores, [], [], 0)
    by_field: dict[str, list[ClassScore]] = {}
    for c in class_scores(report):
        by_field.setdefault(c.field, []).append(c)
    for fld in fields:
        x = scores[fld]
        if not x.n:
            continue
        if fld in SET_FIELDS:
            rows.append(
                [
                    fld,
                    "(every item)",
                    _n(x.tp + x.fn),
                    _f(x.precision),
                    _pct(x.precision_interval),
                    _f(x.recall),
                    _pct(x.recall_interval),
                ]
            )
            continue
        for c in by_field.get(fld, []):
            if not c.support and not c.tp + c.fp:
                continue
            rows.append(
                [
                    fld,
                    c.label,
                    _n(c.support),
                    _f(c.precision) if c.tp + c.fp else "-",
                    _pct(c.precision_interval) if c.tp + c.fp else "-",
                    _f(c.recall) if c.support else "-",
                    _pct(c.recall_interval) if c.support else "-",
                ]
            )
    return rows


_LABEL_HEADER = ["field", "label", "n (labelled)", "precision", "95% CI", "recall", "95% CI"]


def adjudicated_labels_block() -> str:
    s = _scores(ADJUDICATED, DATA / "ctgov")
    return _table(_LABEL_HEADER, _per_label_rows(s, ("relation", "landscape", "targets", "platforms")))


def peer_labels_block() -> str:
    rows = []
    for name, labels in (
        ("peer corpus", PEER_LABELS),
        ("ONC benchmark", ONC_BENCHMARK),
        ("Rheum benchmark", RHEUM_BENCHMARK),
    ):
        s = _scores(labels, RECON)
        fields = ("landscape", "branch", "product_source", "targets", "platforms", "disease_entity")
        rows += [[name, *row] for row in _per_label_rows(s, fields)]
    return _table(["set", *_LABEL_HEADER], rows)


#: A CAR word as a reader sees one: CAR, CAR-T, CART, CAAR, "chimeric antigen".
_CAR_WORD = re.compile(r"(?<![A-Za-z0-9])(?:car|cars|cart|caar)(?![a-z])|chimeric antigen|嵌合抗原", re.IGNORECASE)


def _record_text(trial: Trial) -> str:
    """The text that says what is given: not the sponsor's name ("CAR-T (Shanghai) Cell Biotechnology") nor the
    eligibility criteria ("no prior CAR-T")."""
    from cartatlas.classify.text import ELIGIBILITY, build_segments

    return "\n".join(seg.disp for seg in build_segments(trial) if seg.role != ELIGIBILITY)


def codeless_block() -> str:
    """What became of the monitor trials that name no CAR at all (issue 13's "CAR-word-less" records)."""
    rows = [r for r in _adjudicated_rows() if r["field"] == "landscape" and r["cartatlas_before"] == "no"]
    rows = [r for r in rows if r["peer"] == "yes"]
    records = current_versions(iter_trials([RECON], []))
    cs = classified(RECON)
    codeless = [r for r in rows if not _CAR_WORD.search(_record_text(records[r["trial_id"]]))]
    counts: Counter[str] = Counter()
    for r in codeless:
        c = cs[r["trial_id"]]
        counted = c["relation"] in LANDSCAPE_RELATIONS
        asked = any(f.startswith("relation:") for f in c["flags"]) or c["confidence"] == "low"
        if r["winner"] == "undecided":
            counts["undecided"] += 1
            counts["undecided counted" if counted else "undecided not counted"] += 1
            counts["undecided asked"] += asked
        else:
            truth = r["landscape"] == "yes"
            counts["car" if truth else "not car"] += 1
            counts[("car" if truth else "not car") + (" right" if counted == truth else " wrong")] += 1
    resolved = counts["car right"] + counts["not car right"]
    decided = counts["car"] + counts["not car"]
    table = [
        ["monitor trials the screening called `none` before the catalogue, peers keep", _n(len(rows))],
        [
            "... naming no CAR (no CAR, CART, CAAR or 'chimeric antigen' outside the eligibility criteria)",
            _n(len(codeless)),
        ],
        ["... decided CAR trials", _n(counts["car"])],
        ["... ... now counted", _n(counts["car right"])],
        ["... decided non-CAR trials", _n(counts["not car"])],
        ["... ... still not counted", _n(counts["not car right"])],
        ["... resolved: decided and now labelled as decided", f"{_n(resolved)} of {_n(decided)}"],
        ["... undecided (no public source says what the code is)", _n(counts["undecided"])],
        ["... ... now counted as probable CAR trials (low confidence)", _n(counts["undecided counted"])],
        ["... ... in the review queue (low confidence or a relation flag)", _n(counts["undecided asked"])],
    ]
    return _table(["count", "n"], table)


def developers_block() -> str:
    """What ``developers.csv`` says of its developers' other products (``pipeline``), and the code prefixes."""
    from cartatlas.knowledge import catalogue, read_table

    pipelines = Counter(d.pipeline for d in catalogue.developers())
    prefixes = [row["prefix"] for row in read_table("code_prefixes.csv")]
    rows = [
        ["developers of CAR cell products only (`pipeline = car`)", _n(pipelines["car"])],
        ["developers of other products too (`mixed`)", _n(pipelines["mixed"])],
        ["developers known here from their sample trials only (`unknown`)", _n(pipelines["unknown"])],
        [
            "code prefixes of developers' CAR products (`code_prefixes.csv`)",
            f"{_n(len(prefixes))}: {', '.join(prefixes)}",
        ],
    ]
    return _table(["developers.csv and code_prefixes.csv", "n"], rows)


def _adjudicated_rows() -> list[dict[str, str]]:
    lines = [line for line in ADJUDICATED.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


BLOCKS: dict[str, Callable[[], str]] = {
    "version": version_block,
    "peer-corpus": peer_corpus_block,
    "benchmarks": benchmarks_block,
    "hard-negatives": hard_negatives_block,
    "differences": differences_block,
    "adjudicated-winners": adjudicated_winners_block,
    "adjudicated-scores": adjudicated_scores_block,
    "adjudicated-labels": adjudicated_labels_block,
    "codeless": codeless_block,
    "developers": developers_block,
    "peer-labels": peer_labels_block,
}


def compute() -> dict[str, str]:
    """Every block's text, from the code and the sample records as they are now."""
    return {name: build() for name, build in BLOCKS.items()}


def render(doc: str, blocks: dict[str, str]) -> str:
    """The document with each generated block's body replaced; a block missing from the document is an error."""
    seen: set[str] = set()

    def replace(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in blocks:
            raise ValueError(f"{DOC}: unknown generated block {name!r}")
        seen.add(name)
        return m.group(1) + blocks[name] + m.group(4)

    out = _BLOCK.sub(replace, doc)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise ValueError(f"{DOC}: no generated block for {', '.join(missing)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/accuracy.md is out of date")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"sample data not found at {DATA}", file=sys.stderr)
        return 2
    doc = DOC.read_text(encoding="utf-8")
    new = render(doc, compute())
    if args.check:
        if new != doc:
            print(f"{DOC} is out of date: run python scripts/accuracy_tables.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
