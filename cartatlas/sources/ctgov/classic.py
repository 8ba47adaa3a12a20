"""The retired classic ClinicalTrials.gov API's JSON (``FullStudiesResponse``).

The classic API answered ``full_studies`` queries with a response object
wrapping ``FullStudies[].Study``; people also saved single ``FullStudy`` or
``Study`` objects.  Each ``Study`` is stored exactly as received (format
``ctgov_classic``) and rewritten into the v2 layout only when normalised, by
``cartatlas.normalise.ctgov_classic``.  The layouts plug into the JSON reader
(``json_files.JSON_LAYOUTS``), so JSON lines, gzip and zip work as for v2.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cartatlas.model import RawRecord, Reject
from cartatlas.sources.base import Item
from cartatlas.sources.ctgov.identity import classic_nct_aliases, classic_nct_id, classic_record_updated
from cartatlas.sources.ctgov.json_files import JSON_LAYOUTS
from cartatlas.sources.ctgov.xml_files import file_name_conflict


def classic_study_record(study: Any, source: str, locator: str, *, check_file_name: bool = False) -> Item:
    """A classic ``Study`` object as a RawRecord, or a Reject saying why it cannot be one.

    Only what storing needs is read here (id, aliases, update date); the whole
    study is converted to the v2 layout when it is normalised.
    """
    if not isinstance(study, dict):
        return Reject(source, locator, f"expected a classic Study object, found {type(study).__name__}")
    if not isinstance(study.get("ProtocolSection"), dict):
        return Reject(source, locator, "classic study has no ProtocolSection")
    nct = classic_nct_id(study)
    if nct is None:
        return Reject(source, locator, "record has no NCT id (ProtocolSection.IdentificationModule.NCTId)")
    if check_file_name and (conflict := file_name_conflict(source, nct, classic_nct_aliases(study))):
        return Reject(source, locator, conflict, nct)
    return RawRecord(
        registry="ctgov",
        record_id=nct,
        format="ctgov_classic",
        payload=study,
        source=source,
        locator=locator,
        record_updated=classic_record_updated(study),
    )


def _is_response(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("FullStudiesResponse"), dict)


def _iter_response(obj: Any, source: str, locator: str) -> Iterator[Item]:
    response = obj["FullStudiesResponse"]
    studies = response.get("FullStudies")
    if studies is None:
        # A query that matched nothing answers without FullStudies: no records, and nothing wrong.
        return
    prefix = f"{locator} " if locator else ""
    if not isinstance(studies, list):
        yield Reject(source, locator, "FullStudiesResponse.FullStudies is not a list")
        return
    single = len(studies) == 1
    for i, full in enumerate(studies):
        where = f"{prefix}FullStudies[{i}]"
        if not isinstance(full, dict):
            yield Reject(source, where, f"expected a FullStudy object, found {type(full).__name__}")
            continue
        yield classic_study_record(full.get("Study"), source, where, check_file_name=single)


def _is_full_study(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("Study"), dict) and "ProtocolSection" in obj["Study"]


def _iter_full_study(obj: Any, source: str, locator: str) -> Iterator[Item]:
    yield classic_study_record(obj["Study"], source, locator, check_file_name=not locator)


def _is_study(obj: Any) -> bool:
    return isinstance(obj, dict) and "ProtocolSection" in obj


def _iter_study(obj: Any, source: str, locator: str) -> Iterator[Item]:
    yield classic_study_record(obj, source, locator, check_file_name=not locator)


JSON_LAYOUTS.extend([(_is_response, _iter_response), (_is_full_study, _iter_full_study), (_is_study, _iter_study)])
