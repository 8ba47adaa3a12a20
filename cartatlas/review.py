"""The review queue: the labels that need a person, why, most needed first, in a file ``curate`` reads.

A trial is in the queue only for a reason a curator can act on:

- an override of theirs is *stale* (the registry changed the record after it);
- the registrations of one trial in several registries disagree on whether it is a CAR trial;
- the rules conflict, found a CAR product only in the summary, or saw CAR words without a product;
- the classifier's confidence is low;
- a landscape trial (therapy or follow-up) has an undisclosed or inferred target, strategy, disease or
  platform.

Flags that record a documented convention (a CAR-NK product is allogeneic unless stated; leukapheresis of
the patient means autologous cells) are not reasons, and neither are flags about the disease or target of
a trial that is not a CAR trial.  A field a curator has already overridden is not asked about again
unless the override went stale.

Each row is one label of one trial: ``field`` names it, ``current`` holds its value now and ``value`` is
left blank for the curator.  The file has the columns of a curation file (``trial_id``, ``registry``,
``field``, ``value``, ``reason``, ``curator``, ``date``), with ``reason``, ``curator`` and ``date``
filled in, so a curator writes the new value in the rows they decide and runs ``cartatlas curate`` on
the file; rows left blank are skipped.  Lists are written as in a curation file: items separated by
``;`` (``current``, ``targets``, ``flags``, ``why``); evidence is JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from cartatlas.knowledge import labels
from cartatlas.store.db import Store

LANDSCAPE = ("therapy", "follow_up")
#: The columns of the file ``review --out`` writes; the first seven are those of a curation file.
COLUMNS = (
    "trial_id",
    "registry",
    "field",
    "value",
    "reason",
    "curator",
    "date",
    "current",
    "need",
    "why",
    "brief_title",
    "relation",
    "targets",
    "confidence",
    "flags",
    "cluster_id",
    "evidence",
)


@dataclass(frozen=True)
class Reason:
    """Why a label needs a person: the field to check, how much it is needed (0-100) and the words."""

    field: str
    need: int
    words: str


#: Flags that ask for a person, with the field they concern and for which relations they count.
#: ``None`` as relations: any relation.  Flags not listed here are conventions, not doubts.
_FLAG_REASONS: dict[str, tuple[Reason, tuple[str, ...] | None]] = {
    "conflict:relation": (
        Reason("relation", 70, "the title and the rest of the record disagree on whether a CAR product is given"),
        None,
    ),
    "car-words-present": (
        Reason("relation", 45, "CAR words are in the record but the rules found no CAR product given"),
        ("none", "ancillary"),
    ),
    "unknown-target": (Reason("targets", 30, "a CAR product is given but its antigen is not named"), LANDSCAPE),
    "targets:from-marker": (
        Reason("targets", 25, "the target is a disease marker (such as CD19-positive), not the CAR's antigen"),
        LANDSCAPE,
    ),
    "unknown-disease": (Reason("disease_entity", 20, "no disease recognised"), LANDSCAPE),
    "unknown-strategy": (
        Reason("target_strategy", 15, "several targets, not said whether one CAR or several products carry them"),
        LANDSCAPE,
    ),
    "default:platform": (Reason("platforms", 12, "no cell type named, CAR-T assumed"), LANDSCAPE),
    "branch:from-target": (Reason("branch", 12, "the disease branch is inferred from the target antigen"), LANDSCAPE),
    "relation:probable-car-from-code-name": (
        Reason(
            "relation",
            60,
            "no CAR word: a code-named product of a CAR developer (with the signs of a cell therapy, or from a "
            "developer of CAR products only) is taken for a CAR product",
        ),
        None,
    ),
    "relation:code-name-of-car-developer": (
        Reason(
            "relation",
            40,
            "a code-named product of a CAR developer that also makes other products, with no sign that it is "
            "a gene-modified cell product: not counted",
        ),
        ("none",),
    ),
    "targets:unresolved-antigen": (
        Reason("targets", 20, "an antigen in a list of the CAR's antigens is not in the antigen table"),
        LANDSCAPE,
    ),
    "strategy:from-joined-antigens": (
        Reason("target_strategy", 10, "a multi-specific CAR inferred from antigens written together (CD19/CD22)"),
        LANDSCAPE,
    ),
}
_CONFLICT_FIELDS = {"product_source": "product_source", "relation": "relation"}
_ROLE_WORDS = {
    "summary": "the summary",
    "description": "the detailed description",
    "arm_desc": "an arm's description",
    "keyword": "the keywords",
    "outcome": "the outcome measures",
    "condition": "the conditions",
}


def _flag_reason(flag: str, relation: str) -> Reason | None:
    known = _FLAG_REASONS.get(flag)
    if known is not None:
        reason, relations = known
        return reason if relations is None or relation in relations else None
    if flag.startswith("relation:car-only-in-"):
        role = flag.removeprefix("relation:car-only-in-")
        where = _ROLE_WORDS.get(role, role.replace("_", " "))
        return Reason("relation", 50, f"a CAR product is named only in {where}, not in the title or interventions")
    if flag.startswith("conflict:"):
        field = flag.removeprefix("conflict:")
        return Reason(_CONFLICT_FIELDS.get(field, field), 35, f"the record says two things about {field}")
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if hasattr(value, "tolist"):
        return ";".join(str(v) for v in value.tolist())
    return str(value)


def _stale_overrides(store: Store) -> dict[str, list[tuple[str | None, Reason]]]:
    """Overrides that the last application of the curation file found stale, per trial id (and registry)."""
    rows = store.con.execute(
        """
        SELECT l.registry, l.trial_id, l.field, l.value, l.curated_on,
               max(coalesce(v.record_updated, CAST(v.fetched_at AS DATE))) AS updated
        FROM curation_log l
        JOIN trials t ON t.trial_id = l.trial_id AND (l.registry IS NULL OR t.registry = l.registry)
        JOIN raw_records v ON v.version_id = t.version_id
        WHERE l.status = 'stale'
          AND l.run_id = (SELECT run_id FROM curation_log ORDER BY logged_at DESC LIMIT 1)
        GROUP BY ALL
        """
    ).fetchall()
    out: dict[str, list[tuple[str | None, Reason]]] = {}
    for registry, trial_id, field, value, curated_on, updated in rows:
        words = f"a curator set {field} to '{value}' on {curated_on} and the registry changed the record on {updated}"
        out.setdefault(trial_id, []).append((registry, Reason(field, 90, words.replace(";", ","))))
    return out


def _cluster_disagreements(store: Store) -> dict[tuple[str, str], Reason]:
    """Registrations of one trial that the rules put on different sides of CAR / not CAR."""
    rows = store.con.execute(
        """
        SELECT k.cluster_id, k.registry, k.trial_id, c.relation
        FROM trial_clusters k JOIN classifications c USING (registry, trial_id)
        WHERE k.cluster_size > 1
        ORDER BY k.cluster_id, k.registry, k.trial_id
        """
    ).fetchall()
    clusters: dict[str, list[tuple[str, str, str]]] = {}
    for cluster_id, registry, trial_id, relation in rows:
        clusters.setdefault(cluster_id, []).append((registry, trial_id, relation))
    out: dict[tuple[str, str], Reason] = {}
    for members in clusters.values():
        if len({relation in LANDSCAPE for _, _, relation in members}) < 2:
            continue
        for registry, trial_id, relation in members:
            others = ", ".join(f"{t} ({r})" for _, t, r in members if t != trial_id)
            words = (
                f"the rules call this registration {relation} and the same trial registered as {others}: "
                "the registrations disagree on whether it is a CAR trial"
            )
            out[(registry, trial_id)] = Reason("relation", 80, words)
    return out


def review_queue(store: Store, *, curator: str = "", today: dt.date | None = None) -> pd.DataFrame:
    """The queue, one row per label to check, most needed first (columns: ``COLUMNS``)."""
    today = today or dt.date.today()
    stale = _stale_overrides(store)
    clusters = _cluster_disagreements(store)
    label_names = [label.name for label in labels.LABELS]  # knowledge/labels.py
    records = store.con.execute(
        f"""
        SELECT c.registry, c.trial_id, t.brief_title, {", ".join(f"c.{name}" for name in label_names)},
               c.flags, c.curated_fields, CAST(c.evidence AS VARCHAR) AS evidence, k.cluster_id
        FROM classifications c
        JOIN trials t USING (registry, trial_id)
        LEFT JOIN trial_clusters k USING (registry, trial_id)
        """
    ).fetchall()
    names = [
        "registry", "trial_id", "brief_title", *label_names, "flags", "curated_fields", "evidence", "cluster_id",
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for record in records:
        r = dict(zip(names, record, strict=True))
        key = (r["registry"], r["trial_id"])
        curated = set(r["curated_fields"] or [])
        reasons = [x for reg, x in stale.get(r["trial_id"], []) if reg in (None, r["registry"])]
        found = [clusters[key]] if key in clusters else []
        if r["confidence"] == "low":
            found.append(Reason("relation", 55, "the rules' confidence is low"))
        for flag in r["flags"] or []:
            reason = _flag_reason(flag, r["relation"])
            if reason is not None:
                found.append(reason)
        reasons += [x for x in found if x.field not in curated]
        by_field: dict[str, list[Reason]] = {}
        for reason in reasons:
            by_field.setdefault(reason.field, []).append(reason)
        for field, field_reasons in by_field.items():
            field_reasons.sort(key=lambda x: -x.need)
            why = list(dict.fromkeys(x.words for x in field_reasons))
            rows.append(
                {
                    "trial_id": r["trial_id"],
                    "registry": r["registry"],
                    "field": field,
                    "value": "",
                    "reason": "review: " + why[0],
                    "curator": curator,
                    "date": today.isoformat(),
                    "current": _as_text(r.get(field)),
                    "need": field_reasons[0].need + min(len(reasons) - 1, 5),
                    "why": "; ".join(why),
                    "brief_title": r["brief_title"] or "",
                    "relation": r["relation"],
                    "targets": _as_text(r["targets"]),
                    "confidence": r["confidence"],
                    "flags": _as_text(r["flags"]),
                    "cluster_id": r["cluster_id"] or "",
                    "evidence": orjson.dumps(orjson.loads(r["evidence"] or "[]")).decode(),
                }
            )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if frame.empty:
        return frame
    frame = frame.sort_values(["need", "trial_id", "field"], ascending=[False, True, True], kind="stable")
    return frame.reset_index(drop=True)
