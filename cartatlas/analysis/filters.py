"""Counted trials, filtered: facets, filtered landscapes and trial tables from one counting.

``landscape_units`` decides which trials count as of a date, and is the
expensive step (registration dates, status as of the date, locations).  A
``CountedTrials`` holds its result once and answers many questions about
subsets of it cheaply: which trials pass a ``TrialFilter``, how many trials
each value of each facet would leave (facet counts), every count of the
report for the subset (``landscape``, the report's own counting code run on
the subset), and the rows of a sortable trial table.  The explorer keeps one
per database version and counting options; a notebook can use it directly
through ``Atlas.counted``.

Filters combine as analysts expect: the values chosen in one facet are
alternatives (BCMA *or* GPRC5D), different facets all apply (China *and*
phase 1).  A facet's counts are computed with every other facet's choice
applied but not its own, so they say what ticking one more value would add.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cartatlas.analysis.landscape import Landscape, LandscapeOptions, landscape_of_units
from cartatlas.analysis.trial_record import LABEL_COLUMNS
from cartatlas.knowledge import labels
from cartatlas.normalise.countries import country_name
from cartatlas.store.db import Store


@dataclass(frozen=True)
class Facet:
    """A way to filter counted trials: the units column it reads and how a value is shown."""

    name: str
    label: str
    column: str
    many: bool  # the column holds a list per trial (a trial can have several targets)
    describe: Callable[[str], str] = str


def _curated(value: Any) -> list[str]:
    return ["curated" if value else "not curated"]


def _registries(value: Any) -> list[str]:
    return sorted({str(r).split(":", 1)[0] for r in _items(value)})


#: Derived facet values: the column holds something else (curated fields, registration keys).
_DERIVED: dict[str, Callable[[Any], list[str]]] = {"curated": _curated, "registry": _registries}


def _label_facet(key: str) -> Facet:
    """The facet a label declares with key ``key`` (``knowledge/labels.py``)."""
    label = next(la for la in labels.LABELS if la.facet == key)
    return Facet(key, label.display, label.name, label.is_list)


#: Facets of labels, in the explorer's order; a label declared with a facet not named here comes after them.
_LABEL_FACETS_FIRST = ("target", "strategy", "platform", "branch", "disease")
_LABEL_FACETS_LAST = ("source", "confidence")
_LABEL_FACETS_NEW = tuple(
    la.facet
    for la in labels.LABELS
    if la.facet is not None and la.facet not in _LABEL_FACETS_FIRST + _LABEL_FACETS_LAST
)

FACETS: dict[str, Facet] = {
    f.name: f
    for f in (
        *map(_label_facet, _LABEL_FACETS_FIRST),
        Facet("phase", "Phase", "phase_category", False),
        Facet("status", "Status", "status_as_of", False, lambda v: v.replace("_", " ").capitalize()),
        Facet("country", "Country", "country_codes", True, lambda c: country_name(c) or c),
        Facet("region", "Province / state (focus)", "focus_regions", True),
        Facet("sponsor", "Sponsor", "lead_sponsor", False),
        Facet("sponsor_type", "Sponsor type", "sponsor_type", False),
        Facet("registry", "Registered in", "registrations", True),
        *map(_label_facet, _LABEL_FACETS_LAST + _LABEL_FACETS_NEW),
        Facet("curated", "Curated", "curated_fields", False),
    )
}


@dataclass(frozen=True)
class TrialFilter:
    """Which counted trials to keep: chosen values per facet, a registration date range, explicit ids.

    Hashable, so it can key a cache; build one with ``TrialFilter.of``.
    """

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    registered_from: dt.date | None = None
    registered_to: dt.date | None = None
    ids: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        values: Mapping[str, Iterable[str]] | None = None,
        *,
        registered_from: dt.date | None = None,
        registered_to: dt.date | None = None,
        ids: Iterable[str] | None = None,
        **facets: Iterable[str],
    ) -> TrialFilter:
        """``TrialFilter.of(target=["BCMA", "GPRC5D"], country=["CN"], phase=["Phase 1"])``."""
        chosen: dict[str, set[str]] = {}
        for name, vals in [*(values or {}).items(), *facets.items()]:
            if name not in FACETS:
                raise ValueError(f"unknown facet {name!r}; choose from {', '.join(FACETS)}")
            items = [vals] if isinstance(vals, str) else list(vals)
            chosen.setdefault(name, set()).update(str(v) for v in items if str(v))
        packed = tuple(sorted((k, tuple(sorted(v))) for k, v in chosen.items() if v))
        return cls(packed, registered_from, registered_to, frozenset(ids) if ids is not None else None)

    def chosen(self, facet: str) -> tuple[str, ...]:
        return dict(self.values).get(facet, ())

    def without(self, facet: str) -> TrialFilter:
        return TrialFilter(
            tuple((k, v) for k, v in self.values if k != facet), self.registered_from, self.registered_to, self.ids
        )

    @property
    def is_empty(self) -> bool:
        return not self.values and self.registered_from is None and self.registered_to is None and self.ids is None


#: Columns of the trial table: key -> (heading, how a units row gives the cell).
def _join(values: Any) -> str:
    return "; ".join(str(v) for v in _items(values))


def _date(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else ""


def _number(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    source: str
    cell: Callable[[Any], Any]


def _label_column(key: str) -> Column:
    """The table column a label declares with key ``key`` (``knowledge/labels.py``)."""
    label = next(la for la in labels.LABELS if la.column == key)
    return Column(key, label.column_title or label.display, label.name, _join if label.is_list else _text)


#: Columns of labels declared after the explorer's table was laid out: after the older label columns.
_LABEL_COLUMNS_NEW = tuple(
    la.column
    for la in labels.LABELS
    if la.column is not None
    and la.column not in ("targets", "strategy", "platforms", "branch", "diseases", "source", "confidence")
)

TABLE_COLUMNS: dict[str, Column] = {
    c.key: c
    for c in (
        Column("trial", "Trial", "unit_id", _text),
        Column("registrations", "Registrations", "registrations", _join),
        Column("title", "Title", "brief_title", _text),
        Column("sponsor", "Sponsor", "lead_sponsor", _text),
        Column("sponsor_type", "Sponsor type", "sponsor_type", _text),
        Column("registered", "Registered", "registration_date", _date),
        Column("date_source", "Date from", "registration_date_source", _text),
        Column("status", "Status", "status_as_of", _text),
        Column("phase", "Phase", "phase_category", _text),
        *map(_label_column, ("targets", "strategy", "platforms", "branch", "diseases", "source")),
        Column("countries", "Countries", "country_codes", _join),
        Column("regions", "Provinces / states", "focus_regions", _join),
        Column("enrollment", "Enrolment", "enrollment", _number),
        *map(_label_column, ("confidence", *_LABEL_COLUMNS_NEW)),
        Column("curated", "Curated fields", "curated_fields", _join),
        Column("flags", "Flags", "flags", _join),
    )
}
DEFAULT_COLUMNS = ("trial", "title", "sponsor", "registered", "phase", "status", "targets", "countries")


def _none(value: Any) -> Any:
    """A missing value as the database gives it (pandas holds a missing text as NaN)."""
    return None if isinstance(value, float) and np.isnan(value) else value


def _items(value: Any) -> list[Any]:
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


@dataclass
class _FacetCodes:
    """One facet as (unit position, value code) pairs: a multi-valued facet has several per unit."""

    rows: np.ndarray
    codes: np.ndarray
    values: list[str]
    index: dict[str, int] = field(default_factory=dict)


class CountedTrials:
    """The trials one landscape counts, indexed for fast filtering, facet counts and tables."""

    def __init__(self, store: Store, options: LandscapeOptions, units: pd.DataFrame, notes: dict[str, Any]) -> None:
        self.store = store
        self.options = options
        # pandas' Arrow-backed strings are slow to iterate value by value, which the counting does a lot.
        self.units = units.reset_index(drop=True).astype({c: object for c in units.columns if units[c].dtype == "str"})
        if "registrations" not in self.units.columns:  # counted per registration: each unit is its own
            self.units["registrations"] = [
                [f"{r}:{t}"] for r, t in zip(self.units["registry"], self.units["trial_id"], strict=True)
            ]
        self.notes = notes
        self._facets = {name: self._index(facet) for name, facet in FACETS.items()}
        dates = [d if isinstance(d, dt.date) else None for d in self.units["registration_date"]]
        self._dates = np.array([np.datetime64(d, "D") if d else np.datetime64("NaT") for d in dates])
        self._positions = {u: i for i, u in enumerate(self.units["unit_id"])}
        self._sorted: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._single: dict[tuple[str, str], int] | None = None

    def __len__(self) -> int:
        return len(self.units)

    def _index(self, facet: Facet) -> _FacetCodes:
        derive = _DERIVED.get(facet.name)
        rows: list[int] = []
        codes: list[int] = []
        index: dict[str, int] = {}
        for i, value in enumerate(self.units[facet.column]):
            if derive is not None:
                vals = derive(value)
            elif facet.many:
                vals = [str(v) for v in _items(value)]
            else:
                vals = [str(value)] if value is not None and not (isinstance(value, float) and np.isnan(value)) else []
            for v in dict.fromkeys(vals):
                code = index.setdefault(v, len(index))
                rows.append(i)
                codes.append(code)
        return _FacetCodes(np.array(rows, dtype=np.int64), np.array(codes, dtype=np.int64), list(index), index)

    # -- filtering -------------------------------------------------------------------------

    def _facet_mask(self, name: str, chosen: tuple[str, ...]) -> np.ndarray:
        fc = self._facets[name]
        wanted = [fc.index[v] for v in chosen if v in fc.index]
        mask = np.zeros(len(self.units), dtype=bool)
        if wanted:
            mask[fc.rows[np.isin(fc.codes, wanted)]] = True
        return mask

    def mask(self, where: TrialFilter | None = None, *, skip: str | None = None) -> np.ndarray:
        """Which units pass ``where`` (ignoring the facet ``skip``: for that facet's own counts)."""
        mask = np.ones(len(self.units), dtype=bool)
        if where is None:
            return mask
        for name, chosen in where.values:
            if name != skip:
                mask &= self._facet_mask(name, chosen)
        if where.registered_from is not None:
            mask &= self._dates >= np.datetime64(where.registered_from, "D")
        if where.registered_to is not None:
            mask &= self._dates <= np.datetime64(where.registered_to, "D")
        if where.ids is not None:
            keep = np.zeros(len(self.units), dtype=bool)
            keep[[self._positions[u] for u in where.ids if u in self._positions]] = True
            mask &= keep
        return mask

    def select(self, where: TrialFilter | None = None) -> pd.DataFrame:
        """The units rows that pass the filter (the same columns as ``Atlas.units``)."""
        return self.units[self.mask(where)].reset_index(drop=True)

    def unit(self, unit_id: str) -> dict[str, Any] | None:
        """One counted unit's row, or None when the unit is not counted."""
        position = self._positions.get(unit_id)
        return None if position is None else dict(self.units.iloc[position])

    def registration_labels(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Labels of registrations that are counted alone (a unit of one registration), from memory.

        A trial page reads the rest of a registration from the database; the
        labels, evidence included, are here already.
        """
        if self._single is None:
            self._single = {
                (str(r), str(t)): i
                for i, (r, t, regs) in enumerate(
                    zip(self.units["registry"], self.units["trial_id"], self.units["registrations"], strict=True)
                )
                if len(regs) == 1
            }
        out = {}
        for key in keys:
            position = self._single.get(key)
            if position is not None:
                row = self.units.iloc[position]
                out[key] = {"registry": key[0], "trial_id": key[1], **{c: _none(row[c]) for c in LABEL_COLUMNS}}
        return out

    def count(self, where: TrialFilter | None = None) -> int:
        return int(self.mask(where).sum())

    def facets(self, where: TrialFilter | None = None) -> dict[str, list[tuple[str, str, int]]]:
        """Per facet: (value, label, trials) for every value, most trials first.

        Each facet is counted under every other facet's choice, so a count is
        how many trials the current selection would have with that value added
        (or, for a chosen value, how many it contributes).
        """
        out: dict[str, list[tuple[str, str, int]]] = {}
        for name, facet in FACETS.items():
            fc = self._facets[name]
            base = self.mask(where, skip=name)
            counts = np.bincount(fc.codes[base[fc.rows]], minlength=len(fc.values))
            chosen = set(where.chosen(name)) if where else set()
            order = sorted(range(len(fc.values)), key=lambda c: (-counts[c], fc.values[c]))
            out[name] = [
                (fc.values[c], facet.describe(fc.values[c]), int(counts[c]))
                for c in order
                if counts[c] or fc.values[c] in chosen
            ]
        return out

    # -- counting --------------------------------------------------------------------------

    def landscape(self, where: TrialFilter | None = None, *, store: Store | None = None) -> Landscape:
        """Every count of the report for the trials that pass the filter (the report's own code).

        ``store`` is the connection to count publications on (default the one
        these trials were read with; a thread other than that one passes its own).
        """
        units = self.select(where)
        notes = dict(self.notes)
        registrations = self.notes["registrations"]
        if self.options.per == "trial":
            keep = registrations["cluster_id"].isin(set(units["cluster_id"]))
        else:
            wanted = set(zip(units["registry"], units["trial_id"], strict=True))
            keep = pd.Series(
                [k in wanted for k in zip(registrations["registry"], registrations["trial_id"], strict=True)],
                index=registrations.index,
                dtype=bool,
            )
        notes["registrations"] = registrations[keep].reset_index(drop=True)
        return landscape_of_units(store or self.store, self.options, units, notes)

    # -- the trial table ---------------------------------------------------------------------

    def _order(self, mask: np.ndarray, sort: str | None, descending: bool) -> np.ndarray:
        """Positions of the units that pass, sorted by a table column (empty cells last, ties stable)."""
        positions = np.flatnonzero(mask)
        if not sort or not len(positions):
            return positions
        key = (mask.tobytes(), sort, descending)
        if key in self._sorted:
            self._sorted.move_to_end(key)
            return self._sorted[key]
        column = TABLE_COLUMNS[sort]
        cells = [column.cell(v) for v in self.units[column.source].take(positions)]
        present = np.array([c not in (None, "") for c in cells], dtype=bool)
        keys = [c.casefold() if isinstance(c, str) else c for c, p in zip(cells, present, strict=True) if p]
        ranked = np.array(sorted(range(len(keys)), key=keys.__getitem__, reverse=descending), dtype=np.int64)
        order = np.concatenate([positions[present][ranked], positions[~present]])
        self._sorted[key] = order
        while len(self._sorted) > 32:
            self._sorted.popitem(last=False)
        return order

    def table(
        self,
        where: TrialFilter | None = None,
        columns: Iterable[str] = DEFAULT_COLUMNS,
        *,
        sort: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, pd.DataFrame]:
        """(rows in all, one page of them) with the chosen columns as plain cells, sorted; empty cells last.

        Downloads use the same call without ``limit``, so a file holds exactly
        the table's rows and columns.
        """
        keys = [c for c in columns if c in TABLE_COLUMNS] or list(DEFAULT_COLUMNS)
        if sort is not None and sort not in TABLE_COLUMNS:
            raise ValueError(f"cannot sort by {sort!r}; choose from {', '.join(TABLE_COLUMNS)}")
        order = self._order(self.mask(where), sort, descending)
        page = order[offset : None if limit is None else offset + limit]
        data = {
            TABLE_COLUMNS[k].label: [TABLE_COLUMNS[k].cell(v) for v in self.units[TABLE_COLUMNS[k].source].take(page)]
            for k in keys
        }
        frame = pd.DataFrame(data, columns=[TABLE_COLUMNS[k].label for k in keys])
        if "Enrolment" in frame.columns:
            frame["Enrolment"] = frame["Enrolment"].astype("Int64")
        return len(order), frame
