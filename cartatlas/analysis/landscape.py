"""The landscape: which trials count as of a date, and every count a review reports.

``landscape_units`` gives one row per counted unit (a trial, or with
``per="registration"`` a registry record) with everything a count needs;
``compute_landscape`` turns those rows into named tables.  Every row of every
table carries ``trial_ids``, the units behind its number, so any figure can
be traced back to trials and their evidence.  The CLI report and the Python
API both call these functions, so their numbers cannot differ.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from cartatlas.analysis.groups import CountryGroups, load_scheme
from cartatlas.analysis.registration import ESTIMATED_SOURCES, registration_dates
from cartatlas.knowledge import labels, read_table, registries
from cartatlas.normalise import format_spec
from cartatlas.normalise.countries import country_name
from cartatlas.store.db import Store

log = logging.getLogger(__name__)

LANDSCAPE_RELATIONS = frozenset({"therapy", "follow_up"})
NO_LOCATION = "No location given"
UNKNOWN_REGION = "Unknown region"
UNKNOWN_CITY = "Unknown city"

#: The disease branches whose targets and timelines the report shows, by the short name of their tables
#: (``focus_targets_heme``...): the classification's tokens.
TARGET_BRANCHES: dict[str, str] = {"heme": "heme-malignancy", "solid": "solid-tumor", "autoimmune": "autoimmune"}
#: How many of the focus country's most frequent targets get a timeline (``focus_target_years``).
TIMELINE_TARGETS = 8

#: Registry preference when one trial has several registrations (its first, fullest record wins).
REGISTRY_PREFERENCE = registries.precedence()  # knowledge/registries.csv

ACTIVE_STATUSES = frozenset(
    {"RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "ENROLLING_BY_INVITATION", "AVAILABLE"}
)
PHASE_ORDER = ("Phase 1", "Phase 2", "Phase 3", "Phase 4", "Not applicable")
#: Tables whose status or phase a trial may take from a version later than the as-of date.
AS_OF_TABLES = ("phase_by_group", "phase_by_group_active", "status_by_group", "focus_phase", "focus_registry_phases")


def not_known_label(as_of: dt.date) -> str:
    """The status bucket of trials whose status on ``as_of`` no stored version shows."""
    return f"Not known at {as_of.isoformat()}"


SPONSOR_TYPES = {
    "INDUSTRY": "Industry",
    "NIH": "Government",
    "FED": "Government",
    "OTHER_GOV": "Government",
    "OTHER": "Academic / hospital",
    "NETWORK": "Academic / hospital",
    "INDIV": "Academic / hospital",
    "UNKNOWN": "Academic / hospital",
}


@dataclass
class LandscapeOptions:
    """What to count.  Defaults follow the review: CAR therapy and follow-up trials, China focus."""

    as_of: dt.date | None = None
    focus: str = "CN"
    registries: list[str] | None = None
    groups: CountryGroups = field(default_factory=load_scheme)
    relations: frozenset[str] = LANDSCAPE_RELATIONS
    platforms: frozenset[str] | None = None
    per: Literal["trial", "registration"] = "trial"
    #: Count a trial whose only stored versions are later than ``as_of`` under its latest known status
    #: (with the caveat), rather than as "not known at" the date.
    latest_status: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "focus": self.focus,
            "focus_name": country_name(self.focus),
            "registries": self.registries or "all",
            "group_scheme": self.groups.scheme,
            "groups": {k: sorted(v) for k, v in self.groups.groups.items()},
            "relations": sorted(self.relations),
            "platforms": sorted(self.platforms) if self.platforms else "all",
            "per": self.per,
            "latest_status": self.latest_status,
        }


def phase_category(phases: Iterable[str] | None) -> str:
    """The lowest phase a trial is in (a phase 1/2 trial is a phase 1 trial, as reviews count)."""
    found = set(phases or ())
    if found & {"PHASE0", "EARLY_PHASE1", "PHASE1"}:
        return "Phase 1"
    for name in ("PHASE2", "PHASE3", "PHASE4"):
        if name in found:
            return f"Phase {name[-1]}"
    return "Not applicable"


def _has_table(store: Store, name: str) -> bool:
    row = store.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return bool(row and row[0])


#: Ordered, so that every table lists its rows in the same order from one run to the next (a join's order
#: is DuckDB's, which varied between runs of the same report).
_BASE_QUERY = """
SELECT t.registry, t.trial_id, {cluster} AS cluster_id, t.brief_title, t.official_title, t.lead_sponsor,
       t.lead_sponsor_class, t.sponsor_country, t.last_update_posted,
       t.phases, t.overall_status, t.countries, t.sites, t.enrollment, t.enrollment_type, t.start_date,
       t.conditions, t.version_id,
       {labels}, c.curated_fields, c.flags,
       CAST(c.evidence AS VARCHAR) AS evidence, CAST(timezone('UTC', v.fetched_at) AS DATE) AS fetched_on
