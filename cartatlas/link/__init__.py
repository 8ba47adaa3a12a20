"""One trial, several registrations: linking records of the same trial across registries.

Three passes, each only adding what the one before could not decide:

1. **Ids one record gives for another.**  A ChiCTR record's partner-registry
   field, a ClinicalTrials.gov secondary id, an EudraCT number: a record that
   names another registration is linked to it (``secondary_id``, score 1).  An
   id in a title counts the same (``id_in_title``).  An id in free text (a
   description, the criteria) may name a parent or earlier study, so it links
   only when the two records are also alike (``id_in_text``, scored).  Records
   that carry the same id (the country copies of one EU CTR trial) are linked
   (``same_eudract`` / ``same_id``).
2. **A scored match** of registrations in different registries
   (``cartatlas.link.match``): titles across languages where an English title
   exists, sponsor, registration dates, target size, interventions.  At most one
   partner per registry, best score first; a record that names its partner in a
   registry is never score-matched to another one there.
3. **Curators' decisions** from the curation file, which confirm or split.

``trial_links`` is rewritten on every run (one transaction); ``trial_clusters``
is a view over it, so per-trial counts are ``count(DISTINCT cluster_id)``.

What a run reads of each registration (the ids it gives, ``mentions``, and
its matching profile, ``match.profile``) depends on that registration alone,
and finding ids in free text is most of a run's cost.  Both are kept in
``link_features`` by content hash (``cartatlas.link.features``), so a run
after a weekly import computes them only for the registrations that changed;
the passes themselves always run over every registration, so the links are
those of a run from scratch.  The database does the passes' whole-corpus work
(``Registrations``), so memory does not grow with the registry.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from cartatlas.knowledge.registries import cluster_id_registries, find_registry_ids, id_registry, records_registry
from cartatlas.link import match
from cartatlas.link.curation import LinkDecision, read_link_decisions
from cartatlas.normalise.ictrp import identity_ids
from cartatlas.store.db import Store, now, rollback
from cartatlas.store.schema.links import ACTIVE_STATUSES

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Strength of the ways a record can name another, strongest first.
ID_METHODS = ("secondary_id", "id_in_title", "id_in_text")
#: Registries whose ids become cluster ids, so a link to one not yet imported is kept.
CANONICAL_REGISTRIES = frozenset(cluster_id_registries())
#: Cap on how many trials may share a blocking token before the token is too common to block on.
MAX_BLOCK = 60

_TITLE_FIELDS = ("brief_title", "official_title", "acronym", "brief_title_local", "official_title_local")
_TEXT_FIELDS = (
    "brief_summary",
    "detailed_description",
    "brief_summary_local",
    "detailed_description_local",
    "eligibility_criteria",
)
_COLUMNS = (
    "registry, trial_id, nct_id, org_study_id, secondary_ids, brief_title, official_title, acronym, "
    "brief_title_local, official_title_local, lead_sponsor, lead_sponsor_local, collaborators, "
    "first_submitted, first_posted, start_date, enrollment, interventions, brief_summary, "
    "detailed_description, brief_summary_local, detailed_description_local, eligibility_criteria"
)


#: Computes the link features of batches of trials rows (``cartatlas.link.features.feature_table``), in
#: order, given the batches and how many rows they hold in all; the pipeline runs it in worker processes.
FeatureMap = Callable[[Iterator[pa.Table], int], Iterator[pa.Table]]


def norm_id(identifier: str) -> str:
    return re.sub(r"\s+", "", identifier).upper()


def pair_key(a: Key, b: Key) -> tuple[Key, Key]:
    return (a, b) if a <= b else (b, a)


@dataclass(slots=True)
class Link:
    a: Key
    b: Key
    method: str
    score: float
    evidence: dict[str, Any]
    status: str


@dataclass(slots=True)
class Mention:
    """An id that a record gives, where it gives it, and how strong that is."""

    key: Key
    method: str
    field: str
    text: str


@dataclass(slots=True)
class LinkStats:
    trials: int = 0
    #: (method, status) -> links written.
    links: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Groups of two or more registrations, and the registrations in them.
    clusters: int = 0
    clustered_trials: int = 0
    distinct_trials: int = 0
    curated: int = 0
    problems: list[str] = field(default_factory=list)

    def by_method(self, status: str | None = None) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (method, st), n in self.links.items():
            if status is None or st == status:
                out[method] += n
        return dict(out)


# -- reading trials ---------------------------------------------------------------------


def identity_keys(registry: str, trial_id: str) -> set[Key]:
    """Ids that a registration *is*: its own, and those written inside it (EudraCT in an EUCTR id)."""
    keys = {(registry, norm_id(trial_id))}
    own = id_registry(trial_id)
    if own and own != registry:
        keys.add((own, norm_id(trial_id)))
    for sid in identity_ids(registry, trial_id):
        if sid["registry"]:
            keys.add((sid["registry"], norm_id(sid["id"])))
    return keys


def _id_key(registry: str | None, identifier: str) -> Key | None:
    reg = registry or id_registry(identifier)
    if not reg:
        return None
    if reg == "euctr":
        m = re.search(r"\d{4}-\d{6}-\d{2}", identifier)
        return ("eudract", m[0]) if m else None
    if reg == "jprn" and "-" in identifier:
        inner = identifier.split("-", 1)[1]
        inner_reg = id_registry(inner)
        if inner_reg and inner_reg != "jprn":
            return (inner_reg, norm_id(inner))
    return (reg, norm_id(identifier))


def mentions(row: dict[str, Any]) -> Iterator[Mention]:
    """Every id a record gives for another registration, with where it gives it."""
    for sid in row.get("secondary_ids") or ():
        if isinstance(sid, dict) and isinstance(sid.get("id"), str):
            found: list[tuple[str | None, str]] = list(find_registry_ids(sid["id"])) or [
                (sid.get("registry") or id_registry(sid["id"]), sid["id"])
            ]
            for reg, identifier in found:
                key = _id_key(reg, identifier)
                if key:
                    yield Mention(key, "secondary_id", "secondary_ids", identifier)
    for column in ("nct_id", "org_study_id"):
        value = row.get(column)
        if isinstance(value, str):
            for reg, identifier in find_registry_ids(value):
                key = _id_key(reg, identifier)
                if key:
                    yield Mention(key, "secondary_id", column, identifier)
    for column in _TITLE_FIELDS:
        for reg, identifier in find_registry_ids(row.get(column)):
            key = _id_key(reg, identifier)
            if key:
                yield Mention(key, "id_in_title", column, identifier)
    texts = [(c, row.get(c)) for c in _TEXT_FIELDS]
    for i, iv in enumerate(row.get("interventions") or ()):
        if isinstance(iv, dict):
            texts.append((f"interventions[{i}].description", iv.get("description")))
    for column, text in texts:
        if isinstance(text, str):
            for reg, identifier in find_registry_ids(text):
                key = _id_key(reg, identifier)
                if key:
                    yield Mention(key, "id_in_text", column, identifier)


# -- the passes ----------------------------------------------------------------------------


@dataclass(slots=True)
class Features:
    """What the passes read of one registration: the ids it gives and its matching profile."""

    mentions: list[Mention]
    profile: match.Profile


def registration_features(row: dict[str, Any]) -> Features:
    """A registration's ``Features`` from its row of ``trials``."""
    return Features(list(mentions(row)), match.profile(row))


