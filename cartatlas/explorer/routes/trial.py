"""The trial page: each registration with its registry link, labels with evidence, links, articles, history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas import curation_actions
from cartatlas.analysis.history import StoredVersion
from cartatlas.analysis.trial_record import TrialRecord, trial_lookups
from cartatlas.explorer.state import Counting
from cartatlas.explorer.web import curator_name, error, explorer, render
from cartatlas.knowledge import labels
from cartatlas.store.classifications import CURATABLE, LIST_FIELDS

router = APIRouter()

#: Choices offered for each curatable field (list fields take several, separated by ';').
VOCABULARIES: dict[str, tuple[str, ...]] = dict(labels.VOCABULARIES)
SAVED_MESSAGES = {
    "override": "Override saved and applied. It is a line of the curation file and survives re-classification.",
    "link": "Link decision saved; the registrations were linked again.",
    "review": "Review decision saved: the label is kept as it is, as a curator's.",
}


def _label_value(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if name in LIST_FIELDS:
        return "; ".join(map(str, value or []))
    return "" if value is None else str(value)


def trial_context(request: Request, record: TrialRecord) -> dict[str, Any]:
    """Everything the trial page shows, read through this thread's reader."""
    ex = explorer(request)
    reader = ex.reader()
    keys = record.keys

    def versions(key: tuple[str, str]) -> list[StoredVersion]:
        return ex.cached(("history", key), lambda: reader.history(key[1], key[0]))

    history = {key: versions(key) for key in keys}
    # The file's name is a setting, part of the data version: read once per version, not per page.
    path = ex.cached("curation-path", lambda: curation_actions.curation_path(reader.store))
    lines = curation_actions.trial_rows(path, [k[1] for k in keys])
    queue = ex.misc_cache.peek((ex.version, "review-queue"))  # shown when computed (the review page, warming)
    in_queue = [] if queue is None else queue[queue["trial_id"].isin({k[1] for k in keys})].to_dict("records")
    counted = ex.counted_if_ready(Counting())
    unit = counted.unit(record.trial_id) if counted is not None else None
    labels = [
        {
            "key": (r["registry"], r["trial_id"]),
            "values": {name: _label_value(r, name) for name in CURATABLE},
            "auto": {name: _label_value(r["auto"], name) for name in CURATABLE} if r.get("auto") else {},
            "curated": list(r.get("curated_fields") or []),
        }
        for r in record.registrations
    ]
    return {
        "record": record,
        "history": history,
        "etag": curation_actions.record_etag(path, record),
        "curation_lines": lines,
        "curation_file": path,
        "queue_items": in_queue,
        "unit": unit,
        "labels": labels,
        "curatable": CURATABLE,
        "list_fields": LIST_FIELDS,
        "vocabularies": VOCABULARIES,
        "curator": curator_name(request),
    }


@router.get("/trial/{trial_id}")
def trial_page(request: Request, trial_id: str, saved: str | None = None) -> Response:
    ex = explorer(request)
    counted = ex.counted_if_ready(Counting())
    reader = ex.reader()
    lookups = ex.cached("trial-lookups", lambda: trial_lookups(reader.store))  # links and articles: per version
    known = counted.registration_labels if counted is not None else None
    record = reader.trial(trial_id, known_labels=known, lookups=lookups)
    if record is None:
        return error(request, 404, f"No registration has the id {trial_id!r}. Try the search box.")
    return render(
        request,
        "trial.html.j2",
        page="trial",
        title=f"{record.trial_id}",
        saved=SAVED_MESSAGES.get(saved or ""),
        problem=None,
        form={},
        **trial_context(request, record),
    )