FROM trials t
JOIN classifications c USING (registry, trial_id)
LEFT JOIN raw_records v ON v.version_id = t.version_id
{cluster_join}
WHERE c.relation IN (SELECT UNNEST($relations)) {registry_filter}
ORDER BY t.registry, t.trial_id
"""


_LIST_COLUMNS = (
    "phases", "countries", "sites", *(label.name for label in labels.LABELS if label.is_list),
    "curated_fields", "flags", "conditions",
)  # fmt: skip
#: Lists that registrations of one trial pool (the rest come from the preferred registration).
_UNION_COLUMNS = (
    "country_codes", "focus_regions", "focus_cities",
    *(label.name for label in labels.LABELS if label.merge == "union"),
)  # fmt: skip


def landscape_units(store: Store, options: LandscapeOptions) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per counted unit as of ``options.as_of``, and notes on how it was counted."""
    clusters = _has_table(store, "trial_clusters")
    query = _BASE_QUERY.format(
        labels=", ".join(f"c.{label.name}" for label in labels.LABELS),
        cluster="coalesce(k.cluster_id, t.trial_id)" if clusters else "t.trial_id",
        cluster_join="LEFT JOIN trial_clusters k USING (registry, trial_id)" if clusters else "",
        registry_filter="AND t.registry IN (SELECT UNNEST($registries))" if options.registries else "",
    )
    params: dict[str, Any] = {"relations": sorted(options.relations)}
    if options.registries:
        params["registries"] = options.registries
    # Dates stay datetime.date (pandas would make them Timestamps, which don't compare with dates).
    frame = store.arrow(query, params).to_pandas(date_as_object=True)
    for column in _LIST_COLUMNS:  # Arrow lists arrive as numpy arrays; plain lists compare and hash sanely
        frame[column] = frame[column].map(lambda v: [] if v is None else list(v))
    unclassified = store.con.execute(
        "SELECT count(*) FROM trials t LEFT JOIN classifications c USING (registry, trial_id) WHERE c.trial_id IS NULL"
    ).fetchone()
    notes: dict[str, Any] = {"unclassified_trials": int(unclassified[0]) if unclassified else 0}
    if options.platforms:
        wanted = options.platforms
        keep = _mask(frame["platforms"], lambda ps: bool(set(_list(ps)) & wanted))
        frame = frame[keep]
    dates, anchors = registration_dates(store)
    frame = frame.merge(dates, on=["registry", "trial_id"], how="left", validate="one_to_one")
    notes["id_date_calibration_anchors"] = anchors
    as_of = options.as_of or dt.date.today()
    undated = frame["registration_date"].isna()
    notes["undated_units"] = sorted(frame.loc[undated, "trial_id"])
    frame = frame[~undated]
    notes.update(_dates_near(frame, as_of, options.per))
    frame = frame[_mask(frame["registration_date"], lambda d: d <= as_of)]
    frame = _status_as_of(store, frame, as_of, options.latest_status)
    frame = _locate(frame, options)
    notes["date_sources"] = dict(Counter(frame["registration_date_source"]))
    notes["as_of_sources"] = dict(Counter(frame["as_of_source"]))
    notes["registrations"] = frame[
        ["registry", "trial_id", "cluster_id", "in_focus", "phases_as_of", "targets", "as_of_source"]
    ].reset_index(drop=True)
    if options.per == "trial":
        frame = _merge_registrations(frame, options)
    frame = frame.reset_index(drop=True)
    frame["unit_id"] = frame["cluster_id"] if options.per == "trial" else frame["trial_id"]
    return frame, notes


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, float) and pd.isna(value):
        return []
    return list(value)


def _dates_near(frame: pd.DataFrame, as_of: dt.date, per: str) -> dict[str, list[str]]:
    """Trials whose estimated date could lie on the other side of ``as_of`` (the report says how many).

    ``dates_may_be_earlier``: dated after ``as_of`` (so not counted), though
    the evidence allows a date on or before it; ``dates_may_be_later``:
    counted, though the evidence allows a date after it.
    """
    unit = frame["cluster_id"] if per == "trial" else frame["trial_id"]
    estimated = frame["registration_date_source"].isin(ESTIMATED_SOURCES)
    after = _mask(frame["registration_date"], lambda d: d > as_of)
    could_be_before = _mask(frame["registration_date_earliest"], lambda d: d is None or pd.isna(d) or d <= as_of)
    could_be_after = _mask(frame["registration_date_latest"], lambda d: d is None or pd.isna(d) or d > as_of)
    uncertain = estimated & could_be_after
    return {
        "dates_may_be_earlier": sorted(set(unit[estimated & after & could_be_before]) - set(unit[~after])),
        "dates_may_be_later": sorted(set(unit[~after & uncertain]) - set(unit[~after & ~uncertain])),
    }


def _mask(series: pd.Series, test: Any) -> pd.Series:
    """A boolean filter from a per-value test; stays boolean on empty frames (pandas would not)."""
    return series.map(test).astype(bool)


def _known(targets: Any) -> list[str]:
    return [t for t in _list(targets) if t != "unknown"]


