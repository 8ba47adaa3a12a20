"""Curators' corrections: a plain CSV under version control, applied after the rules.

File format (one override per line; extra columns are ignored)::

    trial_id,field,value,reason,curator,date
    NCT03290430,targets,CD19;CD22,"tandem CAR named in the protocol",jdoe,2026-11-20
    NCT04324996,relation,therapy,"CAR-NK cells are the studied product",jdoe,2026-11-20

``value`` holds a list as ``;``-separated items for list fields (targets,
platforms, disease_entity, combinations, products).  A row with a blank
``value`` is not filled in and is skipped: ``cartatlas review --out`` writes the
review queue in this format, one row per label to check, for a curator to fill
in.  An optional ``registry`` column disambiguates ids used by two registries.
Rows whose field is ``link`` are cross-registry link decisions and belong to
the linking step, not here.

A line is refused rather than guessed at (``docs/curation.md``):

- a value that holds nothing (``;``): a blank cell is never read as "empty
  this label", so emptying a list field is written ``(none)``;
- two lines for the same trial and field: neither is applied, and each names
  the other (which one the curator meant is theirs to say);
- a target or product name that the knowledge tables do not list is applied
  but flagged ``new_name`` with its line, so that a typo or a synonym
  (``Kymriah`` for ``tisagenlecleucel``) is seen, and a real new name can be
  added to the table.

Every application starts from the rules' own values (kept in
``classifications.auto``), so removing a line from the file undoes it, and
re-running the classifier never loses an override.  An override is *stale*
when the registry updated the record after the curator's date: it is still
applied, and listed so a curator can look again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cartatlas.classify import types
from cartatlas.classify.knowledge import knowledge, normalise_term, split_list
from cartatlas.curation_file import curation_rows
from cartatlas.dates import parse_date
from cartatlas.knowledge import labels, read_table
from cartatlas.store.classifications import CURATABLE, LIST_FIELDS
from cartatlas.store.db import Store, now, rollback

log = logging.getLogger(__name__)

#: The closed vocabulary of every curatable label that has one (``knowledge/labels.py``).
VOCABULARIES: dict[str, frozenset[str]] = {name: frozenset(vocab) for name, vocab in labels.VOCABULARIES.items()}
#: Fields handled by other pipeline steps, passed over here without complaint.
OTHER_STEPS = frozenset({"link"})
#: The value that empties a list field.  An empty cell is refused: it is far more often a value
#: forgotten than a label meant to be empty.
NONE_MARKER = "(none)"


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
            items = [v.strip() for v in self.value.replace("|", ";").split(";") if v.strip()]
            return [] if items == [NONE_MARKER] else items
        return self.value.strip()


@dataclass(frozen=True)
class Outcome:
    override: Override | None
    line: int
    #: applied | stale | unknown_trial | invalid | other_step, or new_name: a warning beside an applied line.
    status: str
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
    overrides, clashes = _without_clashes(path, overrides)
    problems.extend(clashes)
    for o in overrides:
        problems.extend(Outcome(o, o.line, "new_name", f"{path}:{o.line}: {note}") for note in _new_names(o))
    return overrides, problems


def _without_clashes(path: Path, overrides: list[Override]) -> tuple[list[Override], list[Outcome]]:
    """Overrides of a trial's field that no other line also overrides, and an outcome for each that clashes.

    Two lines for one field used to be applied in turn, the last silently
    winning; which one the curator meant is theirs to say.  Lines for the
    same id in two registries (``registry`` column) do not clash.
    """
    groups: dict[tuple[str, str], list[Override]] = {}
    for o in overrides:
        groups.setdefault((o.trial_id, o.field), []).append(o)
    clashing: dict[int, list[int]] = {}
    for group in groups.values():
        for a in group:
            others = [b.line for b in group if b is not a and _same_record(a.registry, b.registry)]
            if others:
                clashing[a.line] = others
    kept = [o for o in overrides if o.line not in clashing]
    outcomes = []
    for o in overrides:
        if o.line in clashing:
            lines = ", ".join(map(str, clashing[o.line]))
            message = (
                f"{path}:{o.line}: {o.trial_id} {o.field} is also overridden on line {lines}; "
                "one line per trial and field (none of them is applied)"
            )
            outcomes.append(Outcome(o, o.line, "invalid", message))
    return kept, outcomes


def _same_record(a: str | None, b: str | None) -> bool:
    """Two lines' registries can name one record: the same, or either left blank."""
    return a is None or b is None or a == b


@functools.cache
def _names() -> tuple[frozenset[str], dict[str, str], frozenset[str], dict[str, str]]:
    """Antigen symbols and product names of the knowledge tables, and their synonyms (folded) -> the table's name."""
    kb = knowledge()
    antigen_synonyms = {
        normalise_term(syn): row["symbol"].strip()
        for row in read_table("antigens.csv")
        for syn in [row["symbol"], *split_list(row.get("synonyms"))]
    }
    product_aliases = {
        normalise_term(alias): row["name"].strip()
        for row in read_table("products.csv")
        for alias in [row["name"], *split_list(row.get("aliases"))]
    }
    return frozenset(kb.antigens), antigen_synonyms, frozenset(kb.products), product_aliases


def _new_names(o: Override) -> list[str]:
    """A warning for each target or product the knowledge tables do not list by that name."""
    antigens, antigen_synonyms, products, product_aliases = _names()
    if o.field == "targets":
        known, synonyms, table, what = antigens | {types.UNKNOWN_TARGET}, antigen_synonyms, "antigens.csv", "target"
    elif o.field == "products":
        known, synonyms, table, what = products, product_aliases, "products.csv", "product"
    else:
        return []
    notes = []
    for value in o.parsed_value():
        if value in known:
            continue
        canonical = synonyms.get(normalise_term(value))
        hint = f"; the table's name for it is {canonical!r}" if canonical and canonical != value else ""
        notes.append(
            f"{what} {value!r} is not a name in cartatlas/knowledge/{table}{hint}: "
            "applied as a new name (check the spelling, or add it to the table)"
        )
    return notes


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
    if o.field in LIST_FIELDS:
        items = [v.strip() for v in o.value.replace("|", ";").split(";") if v.strip()]
        if not items:
            return f"value is empty; to empty {o.field}, write {NONE_MARKER}"
        if NONE_MARKER in items and len(items) > 1:
            return f"{NONE_MARKER} empties {o.field} and stands alone, not beside other values"
    elif not o.value:
        return f"value is empty; {o.field} takes one of {sorted(VOCABULARIES.get(o.field, ()))}"
    elif o.value == NONE_MARKER:
        return f"{NONE_MARKER} empties list fields only; {o.field} takes one of {sorted(VOCABULARIES.get(o.field, ()))}"
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
