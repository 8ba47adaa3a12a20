"""The Python API: what a notebook user calls, and what the CLI is built on.

``cartatlas.open(path)`` gives an ``Atlas`` whose methods return pandas
DataFrames; the CLI commands call the same methods, so numbers never differ
between a notebook and a terminal.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from cartatlas.analysis.groups import focus_code, load_scheme, parse_groups
from cartatlas.analysis.landscape import Landscape, LandscapeOptions, compute_landscape
from cartatlas.analysis.registration import refresh_registration_dates
from cartatlas.curation import Outcome, apply_curation, remembered_curation_file
from cartatlas.model import ImportStats
from cartatlas.report.build import ReportResult, write_report
from cartatlas.sources.files import Item, LineBatch, iter_paths, read_path_batches
from cartatlas.store.classifications import save_classifications
from cartatlas.store.db import Store
from cartatlas.store.export import export_trials
from cartatlas.store.ingest import rebuild, save_records

if TYPE_CHECKING:
    from cartatlas.link import LinkStats
    from cartatlas.sources.chictr.sync import ChictrClient, ChictrProgress
    from cartatlas.sources.ctgov.api import CtgovClient, SyncPlan, SyncProgress


log = logging.getLogger(__name__)

#: Doubt first: conflicts, low confidence, undisclosed targets, CAR words without a CAR product.
REVIEW_QUERY = """
SELECT c.trial_id, c.registry, t.brief_title, c.relation, c.targets, c.platforms, c.confidence,
       c.flags, c.curated_fields,
       (CASE WHEN list_contains(c.curated_fields, 'relation') THEN -10 ELSE 0 END
        + 4 * len(list_filter(c.flags, lambda f: f LIKE 'conflict%'))
        + CASE c.confidence WHEN 'low' THEN 3 WHEN 'medium' THEN 1 ELSE 0 END
        + CASE WHEN c.relation IN ('therapy', 'follow_up') AND list_contains(c.targets, 'unknown') THEN 2 ELSE 0 END
        + CASE WHEN c.relation IN ('ancillary', 'none') AND json_array_length(c.evidence) > 0 THEN 2 ELSE 0 END
       ) AS priority,
       CAST(c.evidence AS VARCHAR) AS evidence
FROM classifications c JOIN trials t USING (registry, trial_id)
WHERE len(c.flags) > 0 OR c.confidence <> 'high'
   OR (c.relation IN ('therapy', 'follow_up') AND list_contains(c.targets, 'unknown'))
   OR (c.relation IN ('ancillary', 'none') AND json_array_length(c.evidence) > 0)