@dataclass(slots=True)
class Registrations:
    """What the passes read of the registrations: only what they will use, not every registration's all.

    At registry scale (560,000 registrations) every registration's matching
    profile would take gigabytes of token sets, yet the passes compare only a
    few thousand pairs.  ``cartatlas.link.features.read_registrations`` makes
    this from the stored link features with the database doing the whole-corpus
    work (blocking on rare title tokens, ids shared by several registrations,
    token rarities), so memory holds the ids that records give, the pairs to
    compare and the profiles of those pairs.
    """

    #: Registrations being linked.
    n: int
    #: The ids each registration gives, for those that give any, in (registry, trial_id) order.
    mentions: dict[Key, list[Mention]]
    #: For each id that a mention names, the registrations that are that id, in order.
    by_identity: dict[Key, list[Key]]
    #: Ids that two or more registrations are (the country copies of an EU CTR trial), with them, sorted.
    shared_ids: list[tuple[Key, list[Key]]]
    #: Pairs in different registries that share at least two rare title tokens (``MAX_BLOCK``).
    pairs: list[tuple[Key, Key]]
    #: The profiles of the registrations the passes compare, and the token rarities over all.
    profiles: dict[Key, match.Profile]
    corpus: match.Corpus
    #: Every registration's key, read only when a curation file needs them.
    all_keys: Callable[[], list[Key]]


