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
from typing import Any, Literal, TypedDict

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