ORDER BY priority DESC, c.trial_id
LIMIT ?
"""


class Atlas:
    """A cartatlas database opened for analysis and updates."""

    def __init__(self, store: Store) -> None:
        self.store = store

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

        New and changed trials are classified afterwards (``classify=False``
        defers that to a later ``classify()``, e.g. between many imports).
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
            run.stats.add(save_records(self.store, items(), run.run_id, on_batch=on_batch))
        stats = run.stats
        if classify:
            self.classify()
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
        from cartatlas.sources.ctgov import api as ctgov_api
        from cartatlas.sources.http import given
        from cartatlas.store import sync_state

        now = clock or ctgov_api.utc_now
        the_query = sync_state.normalise_query(query or ctgov_api.DEFAULT_QUERY)
        state = sync_state.load(self.store, ctgov_api.REGISTRY, the_query)
        plan = ctgov_api.plan_sync(state, the_query, since, full)
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

                ctgov_api.harvest(self.store, client, run.run_id, plan, on_page=count, clock=now)
        finally:
            if own_client:
                client.close()
        self.classify()
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
                run.stats, _ = chictr_sync.harvest(
                    self.store, client, run.run_id, the_query, on_trial=count, **given(clock=clock)
                )
        finally:
            if own_client:
                client.close()
        stats = run.stats
        self.classify()
        return stats

    def link(self, curation: str | Path | None = None) -> LinkStats:
        """Link registrations of the same trial across registries (``trial_links``, ``trial_clusters``).

        ``curation`` is a curation file whose ``link`` rows confirm or split
        links; by default the curation file last applied to this database.
        Per-trial counts are then ``count(DISTINCT cluster_id)`` over
        ``trial_clusters``; per-registration counts are its rows.
        """
        from cartatlas.link import link_trials

        path = Path(curation) if curation is not None else None
        if path is None:
            try:
                from cartatlas.curation import remembered_curation_file

                path = remembered_curation_file(self.store)
            except (ImportError, duckdb.Error):
                path = None
            if path is not None and not path.exists():
                log.warning("curation file %s no longer exists; link decisions not applied", path)
                path = None
        return link_trials(self.store, path)

    # -- screening ---------------------------------------------------------------

    def classify(self, *, force: bool = False, on_batch: Callable[[int], None] | None = None) -> int:
        """Classify trials whose current version or classifier changed, then re-apply curation.

        Runs after every import and sync, so labels never lag the records;
        ``force`` re-classifies everything.  Returns the number classified.
        """
        from cartatlas.classify import CLASSIFIER_VERSION, classify_trial
        from cartatlas.knowledge import knowledge_version

        n = save_classifications(
            self.store,
            classify_trial,  # type: ignore[arg-type]
            (CLASSIFIER_VERSION, knowledge_version()),
            force=force,
            on_batch=on_batch,
        )
        remembered = remembered_curation_file(self.store)
        if n and remembered is not None:
            if remembered.exists():
                self.curate(remembered)
            else:
                log.warning("curation file %s no longer exists; overrides not re-applied", remembered)
        # Registration dates depend on every trial (the NCT calibration): redone when any trial changed.
        refresh_registration_dates(self.store)
        return n

    def curate(self, path: str | Path) -> list[Outcome]:
        """Apply a curator's override file (see ``cartatlas.curation``) and remember it."""
        run_id = self.store.start_run("curate", None, str(path), {"file": str(path)})
        outcomes = apply_curation(self.store, Path(path), run_id)
        bad = sum(o.status in ("invalid", "unknown_trial") for o in outcomes)
        self.store.finish_run(run_id, ImportStats(seen=len(outcomes), rejected=bad))
        return outcomes

    def classifications(self) -> pd.DataFrame:
        """Every trial's labels with evidence (JSON) and the fields a curator overrode."""
        return self.sql("SELECT * FROM classifications ORDER BY registry, trial_id")

    def review(self, limit: int = 50) -> pd.DataFrame:
        """Trials a curator should look at first, most doubtful first, each with the reasons."""
        return self.sql(REVIEW_QUERY, [limit])

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
    ) -> Landscape:
        """Every count of the report as DataFrames (``.tables``), facts and counted trials (``.units``).

        ``groups`` is a scheme name from knowledge/country_groups.csv or a list
        of ``NAME=CODE,CODE`` strings.  A trial whose stored versions are all
        later than ``as_of`` has status "not known" on that date, unless
        ``latest_status`` counts its latest known status.  The CLI report is
        built from this.
        """
        options = landscape_options(as_of, focus, registries, groups, platforms, relations, per, latest_status)
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

    def figure(self, name: str, as_of: dt.date | str | None = None, focus: str = "CN", **options: Any) -> Any:
        """One report figure as an Altair chart (for notebooks); names are in cartatlas.report.figures.FIGURES."""
        from cartatlas.report.figures import FIGURES

        if name not in FIGURES:
            raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
        return FIGURES[name](self.landscape(as_of, focus, **options))

    def report(self, out: str | Path, *, compare: str | Path | None = None, figures: bool = True,
               on_step: Callable[[str], None] | None = None, **options: Any) -> ReportResult:  # fmt: skip
        """Write the report directory (index.html, figures/, tables/, summary.json)."""
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
        ``on_batch``, ``clock``, ``link``; see ``cartatlas.publications.service``.
        Returns this run's stats and the pass's progress.
        """
        from cartatlas.publications import service

        return service.sync_pubmed(self.store, query, since, full, **options)

    def publications(self, kind: str | None = None, country: str | None = None, car_only: bool = False) -> pd.DataFrame:
        """Normalised PubMed articles with their linked trial ids, one row per PMID."""
        from cartatlas.publications import service

        return service.publications(self.store, kind=kind, country=country, car_only=car_only)

    def link_publications(self) -> int:
        """Recompute the links of every stored article to registry trials; returns how many."""
        from cartatlas.publications.links import refresh_links

        return refresh_links(self.store)

    def rebuild(self) -> int:
        """Re-derive normalised tables from the stored raw versions, then re-classify."""
        n = rebuild(self.store)
        self.classify(force=True)
        return n

    # -- reading -----------------------------------------------------------------

    def sql(self, query: str, params: builtins.list[Any] | None = None) -> pd.DataFrame:
        """Any SQL over the database (tables and views are documented in docs/schema.md)."""
        return self.store.con.execute(query, params or []).df()

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
        return self.sql(f"SELECT * FROM trials {clause} ORDER BY registry, trial_id", params)

    def sites(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM trial_sites ORDER BY registry, trial_id, site_no")

    def versions(self, record_id: str) -> pd.DataFrame:
        """Every stored version of one record, oldest first, without payloads."""
        return self.sql("SELECT * FROM record_versions WHERE record_id = ? ORDER BY version_id", [record_id])

    def raw(self, version_id: int) -> Any:
        """The payload of one stored version, exactly as it is kept."""
        row = self.store.con.execute("SELECT payload FROM raw_records WHERE version_id = ?", [version_id]).fetchone()
        return None if row is None else row[0]

    def summary(self) -> dict[str, Any]:
        return self.store.summary()

    def export(self, fmt: str, out: str | Path, what: str = "trials") -> int:
        """Write the normalised trials (or ``what="publications"``) to a file; returns the rows written."""
        if what == "publications":
            from cartatlas.store.export import export_publications

            return export_publications(self.store, fmt, Path(out))
        return export_trials(self.store, fmt, Path(out))


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
    from cartatlas.normalise.dates import parse_date

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
    return Atlas(Store.open(path, read_only=read_only))


def import_files(paths: Iterable[str | Path], db: str | Path | None = None) -> ImportStats:
    """Import files into a database in one call (opens and closes it)."""
    with open(db) as atlas:
        return atlas.import_files(paths)