def _status_as_of(store: Store, frame: pd.DataFrame, as_of: dt.date, latest_status: bool) -> pd.DataFrame:
    """Status and phases as the registry showed them on ``as_of``, as far as the stored versions tell.

    ``as_of_source`` says which version they come from: ``latest`` (the
    current version was already current on that date), ``stored version`` (an
    older stored version was), or ``later version`` (every stored version was
    updated after that date, or carries no update date).

    A status is known on the date (``status_known``) when it comes from a
    version current on that date, unless it is ClinicalTrials.gov's
    ``UNKNOWN``: the registry shows that status for a record not verified for
    two years, without any update of the record, so a version fetched after the
    date showing it says nothing of the status on the date.  A status not known
    is None in ``status_as_of`` unless ``latest_status`` asks for the latest
    known status.  Phase is taken from the later version all the same (a
    registered phase rarely changes; the report says how many phases come from
    a later version and how often the phase changed where both are stored).
    """
    frame = frame.copy()
    frame["status_latest"] = frame["overall_status"]
    status_col = list(frame["overall_status"])
    phase_col = list(frame["phases"])
    fetched = [d if isinstance(d, dt.date) else None for d in frame["fetched_on"]]
    sources = ["latest"] * len(frame)
    versions = [f"latest, of {d}" if isinstance(d, dt.date) else "latest" for d in frame["last_update_posted"]]
    later = _mask(frame["last_update_posted"], lambda d: not isinstance(d, dt.date) or d > as_of)
    for i in map(int, np.flatnonzero(later.to_numpy())):
        updated = frame["last_update_posted"].iloc[i]
        sources[i] = "later version"
        versions[i] = f"later version, of {updated if isinstance(updated, dt.date) else 'no stated date'}"
    ids = frame.loc[later, ["registry", "trial_id"]]
    if len(ids):
        rows = store.con.execute(
            """
            SELECT registry, record_id, format, payload, CAST(timezone('UTC', fetched_at) AS DATE) FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY registry, record_id
                                             ORDER BY record_updated DESC, version_id DESC) AS rn
                FROM raw_records
                WHERE record_updated <= ? AND (registry, record_id) IN
                      (SELECT (UNNEST(?), UNNEST(?)))
            ) WHERE rn = 1
            """,
            [as_of, list(ids["registry"]), list(ids["trial_id"])],
        ).fetchall()
        positions = {key: i for i, key in enumerate(zip(frame["registry"], frame["trial_id"], strict=True))}
        for registry, record_id, fmt, payload, fetched_on in rows:
            spec = format_spec(fmt)
            try:
                trial = dict(spec.to_trial(orjson.loads(payload) if spec.is_json else payload))
            except Exception:  # an old version that no longer normalises tells nothing
                log.debug("cannot normalise old version of %s", record_id)
                continue
            i = positions[(registry, record_id)]
            status_col[i] = trial.get("overall_status")
            phase_col[i] = trial.get("phases")
            fetched[i] = fetched_on
            sources[i] = "stored version"
            versions[i] = f"version of {trial.get('last_update_posted')}"
    known = []
    for i, source in enumerate(sources):
        seen = fetched[i]
        shown_later = status_col[i] == "UNKNOWN" and (seen is None or seen > as_of)
        known.append(source != "later version" and not shown_later)
        if shown_later and source != "later version":
            versions[i] += f"; status UNKNOWN as shown on {seen or 'a later day'}"
    frame["as_of_source"] = sources
    frame["as_of_version"] = versions
    frame["status_known"] = known
    frame["status_as_of"] = [
        status if ok or latest_status else None for status, ok in zip(status_col, known, strict=True)
    ]
    frame["phases_as_of"] = phase_col
    frame["phase_category"] = frame["phases_as_of"].map(lambda p: phase_category(_list(p)))
    # Where an older version was used: did the latest version move the trial to another phase category?
    frame["phase_changed_later"] = [
        src == "stored version" and phase_category(_list(latest)) != category
        for src, latest, category in zip(sources, frame["phases"], frame["phase_category"], strict=True)
    ]
    frame["sponsor_type"] = frame["lead_sponsor_class"].map(
        lambda c: SPONSOR_TYPES.get(str(c), "Academic / hospital") if c is not None else "Academic / hospital"
    )
    return frame


def _locate(frame: pd.DataFrame, options: LandscapeOptions) -> pd.DataFrame:
    """Groups of each unit (by site countries, else sponsor country) and regions in the focus country."""
    frame = frame.copy()
    focus_members = options.groups.groups.get(options.groups.group_of_country(options.focus), frozenset())
    location_source: list[str] = []
    codes_col: list[list[str]] = []
    regions_col: list[list[str]] = []
    cities_col: list[list[tuple[str, str]]] = []
    for countries, sites, sponsor in zip(frame["countries"], frame["sites"], frame["sponsor_country"], strict=True):
        codes = [c for c in _list(countries) if c]
        source = "sites"
        if not codes:
            known = isinstance(sponsor, str) and bool(sponsor)  # a missing value may arrive as NaN
            codes = [sponsor] if known else []
            source = "sponsor name" if known else "none"
        codes_col.append(codes)
        location_source.append(source)
        regions: list[str] = []
        cities: list[tuple[str, str]] = []
        for site in _list(sites):
            code = site.get("country_code")
            if code == options.focus:
                name = site.get("region") or UNKNOWN_REGION
            elif code in focus_members:
                name = country_name(code) or code  # Taiwan, Hong Kong... as regions of the focus group
            else:
                continue
            if name not in regions:
                regions.append(name)
            # A city with its region: two cities of one name in two provinces stay apart.
            city = (site.get("city_normalised") or UNKNOWN_CITY, name)
            if city not in cities:
                cities.append(city)
        regions_col.append(regions)
        cities_col.append(cities)
    frame["country_codes"] = codes_col
    frame["location_source"] = location_source
    frame["focus_regions"] = regions_col
    frame["focus_cities"] = pd.Series(cities_col, index=frame.index, dtype=object)
    return _group(frame, options)


