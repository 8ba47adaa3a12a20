"""Derived data is never stale: the step every command that changes the database ends with.

Classifications, a curator's overrides, cross-registry links (and the clusters
that are a view over them), publication labels and publication links are all
derived from the stored record versions and the knowledge base.  ``derive``
brings every one of them up to date, doing only what is needed:

1. trials whose current version, classifier or knowledge base changed are
   re-screened, and the remembered curation file is re-applied when labels
   changed or the file itself did;
2. publication labels (computed while normalising an article) are re-derived
   from the stored articles when the knowledge base or classifier changed;
3. registrations are re-linked across registries when any trial or the
   curation file changed since they were last linked;
4. articles are re-linked to trials when trials, their labels or the
   articles changed.

Each refresh is recorded in ``derived_state`` with a fingerprint of its inputs
and the knowledge-base and classifier versions, which is how ``staleness``
tells ``report`` and ``summary`` (which never write) what is out of date and
which command refreshes it.  ``import``, ``sync``, ``curate`` and ``rebuild``
call ``derive`` at their end (through ``cartatlas.api.Atlas``); ``cartatlas
refresh`` runs it alone.

Linking is recomputed whole rather than patched: a link depends on the
whole corpus (rare-word blocking, at most one partner per registry), and a
whole pass gives the same result as ``cartatlas link`` by construction.  What
it reads of each registration (ids in its text, its matching profile) is kept
by content hash (``cartatlas.link.features``), so after a weekly import only
the changed registrations' features are computed again.  It is
skipped entirely when nothing it reads changed, so a sync that brings no new
or changed trial costs a fingerprint query.  A first pass costs about 0.45 ms
per registration (docs/performance.md), so it runs inline while the database
holds at most ``relink_limit()`` registrations; above that, an import or sync
leaves the links stale, says so, and ``cartatlas link`` (or ``build``, which
always links) refreshes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cartatlas import knowledge
from cartatlas.analysis.registration import refresh_registration_dates
from cartatlas.store.db import Store, rollback
from cartatlas.store.derived_state import read_state, record_state

if TYPE_CHECKING:
    from cartatlas.curation import Outcome
    from cartatlas.link import LinkStats

log = logging.getLogger(__name__)

#: What ``derive`` keeps up to date, in the order it refreshes them.
PRODUCTS = ("classifications", "curation", "publication_labels", "trial_links", "publication_links")
#: Registrations up to which ``derive`` re-links inline (``$CARTATLAS_RELINK_MAX`` overrides it).
RELINK_LIMIT = 100_000


def relink_limit() -> int:
    """How many registrations a database may hold for an import or sync to re-link them inline."""
    value = os.environ.get("CARTATLAS_RELINK_MAX", "").strip()
    try:
        return int(value) if value else RELINK_LIMIT
    except ValueError:
        log.warning("CARTATLAS_RELINK_MAX=%r is not a number; using %d", value, RELINK_LIMIT)
        return RELINK_LIMIT


@dataclass(frozen=True)
class Stale:
    """One derived product that does not match the stored versions or the knowledge base."""

    product: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.product}: {self.reason}; run `{self.fix}`"

    def to_dict(self) -> dict[str, str]:
        return {"product": self.product, "reason": self.reason, "fix": self.fix}


@dataclass
class DeriveResult:
    """What one ``derive`` refreshed (zero or None: it was already up to date)."""

    classified: int = 0
    curation: list[Outcome] | None = None
    publications_relabelled: int | None = None
    links: LinkStats | None = None
    publication_links: int | None = None
    registration_dates: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per refreshed product, for a command's closing lines."""
        out = []
        if self.classified:
            out.append(f"screened {self.classified:,} new or changed trials")
        if self.curation is not None:
            applied = sum(o.status in ("applied", "stale") for o in self.curation)
            out.append(f"re-applied {applied:,} curation overrides")
        if self.publications_relabelled:
            out.append(f"re-labelled {self.publications_relabelled:,} articles with the current knowledge base")
        if self.links is not None:
            out.append(
                f"linked registrations: {self.links.trials:,} registrations are {self.links.distinct_trials:,} trials"
            )
        if self.publication_links:
            out.append(f"linked articles to trials: {self.publication_links:,} links")
        if self.registration_dates:
            out.append("dated the registrations again (the trials changed)")
        return out + self.notes


