"""The shapes that flow between the stages of the pipeline.

Plain dicts typed with TypedDict rather than dataclasses: the normaliser builds
hundreds of thousands of rows per run and hands them straight to Arrow, so a
dict is both the fastest thing to build and the thing Arrow wants.  The column
order and Arrow types of a normalised trial live in ``cartatlas.store.schema``;
this module only names the fields for the type checker and for readers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

#: One vocabulary for phases across registries (issue 2; PHASE0 arrives with ChiCTR).
PHASES: tuple[str, ...] = ("PHASE0", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA")

SourceKind = Literal["api", "file", "bulk"]


class SecondaryId(TypedDict):
    id: str
    type: str | None
    domain: str | None
    #: Registry the id belongs to when it can be recognised (ChiCTR, EudraCT, CTIS, ISRCTN, ...).
    registry: str | None


class Sponsor(TypedDict):
    name: str
    sponsor_class: str | None


class Intervention(TypedDict):
    type: str | None
    name: str
    other_names: list[str]
    description: str | None


class ArmGroup(TypedDict):
    label: str
    type: str | None
    description: str | None
    intervention_names: list[str]


class Site(TypedDict):
    facility: str | None
    city: str | None
    state: str | None
    country: str | None
    country_code: str | None
    zip: str | None
    status: str | None
    lat: float | None
    lon: float | None
    #: The ISO 3166-2 province or state and the city, each in one spelling (``cartatlas.normalise.places``).
    region_code: NotRequired[str | None]
    region: NotRequired[str | None]
    city_normalised: NotRequired[str | None]


class Trial(TypedDict):
    """One normalised trial: what a landscape needs from any registry record."""

    trial_id: str
    registry: str
    nct_id: str | None
    org_study_id: str | None
    secondary_ids: list[SecondaryId]
    brief_title: str | None
    official_title: str | None
    acronym: str | None
    overall_status: str | None
    study_type: str | None
    phases: list[str]
    first_submitted: dt.date | None
    first_posted: dt.date | None
    start_date: dt.date | None
    primary_completion_date: dt.date | None
    completion_date: dt.date | None
    last_update_posted: dt.date | None
    lead_sponsor: str | None
    lead_sponsor_class: str | None
    collaborators: list[Sponsor]
    conditions: list[str]
    keywords: list[str]
    mesh_terms: list[str]
    interventions: list[Intervention]
    arm_groups: list[ArmGroup]
    brief_summary: str | None
    detailed_description: str | None
    eligibility_criteria: str | None
    sex: str | None
    minimum_age: str | None
    maximum_age: str | None
    enrollment: int | None
    enrollment_type: str | None
    primary_outcomes: list[str]
    sites: list[Site]
    countries: list[str]
    has_results: bool | None
    source_format: str
    # -- Registries beyond ClinicalTrials.gov (issue 5, schema migration 4).  NotRequired so that
    # normalisers written before them keep working; a missing key is stored as NULL.
    #: Text in the registry's own language when it differs from the main (English) field: ChiCTR's
    #: Chinese title, sponsor, summary.  When a record has no English, the main field holds the local text
    #: too, so that every reader (classifier, exports) sees it.
    brief_title_local: NotRequired[str | None]
    official_title_local: NotRequired[str | None]
    lead_sponsor_local: NotRequired[str | None]
    brief_summary_local: NotRequired[str | None]
    detailed_description_local: NotRequired[str | None]
    conditions_local: NotRequired[list[str]]
    eligibility_criteria_local: NotRequired[str | None]
    #: Languages the record's text is in, ``+``-joined ISO 639-1 codes ("en", "zh", "zh+en").
    language: NotRequired[str | None]
    #: The register the source names, as it spells it (ICTRP "Source Register": "EU Clinical Trials Register").
    source_register: NotRequired[str | None]
    #: The record's page at its registry.
    web_address: NotRequired[str | None]
    #: The phase exactly as the registry wrote it ("New Treatment Measure Clinical Study", "III期临床试验").
    phase_text: NotRequired[str | None]
    #: The registry's study design text ("Parallel", "Allocation: Randomized. Intervention model: ...").
    study_design: NotRequired[str | None]
    secondary_outcomes: NotRequired[list[str]]
    # -- Schema migration 6 (issue 12).
    #: When results were first submitted and first posted (ClinicalTrials.gov): a registration precedes both.
    results_first_submitted: NotRequired[dt.date | None]
    results_first_posted: NotRequired[dt.date | None]
    #: The country the lead sponsor's name points to (a Chinese province or city, China's name); reports place a
    #: trial there only when it lists no site.
    sponsor_country: NotRequired[str | None]


@dataclass(slots=True)
class RawRecord:
    """A record exactly as a source delivered it, before any interpretation.

    ``payload`` is what gets stored: the parsed JSON object for JSON formats,
    the XML text for XML, the row as a dict for CSV, so that the original can
    always be re-normalised by a later version of cartatlas.
    """

    registry: str
    record_id: str
    format: str
    payload: Any
    source: str
    locator: str
    source_kind: SourceKind = "file"
    #: The registry's own last-update date, used to order versions.
    record_updated: dt.date | None = None


@dataclass(slots=True)
class Reject:
    """Input that could not become a record; always names where and why."""

    source: str
    locator: str
    problem: str
    record_id: str | None = None

    def __str__(self) -> str:
        where = self.source + (f", {self.locator}" if self.locator else "")
        rid = f" record {self.record_id}:" if self.record_id else ""
        return f"{where}:{rid} {self.problem}"


@dataclass(slots=True)
class Skipped:
    """A file met while walking a folder that holds no records (a README, a licence)."""

    source: str
    reason: str


@dataclass(slots=True)
class ImportStats:
    """What one import or sync did, for the CLI summary and the run log."""

    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, other: ImportStats) -> None:
        self.seen += other.seen
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.rejects.extend(other.rejects)
        self.skipped.extend(other.skipped)


#: The order of a record's versions: the current one is the greatest (registry update date, then the
#: richest format's rank, then the latest stored).  Shared by the importer and the feed.
def _order_key(updated: Any, rank: int, version_id: int) -> tuple[Any, int, int]:
    # None sorts first so that any dated version wins over an undated one.
    return (updated.toordinal() if updated is not None else -1, rank, version_id)
