"""The Python API: what a notebook user calls, and what the CLI is built on.

``cartatlas.open(path)`` gives an ``Atlas`` whose methods return pandas
DataFrames; the CLI commands call the same methods, so numbers never differ
between a notebook and a terminal.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from cartatlas.analysis.filters import CountedTrials, TrialFilter
from cartatlas.analysis.groups import focus_code, load_scheme, parse_groups
from cartatlas.analysis.landscape import Landscape, LandscapeOptions, compute_landscape, landscape_units
from cartatlas.curation import Outcome
from cartatlas.model import ImportStats
from cartatlas.pipeline.ingest import rebuild, save_records
from cartatlas.pipeline.upgrade import open_store
from cartatlas.report.build import ReportResult, write_report
from cartatlas.review import review_queue
from cartatlas.sources.base import Item, LineBatch
from cartatlas.sources.files import iter_paths, read_path_batches
from cartatlas.store.db import Store
from cartatlas.store.export import export_trials

if TYPE_CHECKING:
    from cartatlas.analysis.history import StoredVersion
    from cartatlas.analysis.trial_record import KnownLabels, Lookups, TrialRecord
    from cartatlas.curation_actions import CurationAction
    from cartatlas.link import LinkStats
    from cartatlas.pipeline import DeriveResult, Stale
    from cartatlas.pipeline.harvest.chictr import ChictrProgress
    from cartatlas.pipeline.harvest.ctgov import SyncPlan, SyncProgress
    from cartatlas.search import SearchIndex
    from cartatlas.sources.chictr.sync import ChictrClient
    from cartatlas.sources.ctgov.api import CtgovClient


log = logging.getLogger(__name__)


class Atlas:
    """A cartatlas database opened for analysis and updates."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: What the last import, sync, curation or rebuild refreshed (``cartatlas.pipeline.derive``).
        self.derived: DeriveResult | None = None

    # -- context management ------------------------------------------------------

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------

    def import_files(
        self,
        paths: Iterable[str | Path],
        *,
        on_batch: Callable[[ImportStats], None] | None = None,
        on_file: Callable[[Path], None] | None = None,
        classify: bool = True,
    ) -> ImportStats:
        """Import every record of the given files and folders (formats detected by content).

        Everything derived is refreshed afterwards (``refresh``: screening,
        curation, cross-registry links, publication labels and links);
        ``classify=False`` defers that to a later ``refresh()``, e.g. between
        many imports.
        """
        path_list = [Path(p) for p in paths]

        # One stream over all files: batches (and transactions) span small files.
        # JSON lines come as unparsed batches, which the importer parses in worker processes.
        def items() -> Iterator[Item | LineBatch]:
            for path, explicit in iter_paths(path_list):
                if on_file is not None:
                    on_file(path)
                yield from read_path_batches(path, strict=explicit)

        with self.store.run("import", None, "; ".join(map(str, path_list)), {"paths": path_list}) as run:
            run.stats.add(save_records(self.store, items(), run.run_id, on_batch=on_batch, skip_known=True))
        stats = run.stats
        if classify:
            self.refresh()
        return stats

    def sync_ctgov(
        self,
        query: str | None = None,
        since: dt.date | None = None,
        full: bool = False,
        *,
        base_url: str | None = None,
        rate: float | None = None,
        max_retries: int | None = None,
        page_size: int | None = None,
        client: CtgovClient | None = None,
        on_plan: Callable[[SyncPlan], None] | None = None,
        on_page: Callable[[SyncProgress, ImportStats], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> ImportStats:
        """Harvest ClinicalTrials.gov API v2 into the database, resuming any interrupted pass.

        Without ``since`` or ``full``, asks only for records updated since the
        last complete pass of the same query began (less a few days); the
        first pass of a query is full.  ``client`` replaces the HTTP client
        built from ``base_url``, ``rate``, ``max_retries`` and ``page_size``.
        """
        # Imported here so that ``import cartatlas`` does not pull in the HTTP stack.
        from cartatlas.pipeline.harvest import ctgov as ctgov_harvest
        from cartatlas.sources.ctgov import api as ctgov_api
        from cartatlas.sources.http import given
        from cartatlas.store import sync_state

        now = clock or ctgov_harvest.utc_now
        the_query = sync_state.normalise_query(query or ctgov_api.DEFAULT_QUERY)
        state = sync_state.load(self.store, ctgov_api.REGISTRY, the_query)
        plan = ctgov_harvest.plan_sync(state, the_query, since, full)
        if on_plan is not None:
            on_plan(plan)
        own_client = client is None
        if client is None:
            options = given(rate=rate, max_retries=max_retries, page_size=page_size)
            client = ctgov_api.CtgovClient(base_url=base_url or ctgov_api.DEFAULT_BASE_URL, **options)
        params = {
            "query": the_query,
            "since": plan.since,
            "full": full,
            "resume": plan.resume is not None,
            "plan": plan.reason,
            "page_size": client.page_size,
            "rate": client.rate,
        }
        try:
            with self.store.run("sync", ctgov_api.REGISTRY, client.base_url, params) as run:

                def count(progress: SyncProgress, page_stats: ImportStats) -> None:
                    run.stats.add(page_stats)
                    if on_page is not None:
                        on_page(progress, page_stats)

                ctgov_harvest.harvest(self.store, client, run.run_id, plan, on_page=count, clock=now)
        finally:
            if own_client:
                client.close()
        self.refresh()
        return run.stats

    def sync_ctgov_bulk(
        self,
        url: str | None = None,
        *,
        keep: str | Path | None = None,
        on_download: Callable[[int, int | None], None] | None = None,
        on_downloaded: Callable[[Any], None] | None = None,
        on_batch: Callable[[ImportStats], None] | None = None,
        **download_options: Any,
    ) -> ImportStats:
        """Download ClinicalTrials.gov's export of every study (one zip) and import it: the fast route to the registry.

        The archive is verified whole before anything is stored
        (``BulkDownloadError`` otherwise, and nothing is kept); its studies are
        stored like any import's, and the pass of every study is complete, so
        ``sync_ctgov(ALL_STUDIES)`` then asks only for later updates.
        ``keep`` keeps the archive at that path; ``download_options`` go to
        ``cartatlas.sources.ctgov.bulk.download``.
        """
        from cartatlas.pipeline.harvest import ctgov_bulk
        from cartatlas.sources.ctgov import bulk

        the_url = url or bulk.DEFAULT_BULK_URL
        kept = Path(keep) if keep is not None else None
        workdir = None if self.store.path == ":memory:" else Path(self.store.path).resolve().parent
        with self.store.run("sync", "ctgov", the_url, {"bulk": True, "url": the_url, "keep": kept}) as run:

            def count(stats: ImportStats) -> None:
                run.stats.add(stats)
                if on_batch is not None:
                    on_batch(stats)

            ctgov_bulk.harvest_bulk(
                self.store,
                run.run_id,
                the_url,
                keep=kept,
                workdir=workdir,
                on_download=on_download,
                on_downloaded=on_downloaded,
                on_batch=count,
                **download_options,
            )
        self.refresh()
        return run.stats

    def sync_chictr(
        self,
        query: str,
        *,
        base_url: str | None = None,
        rate: float | None = None,
        max_retries: int | None = None,
        client: ChictrClient | None = None,
        on_trial: Callable[[ChictrProgress, ImportStats], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> ImportStats:
        """Harvest ChiCTR's search results for ``query`` and every trial page they list.

        Resumes an interrupted pass of the same query.  Raises
        ``cartatlas.sources.chictr.sync.WafBlocked`` when ChiCTR's firewall
        answers instead of the site (the checkpoint is kept; nothing of the
        answer is stored) and ``ChictrError`` for other failures.
        """
        from cartatlas.pipeline.harvest import chictr as chictr_harvest
        from cartatlas.sources.chictr import sync as chictr_sync
        from cartatlas.sources.http import given
        from cartatlas.store import sync_state

        the_query = sync_state.normalise_query(query)
        if not the_query:
            raise ValueError("a ChiCTR harvest needs a search query (words of the trial titles)")
        own_client = client is None
        if client is None:
            options = given(rate=rate, max_retries=max_retries)
            client = chictr_sync.ChictrClient(base_url=base_url or chictr_sync.DEFAULT_BASE_URL, **options)
        params = {"query": the_query, "rate": client.rate}
        try:
            with self.store.run("sync", chictr_sync.REGISTRY, client.base_url, params) as run:

                def count(progress: ChictrProgress, trial_stats: ImportStats) -> None:
                    run.stats.add(trial_stats)
                    if on_trial is not None:
                        on_trial(progress, trial_stats)

                # The harvest's own stats also count rows of result pages that could not be read.
                run.stats, _ = chictr_harvest.harvest(
                    self.store, client, run.run_id, the_query, on_trial=count, **given(clock=clock)
                )
        finally:
            if own_client:
                client.close()
        stats = run.stats
        self.refresh()
        return stats

    def refresh(self, *, force: bool = False, on_step: Callable[[str], None] | None = None) -> DeriveResult:
        """Bring everything derived up to date with the stored versions and the knowledge base.

        Every method that changes the database ends with this; it redoes only
        what changed (see ``cartatlas.pipeline``).  ``force`` redoes every step.
        """
        from cartatlas.pipeline import derive

        self.derived = derive(self.store, force=force, on_step=on_step)
        return self.derived

    def staleness(self) -> builtins.list[Stale]:
        """Derived data that does not match the stored versions or the knowledge base, with the fix."""
        from cartatlas.pipeline import staleness

        return staleness(self.store)

    def cluster_disagreements(self) -> pd.DataFrame:
        """Linked registrations of one trial that disagree on whether it is a CAR trial (for curators)."""
        return self.sql("SELECT * FROM cluster_disagreements ORDER BY cluster_id")

    def link(self, curation: str | Path | None = None) -> LinkStats:
        """Link registrations of the same trial across registries (``trial_links``, ``trial_clusters``).

        ``curation`` is a curation file whose ``link`` rows confirm or split
        links; by default the curation file last applied to this database.
        Per-trial counts are then ``count(DISTINCT cluster_id)`` over
        ``trial_clusters``; per-registration counts are its rows.
        """
        from cartatlas.pipeline import relink

        return relink(self.store, Path(curation) if curation is not None else None)

    # -- screening ---------------------------------------------------------------

    def classify(self, *, force: bool = False, on_batch: Callable[[int], None] | None = None) -> int:
        """Classify trials whose current version or classifier changed, then re-apply curation.

        Runs after every import and sync, so labels never lag the records;
        ``force`` re-classifies everything.  Returns the number classified.
        """
        from cartatlas.pipeline import classify_trials

        n, _ = classify_trials(self.store, force=force, on_batch=on_batch)
        return n

    def curate(self, path: str | Path) -> list[Outcome]:
        """Apply a curator's override file (see ``cartatlas.curation``) and remember it.

        Its ``link`` rows take effect at once: the refresh that follows re-links.
        """
        from cartatlas.pipeline import apply_curation_file

        outcomes = apply_curation_file(self.store, Path(path))
        self.refresh()
        return outcomes

    def classifications(self) -> pd.DataFrame:
        """Every trial's labels with evidence (JSON) and the fields a curator overrode."""
        return self._read("SELECT * FROM classifications ORDER BY registry, trial_id")

    def review(self, limit: int | None = 50, *, curator: str = "") -> pd.DataFrame:
        """The labels a curator should check, most needed first, with the reasons (see ``cartatlas.review``).

        The frame is also a curation file: fill ``value`` in the rows decided and pass it to ``curate``.
        """
        frame = review_queue(self.store, curator=curator)
        return frame if limit is None else frame.head(limit)

    # -- landscape ---------------------------------------------------------------

    def landscape(
        self,
        as_of: dt.date | str | None = None,
        focus: str = "CN",
        *,
        registries: builtins.list[str] | None = None,
        groups: str | builtins.list[str] = "wei2021",
        platforms: Iterable[str] | None = None,
        relations: Iterable[str] = ("therapy", "follow_up"),
        per: str = "trial",
        latest_status: bool = False,
        where: TrialFilter | None = None,
    ) -> Landscape:
        """Every count of the report as DataFrames (``.tables``), facts and counted trials (``.units``).

        ``groups`` is a scheme name from knowledge/country_groups.csv or a list
        of ``NAME=CODE,CODE`` strings.  A trial whose stored versions are all
        later than ``as_of`` has status "not known" on that date, unless
        ``latest_status`` counts its latest known status.  The CLI report is
        built from this.  ``where`` counts only the trials that pass a filter
        (``TrialFilter.of(target=["BCMA"], country=["CN"])``), with the same code.
        """
        options = landscape_options(as_of, focus, registries, groups, platforms, relations, per, latest_status)
        if where is not None:
            return self.counted(as_of, focus, registries=registries, groups=groups, platforms=platforms,
                                relations=relations, per=per, latest_status=latest_status).landscape(where)  # fmt: skip
        return compute_landscape(self.store, options)

    def units(self, as_of: dt.date | str | None = None, focus: str = "CN", **filters: Any) -> pd.DataFrame:
        """Counted trials as of a date, filtered by any label (country, group, target, branch, ...).

        Filters: ``country`` (ISO code), ``group``, ``target``, ``platform``,
        ``branch``, ``relation`` (list), ``registry``, ``phase`` (category).
        """
        relations = filters.pop("relation", ("therapy", "follow_up"))
        relations = [relations] if isinstance(relations, str) else relations
        land = self.landscape(as_of, focus, relations=relations, registries=_opt_list(filters.pop("registry", None)))
        frame = land.units
        for key, column in (("country", "country_codes"), ("group", "groups"), ("target", "targets"),
                            ("platform", "platforms")):  # fmt: skip
            if key in filters:
                wanted = filters.pop(key)
                frame = frame[frame[column].map(lambda vs, w=wanted: w in list(vs if vs is not None else []))]
        for key, column in (("branch", "branch"), ("phase", "phase_category")):
            if key in filters:
                frame = frame[frame[column] == filters.pop(key)]
        if filters:
            raise TypeError(f"unknown filter(s): {', '.join(filters)}")
        return frame.reset_index(drop=True)

    def counts(
        self, by: str, as_of: dt.date | str | None = None, *, over_time: bool = False, focus: str = "CN"
    ) -> pd.DataFrame:
        """Counted trials by any label column (lists are exploded); per year of registration if ``over_time``."""
        frame = self.units(as_of, focus)
        if by not in frame.columns:
            raise ValueError(f"no column {by!r}; choose from {', '.join(map(str, frame.columns))}")
        frame = frame.explode(by) if frame[by].map(lambda v: isinstance(v, list | tuple)).any() else frame
        keys = [by]
        if over_time:
            frame = frame.assign(year=frame["registration_date"].map(lambda d: d.year))
            keys = ["year", by]
        grouped = frame.groupby(keys, dropna=False)["unit_id"]
        return grouped.agg(n="nunique", trial_ids=lambda s: sorted(set(s))).reset_index()

    def diff(
        self,
        before: dt.date | str | Path,
        after: dt.date | str | Path | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """What changed between two landscapes (``cartatlas.analysis.diff``), as a JSON-ready dict.

        Each side is a date (counted from this database; ``after`` defaults to
        today) or a report's summary.json (or its directory).  A date is
        counted with a given report's options unless ``options`` (``focus``,
        ``groups``, ...) say otherwise.  ``["paragraph"]`` tells it in words.
        """
        from cartatlas.analysis import diff as diffs

        loaded = [diffs.load_summary(str(s)) if diffs.is_summary(s) else None for s in (before, after)]
        reference = next((s for s in loaded if s is not None), None)
        kwargs = diffs.landscape_kwargs(reference["options"]) if reference is not None else {}
        kwargs.update({k: v for k, v in options.items() if v is not None})
        sides = []
        for spec, summary in zip((before, after), loaded, strict=True):
            if summary is None:
                as_of = spec if isinstance(spec, dt.date | str) or spec is None else str(spec)
                summary = diffs.comparable(self.landscape(as_of, **kwargs), self.store)
            sides.append(summary)
        return diffs.diff_summaries(sides[0], sides[1], store=self.store)

    def feed(self, *, runs: int = 1, since: dt.datetime | dt.date | None = None) -> Any:
        """The new and changed CAR trials of the latest import or sync (``runs`` of them, or ``since``)."""
        from cartatlas.analysis.feed import compute_feed

        return compute_feed(self.store, runs=runs, since=since)

    def write_feed(self, out: str | Path, *, runs: int = 1, since: dt.datetime | dt.date | None = None) -> Any:
        """Write ``feed.atom`` (Atom, RFC 4287) and ``feed.json`` (JSON Feed 1.1) into the directory ``out``."""
        from cartatlas.report.feed import write_feed

        return write_feed(self.store, Path(out), runs=runs, since=since)

    def figure(self, name: str, as_of: dt.date | str | None = None, focus: str = "CN", **options: Any) -> Any:
        """One report figure as an Altair chart (for notebooks); names are in cartatlas.report.figures.FIGURES."""
        from cartatlas.report.figures import FIGURES

        if name not in FIGURES:
            raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
        return FIGURES[name].draw(self.landscape(as_of, focus, **options))

    def report(self, out: str | Path, *, compare: str | Path | None = None, figures: bool = True,
               on_step: Callable[[str], None] | None = None, on_note: Callable[[str], None] | None = None,
               **options: Any) -> ReportResult:  # fmt: skip
        """Write the report directory (index.html, figures/, tables/, summary.json).

        ``on_note`` hears what the tables had to change to fit a spreadsheet
        (characters an Excel file cannot hold, cells over its size limit);
        without it the notes are logged as warnings.
        """
        opts = landscape_options(
            options.pop("as_of", None),
            options.pop("focus", "CN"),
            options.pop("registries", None),
            options.pop("groups", "wei2021"),
            options.pop("platforms", None),
            options.pop("relations", ("therapy", "follow_up")),
            options.pop("per", "trial"),
            options.pop("latest_status", False),
        )
        if options:
            raise TypeError(f"unknown option(s): {', '.join(options)}")
        return write_report(
            self.store,
            opts,
            Path(out),
            compare_with=Path(compare) if compare else None,
            figures=figures,
            on_step=on_step,
            on_note=on_note,
        )

    # -- publications (issue 6) -------------------------------------------------

    def sync_pubmed(
        self,
        query: str | None = None,
        since: dt.date | None = None,
        full: bool = False,
        **options: Any,
    ) -> tuple[ImportStats, Any]:
        """Harvest PubMed (NCBI E-utilities) and refresh the links to registry trials.

        Options: ``email``, ``api_key`` (default ``$NCBI_API_KEY``), ``base_url``,
        ``rate``, ``max_retries``, ``batch_size``, ``client``, ``on_plan``,
        ``on_batch``, ``clock``, ``link``; see ``cartatlas.pipeline.harvest.pubmed``.
        Returns this run's stats and the pass's progress.
        """
        from cartatlas.pipeline.harvest.pubmed import sync_pubmed

        refresh = options.pop("link", True)
        result = sync_pubmed(self.store, query, since, full, link=False, **options)
        if refresh:
            self.refresh()
        return result

    def publications(self, kind: str | None = None, country: str | None = None, car_only: bool = False) -> pd.DataFrame:
        """Normalised PubMed articles with their linked trial ids, one row per PMID."""
        from cartatlas.publications import service

        return service.publications(self.store, kind=kind, country=country, car_only=car_only)

    def link_publications(self) -> int:
        """Recompute the links of every stored article to registry trials; returns how many."""
        from cartatlas.pipeline import relink_publications

        return relink_publications(self.store)

    def rebuild(self) -> int:
        """Re-derive normalised tables from the stored raw versions, then everything derived from them."""
        n = rebuild(self.store)
        self.refresh(force=True)
        return n

    # -- reading -----------------------------------------------------------------

    def sql(self, query: str, params: builtins.list[Any] | None = None, *, writable: bool = False) -> pd.DataFrame:
        """One query over the tables and views of docs/schema.md, as a DataFrame.

        The query runs on a connection of its own that has the database file
        read-only and cannot touch other files, the network or extensions;
        anything but a single query raises ``QueryRefused``
        (``cartatlas.store.sandbox``).  ``writable=True`` runs any SQL on the
        store's own connection instead: statements that write, files, all of it.
        """
        if writable:
            return self.store.con.execute(query, params or []).df()
        with self.store.querying(query) as con:
            return con.execute(query, params or []).df()

    def _read(self, query: str, params: builtins.list[Any] | None = None) -> pd.DataFrame:
        """cartatlas's own queries, on the store's connection."""
        return self.store.con.execute(query, params or []).df()

    def sql_rows(
        self, query: str, params: builtins.list[Any] | None = None, *, writable: bool = False
    ) -> tuple[builtins.list[str], builtins.list[str], builtins.list[tuple[Any, ...]]]:
        """One query, fenced as ``sql`` is, as column names, DuckDB column types and rows of DuckDB's own values.

        What ``cartatlas sql`` prints from: unlike ``sql``'s DataFrame, nothing
        passes through pandas, so NULL stays None (not NaN or NaT), an integer
        column with NULLs stays integer and a DATE stays a date.
        """

        def fetch(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
            cursor = con.execute(query, params or [])
            description = cursor.description or []
            return [str(d[0]) for d in description], [str(d[1]) for d in description], cursor.fetchall()

        if writable:
            return fetch(self.store.con)
        with self.store.querying(query) as con:
            return fetch(con)

    def trials(self, registry: str | None = None, country: str | None = None) -> pd.DataFrame:
        """Normalised trials, one row per trial, optionally for one registry or country code."""
        where, params = [], []
        if registry:
            where.append("registry = ?")
            params.append(registry)
        if country:
            where.append("list_contains(countries, ?)")
            params.append(country.upper())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._read(f"SELECT * FROM trials {clause} ORDER BY registry, trial_id", params)

    def sites(self) -> pd.DataFrame:
        return self._read("SELECT * FROM trial_sites ORDER BY registry, trial_id, site_no")

    def versions(self, record_id: str) -> pd.DataFrame:
        """Every stored version of one record, oldest first, without payloads."""
        return self._read("SELECT * FROM record_versions WHERE record_id = ? ORDER BY version_id", [record_id])

    def raw(self, version_id: int) -> Any:
        """The payload of one stored version, exactly as it is kept."""
        row = self.store.con.execute("SELECT payload FROM raw_records WHERE version_id = ?", [version_id]).fetchone()
        return None if row is None else row[0]

    def summary(self) -> dict[str, Any]:
        """What the database holds, and what derived data is stale (``stale``: product, reason, fix)."""
        from cartatlas.pipeline import cluster_disagreements

        out = self.store.summary()
        out["stale"] = [s.to_dict() for s in self.staleness()]
        out["cluster_disagreements"] = cluster_disagreements(self.store)
        return out

    def export(
        self, fmt: str, out: str | Path, what: str = "trials", *, on_note: Callable[[str], None] | None = None
    ) -> int:
        """Write the normalised trials (or ``what="publications"``) to a file; returns the rows written.

        ``on_note`` hears what an Excel file had to change (characters it cannot
        hold, cells over its size limit); without it the notes are logged as warnings.
        """
        if what == "publications":
            from cartatlas.store.export import export_publications

            return export_publications(self.store, fmt, Path(out), on_note=on_note)
        return export_trials(self.store, fmt, Path(out), on_note=on_note)

    # -- exploring (issue 15: what the explorer, and a notebook, asks of one trial or a filtered set) ----

    def data_version(self) -> str:
        """A fingerprint that changes whenever imports, screening, curation or linking change the data.

        Results computed from the database can be cached under it.
        """
        row = self.store.con.execute(DATA_VERSION_QUERY).fetchone()
        return hashlib.sha256(repr(row).encode()).hexdigest()[:16]

    def counted(
        self,
        as_of: dt.date | str | None = None,
        focus: str = "CN",
        *,
        registries: builtins.list[str] | None = None,
        groups: str | builtins.list[str] = "wei2021",
        platforms: Iterable[str] | None = None,
        relations: Iterable[str] = ("therapy", "follow_up"),
        per: str = "trial",
        latest_status: bool = False,
    ) -> CountedTrials:
        """The trials a landscape counts, indexed for filters, facet counts, filtered landscapes and tables.

        ``atlas.counted("2020-06-30").landscape(TrialFilter.of(target=["BCMA"]))``
        gives every count of the report for BCMA trials; ``.facets(f)`` the
        trials per value of every facet; ``.table(f, columns, sort=...)`` rows.
        """
        options = landscape_options(as_of, focus, registries, groups, platforms, relations, per, latest_status)
        units, notes = landscape_units(self.store, options)
        return CountedTrials(self.store, options, units, notes)

    def search_index(self) -> SearchIndex:
        """Every registration's ids, titles, sponsors, products and sites, for repeated searches."""
        from cartatlas.search import SearchIndex

        return SearchIndex.build(self.store)

    def search(self, text: str, limit: int = 50) -> pd.DataFrame:
        """Registrations matching every word of ``text`` (ids, titles in any language, sponsors, products, sites)."""
        hits = self.search_index().search(text, limit)
        return pd.DataFrame(
            [
                {
                    "registry": h.registry,
                    "trial_id": h.trial_id,
                    "title": h.title,
                    "relation": h.relation,
                    "score": h.score,
                    "matched": [m.label for m in h.matches],
                }
                for h in hits
            ],
            columns=["registry", "trial_id", "title", "relation", "score", "matched"],
        )

    def trial(
        self, trial_id: str, *, known_labels: KnownLabels | None = None, lookups: Lookups | None = None
    ) -> TrialRecord | None:
        """One trial by any of its ids: every linked registration with labels and evidence, links, articles.

        ``known_labels`` (e.g. ``counted.registration_labels``) supplies labels
        already in memory, so they are not read again; ``lookups``
        (``trial_lookups(atlas.store)``, kept per data version) spares the
        link and article queries of trials that have none.
        """
        from cartatlas.analysis.trial_record import trial_record

        return trial_record(self.store, trial_id, known_labels=known_labels, lookups=lookups)

    def history(self, record_id: str, registry: str | None = None) -> builtins.list[StoredVersion]:
        """Every stored version of a record, in the registry's date order, with what changed each time."""
        from cartatlas.analysis.history import record_history
        from cartatlas.knowledge.registries import id_registry

        reg = registry or id_registry(record_id)
        if reg is None:
            raise ValueError(f"cannot tell the registry of {record_id!r}; pass registry=")
        return record_history(self.store, reg, record_id)

    def curation_etag(self, keys: builtins.list[tuple[str, str]]) -> str:
        """What a curator sees of these registrations, as a fingerprint to send back with an action."""
        from cartatlas import curation_actions

        return curation_actions.trial_etag(self.store, curation_actions.curation_path(self.store), keys)

    def record_curation(
        self,
        action: CurationAction,
        *,
        keys: builtins.list[tuple[str, str]] | None = None,
        expected_etag: str | None = None,
    ) -> builtins.list[Outcome]:
        """Record a curator's action as a line of the curation file, then apply the file (which relinks).

        ``keys`` are the registrations the curator looked at (default: the
        action's own); when ``expected_etag`` (from ``curation_etag``) no longer
        matches them, nothing is written and ``StaleEdit`` is raised.
        """
        from cartatlas import curation_actions

        path = curation_actions.record(
            self.store,
            action,
            keys or ([(action.registry, action.trial_id)] if action.registry else []),
            expected_etag,
        )
        return self.curate(path)

    def curation_in_force(self) -> pd.DataFrame:
        """The curation lines last applied (from the database's own log): what ``curate --export`` writes."""
        from cartatlas import curation_actions

        return pd.DataFrame(
            curation_actions.in_force(self.store),
            columns=["trial_id", "registry", "field", "value", "reason", "curator", "date", "status", "line"],
        )


DATA_VERSION_QUERY = """
SELECT (SELECT count(*) FROM runs), (SELECT max(started_at) FROM runs), (SELECT max(finished_at) FROM runs),
       (SELECT count(*) FROM classifications), (SELECT max(classified_at) FROM classifications),
       (SELECT count(*) FROM trial_links), (SELECT max(linked_at) FROM trial_links),
       (SELECT count(*) FROM curation_log), (SELECT max(logged_at) FROM curation_log),
       (SELECT count(*) FROM publication_links), (SELECT max(linked_at) FROM publication_links),
       (SELECT value FROM settings WHERE key = 'curation_file')
"""


def _opt_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def landscape_options(
    as_of: dt.date | str | None,
    focus: str,
    registries: list[str] | None,
    groups: str | list[str],
    platforms: Iterable[str] | None,
    relations: Iterable[str],
    per: str,
    latest_status: bool = False,
) -> LandscapeOptions:
    """Validated options from user-facing values (strings as typed on a command line)."""
    from cartatlas.dates import parse_date

    date = parse_date(as_of) if isinstance(as_of, str) else as_of
    if isinstance(as_of, str) and date is None:
        raise ValueError(f"--as-of {as_of!r} is not a date (use YYYY-MM-DD)")
    if per not in ("trial", "registration"):
        raise ValueError("per must be 'trial' or 'registration'")
    scheme = load_scheme(groups) if isinstance(groups, str) else parse_groups(groups)
    return LandscapeOptions(
        as_of=date,
        focus=focus_code(focus),
        registries=registries,
        groups=scheme,
        relations=frozenset(relations),
        platforms=frozenset(platforms) if platforms else None,
        per=per,  # type: ignore[arg-type]
        latest_status=latest_status,
    )


def open(path: str | Path | None = None, *, read_only: bool = False) -> Atlas:
    """Open (or create) a cartatlas database; default ``$CARTATLAS_DB`` or ./cartatlas.duckdb."""
    return Atlas(open_store(path, read_only=read_only))


def import_files(paths: Iterable[str | Path], db: str | Path | None = None) -> ImportStats:
    """Import files into a database in one call (opens and closes it)."""
    with open(db) as atlas:
        return atlas.import_files(paths)
