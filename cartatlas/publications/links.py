"""Which registry trials a published report reports.

Three methods, tried in this order, each link carrying its evidence:

1. ``databank``: the ids NLM indexed in the record's DataBank list
   (ClinicalTrials.gov, ChiCTR, ...): the strongest, score 1.0;
2. ``abstract_id``: registry ids written in the title or abstract (a ChiCTR
   number is often only there), score 1.0;
3. ``scored``: for CAR clinical reports with no id at all, a match against
   the stored trials (their screened targets and diseases from the
   ``classifications`` table where a trial has been screened, else the
   vocabulary's reading of its titles and interventions) on shared target (required), the reporting institution
   against the trial's sponsor, collaborators and sites, the disease, and the
   years (a trial must have started before the report and not long before).
   Links scoring at least ``MIN_SCORE`` are kept, best three per article.

An id the article carries is linked even when the trial is not in the store
(``in_store`` false), so Table 1 can list it and a later import can resolve it;
ids are also looked up among trials' secondary ids (a ChiCTR number an NCT
record lists), which links the article to that trial as well.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cartatlas.normalise.pubmed import normalise_trial_id
from cartatlas.publications.vocab import vocab
from cartatlas.store.db import Store, now, rollback

log = logging.getLogger(__name__)

MIN_SCORE = 0.6
MAX_SCORED_LINKS = 3
#: A report rarely comes more than this many years after its trial started.
MAX_YEARS_AFTER_START = 8

#: Words that say nothing about which institution it is.
_STOP = frozenset(
    re.findall(
        r"\S+",
        "the of and for in at to a an hospital university medical center centre college school department "
        "institute affiliated first second third people's peoples general clinical research sciences science "
        "health co ltd inc corporation company biotechnology biotech therapeutics pharmaceutical "
        "pharmaceuticals china usa",
    )
)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(slots=True)
class Link:
    pmid: str
    trial_registry: str
    trial_id: str
    method: str
    score: float
    evidence: str
    in_store: bool


def _words(text: str | None) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 2}


def _year(value: Any) -> int | None:
    return value.year if isinstance(value, dt.date) else None


@dataclass(slots=True)
class _Trial:
    registry: str
    trial_id: str
    targets: set[str]
    diseases: set[str]
    branches: set[str]
    orgs: list[str]
    countries: set[str]
    start_year: int | None


def _trial_index(store: Store) -> tuple[dict[str, list[tuple[str, str]]], list[_Trial]]:
    """(id -> [(registry, trial_id)], trials with what a scored match needs)."""
    kb = vocab()
    rows = store.con.execute(
        "SELECT registry, trial_id, nct_id, secondary_ids, brief_title, official_title, lead_sponsor, "
        "collaborators, interventions, conditions, sites, countries, start_date, first_posted FROM trials"
    ).fetchall()
    screened: dict[tuple[str, str], tuple[list[str], list[str], str]] = {}
    has_classifications = store.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'classifications'"
    ).fetchone()
    if has_classifications and has_classifications[0]:
        # The trial screening's targets and diseases when a trial has been screened (issue 3).
        for registry, trial_id, targets, entities, branch in store.con.execute(
            "SELECT registry, trial_id, targets, disease_entity, branch FROM classifications"
        ).fetchall():
            screened[(registry, trial_id)] = (list(targets or []), list(entities or []), branch or "")
    ids: dict[str, list[tuple[str, str]]] = {}
    trials: list[_Trial] = []
    for (
        registry,
        trial_id,
        nct,
        secondary,
        brief,
        official,
        sponsor,
        collaborators,
        interventions,
        conditions,
        sites,
        countries,
        start,
        posted,
    ) in rows:
        key = (registry, trial_id)
        for ident in {trial_id, nct, *[(s or {}).get("id") for s in secondary or []]}:
            if ident:
                ids.setdefault(ident.strip().upper(), []).append(key)
        text = " ; ".join([brief or "", official or "", *[(i or {}).get("name") or "" for i in interventions or []]])
        hits = kb.scan(text)
        targets = {h.value for h in hits if h.kind == "antigen"}
        for h in hits:
            if h.kind == "product":
                targets.update(kb.product_targets.get(h.value, ()))
        disease_hits = kb.scan(" ; ".join([*(conditions or []), brief or ""]))
        diseases = {h.value for h in disease_hits if h.kind == "disease"}
        if key in screened:
            s_targets, s_entities, _ = screened[key]
            targets = {t for t in s_targets if t != "unknown"} or targets
            diseases = set(s_entities) | diseases
        orgs = [sponsor or "", *[(c or {}).get("name") or "" for c in collaborators or []]]
        orgs += [(s or {}).get("facility") or "" for s in (sites or [])[:50]]
        trials.append(
            _Trial(
                registry,
                trial_id,
                targets,
                diseases,
                {kb.disease_branch.get(d, "") for d in diseases} - {""},
                [o for o in orgs if o],
                set(countries or []),
                _year(start) or _year(posted),
            )
        )
    return ids, trials


def _score(pub: dict[str, Any], trial: _Trial, affiliation_words: set[str]) -> tuple[float, list[str]] | None:
    targets = set(pub["targets"] or [])
    shared = targets & trial.targets
    if not shared:
        return None
    year = pub["pub_year"]
    if (
        year is not None
        and trial.start_year is not None
        and (trial.start_year > year or year - trial.start_year > MAX_YEARS_AFTER_START)
    ):
        return None
    evidence = [f"target {', '.join(sorted(shared))} shared"]
    score = 0.3 if shared == targets else 0.2
    best_org, best_overlap = "", 0.0
    for org in trial.orgs:
        words = _words(org)
        if not words:
            continue
        overlap = len(words & affiliation_words) / len(words)
        if overlap > best_overlap:
            best_org, best_overlap = org, overlap
    if best_overlap >= 0.6:
        score += 0.35
        evidence.append(f"institution: {best_org!r} in the authors' affiliations")
    elif pub["report_country"] and pub["report_country"] in trial.countries:
        score += 0.1
        evidence.append(f"trial has sites in {pub['report_country']}, the report's country")
    diseases = set(pub["diseases"] or [])
    if diseases & trial.diseases:
        score += 0.2
        evidence.append(f"disease {', '.join(sorted(diseases & trial.diseases))}")
    elif pub["disease_branch"] and pub["disease_branch"] in trial.branches:
        score += 0.1
        evidence.append(f"same branch ({pub['disease_branch']})")
    if year is not None and trial.start_year is not None:
        score += 0.15
        evidence.append(f"trial started {trial.start_year}, report published {year}")
    return round(min(score, 1.0), 3), evidence


def compute_links(store: Store) -> list[Link]:
    """Every link of every stored publication to registry trials (see the module doc)."""
    ids, trials = _trial_index(store)
    by_target: dict[str, list[_Trial]] = {}
    for t in trials:
        for target in t.targets:
            by_target.setdefault(target, []).append(t)
    pubs = store.con.execute(
        "SELECT pmid, registry_ids, kind, is_car, targets, diseases, disease_branch, pub_year, report_country, "
        "authors FROM publications"
    ).fetchall()
    links: list[Link] = []
    for pmid, registry_ids, kind, is_car, targets, diseases, branch, year, country, authors in pubs:
        seen: set[tuple[str, str]] = set()
        for rid in registry_ids or []:
            method = "databank" if rid["found_in"] == "databank" else "abstract_id"
            ident = normalise_trial_id(rid["registry"], rid["id"])
            where = "DataBank list" if method == "databank" else f"id written in the {rid['found_in']}"
            targets_in_store = ids.get(ident.upper(), [])
            if not targets_in_store:
                if (rid["registry"], ident) not in seen:
                    seen.add((rid["registry"], ident))
                    links.append(Link(pmid, rid["registry"], ident, method, 1.0, f"{ident} in the {where}", False))
                continue
            for registry, trial_id in targets_in_store:
                if (registry, trial_id) in seen:
                    continue
                seen.add((registry, trial_id))
                via = "" if trial_id.upper() == ident.upper() else f" (listed by {trial_id} as a secondary id)"
                links.append(Link(pmid, registry, trial_id, method, 1.0, f"{ident} in the {where}{via}", True))
        if seen or kind != "clinical-report" or not is_car or not targets:
            continue
        pub = {
            "targets": targets,
            "diseases": diseases,
            "disease_branch": branch,
            "pub_year": year,
            "report_country": country,
        }
        affiliation_words: set[str] = set()
        for author in authors or []:
            for aff in author.get("affiliations") or []:
                affiliation_words |= _words(aff)
        candidates = {id(t): t for target in targets for t in by_target.get(target, [])}
        scored = []
        for trial in candidates.values():
            result = _score(pub, trial, affiliation_words)
            if result is not None and result[0] >= MIN_SCORE:
                scored.append((result[0], trial, result[1]))
        scored.sort(key=lambda s: (-s[0], s[1].trial_id))
        for score, trial, evidence in scored[:MAX_SCORED_LINKS]:
            links.append(Link(pmid, trial.registry, trial.trial_id, "scored", score, "; ".join(evidence), True))
    return links


_LINK_SCHEMA = pa.schema(
    [
        ("pmid", pa.string()),
        ("trial_registry", pa.string()),
        ("trial_id", pa.string()),
        ("method", pa.string()),
        ("score", pa.float64()),
        ("evidence", pa.string()),
        ("in_store", pa.bool_()),
        ("linked_at", pa.timestamp("us", tz="UTC")),
    ]
)


def refresh_links(store: Store) -> int:
    """Recompute ``publication_links`` in one transaction; returns the number of links."""
    links = compute_links(store)
    at = now()
    table = pa.Table.from_pylist(
        [
            {
                "pmid": k.pmid,
                "trial_registry": k.trial_registry,
                "trial_id": k.trial_id,
                "method": k.method,
                "score": k.score,
                "evidence": k.evidence,
                "in_store": k.in_store,
                "linked_at": at,
            }
            for k in links
        ],
        schema=_LINK_SCHEMA,
    )
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM publication_links")
        con.register("_links", table)
        con.execute("INSERT INTO publication_links BY NAME SELECT * FROM _links")
        con.unregister("_links")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    log.info("publication links: %d", len(links))
    return len(links)