def _group(frame: pd.DataFrame, options: LandscapeOptions) -> pd.DataFrame:
    """Country groups of each unit from its countries, and whether it is in the focus."""
    codes_col = [_list(codes) for codes in frame["country_codes"]]
    groups_col = [options.groups.groups_of(codes) or [NO_LOCATION] for codes in codes_col]
    frame["groups"] = groups_col
    # The focus is the focus country's group when it has one (China with Taiwan, as in the review).
    focus_group = options.groups.group_of_country(options.focus)
    if focus_group == options.groups.other:
        frame["in_focus"] = [options.focus in codes for codes in codes_col]
    else:
        frame["in_focus"] = [focus_group in groups for groups in groups_col]
    return frame


def _merge_registrations(frame: pd.DataFrame, options: LandscapeOptions) -> pd.DataFrame:
    """One row per trial: registrations of one trial (same cluster) merged."""
    if frame["cluster_id"].is_unique:
        frame = frame.copy()
        frame["registrations"] = [[f"{r}:{t}"] for r, t in zip(frame["registry"], frame["trial_id"], strict=True)]
        return frame
    rank = {r: i for i, r in enumerate(REGISTRY_PREFERENCE)}
    frame = frame.assign(_rank=frame["registry"].map(lambda r: rank.get(r, len(rank))))
    frame = frame.sort_values(["cluster_id", "_rank", "registration_date"])
    merged = []
    for _, group in frame.groupby("cluster_id", sort=False):
        row = group.iloc[0].to_dict()
        row["registration_date"] = min(group["registration_date"])
        row["registrations"] = [f"{r}:{t}" for r, t in zip(group["registry"], group["trial_id"], strict=True)]
        for col in _UNION_COLUMNS:
            union: list[Any] = []
            for value in group[col]:
                for item in _list(value):
                    if item not in union:
                        union.append(item)
            row[col] = union
        sources = set(group["location_source"])
        row["location_source"] = next((s for s in ("sites", "sponsor name") if s in sources), "none")
        merged.append(row)
    # Groups follow the merged countries: a registration without a place adds no "No location given".
    return _group(pd.DataFrame(merged).drop(columns=["_rank"]), options)


# -- counts ---------------------------------------------------------------------------


@dataclass
class Landscape:
    """Named tables of counts (each row with the ``trial_ids`` behind it), facts and provenance."""

    options: LandscapeOptions
    units: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    facts: dict[str, Any]
    notes: dict[str, Any]


def _count_rows(pairs: Iterable[tuple[tuple[Any, ...], str]], columns: list[str]) -> pd.DataFrame:
    """Rows of (key..., n, trial_ids) from (key, unit id) pairs."""
    buckets: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for key, unit in pairs:
        buckets[key].add(unit)
    rows = [(*key, len(ids), sorted(ids)) for key, ids in buckets.items()]
    return pd.DataFrame(rows, columns=[*columns, "n", "trial_ids"])


def _label_counts(units: pd.DataFrame, label: labels.Label) -> pd.DataFrame:
    """A declared label's count table: per value, the trials with it (a trial without one counts under
    ``count_missing``, if the label names it)."""
    missing = label.count_missing

    def pairs() -> Iterable[tuple[tuple[Any, ...], str]]:
        for value, unit in zip(units[label.name], units["unit_id"], strict=True):
            found = _list(value) if label.is_list else ([value] if value else [])
            if not found and missing is not None:
                found = [missing]
            for item in found:
                yield (item,), unit

    return _count_rows(pairs(), [label.count_column or label.name])


@lru_cache(maxsize=1)
def _disease_branches() -> dict[str, str]:
    """Disease entity -> its branch (knowledge/diseases.csv)."""
    return {row["entity"]: row["branch"] for row in read_table("diseases.csv")}


def in_branch(branch: Any, entities: Any, wanted: str) -> bool:
    """Whether a trial counts in branch ``wanted``: its own branch, or one of the branches of a mixed trial.

    A trial of several branches ("mixed") counts in each branch its disease
    entities belong to, so a trial of lupus and lymphoma counts under
    autoimmune diseases and haematological malignancies, not under solid
    tumours.  A mixed trial whose entities the knowledge base does not place
    counts in both cancer branches, as before entities were consulted.
    """
    if branch == wanted:
        return True
    if branch != "mixed":
        return False
    found = {_disease_branches().get(str(e)) for e in _list(entities)} - {None}
    if not found & set(TARGET_BRANCHES.values()):
        return wanted in ("heme-malignancy", "solid-tumor")
    return wanted in found


def _branch_mask(frame: pd.DataFrame, wanted: str) -> pd.Series:
    return pd.Series(
        [in_branch(b, e, wanted) for b, e in zip(frame["branch"], frame["disease_entity"], strict=True)],
        index=frame.index,
        dtype=bool,
    )


def compute_landscape(store: Store, options: LandscapeOptions) -> Landscape:
    units, notes = landscape_units(store, options)
    return landscape_of_units(store, options, units, notes)


