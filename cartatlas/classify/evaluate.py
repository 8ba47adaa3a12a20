"""Comparing classifications with labels: per-field precision, recall, F1 and the disagreements.

Labels come in three shapes, recognised by their columns: cartatlas's own
(``trial_id`` plus any of ``relation``, ``landscape``, ``platforms``,
``targets``, ``target_strategy``, ``branch``, ``disease_entity``,
``product_source``; lists separated by ``|``); the peer monitors' CSVs
(``NCTId`` with ``TargetCategory``, ``Branch``, ``ProductType``, ``Modality``,
``DiseaseEntity``, ``Scope``), mapped through ``knowledge/peer_label_map.csv``;
and the peers' ``llm_overrides.json`` (exclusions become ``landscape = no``).

A peer label that has no counterpart (a basket, "Other_or_unknown") is not
evaluable and is skipped, not counted as an error.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartatlas.classify.knowledge import Knowledge, knowledge, split_list
from cartatlas.classify.types import LANDSCAPE_RELATIONS, Classification
from cartatlas.knowledge import read_table
from cartatlas.model import Trial
from cartatlas.normalise import format_spec

#: Fields compared as sets (micro-averaged over trial x item pairs); the others are single labels.
SET_FIELDS = ("platforms", "targets", "disease_entity")
SINGLE_FIELDS = ("landscape", "relation", "target_strategy", "branch", "product_source")
FIELDS = (
    "landscape",
    "relation",
    "platforms",
    "targets",
    "target_strategy",
    "branch",
    "disease_entity",
    "product_source",
)

Label = dict[str, Any]
#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``k / n`` (95% by default).

    Wilson's interval rather than the normal approximation: the adjudicated set
    has a few dozen rows per label and proportions near 1, where the normal
    interval runs past 1 and is too narrow.  With ``n == 0`` nothing is known: (0, 1).
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At k = 0 and k = n one bound is exactly 0 or 1; rounding must not move it inside.
    low = 0.0 if k <= 0 else max(0.0, centre - half)
    high = 1.0 if k >= n else min(1.0, centre + half)
    return low, high


def _peer_map() -> dict[tuple[str, str], list[tuple[str, str]]]:
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in read_table("peer_label_map.csv"):
        out.setdefault((row["peer_field"], row["peer_value"]), []).append((row["field"], row["value"]))
    return out


def _antigen(kb: Knowledge, text: str, pmap: Mapping[tuple[str, str], list[tuple[str, str]]]) -> str | None:
    mapped = pmap.get(("TargetAntigen", text))
    if mapped:
        return mapped[0][1]
    if text in kb.antigens:
        return text
    return kb.antigen_symbol(text)


def _peer_target(
    kb: Knowledge, value: str, pmap: Mapping[tuple[str, str], list[tuple[str, str]]], label: Label
) -> None:
    mapped = pmap.get(("TargetCategory", value))
    if mapped:
        for fld, val in mapped:
            if fld == "targets" and val:
                label["targets"] = {val}
            elif fld == "platforms" and val:
                label.setdefault("platforms", set()).add(val)
        return
    text = value
    if text.startswith("CAR-NK:"):
        label.setdefault("platforms", set()).add("CAR-NK")
        text = text.split(":", 1)[1].strip()
    text = re.sub(r"\s+(dual|triple)$", "", text)
    symbols = []
    for part in text.split("/"):
        symbol = _antigen(kb, part.strip(), pmap)
        if symbol is None:
            return  # an antigen we cannot name: not evaluable
        symbols.append(symbol)
    if symbols:
        label["targets"] = set(symbols)


def peer_row_to_label(
    row: Mapping[str, str], kb: Knowledge, pmap: Mapping[tuple[str, str], list[tuple[str, str]]]
) -> Label:
    """One row of a peer monitor's CSV as cartatlas labels (only the evaluable fields)."""
    label: Label = {"trial_id": row["NCTId"].strip(), "landscape": "yes"}
    for peer_field in ("Branch", "Scope", "ProductType", "Modality", "DiseaseEntity"):
        value = (row.get(peer_field) or "").strip()
        if not value:
            continue
        for fld, val in pmap.get((peer_field, value), []):
            if not val:
                continue
            if fld in SET_FIELDS:
                label.setdefault(fld, set()).add(val)
            elif fld not in label:
                label[fld] = val
    target = (row.get("TargetCategory") or "").strip()
    if target:
        _peer_target(kb, target, pmap, label)
    return label