def id_text_pairs(mentions: dict[Key, list[Mention]], by_identity: dict[Key, list[Key]]) -> set[Key]:
    """Registrations that name one in another registry in free text, and those named: the passes compare them."""
    out: set[Key] = set()
    for key, found in mentions.items():
        own = identity_keys(*key)
        for m in found:
            if m.method == "id_in_text" and m.key not in own:
                for target in by_identity.get(m.key, ()):
                    if target != key and target[0] != key[0]:
                        out.update((key, target))
    return out


class _Linker:
    def __init__(self, regs: Registrations) -> None:
        self.regs = regs
        self.links: dict[tuple[Key, Key], Link] = {}
        #: For each trial, registries in which it names a partner (any id, imported or not).
        self.declared: dict[Key, set[str]] = defaultdict(set)

    # -- profiles and similarity --------------------------------------------------------

    def compare(self, a: Key, b: Key) -> match.Match | None:
        profiles = self.regs.profiles
        return match.compare(profiles[a], profiles[b], self.regs.corpus)

    # -- pass 1: ids ------------------------------------------------------------------------

    def _add(self, link: Link) -> None:
        pk = pair_key(link.a, link.b)
        link.a, link.b = pk
        old = self.links.get(pk)
        if old is None or _rank(link) > _rank(old):
            self.links[pk] = link

    def link_by_ids(self) -> None:
        by_identity = self.regs.by_identity
        for key, found in self.regs.mentions.items():
            own = identity_keys(*key)
            for m in found:
                if m.key in own:
                    continue
                if m.method != "id_in_text":
                    self.declared[key].add(_registry_of(m.key))
                targets = [t for t in by_identity.get(m.key, ()) if t != key]
                if not targets:
                    if m.method != "id_in_text" and m.key[0] in CANONICAL_REGISTRIES:
                        evidence = {"named_by": list(key), "field": m.field, "id": m.text, "target_present": False}
                        self._add(Link(key, m.key, m.method, 1.0, evidence, "auto"))
                    continue
                for target in targets:
                    self._id_link(key, target, m)
        # Registrations that carry the same id are one trial (the country copies of an EU CTR trial).
        for ident, keys in self.regs.shared_ids:
            first, *rest = keys
            method = "same_eudract" if ident[0] == "eudract" else "same_id"
            for other in rest:
                self._add(Link(first, other, method, 1.0, {"shared_id": ident[1], "id_registry": ident[0]}, "auto"))

    def _id_link(self, key: Key, target: Key, m: Mention) -> None:
        evidence: dict[str, Any] = {"named_by": list(key), "field": m.field, "id": m.text}
        same_registry = key[0] == target[0]
        if m.method == "id_in_text":
            if same_registry:
                return  # "the parent study NCT...": a registry never registers one trial twice on purpose
            scored = self.compare(key, target)
            score = scored.score if scored else 0.0
            if scored:
                evidence.update(scored.evidence())
            status = "auto" if score >= match.CANDIDATE else "candidate"
            self._add(Link(key, target, m.method, round(score, 4), evidence, status))
            return
        status = "candidate" if same_registry and m.method == "id_in_title" else "auto"
        self._add(Link(key, target, m.method, 1.0, evidence, status))

    # -- pass 2: scored matches ----------------------------------------------------------------

    def link_by_score(self) -> None:
        scored: list[tuple[float, Key, Key, match.Match]] = []
        for a, b in self.regs.pairs:
            if (a, b) in self.links:
                continue
            result = self.compare(a, b)
            if result is not None and result.score >= match.CANDIDATE:
                scored.append((result.score, a, b, result))
        groups = _Groups()
        for link in self.links.values():
            if link.status in ACTIVE_STATUSES:
                groups.union(link.a, link.b)
        for key, registries in self.declared.items():
            groups.declare(key, registries)
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        for score, a, b, result in scored:
            evidence = result.evidence()
            status = "auto" if result.automatic else "candidate"
            if status == "auto" and groups.find(a) != groups.find(b):
                blocked = [
                    f"{x[1]} already has a {y[0]} registration"
                    for x, y in ((a, b), (b, a))
                    if y[0] in groups.registries(x)
                ]
                if blocked:
                    status = "candidate"
                    evidence["blocked"] = blocked
            self._add(Link(a, b, "score", round(score, 4), evidence, status))
            if status == "auto":
                groups.union(a, b)

    # -- pass 3: curators ----------------------------------------------------------------------

    def apply_decisions(self, decisions: Iterable[LinkDecision], problems: list[str]) -> int:
        applied = 0
        decisions = list(decisions)
        by_id: dict[str, list[Key]] = defaultdict(list)
        keys = self.regs.all_keys() if decisions else []
        for key in keys:
            by_id[norm_id(key[1])].append(key)
        present_keys = set(keys)
        for d in decisions:
            if d.registry:
                source: Key | None = (d.registry, d.trial_id)
            else:
                found = by_id.get(norm_id(d.trial_id), [])
                source = found[0] if len(found) == 1 else None
                if len(found) > 1:
                    problems.append(f"line {d.line}: {d.trial_id} is in several registries; add a registry column")
                    continue
                if source is None:
                    reg = _registry_guess(d.trial_id)
                    source = (reg, d.trial_id) if reg else None
            if source is None:
                problems.append(f"line {d.line}: cannot tell which registry {d.trial_id} belongs to")
                continue
            target: Key = (d.other_registry, d.other_id)
            present = [k for k in (source, target) if k in present_keys]
            if len(present) < 2:
                missing = ", ".join(f"{k[0]}:{k[1]}" for k in (source, target) if k not in present_keys)
                log.info("curation line %d names %s, not in the database", d.line, missing)
            pk = pair_key(source, target)
            old = self.links.get(pk)
            evidence = {
                "line": d.line,
                "reason": d.reason,
                "curator": d.curator,
                "date": d.date.isoformat() if d.date else None,
                "was": {"method": old.method, "score": old.score, "status": old.status} if old else None,
            }
            status = "confirmed" if d.verdict == "same" else "rejected"
            self.links[pk] = Link(pk[0], pk[1], "curated", 1.0 if status == "confirmed" else 0.0, evidence, status)
            applied += 1
        return applied