def versions() -> tuple[str, str]:
    """(classifier version, knowledge-base version) of the installed cartatlas."""
    from cartatlas.classify import CLASSIFIER_VERSION

    return CLASSIFIER_VERSION, knowledge.knowledge_version()


# -- fingerprints of inputs --------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\x00")
    return h.hexdigest()[:20]


def _aggregate(store: Store, query: str) -> str:
    """A digest of one query's rows, computed inside DuckDB (one string per row, in a fixed order)."""
    digest = "md5(coalesce(string_agg(x, '|' ORDER BY x), ''))"
    row = store.con.execute(f"SELECT count(*), {digest} FROM ({query})").fetchone()
    return f"{row[0]}:{row[1]}" if row else "0:"


def trials_fingerprint(store: Store) -> str:
    """Every stored trial and the version shown as current."""
    return _aggregate(store, "SELECT registry || ':' || trial_id || ':' || content_hash AS x FROM trials")


def labels_fingerprint(store: Store) -> str:
    """The labels that publication links read (after curation)."""
    return _aggregate(
        store,
        "SELECT registry || ':' || trial_id || ':' || relation || ':' || CAST(targets AS VARCHAR) || ':' "
        "|| CAST(disease_entity AS VARCHAR) || ':' || coalesce(branch, '') AS x FROM classifications",
    )


def publications_fingerprint(store: Store) -> str:
    """Every stored article, its current version and its labels."""
    return _aggregate(
        store,
        "SELECT pmid || ':' || content_hash || ':' || coalesce(kind, '') || ':' "
        "|| coalesce(CAST(is_car AS VARCHAR), '') || ':' || CAST(targets AS VARCHAR) || ':' "
        "|| coalesce(disease_branch, '') AS x FROM publications",
    )


def curation_file(store: Store) -> Path | None:
    from cartatlas.curation import remembered_curation_file

    return remembered_curation_file(store)


def curation_fingerprint(path: Path | None) -> str:
    """The curation file by path and content ('none' when none was applied, 'missing' when it is gone)."""
    if path is None:
        return "none"
    try:
        return f"{path}:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    except OSError:
        return f"{path}:missing"