def load_labels(path: Path, kb: Knowledge | None = None) -> list[Label]:
    """Labels from any supported file (see module docstring)."""
    kb = kb or knowledge()
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        return _overrides_labels(json.loads(text), kb)
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    if not rows:
        return []
    if "NCTId" in rows[0]:
        pmap = _peer_map()
        return [peer_row_to_label(r, kb, pmap) for r in rows if (r.get("NCTId") or "").strip()]
    out: list[Label] = []
    for r in rows:
        label: Label = {"trial_id": (r.get("trial_id") or "").strip()}
        for fld in FIELDS:
            value = (r.get(fld) or "").strip()
            if value:
                label[fld] = set(split_list(value)) if fld in SET_FIELDS else value
        if label["trial_id"]:
            out.append(label)
    return out


def _overrides_labels(data: Any, kb: Knowledge) -> list[Label]:
    items = data if isinstance(data, list) else list(data.values()) if isinstance(data, dict) else []
    pmap = _peer_map()
    out: list[Label] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("nct_id"):
            continue
        if item.get("exclude"):
            out.append({"trial_id": item["nct_id"], "landscape": "no", "note": item.get("exclude_reason") or ""})
            continue
        row = {
            "NCTId": item["nct_id"],
            "Branch": item.get("branch") or "",
            "ProductType": item.get("product_type") or "",
            "DiseaseEntity": item.get("disease_entity") or "",
            "TargetCategory": item.get("target_category") or "",
        }
        out.append(peer_row_to_label(row, kb, pmap))
    return out


def _version_key(trial: Trial) -> tuple[dt.date, int]:
    updated = trial.get("last_update_posted")
    day = updated if isinstance(updated, dt.date) else dt.date.min
    try:
        rank = format_spec(str(trial.get("source_format") or "")).rank
    except ValueError:
        rank = 0
    return day, rank


def is_more_current(new: Trial, old: Trial) -> bool:
    """Whether ``new`` is the current version of a record of which ``old`` was read first.

    As in the database: the latest registry update date wins, then the fuller format, then the version read
    last.  The sample holds some trials twice (a 2018 website CSV row and the record of 2026): the labels
    describe the record as it is now.
    """
    return _version_key(new) >= _version_key(old)


def current_versions(trials: Iterable[Trial], wanted: Collection[str] | None = None) -> dict[str, Trial]:
    """The current version of every trial (of those ``wanted``), by trial id."""
    out: dict[str, Trial] = {}
    for trial in trials:
        tid = str(trial.get("trial_id") or "")
        if wanted is not None and tid not in wanted:
            continue
        old = out.get(tid)
        if old is None or is_more_current(trial, old):
            out[tid] = trial
    return out


def predicted(c: Classification, fld: str) -> Any:
    if fld == "landscape":
        return "yes" if c["relation"] in LANDSCAPE_RELATIONS else "no"
    value = c[fld]  # type: ignore[literal-required]
    return set(value) if fld in SET_FIELDS else value