def landscape_of_units(
    store: Store, options: LandscapeOptions, units: pd.DataFrame, notes: dict[str, Any]
) -> Landscape:
    """Every count of the given units: all that ``landscape_units`` counted, or any subset of them.

    ``notes["registrations"]`` must hold the registrations of exactly these
    units (the explorer filters both); ``notes`` itself is not changed.
    """
    notes = dict(notes)
    as_of = options.as_of or dt.date.today()
    tables: dict[str, pd.DataFrame] = {}
    group_names = [*options.groups.names, NO_LOCATION]

    # Fig. 1a: cumulative registrations per year end, per group.
    # From the year before the first registration, so every series starts at zero.
    years = range(min((d.year for d in units["registration_date"]), default=as_of.year) - 1, as_of.year + 1)
    rows = []
    for group in group_names:
        members = units[_mask(units["groups"], lambda gs, g=group: g in gs)]
        for year in years:
            cut = min(dt.date(year, 12, 31), as_of)
            ids = sorted(members.loc[_mask(members["registration_date"], lambda d, c=cut: d <= c), "unit_id"])
            rows.append((group, year, cut.isoformat(), len(ids), ids))
    tables["cumulative_by_year"] = pd.DataFrame(rows, columns=["group", "year", "up_to", "n", "trial_ids"])

    def per_group(column: str, name: str) -> None:
        pairs = (
            ((g, v), u) for gs, v, u in zip(units["groups"], units[column], units["unit_id"], strict=True) for g in gs
        )
        tables[name] = _count_rows(pairs, ["group", column])

    per_group("phase_category", "phase_by_group")
    active_units = units[_mask(units["status_as_of"], lambda s: s in ACTIVE_STATUSES)]
    pairs = (
        ((g, p), u)
        for gs, p, u in zip(
            active_units["groups"], active_units["phase_category"], active_units["unit_id"], strict=True
        )
        for g in gs
    )
    tables["phase_by_group_active"] = _count_rows(pairs, ["group", "phase_category"])
    per_group("sponsor_type", "sponsor_type_by_group")
    unknown = not_known_label(as_of)
    active = units.assign(
        status_group=[
            "Active" if s in ACTIVE_STATUSES else "Not active" if known or options.latest_status else unknown
            for s, known in zip(units["status_as_of"], units["status_known"], strict=True)
        ]
    )
    pairs = (
        ((g, s), u)
        for gs, s, u in zip(active["groups"], active["status_group"], active["unit_id"], strict=True)
        for g in gs
    )
    tables["status_by_group"] = _count_rows(pairs, ["group", "status_group"])

    for label in labels.LABELS:  # the count tables declared with the labels (knowledge/labels.py)
        if label.count_column is not None:
            tables[label.name] = _label_counts(units, label)

    focus = units[units["in_focus"].astype(bool)]
    pair_tables = []
    for kind, branch in TARGET_BRANCHES.items():
        entries = _target_entries(focus[_branch_mask(focus, branch)], branch)
        tables[f"focus_targets_{kind}"] = _target_table(entries)
        pair_tables.append(_pair_table(entries, branch))
    tables["focus_target_pairs"] = pd.concat(pair_tables, ignore_index=True)
    tables["branch_by_year"] = _branch_by_year(units, group_names, years, as_of)
    tables["focus_target_years"] = _target_years(focus, as_of)
    tables["focus_regions"] = _count_rows(
        (((r,), u) for rs, u in zip(focus["focus_regions"], focus["unit_id"], strict=True) for r in rs), ["region"]
    ).sort_values(["n", "region"], ascending=[False, True], ignore_index=True)
    tables["focus_cities"] = _count_rows(
        (((c, r), u) for cs, u in zip(focus["focus_cities"], focus["unit_id"], strict=True) for c, r in cs),
        ["city", "region"],
    ).sort_values(["n", "city", "region"], ascending=[False, True, True], ignore_index=True)
    tables["focus_phase"] = _count_rows(
        (((p,), u) for p, u in zip(focus["phase_category"], focus["unit_id"], strict=True)), ["phase_category"]
    )
    tables["top_sponsors"] = _top(units, "lead_sponsor")
    tables["top_focus_sponsors"] = _top(focus, "lead_sponsor")
    tables["focus_sponsors"] = _top(focus, "lead_sponsor", k=max(len(focus), 1))  # every sponsor, for diffs
    tables["top_sites"] = _top_sites(units, None)
    tables["top_focus_sites"] = _top_sites(units, options.focus)
    registrations = notes.pop("registrations")
    tables.update(_registry_tables(registrations))
    tables.update(_publication_tables(store, as_of, options.focus, options.groups))
    facts = _target_facts(units, focus, options)
    facts["as_of"] = _as_of_facts(store, units, tables, registrations, options, as_of)
    facts["publications"] = _publication_facts(store, tables)
    # The trials behind the report's per-branch sentences (each number opens its list).
    facts["focus_branch_ids"] = {
        kind: sorted(focus.loc[_branch_mask(focus, branch), "unit_id"]) for kind, branch in TARGET_BRANCHES.items()
    }
    facts["totals"] = {
        "units": len(units),
        "by_group": {g: int(sum(g in gs for gs in units["groups"])) for g in group_names},
        "focus": len(focus),
        "focus_heme": int(_branch_mask(focus, "heme-malignancy").sum()),
        "focus_solid": int(_branch_mask(focus, "solid-tumor").sum()),
        "focus_autoimmune": int(_branch_mask(focus, "autoimmune").sum()),
        "focus_subregions": _focus_subregions(focus, options),
    }
    facts["focus_subregion_ids"] = {
        code: sorted(focus.loc[_mask(focus["country_codes"], lambda cs, c=code: c in cs), "unit_id"])
        for code in facts["totals"]["focus_subregions"]
    }
    in_focus = registrations[registrations["in_focus"].astype(bool)]
    facts["registry_focus_ids"] = {
        registry_name(str(r)): sorted(set(g["cluster_id"])) for r, g in in_focus.groupby("registry", sort=True)
    }
    return Landscape(options, units, tables, facts, notes)