class _Groups:
    """Registrations joined so far (union-find), and the registries each group is registered in.

    At most one registration per registry in a group: a score match that
    would put a second ClinicalTrials.gov record into a group (or join a
    record that names its own partner there) is left for a curator.
    """

    def __init__(self) -> None:
        self._parent: dict[Key, Key] = {}
        self._registries: dict[Key, set[str]] = {}

    def find(self, key: Key) -> Key:
        parent = self._parent.setdefault(key, key)
        if parent != key:
            parent = self._parent[key] = self.find(parent)
        return parent

    def registries(self, key: Key) -> set[str]:
        return self._registries.setdefault(self.find(key), {key[0]})

    def declare(self, key: Key, registries: set[str]) -> None:
        self.registries(key).update(registries)

    def union(self, a: Key, b: Key) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        merged = self.registries(a) | self.registries(b)
        self._parent[rb] = ra
        self._registries[ra] = merged
        self._registries.pop(rb, None)


def _rank(link: Link) -> tuple[int, int, float]:
    status_rank = {"confirmed": 3, "rejected": 3, "auto": 2, "candidate": 1}.get(link.status, 0)
    method_rank = {"secondary_id": 4, "same_eudract": 4, "same_id": 4, "id_in_title": 3, "id_in_text": 2}.get(
        link.method, 1
    )
    return (status_rank, method_rank, link.score)