@dataclass
class FieldScore:
    field: str
    n: int = 0
    exact: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    per_class: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @property
    def precision(self) -> float:
        return class_f1([self.tp, self.fp, self.fn])[0]

    @property
    def recall(self) -> float:
        return class_f1([self.tp, self.fp, self.fn])[1]

    @property
    def f1(self) -> float:
        return class_f1([self.tp, self.fp, self.fn])[2]

    @property
    def accuracy(self) -> float:
        return self.exact / self.n if self.n else 0.0

    @property
    def accuracy_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the share of labelled trials whose label is exactly right."""
        return wilson(self.exact, self.n)

    @property
    def precision_interval(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall_interval(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fn)


@dataclass
class Disagreement:
    trial_id: str
    field: str
    ours: str
    theirs: str
    evidence: str
    note: str = ""


@dataclass
class Report:
    scores: dict[str, FieldScore]
    disagreements: list[Disagreement]
    missing: list[str]
    n_labels: int


def _fmt(value: Any) -> str:
    return "|".join(sorted(value)) if isinstance(value, set) else str(value)


def _evidence_for(c: Classification, fld: str) -> str:
    decision = "relation" if fld == "landscape" else fld
    parts = [f"{e['rule']}: {e['field']} '{e['text'][:80]}'" for e in c["evidence"] if e["decision"] == decision]
    return "; ".join(parts[:3])


def evaluate(labels: Iterable[Label], classifications: Mapping[str, Classification]) -> Report:
    """Score every labelled field of every labelled trial that was classified."""
    scores = {f: FieldScore(f) for f in FIELDS}
    disagreements: list[Disagreement] = []
    missing: list[str] = []
    n = 0
    for label in labels:
        n += 1
        c = classifications.get(label["trial_id"])
        if c is None:
            missing.append(label["trial_id"])
            continue
        for fld in FIELDS:
            if fld not in label:
                continue
            truth, pred = label[fld], predicted(c, fld)
            s = scores[fld]
            s.n += 1
            if fld in SET_FIELDS:
                assert isinstance(truth, set) and isinstance(pred, set)
                s.tp += len(truth & pred)
                s.fp += len(pred - truth)
                s.fn += len(truth - pred)
                ok = truth == pred
            else:
                ok = truth == pred
                for cls, hit in ((truth, "fn"), (pred, "fp")):
                    counts = s.per_class.setdefault(str(cls), [0, 0, 0])  # tp, fp, fn
                    if ok:
                        continue
                    counts[1 if hit == "fp" else 2] += 1
                if ok:
                    s.per_class.setdefault(str(truth), [0, 0, 0])[0] += 1
            if ok:
                s.exact += 1
            else:
                disagreements.append(
                    Disagreement(
                        label["trial_id"], fld, _fmt(pred), _fmt(truth), _evidence_for(c, fld), label.get("note", "")
                    )
                )
    for fld in SINGLE_FIELDS:
        s = scores[fld]
        s.tp = sum(v[0] for v in s.per_class.values())
        s.fp = sum(v[1] for v in s.per_class.values())
        s.fn = sum(v[2] for v in s.per_class.values())
    return Report(scores, disagreements, missing, n)


def class_intervals(counts: list[int]) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% Wilson intervals of one class's precision and recall, from its (tp, fp, fn)."""
    tp, fp, fn = counts
    return wilson(tp, tp + fp), wilson(tp, tp + fn)


def interval_text(bounds: tuple[float, float], digits: int = 3) -> str:
    """An interval as printed: ``0.898-0.980``."""
    return f"{bounds[0]:.{digits}f}-{bounds[1]:.{digits}f}"


@dataclass(frozen=True)
class ClassScore:
    """One label of a single-label field: how often it is right when given (precision) and found (recall)."""

    field: str
    label: str
    #: Trials whose label is this one (tp + fn).
    support: int
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return class_f1([self.tp, self.fp, self.fn])[0]

    @property
    def recall(self) -> float:
        return class_f1([self.tp, self.fp, self.fn])[1]

    @property
    def precision_interval(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall_interval(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fn)


def class_scores(report: Report) -> list[ClassScore]:
    """Per label of every single-label field, most frequent label first (fields in ``FIELDS`` order)."""
    out: list[ClassScore] = []
    for fld in FIELDS:
        s = report.scores.get(fld)
        if s is None or not s.n or fld in SET_FIELDS:
            continue
        for label, (tp, fp, fn) in sorted(s.per_class.items(), key=lambda kv: (-(kv[1][0] + kv[1][2]), kv[0])):
            out.append(ClassScore(fld, label, tp + fn, tp, fp, fn))
    return out


def class_f1(counts: list[int]) -> tuple[float, float, float]:
    """Precision, recall and F1 from (tp, fp, fn); 0 where a ratio has nothing to count (one formula for all)."""
    tp, fp, fn = counts
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def write_disagreements(report: Report, path: Path) -> None:
    """Every disagreement as a CSV row; text cells neutralised against spreadsheet formulas."""
    from cartatlas.spreadsheet import neutralise  # not at the top: it loads pandas, which screening never needs

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["trial_id", "field", "cartatlas", "labels", "cartatlas_evidence", "label_note"])
        for d in report.disagreements:
            w.writerow([neutralise(str(v)) for v in (d.trial_id, d.field, d.ours, d.theirs, d.evidence, d.note)])
