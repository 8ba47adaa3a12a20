"""The screening engine: one pure function from a normalised trial to its classification.

The knowledge base is compiled once per process; after that ``classify_trial``
does no I/O, so it is safe to call from any thread and gives the same answer
for the same trial and the same classifier version.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import cast

from cartatlas.classify import context, disease, platform, relation, source, targets
from cartatlas.classify.context import Context, Mention, build_context
from cartatlas.classify.knowledge import Knowledge, knowledge
from cartatlas.classify.types import Classification, Evidence
from cartatlas.knowledge import knowledge_version, labels
from cartatlas.model import Trial

log = logging.getLogger(__name__)

#: Bumped whenever a rule changes what it decides; the knowledge stamp is added at run time.
#: 1.1: local-language fields of bilingual records; 1.2: CAR terms match whole tokens; 1.3: products named only
#: by a code (developers, code prefixes, signs of a cell therapy), lists of antigens, background mentions.
CLASSIFIER_VERSION = "1.3.0"
_SCORE = {"high": 1.0, "medium": 0.6, "low": 0.3}


def classifier_version() -> str:
    """Rules version plus a stamp of the knowledge files, for provenance in every output row.

    Labels whose rule is declared in ``knowledge/labels.py`` add a stamp of their rules' code, so that
    adding or changing one screens every trial again without an edit here.
    """
    global _VERSION
    if _VERSION is None:
        rules = _declared_rules()
        labels_stamp = f"+labels.{_rules_stamp(rules)}" if rules else ""
        _VERSION = f"{CLASSIFIER_VERSION}+kb.{_kb_stamp()}{labels_stamp}"
    return _VERSION


_VERSION: str | None = None


#: A rule declared with a label: it adds its evidence to the context and returns the label's value.
DeclaredRule = Callable[[Context, str, list[Mention]], object]
_RULES: list[tuple[str, DeclaredRule]] | None = None


def _declared_rules() -> list[tuple[str, DeclaredRule]]:
    """(label, rule) for every label declared with a ``rule`` (``module:function``), imported once."""
    global _RULES
    if _RULES is None:
        found = []
        for label in labels.with_rules():
            module, _, name = str(label.rule).partition(":")
            found.append((label.name, getattr(importlib.import_module(module), name)))
        _RULES = found
    return _RULES


def _rules_stamp(rules: list[tuple[str, DeclaredRule]]) -> str:
    """A stamp of the declared labels and the code of the modules their rules live in."""
    digest = hashlib.sha256()
    for name, rule in rules:
        digest.update(name.encode())
        digest.update(inspect.getsource(sys.modules[rule.__module__]).encode())
    return digest.hexdigest()[:8]


_STAMP: str | None = None


def _kb_stamp() -> str:
    global _STAMP
    if _STAMP is None:
        _STAMP = knowledge_version()
    return _STAMP


def classify_trial(trial: Trial, kb: Knowledge | None = None, *, ctx: Context | None = None) -> Classification:
    """Classify one trial; never raises on odd or missing text fields.

    ``ctx``: the rules' context when the caller has built it already (``prefilter.quick_context`` builds
    it for a record in which nothing about CAR can be found, from far less work; the rules then run on it
    as on any other).
    """
    kb = kb if kb is not None else knowledge()
    if ctx is None:
        ctx = build_context(trial, kb)
    rel, rel_conf = relation.decide(ctx)
    if rel == "therapy":
        chosen = ctx.positive()
    elif rel in ("follow_up", "ancillary"):
        chosen = list(ctx.mentions)
    else:
        chosen = []
    plats = platform.decide(ctx, rel, chosen)
    tgts, strategy = targets.decide(ctx, rel, chosen)
    entities, branch = disease.decide(ctx, [t for t in tgts if t != "unknown"])
    prod_source = source.decide_source(ctx, rel, chosen, plats)
    combos = source.decide_combinations(ctx, rel, chosen)
    products = []
    for m in chosen:
        if m.product is not None and m.product.name not in products:
            products.append(m.product.name)
    label, score = _confidence(ctx, rel, rel_conf, tgts, branch)
    declared = {name: rule(ctx, rel, chosen) for name, rule in _declared_rules()}
    result = Classification(
        trial_id=str(trial.get("trial_id") or ""),
        registry=str(trial.get("registry") or ""),
        relation=rel,
        platforms=plats,
        targets=tgts,
        target_strategy=strategy,
        branch=branch,
        disease_entity=entities,
        product_source=prod_source,
        combinations=combos,
        products=products,
        confidence=label,
        confidence_score=score,
        flags=list(ctx.flags),
        evidence=_dedup(ctx.evidence),
        classifier_version=classifier_version(),
    )
    if declared:
        cast(dict[str, object], result).update(declared)
    return result


def _confidence(ctx: Context, rel: str, rel_conf: str, tgts: list[str], branch: str) -> tuple[str, float]:
    """Weakest link of relation, target and disease evidence (issue 3: where rules disagree or found little)."""
    score = _SCORE[rel_conf]
    if rel in ("therapy", "follow_up"):
        if tgts == ["unknown"] or "targets:from-marker" in ctx.flags:
            score = min(score, 0.6)
        if "unknown-strategy" in ctx.flags and len(tgts) > 1:
            score = min(score, 0.8)
        if branch == "unknown":
            score = min(score, 0.5)
        if any(f.startswith("conflict:") for f in ctx.flags):
            score = min(score, 0.5)
        if "default:platform" in ctx.flags:
            score = min(score, 0.8)
    label = "high" if score >= 0.8 else "medium" if score >= 0.5 else "low"
    return label, round(score, 2)


def _dedup(evidence: list[Evidence]) -> list[Evidence]:
    """Evidence without repeats, and at most ``MAX_EVIDENCE_PER_RULE`` items per decision and rule."""
    seen: set[tuple[str, str, str, str, str]] = set()
    limit = context.MAX_EVIDENCE_PER_RULE
    capped = len(evidence) > limit  # else no rule can have too many: the usual handful is not counted
    per_rule: dict[tuple[str, str], int] = {}
    out: list[Evidence] = []
    for ev in evidence:
        key = (ev["decision"], ev["value"], ev["field"], ev["text"], ev["rule"])
        if key in seen:
            continue
        seen.add(key)
        if capped:
            rule = (ev["decision"], ev["rule"])
            n = per_rule.get(rule, 0)
            if n >= limit:
                continue
            per_rule[rule] = n + 1
        out.append(ev)
    return out


def classify_many(trials: Iterable[Trial]) -> Iterator[Classification]:
    """Classify a stream of trials lazily (nothing is held beyond the current trial)."""
    kb = knowledge()
    for trial in trials:
        yield classify_trial(trial, kb)