def _count(store: Store, query: str, params: list[Any] | None = None) -> int:
    row = store.con.execute(query, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- the steps ---------------------------------------------------------------------------------


def classify_trials(
    store: Store,
    *,
    force: bool = False,
    on_batch: Callable[[int], None] | None = None,
    reapply_curation: bool = False,
) -> tuple[int, list[Outcome] | None]:
    """Screen trials whose current version, classifier or knowledge base changed; re-apply curation.

    The remembered curation file is re-applied when any label was rewritten
    (the rules' values replaced the curator's) or when asked to (the file
    changed).  Returns (trials screened, curation outcomes or None).
    """
    from cartatlas.classify import classify_trial
    from cartatlas.pipeline.parallel import screen_in_workers
    from cartatlas.store.classifications import save_classifications

    clf, kb = versions()
    n = save_classifications(
        store,
        classify_trial,  # type: ignore[arg-type]
        (clf, kb),
        force=force,
        on_batch=on_batch,
        map_tables=screen_in_workers((clf, kb)),
    )
    record_state(
        store,
        "classifications",
        trials_fingerprint(store),
        knowledge_version=kb,
        classifier_version=clf,
        detail={"classified": n},
    )
    outcomes = None
    path = curation_file(store)
    if path is not None and (n or reapply_curation):
        if path.exists():
            outcomes = apply_curation_file(store, path)
        else:
            log.warning("curation file %s no longer exists; overrides not re-applied", path)
    return n, outcomes


def apply_curation_file(store: Store, path: Path) -> list[Outcome]:
    """Apply a curation file as a logged ``curate`` run and record what was applied."""
    from cartatlas.curation import apply_curation
    from cartatlas.model import ImportStats

    run_id = store.start_run("curate", None, str(path), {"file": str(path)})
    outcomes = apply_curation(store, path, run_id)
    bad = sum(o.status in ("invalid", "unknown_trial") for o in outcomes)
    store.finish_run(run_id, ImportStats(seen=len(outcomes), rejected=bad))
    clf, kb = versions()
    record_state(
        store,
        "curation",
        curation_fingerprint(path),
        knowledge_version=kb,
        classifier_version=clf,
        detail={"file": str(path), "overrides": len(outcomes), "problems": bad},
    )
    return outcomes


_LABEL_COLUMNS = (
    "kind", "kind_evidence", "is_car", "targets", "platforms", "disease_branch", "diseases", "patients_treated",
    "patients_evidence", "report_country", "report_country_basis", "report_institution", "report_region",
    "report_region_name",
)  # fmt: skip


def relabel_publications(store: Store) -> int:
    """Re-derive every article's labels from its stored row with the current knowledge base.

    The labels read only the article (title, abstract, keywords, MeSH,
    publication types, authors), all of which the row keeps, so no raw
    version has to be parsed again.
    """
    from cartatlas.publications.classify import classify_publication
    from cartatlas.store.schema.publications import PUBLICATION_SCHEMA

    cursor = store.cursor()
    try:
        rows = (
            cursor.sql(
                "SELECT pmid, title, abstract, keywords, mesh_headings, publication_types, authors FROM publications"
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        cursor.close()
    out = []
    for row in rows:
        try:
            labels = classify_publication(row)
        except Exception:  # one bad article must not stop the others; it keeps its old labels
            log.exception("re-labelling PMID %s failed", row.get("pmid"))
            continue
        out.append({"pmid": row["pmid"], **{c: labels.get(c) for c in _LABEL_COLUMNS}})
    if out:
        schema = pa.schema([PUBLICATION_SCHEMA.field("pmid"), *[PUBLICATION_SCHEMA.field(c) for c in _LABEL_COLUMNS]])
        table = pa.Table.from_pylist(out, schema=schema)
        assignments = ", ".join(f'"{c}" = n."{c}"' for c in _LABEL_COLUMNS)
        con = store.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("_relabelled", table)
            con.execute(f"UPDATE publications SET {assignments} FROM _relabelled n WHERE publications.pmid = n.pmid")
            con.unregister("_relabelled")
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
    clf, kb = versions()
    record_state(
        store,
        "publication_labels",
        publication_labels_inputs(),
        knowledge_version=kb,
        classifier_version=clf,
        detail={"relabelled": len(out)},
    )
    return len(out)


def relink(store: Store, curation: Path | None = None) -> LinkStats:
    """Link registrations across registries (``cartatlas.link``) and record what the links were made from.

    ``curation`` is the file whose ``link`` rows confirm or split links; by
    default the curation file last applied to this database.
    """
    from cartatlas.link import link_trials
    from cartatlas.pipeline.parallel import features_in_workers

    path = curation if curation is not None else curation_file(store)
    if curation is None and path is not None and not path.exists():
        log.warning("curation file %s no longer exists; link decisions not applied", path)
        path = None
    stats = link_trials(store, path, map_features=features_in_workers())
    clf, kb = versions()
    record_state(
        store,
        "trial_links",
        _digest(trials_fingerprint(store), curation_fingerprint(path)),
        knowledge_version=kb,
        classifier_version=clf,
        detail={
            "registrations": stats.trials,
            "trials": stats.distinct_trials,
            "linked_groups": stats.clusters,
            "curation_file": str(path) if path else None,
        },
    )
    return stats


def publication_labels_inputs() -> str:
    """What publication labels are made from: the classifier and the knowledge base."""
    return _digest(*versions())


def _publication_links_inputs(store: Store) -> str:
    return _digest(trials_fingerprint(store), labels_fingerprint(store), publications_fingerprint(store), versions()[1])


def relink_publications(store: Store) -> int:
    """Re-link every stored article to registry trials and record what the links were made from."""
    from cartatlas.publications.links import refresh_links

    if _count(store, "SELECT count(*) FROM publications") == 0:
        store.con.execute("DELETE FROM publication_links")  # nothing to link; no trial index to build
        n = 0
    else:
        n = refresh_links(store)
    clf, kb = versions()
    record_state(
        store,
        "publication_links",
        _publication_links_inputs(store),
        knowledge_version=kb,
        classifier_version=clf,
        detail={"links": n},
    )
    return n


def derive(store: Store, *, force: bool = False, on_step: Callable[[str], None] | None = None) -> DeriveResult:
    """Bring every derived table up to date with the stored versions and the knowledge base.

    ``force`` redoes every step (after ``rebuild``, which re-normalises every
    record).  Steps whose inputs did not change since they were last made
    are skipped.
    """
    step = on_step or (lambda _s: None)
    result = DeriveResult()
    state = read_state(store)

    step("screening")
    path = curation_file(store)
    curation_changed = path is not None and (
        state.get("curation") is None or state["curation"].inputs != curation_fingerprint(path)
    )
    result.classified, result.curation = classify_trials(store, force=force, reapply_curation=curation_changed)

    labels = state.get("publication_labels")
    if force or labels is None or labels.inputs != publication_labels_inputs():
        step("publication labels")
        result.publications_relabelled = relabel_publications(store)

    links = state.get("trial_links")
    wanted = _digest(trials_fingerprint(store), curation_fingerprint(curation_file(store)))
    if force or links is None or links.inputs != wanted:
        registrations = _count(store, "SELECT count(*) FROM trials")
        if force or registrations <= relink_limit():
            step("linking registrations")
            result.links = relink(store)
        else:
            result.notes.append(
                f"registrations were not re-linked ({registrations:,} is above CARTATLAS_RELINK_MAX="
                f"{relink_limit():,}): run `cartatlas link` before counting trials"
            )

    pub_links = state.get("publication_links")
    if force or pub_links is None or pub_links.inputs != _publication_links_inputs(store):
        step("linking articles")
        result.publication_links = relink_publications(store)

    # Registration dates depend on every trial (the NCT-number calibration); redone when any trial changed.
    if refresh_registration_dates(store, force=force):
        step("registration dates")
        result.registration_dates = True
    return result


# -- staleness ---------------------------------------------------------------------------------


def staleness(store: Store) -> list[Stale]:
    """What is out of date, and the command that refreshes it; empty when everything is current.

    Reads only, so ``report`` and ``summary`` (also on a read-only database)
    can say it.
    """
    from cartatlas.store.classifications import stale_trials

    out: list[Stale] = []
    clf, kb = versions()
    state = read_state(store)
    n_trials = _count(store, "SELECT count(*) FROM trials")
    n_pubs = _count(store, "SELECT count(*) FROM publications")

    stale = stale_trials(store, clf, kb)
    if stale:
        unscreened = _count(
            store,
            "SELECT count(*) FROM trials t LEFT JOIN classifications c USING (registry, trial_id) "
            "WHERE c.trial_id IS NULL",
        )
        other_kb = _count(
            store, "SELECT count(*) FROM classifications WHERE kb_version <> ? OR classifier_version <> ?", [kb, clf]
        )
        parts = []
        if unscreened:
            parts.append(f"{unscreened:,} trials are not screened yet")
        if other_kb:
            parts.append(
                f"{other_kb:,} trials were screened with another knowledge base or classifier "
                f"(now knowledge {kb}, classifier {clf})"
            )
        rest = len(stale) - unscreened - other_kb
        if rest > 0:
            parts.append(f"{rest:,} trials changed since they were screened")
        out.append(Stale("classifications", "; ".join(parts), "cartatlas refresh"))

    path = curation_file(store)
    if path is not None:
        cur = state.get("curation")
        fingerprint = curation_fingerprint(path)
        if fingerprint.endswith(":missing"):
            out.append(
                Stale(
                    "curation",
                    f"the curation file {path} no longer exists (its overrides stay as last applied)",
                    "cartatlas curate FILE",
                )
            )
        elif cur is not None and cur.inputs != fingerprint:
            out.append(
                Stale("curation", f"the curation file {path} changed since it was applied", f"cartatlas curate {path}")
            )

    labels = state.get("publication_labels")
    if n_pubs and (labels is None or labels.inputs != publication_labels_inputs()):
        made = (
            f"with knowledge base {labels.knowledge_version}, now {kb}"
            if labels is not None
            else "by a cartatlas that did not record its knowledge base"
        )
        out.append(
            Stale("publication_labels", f"the labels of {n_pubs:,} articles were made {made}", "cartatlas refresh")
        )

    links = state.get("trial_links")
    if n_trials and (links is None or links.inputs != _digest(trials_fingerprint(store), curation_fingerprint(path))):
        when = (
            f"since they were last linked ({links.made_at:%Y-%m-%d %H:%M})"
            if links is not None
            else "and were never linked"
        )
        out.append(
            Stale(
                "trial_links",
                f"registrations changed {when}: a trial registered in two registries may count twice",
                "cartatlas link",
            )
        )

    pub_links = state.get("publication_links")
    if n_pubs and (pub_links is None or pub_links.inputs != _publication_links_inputs(store)):
        reason = "trials, their labels or the articles changed since articles were linked to trials"
        out.append(Stale("publication_links", reason, "cartatlas refresh"))
    return out


def cluster_disagreements(store: Store) -> int:
    """How many linked trials have registrations that disagree on being a CAR trial."""
    return _count(store, "SELECT count(*) FROM cluster_disagreements")