def _as_of_facts(
    store: Store,
    units: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    registrations: pd.DataFrame,
    options: LandscapeOptions,
    as_of: dt.date,
) -> dict[str, Any]:
    """What the counts know about ``as_of``: versions used, per table, and how far the data reaches."""
    status_unknown = set(units.loc[~units["status_known"].astype(bool), "unit_id"])
    phase_later = set(units.loc[units["as_of_source"] == "later version", "unit_id"])
    # Per table: its trials, those whose phase comes from a later version, those whose status is not known.
    per_table: dict[str, dict[str, int]] = {}
    for name in AS_OF_TABLES:
        if name == "focus_registry_phases":  # counts registrations, each with its own version
            focus = registrations[registrations["in_focus"].astype(bool)]
            later = int((focus["as_of_source"] == "later version").sum())
            per_table[name] = {"trials": len(focus), "later_version": later, "status_not_known": 0}
            continue
        ids = {i for ids in tables[name]["trial_ids"] for i in ids}
        per_table[name] = {
            "trials": len(ids),
            "later_version": len(ids & phase_later),
            "status_not_known": len(ids & status_unknown),
        }
    row = store.con.execute(
        "SELECT max(record_updated), max(fetched_at) FROM raw_records "
        "WHERE registry IN (SELECT DISTINCT registry FROM trials)"
    ).fetchone()
    newest, fetched = (row or (None, None))[:2]
    return {
        "date": as_of.isoformat(),
        "latest_status": options.latest_status,
        "not_known_label": not_known_label(as_of),
        "trials": len(units),
        "current_version": int((units["as_of_source"] == "latest").sum()),
        "stored_version": int((units["as_of_source"] == "stored version").sum()),
        "later_version": len(phase_later),
        "later_version_ids": sorted(phase_later),
        "status_known": len(units) - len(status_unknown),
        "status_not_known": len(status_unknown),
        "status_not_known_ids": sorted(status_unknown),
        "status_unknown_shown_later": len(status_unknown - phase_later),
        "phase_changed_later": int(units["phase_changed_later"].astype(bool).sum()),
        "tables": per_table,
        "newest_registry_update": newest.isoformat() if newest else None,
        "last_fetched": fetched.date().isoformat() if fetched else None,
        "after_newest_update": bool(newest and as_of > newest),
    }


def _publication_facts(store: Store, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """What the database holds of PubMed, so that the report can say why it counts no clinical report."""
    row = store.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_car), "
        "count(*) FILTER (WHERE is_car AND kind = 'clinical-report') FROM publications"
    ).fetchone()
    stored, car, reports = row or (0, 0, 0)
    counted = {p for pmids in tables["pub_fig2a"].get("pmids", []) for p in pmids}
    return {"stored": stored, "car": car, "clinical_reports": reports, "clinical_reports_by_date": len(counted)}


def registry_name(registry: str) -> str:
    return registries.display_name(registry)  # knowledge/registries.csv


def registry_phase(phases: Any) -> str:
    """A registration's phase as the registry states it (phase 0 kept apart, as the review shows ChiCTR)."""
    found = set(_list(phases))
    if "PHASE0" in found:
        return "Phase 0"
    return phase_category(found)