def _registry_of(key: Key) -> str:
    return records_registry(key[0])


def _registry_guess(trial_id: str) -> str | None:
    reg = id_registry(trial_id)
    return records_registry(reg) if reg else None


# -- the run ---------------------------------------------------------------------------------


def link_trials(
    store: Store, curation: Path | None = None, *, cached: bool = True, map_features: FeatureMap | None = None
) -> LinkStats:
    """Recompute ``trial_links`` from the stored trials, then apply the curation file's link rows.

    Raises ``ValueError`` when the curation file cannot be read at all; rows
    that cannot be used are listed in ``LinkStats.problems``.  ``cached``
    reads each registration's features from ``link_features`` (computing
    those of new and changed registrations); without it they are all
    computed again from the rows first, which gives the same links.
    ``map_features`` computes features in worker processes
    (``cartatlas.link.features.refresh_features``).
    """
    from cartatlas.link.features import read_registrations

    stats = LinkStats()
    decisions: list[LinkDecision] = []
    if curation is not None:
        decisions, problems = read_link_decisions(Path(curation))
        stats.problems.extend(problems)
    regs = read_registrations(store, recompute=not cached, map_tables=map_features)
    stats.trials = regs.n
    linker = _Linker(regs)
    linker.link_by_ids()
    linker.link_by_score()
    stats.curated = linker.apply_decisions(decisions, stats.problems)
    _write(store, list(linker.links.values()))
    for link in linker.links.values():
        stats.links[(link.method, link.status)] += 1
    row = store.con.execute(
        "SELECT count(DISTINCT cluster_id), count(DISTINCT cluster_id) FILTER (WHERE cluster_size > 1), "
        "count(*) FILTER (WHERE cluster_size > 1) FROM trial_clusters"
    ).fetchone()
    if row:
        stats.distinct_trials, stats.clusters, stats.clustered_trials = (int(v or 0) for v in row)
    for problem in stats.problems:
        log.warning("curation: %s", problem)
    return stats


def _write(store: Store, links: list[Link]) -> None:
    con = store.con
    ordered = sorted(links, key=lambda x: (x.a, x.b))
    table = pa.table(
        {
            "registry_a": [link.a[0] for link in ordered],
            "trial_id_a": [link.a[1] for link in ordered],
            "registry_b": [link.b[0] for link in ordered],
            "trial_id_b": [link.b[1] for link in ordered],
            "method": [link.method for link in ordered],
            "score": pa.array([link.score for link in ordered], pa.float64()),
            "evidence": [orjson.dumps(link.evidence).decode() for link in ordered],
            "status": [link.status for link in ordered],
        },
        schema=_LINK_SCHEMA,
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM trial_links")
        if ordered:
            con.register("_links_batch", table)
            con.execute(
                "INSERT INTO trial_links SELECT registry_a, trial_id_a, registry_b, trial_id_b, method, score, "
                "CAST(evidence AS JSON), status, ? FROM _links_batch",
                [now()],
            )
            con.unregister("_links_batch")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


_LINK_SCHEMA = pa.schema(
    [
        ("registry_a", pa.string()),
        ("trial_id_a", pa.string()),
        ("registry_b", pa.string()),
        ("trial_id_b", pa.string()),
        ("method", pa.string()),
        ("score", pa.float64()),
        ("evidence", pa.string()),
        ("status", pa.string()),
    ]
)
