"""The explorer's state lives in the URL: counting options, filters and table settings as query parameters.

Every page reads its state from the query string and every link and form
writes it back, so a view can be bookmarked or sent, and the browser's back
and forward buttons move between views.  Parameters (repeat one for several
values; values a page does not know are reported, never guessed):

* counting: ``as_of`` (YYYY-MM-DD), ``focus`` (country), ``per`` (trial or
  registration), ``count_registry`` (count only these registries' records),
  ``relation`` (therapy, follow_up, ancillary, none);
* filters: one parameter per facet (``target``, ``strategy``, ``platform``,
  ``branch``, ``disease``, ``phase``, ``status``, ``country``, ``region``,
  ``sponsor``, ``sponsor_type``, ``registry``, ``source``, ``confidence``,
  ``curated``), and ``from`` / ``to`` for the registration date;
* the trial table: ``cols``, ``sort``, ``desc``, ``page``, ``size``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from cartatlas.analysis.filters import DEFAULT_COLUMNS, FACETS, TABLE_COLUMNS, TrialFilter
from cartatlas.analysis.groups import focus_code
from cartatlas.classify.types import RELATIONS
from cartatlas.dates import parse_date
from cartatlas.explorer.state import Counting

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_RELATIONS = ("follow_up", "therapy")


class BadQuery(ValueError):
    """A query parameter the explorer cannot use; the message names it."""


class Params:
    """Query parameters as lists (what Starlette's QueryParams and a plain dict both give)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self.values: dict[str, list[str]] = {}
        for key, value in items:
            value = value.strip()
            if value:
                self.values.setdefault(key, []).append(value)

    def all(self, key: str) -> list[str]:
        return self.values.get(key, [])

    def one(self, key: str) -> str | None:
        got = self.values.get(key)
        return got[-1] if got else None


def _date(params: Params, key: str) -> dt.date | None:
    text = params.one(key)
    if text is None:
        return None
    date = parse_date(text)
    if date is None:
        raise BadQuery(f"{key}={text!r} is not a date (use YYYY-MM-DD)")
    return date


@dataclass(frozen=True)
class TableSettings:
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    sort: str = "registered"
    descending: bool = True
    page: int = 1
    size: int = 50


@dataclass(frozen=True)
class View:
    """Everything the URL says: how to count, which trials, and how to show them."""

    counting: Counting = field(default_factory=Counting)
    where: TrialFilter = field(default_factory=TrialFilter)
    table: TableSettings = field(default_factory=TableSettings)

    def pairs(self, *, table: bool = False) -> list[tuple[str, str]]:
        """The view as query parameters, defaults left out (so equal views have equal URLs)."""
        out: list[tuple[str, str]] = []
        c = self.counting
        if c.as_of:
            out.append(("as_of", c.as_of.isoformat()))
        if c.focus != "CN":
            out.append(("focus", c.focus))
        if c.per != "trial":
            out.append(("per", c.per))
        out += [("count_registry", r) for r in c.registries]
        if tuple(sorted(c.relations)) != DEFAULT_RELATIONS:
            out += [("relation", r) for r in c.relations]
        for name in FACETS:
            out += [(name, v) for v in self.where.chosen(name)]
        if self.where.registered_from:
            out.append(("from", self.where.registered_from.isoformat()))
        if self.where.registered_to:
            out.append(("to", self.where.registered_to.isoformat()))
        if table:
            t = self.table
            if t.columns != DEFAULT_COLUMNS:
                out += [("cols", col) for col in t.columns]
            if (t.sort, t.descending) != ("registered", True):
                out.append(("sort", t.sort))
                if t.descending:
                    out.append(("desc", "1"))
            if t.size != 50:
                out.append(("size", str(t.size)))
            if t.page != 1:
                out.append(("page", str(t.page)))
        return out

    def query(self, *, table: bool = False, **extra: str) -> str:
        """The query string; ``extra`` parameters replace the view's own of the same name (empty ones drop it)."""
        pairs = [(k, v) for k, v in self.pairs(table=table) if k not in extra]
        return urlencode(pairs + [(k, v) for k, v in extra.items() if v])

    def with_table(self, **changes: object) -> View:
        """The view with other table settings (sort, page, size...)."""
        return replace(self, table=replace(self.table, **changes))  # type: ignore[arg-type]

    def toggled(self, facet: str, value: str) -> View:
        """The view with one facet value added, or removed if it was chosen."""
        chosen = set(self.where.chosen(facet))
        chosen ^= {value}
        values = {k: v for k, v in self.where.values}
        values[facet] = tuple(sorted(chosen))
        where = TrialFilter.of(
            {k: v for k, v in values.items() if v},
            registered_from=self.where.registered_from,
            registered_to=self.where.registered_to,
        )
        return replace(self, where=where, table=replace(self.table, page=1))

    def only(self, **facets: str) -> View:
        """The view with these facets set to one value each (a chart bar's link)."""
        values = {k: v for k, v in self.where.values}
        for name, value in facets.items():
            values[name] = (value,)
        where = TrialFilter.of(
            values, registered_from=self.where.registered_from, registered_to=self.where.registered_to
        )
        return replace(self, where=where, table=replace(self.table, page=1))


def parse(items: Iterable[tuple[str, str]] | Mapping[str, str]) -> View:
    """The view a query string describes; BadQuery names the first parameter that cannot be used."""
    params = Params(items.items() if isinstance(items, Mapping) else items)
    focus_text = params.one("focus") or "CN"
    try:
        focus = focus_code(focus_text)
    except ValueError as exc:
        raise BadQuery(f"focus={focus_text!r}: {exc}") from exc
    per = params.one("per") or "trial"
    if per not in ("trial", "registration"):
        raise BadQuery(f"per={per!r}: use trial or registration")
    relations = tuple(sorted(set(params.all("relation")))) or DEFAULT_RELATIONS
    unknown = [r for r in relations if r not in RELATIONS]
    if unknown:
        raise BadQuery(f"relation={unknown[0]!r}: use {', '.join(RELATIONS)}")
    counting = Counting(
        as_of=_date(params, "as_of"),
        focus=focus,
        per=per,
        registries=tuple(
            sorted({r.casefold() for v in params.all("count_registry") for r in re.split(r"[\s,]+", v) if r})
        ),
        relations=relations,
    )
    where = TrialFilter.of(
        {name: params.all(name) for name in FACETS if params.all(name)},
        registered_from=_date(params, "from"),
        registered_to=_date(params, "to"),
    )
    columns = tuple(dict.fromkeys(c for c in params.all("cols") if c in TABLE_COLUMNS)) or DEFAULT_COLUMNS
    columns = ("trial", *(c for c in columns if c != "trial"))  # every row starts with the link to its trial
    sort = params.one("sort") or "registered"
    if sort not in TABLE_COLUMNS:
        raise BadQuery(f"sort={sort!r}: choose one of {', '.join(TABLE_COLUMNS)}")
    descending = params.one("desc") in ("1", "true", "yes") if params.one("sort") else True
    try:
        page = max(1, int(params.one("page") or 1))
        size = int(params.one("size") or 50)
    except ValueError as exc:
        raise BadQuery("page and size are whole numbers") from exc
    if size not in PAGE_SIZES:
        raise BadQuery(f"size={size}: choose one of {', '.join(map(str, PAGE_SIZES))}")
    return View(counting, where, TableSettings(columns, sort, descending, page, size))
