"""Curators' corrections: a plain CSV under version control, applied after the rules.

File format (one override per line; extra columns are ignored)::

    trial_id,field,value,reason,curator,date
    NCT03290430,targets,CD19;CD22,"tandem CAR named in the protocol",jdoe,2026-11-20
    NCT04324996,relation,therapy,"CAR-NK cells are the studied product",jdoe,2026-11-20

``value`` holds a list as ``;``-separated items for list fields (targets,
platforms, disease_entity, combinations).  A row with a blank ``value`` is not
filled in and is skipped: ``cartatlas review --out`` writes the review queue in
this format, one row per label to check, for a curator to fill in.  An optional ``registry`` column
disambiguates ids used by two registries.  Rows whose field is ``link`` are
cross-registry link decisions and belong to the linking step, not here.

Every application starts from the rules' own values (kept in
``classifications.auto``), so removing a line from the file undoes it, and
re-running the classifier never loses an override.  An override is *stale*
when the registry updated the record after the curator's date: it is still
applied, and listed so a curator can look again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cartatlas.classify import types
from cartatlas.curation_file import curation_rows
from cartatlas.normalise.dates import parse_date
from cartatlas.store.classifications import CURATABLE, LIST_FIELDS
from cartatlas.store.db import Store, now, rollback

log = logging.getLogger(__name__)

VOCABULARIES: dict[str, frozenset[str]] = {
    "relation": frozenset(types.RELATIONS),
    "target_strategy": frozenset(types.TARGET_STRATEGIES),
    "branch": frozenset(types.BRANCHES),
    "product_source": frozenset(types.PRODUCT_SOURCES),
    "confidence": frozenset(types.CONFIDENCE_LABELS),
    "platforms": frozenset(types.PLATFORMS),
    "combinations": frozenset(types.COMBINATIONS),
}
#: Fields handled by other pipeline steps, passed over here without complaint.
OTHER_STEPS = frozenset({"link"})


@dataclass(frozen=True)
class Override:
    line: int
    trial_id: str
    registry: str | None
    field: str
    value: str
    reason: str
    curator: str
    date: dt.date | None

    def parsed_value(self) -> Any:
        if self.field in LIST_FIELDS:
            return [v.strip() for v in self.value.replace("|", ";").split(";") if v.strip()]
        return self.value.strip()


@dataclass(frozen=True)
class Outcome:
    override: Override | None
    line: int
    status: str  # applied | stale | unknown_trial | invalid | other_step
    message: str


def read_curation(path: Path) -> tuple[list[Override], list[Outcome]]:
    """Parse and validate a curation file; problems name the file and line."""
    overrides: list[Override] = []
    problems: list[Outcome] = []
    for lineno, row in curation_rows(path):
        trial_id = (row.get("trial_id") or "").strip()
        field = (row.get("field") or "").strip()
        value = (row.get("value") or "").strip()
        date = parse_date(row.get("date"))
        o = Override(
            lineno,
            trial_id,
            (row.get("registry") or "").strip() or None,
            field,
            value,
            (row.get("reason") or "").strip(),
            (row.get("curator") or "").strip(),
            date,
        )
        problem = _validate(o, row.get("date"))
        if field in OTHER_STEPS:
            problems.append(Outcome(o, lineno, "other_step", f"'{field}' is applied by its own step"))
        elif problem:
            problems.append(Outcome(o, lineno, "invalid", f"{path}:{lineno}: {problem}"))
        else:
            overrides.append(o)
    return overrides, problems


def _validate(o: Override, raw_date: str | None) -> str | None:
    if not o.trial_id:
        return "no trial_id"
    if o.field in OTHER_STEPS:
        return None
    if o.field not in CURATABLE:
        return f"unknown field {o.field!r} (curatable: {', '.join(CURATABLE)})"
    if not o.reason:
        return "an override needs a reason"
    if not o.curator:
        return "an override needs a curator"
    if o.date is None:
        return f"date {raw_date!r} is not a date (use YYYY-MM-DD)"
    vocab = VOCABULARIES.get(o.field)
    if vocab is not None:
        values = o.parsed_value()
        bad = [v for v in (values if isinstance(values, list) else [values]) if v not in vocab]
        if bad:
            return f"{o.field} value(s) {', '.join(bad)} not in {sorted(vocab)}"
    return None


def apply_curation(store: Store, path: Path, run_id: str) -> list[Outcome]:
    """Reset curated fields to the rules' values, then apply every valid override in the file."""
    overrides, outcomes = read_curation(path)
    con = store.con
    file_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    current = {
        (r[0], r[1]): (r[2], r[3])
        for r in con.execute(
            """
            SELECT c.registry, c.trial_id, c.auto, coalesce(v.record_updated, CAST(v.fetched_at AS DATE))
            FROM classifications c
            JOIN trials t USING (registry, trial_id)
            JOIN raw_records v ON v.version_id = t.version_id
            """
        ).fetchall()
    }
    by_trial: dict[str, list[tuple[str, str]]] = {}
    for registry, trial_id in current:
        by_trial.setdefault(trial_id, []).append((registry, trial_id))

    con.execute("BEGIN TRANSACTION")
    try:
        # Undo every previous override: start from the rules' own values.
        for registry, trial_id, auto in con.execute(
            "SELECT registry, trial_id, auto FROM classifications WHERE len(curated_fields) > 0"
        ).fetchall():
            _write(store, registry, trial_id, orjson.loads(auto), [])
        curated: dict[tuple[str, str], dict[str, Any]] = {}
        for o in overrides:
            keys = [k for k in by_trial.get(o.trial_id, []) if o.registry in (None, k[0])]
            if not keys:
                outcomes.append(Outcome(o, o.line, "unknown_trial", f"{path}:{o.line}: no trial {o.trial_id}"))
                continue
            for key in keys:
                curated.setdefault(key, {})[o.field] = o.parsed_value()
                updated = current[key][1]
                if o.date is not None and updated is not None and updated > o.date:
                    msg = f"{o.trial_id} was updated by the registry on {updated}, after this override ({o.date})"
                    outcomes.append(Outcome(o, o.line, "stale", msg))
                else:
                    outcomes.append(Outcome(o, o.line, "applied", ""))
        for (registry, trial_id), fields in curated.items():
            auto = orjson.loads(current[(registry, trial_id)][0])
            _write(store, registry, trial_id, {**auto, **fields}, sorted(fields))
        stamp = now()
        log_rows = [
            [
                run_id,
                f"{path} ({file_hash})",
                out.line,
                out.override.registry if out.override else None,
                out.override.trial_id if out.override else None,
                out.override.field if out.override else None,
                out.override.value if out.override else None,
                out.override.reason if out.override else None,
                out.override.curator if out.override else None,
                out.override.date if out.override else None,
                out.status,
                out.message,
                stamp,
            ]
            for out in outcomes
        ]
        if log_rows:  # an empty file is valid: it removes every override
            con.executemany("INSERT INTO curation_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", log_rows)
        con.execute("INSERT OR REPLACE INTO settings VALUES ('curation_file', ?)", [str(path.resolve())])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return outcomes


def _write(store: Store, registry: str, trial_id: str, values: dict[str, Any], curated: list[str]) -> None:
    assignments = ", ".join(f'"{f}" = ?' for f in CURATABLE)
    store.con.execute(
        f"UPDATE classifications SET {assignments}, curated_fields = ? WHERE registry = ? AND trial_id = ?",
        [*(values.get(f) for f in CURATABLE), curated, registry, trial_id],
    )


def remembered_curation_file(store: Store) -> Path | None:
    """The curation file last applied to this database, re-applied after every re-classification."""
    row = store.con.execute("SELECT value FROM settings WHERE key = 'curation_file'").fetchone()
    return Path(row[0]) if row and row[0] else None