def _registry_tables(registrations: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per registry: registrations and trials; the focus group's trials by where they are registered."""
    rows = []
    for registry, group in registrations.groupby("registry", sort=True):
        rows.append(
            {
                "registry": registry_name(str(registry)),
                "registrations": len(group),
                "trials": group["cluster_id"].nunique(),
                "focus_registrations": int(group["in_focus"].sum()),
                "focus_trials": group.loc[group["in_focus"].astype(bool), "cluster_id"].nunique(),
                "trial_ids": sorted(set(group["cluster_id"])),
            }
        )
    focus = registrations[registrations["in_focus"].astype(bool)]
    where: dict[str, set[str]] = defaultdict(set)
    for cluster, registry in zip(focus["cluster_id"], focus["registry"], strict=True):
        where[cluster].add(registry_name(str(registry)))
    overlap = _count_rows(
        (
            ((" + ".join(sorted(names)) + (" only" if len(names) == 1 else ""),), cluster)
            for cluster, names in where.items()
        ),
        ["registered_in"],
    ).sort_values(["n", "registered_in"], ascending=[False, True], ignore_index=True)
    phases = _count_rows(
        (
            # A linked group holds one registration per registry, so its id stands for the registration.
            ((registry_name(str(r)), registry_phase(p)), c)
            for r, c, p in zip(focus["registry"], focus["cluster_id"], focus["phases_as_of"], strict=True)
        ),
        ["registry", "phase"],
    )
    return {
        "registries": pd.DataFrame(
            rows, columns=["registry", "registrations", "trials", "focus_registrations", "focus_trials", "trial_ids"]
        ),
        "focus_registry_overlap": overlap,
        "focus_registry_phases": phases,
    }


def _publication_tables(store: Store, as_of: dt.date, focus: str, groups: CountryGroups) -> dict[str, pd.DataFrame]:
    """Fig. 2 and Table 1 of the review (published clinical reports), for the same date, focus and groups."""
    from cartatlas.analysis import publications as pubs

    return {
        "pub_fig2a": pubs.fig2a_reports_per_year(store, as_of, focus, groups),
        "pub_fig2b": pubs.fig2b_reports_per_target(store, as_of, focus, groups),
        "pub_fig2c": pubs.fig2c_reports_per_region(store, as_of, focus, groups),
        "pub_table1": pubs.table1_focus_reports(store, as_of, focus, groups),
    }


def _focus_subregions(focus: pd.DataFrame, options: LandscapeOptions) -> dict[str, int]:
    """How many of the focus group's trials come from each grouped country (e.g. Taiwan in China)."""
    group = options.groups.group_of_country(options.focus)
    members = options.groups.groups.get(group, frozenset({options.focus}))
    return {code: int(sum(code in cs for cs in focus["country_codes"])) for code in sorted(members)}


@lru_cache(maxsize=1)
def _lineages() -> dict[str, frozenset[str]]:
    """Antigen -> the branches it is a target in (knowledge/antigens.csv, column lineage)."""
    out: dict[str, frozenset[str]] = {}
    for row in read_table("antigens.csv"):
        out[row["symbol"]] = frozenset(x.strip() for x in (row.get("lineage") or "").split("|") if x.strip())
    return out


#: The lineage (knowledge/antigens.csv) of each branch's antigens.
_LINEAGE_OF_BRANCH = {"heme-malignancy": "heme", "solid-tumor": "solid", "autoimmune": "autoimmune"}


def _fits_branch(target: str, branch: str, trial_branch: Any) -> bool:
    """In a trial of mixed branches, a target belongs to the branch its antigen is known for.

    (A basket trial of CD19 and GPC3 CARs counts CD19 under haematological
    malignancies and GPC3 under solid tumours, not both under both.)
    """
    if trial_branch != "mixed":
        return True
    lineage = _lineages().get(target, frozenset())
    return not (lineage & set(_LINEAGE_OF_BRANCH.values())) or _LINEAGE_OF_BRANCH[branch] in lineage


_TargetEntries = dict[str, list[tuple[str, list[str]]]]


def _target_entries(subset: pd.DataFrame, branch: str) -> _TargetEntries:
    """Per target of the branch: (trial, the trial's other targets of the branch), in trial order."""
    by_target: _TargetEntries = defaultdict(list)
    for targets, unit, trial_branch in zip(subset["targets"], subset["unit_id"], subset["branch"], strict=True):
        ts = [t for t in _list(targets) if t != "unknown" and _fits_branch(t, branch, trial_branch)]
        for t in ts:
            by_target[t].append((unit, [o for o in ts if o != t]))
    return by_target


def _pair_table(by_target: _TargetEntries, branch: str) -> pd.DataFrame:
    """Per target and partner target: the trials that target both (the report's combination chips)."""
    rows = []
    for target, entries in by_target.items():
        partners: dict[str, list[str]] = defaultdict(list)
        for unit, others in entries:
            for other in others:
                partners[other].append(unit)
        rows += [(branch, target, o, len(ids), sorted(ids)) for o, ids in partners.items()]
    frame = pd.DataFrame(rows, columns=["branch", "target", "partner", "n", "trial_ids"])
    return frame.sort_values(["target", "n", "partner"], ascending=[True, False, True], ignore_index=True)


def _branch_by_year(units: pd.DataFrame, groups: list[str], years: range, as_of: dt.date) -> pd.DataFrame:
    """Per target branch and country group: trials registered in each year (``new``) and up to its end (``n``)."""
    rows = []
    for branch in TARGET_BRANCHES.values():
        members = units[_branch_mask(units, branch)]
        for group in groups:
            in_group = members[_mask(members["groups"], lambda gs, g=group: g in gs)]
            dates = list(zip(in_group["registration_date"], in_group["unit_id"], strict=True))
            for year in years:
                cut = min(dt.date(year, 12, 31), as_of)
                total = sorted(u for d, u in dates if d <= cut)
                new = sorted(u for d, u in dates if d <= cut and d.year == year)
                rows.append((branch, group, year, cut.isoformat(), len(new), len(total), new, total))
    columns = ["branch", "group", "year", "up_to", "new", "n", "new_ids", "trial_ids"]
    return pd.DataFrame(rows, columns=columns)


def _target_years(focus: pd.DataFrame, as_of: dt.date, k: int = TIMELINE_TARGETS) -> pd.DataFrame:
    """New trials per registration year for the focus group's k most frequent targets (any branch).

    Every year from the first of those trials to the as-of year has a row,
    zero or not, so that a timeline has no gaps; ``rank`` orders the targets.
    """
    per_target: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for targets, date, unit in zip(focus["targets"], focus["registration_date"], focus["unit_id"], strict=True):
        for t in _known(targets):
            per_target[t].append((date, unit))
    top = sorted(per_target, key=lambda t: (-len(per_target[t]), t.casefold(), t))[:k]  # the report's order
    columns = ["target", "rank", "year", "n", "trial_ids"]
    if not top:
        return pd.DataFrame([], columns=columns)
    first = min(d.year for t in top for d, _ in per_target[t])
    rows = []
    for rank, target in enumerate(top, start=1):
        for year in range(first, as_of.year + 1):
            ids = sorted(u for d, u in per_target[target] if d.year == year)
            rows.append((target, rank, year, len(ids), ids))
    return pd.DataFrame(rows, columns=columns)


def _target_table(by_target: _TargetEntries) -> pd.DataFrame:
    """Per target: trials using it, alone (the only target) or with others, and which partners."""
    rows = []
    for target, entries in by_target.items():
        alone = sorted(u for u, others in entries if not others)
        combined = sorted(u for u, others in entries if others)
        partners = Counter(o for _, others in entries for o in others)
        rows.append(
            {
                "target": target,
                "n": len(entries),
                "alone": len(alone),
                "in_combination": len(combined),
                "partners": dict(partners.most_common()),
                "trial_ids": sorted(u for u, _ in entries),
                "alone_ids": alone,
                "combination_ids": combined,
            }
        )
    columns = ["target", "n", "alone", "in_combination", "partners", "trial_ids", "alone_ids", "combination_ids"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["n", "target"], ascending=[False, True], ignore_index=True)


def _head_with_ties(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first k rows by n, and every row tied with the k-th (no alphabetical lottery at the cut)."""
    if len(table) <= k:
        return table
    cut = table["n"].iloc[k - 1]
    return table[table["n"] >= cut].reset_index(drop=True)


def _top(units: pd.DataFrame, column: str, k: int = 15) -> pd.DataFrame:
    table = _count_rows((((v,), u) for v, u in zip(units[column], units["unit_id"], strict=True) if v), [column])
    table = table.sort_values(["n", column], ascending=[False, True], ignore_index=True)
    if column == "lead_sponsor" and len(table):
        kinds = units.groupby("lead_sponsor")["sponsor_type"].agg(lambda s: Counter(s).most_common(1)[0][0])
        table["sponsor_type"] = table["lead_sponsor"].map(kinds)
    return _head_with_ties(table, k)


def _top_sites(units: pd.DataFrame, country: str | None, k: int = 15) -> pd.DataFrame:
    pairs = []
    for sites, unit in zip(units["sites"], units["unit_id"], strict=True):
        for site in _list(sites):
            if site.get("facility") and (country is None or site.get("country_code") == country):
                city = site.get("city_normalised") or site.get("city") or ""
                pairs.append(((site["facility"], city, site.get("country") or ""), unit))
    table = _count_rows(pairs, ["facility", "city", "country"])
    return _head_with_ties(table.sort_values(["n", "facility"], ascending=[False, True], ignore_index=True), k)


def _target_facts(units: pd.DataFrame, focus: pd.DataFrame, options: LandscapeOptions) -> dict[str, Any]:
    """The review's per-target sentences: first trial worldwide and in the focus country, combinations."""
    facts: dict[str, Any] = {"targets": {}}
    hsct = _mask(units["combinations"], lambda cs: "HSCT" in _list(cs))
    # One pass: every (target, trial) pair, in registration order, then grouped by target.
    pairs = []
    for i, (targets, date, unit) in enumerate(
        zip(units["targets"], units["registration_date"], units["unit_id"], strict=True)
    ):
        known = _known(targets)
        for t in known:
            pairs.append((t, date, unit, i, len(known) == 1))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    in_focus = list(units["in_focus"].astype(bool))
    hsct_flags = list(hsct)

    def first(i: int | None) -> dict[str, Any] | None:
        if i is None:
            return None
        r = units.iloc[i]
        return {
            "trial_id": r["unit_id"],
            "date": r["registration_date"].isoformat(),
            "date_source": r["registration_date_source"],
            "sponsor": r["lead_sponsor"],
            "countries": list(r["country_codes"]),
        }

    by_target: dict[str, list[tuple[str, Any, str, int, bool]]] = defaultdict(list)
    for pair in pairs:
        by_target[pair[0]].append(pair)
    for target, rows in by_target.items():
        local = [r for r in rows if in_focus[r[3]]]
        facts["targets"][target] = {
            "trials": len(rows),
            "focus_trials": len(local),
            "first_worldwide": first(rows[0][3]),
            "first_in_focus": first(local[0][3] if local else None),
            "focus_alone": sum(r[4] for r in local),
            "focus_with_hsct": sorted(r[2] for r in local if hsct_flags[r[3]]),
            # The trials behind each count above.
            "trial_ids": sorted(r[2] for r in rows),
            "focus_ids": sorted(r[2] for r in local),
            "focus_alone_ids": sorted(r[2] for r in local if r[4]),
        }
    strategies = Counter(focus["target_strategy"].fillna("unknown"))
    facts["focus_target_strategy"] = dict(strategies)
    by_strategy: dict[str, list[str]] = defaultdict(list)
    for strategy, unit in zip(focus["target_strategy"].fillna("unknown"), focus["unit_id"], strict=True):
        by_strategy[str(strategy)].append(unit)
    facts["focus_target_strategy_ids"] = {k: sorted(v) for k, v in by_strategy.items()}
    facts["focus_multi_target_ids"] = sorted(
        focus.loc[_mask(focus["targets"], lambda ts: len(_known(ts)) > 1), "unit_id"]
    )
    facts["focus_hsct_ids"] = sorted(focus.loc[hsct[focus.index], "unit_id"])
    return facts
