"""The review queue: trials a person should check, with the reasons, filterable, worked with the keyboard.

The queue is ``Atlas.review`` (conflicts, low confidence, unknown targets,
CAR words without a CAR product), minus trials a curator accepted or
dismissed (``review`` lines of the curation file).  A decision made before
the registry last updated the record no longer counts: the trial comes back,
marked as changed since it was reviewed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas import curation_actions
from cartatlas.explorer.web import curator_name, explorer, render
from cartatlas.normalise.dates import parse_date

router = APIRouter()

QUEUE_LIMIT = 5000
SHOW = ("pending", "decided", "all")


def _items(value: Any) -> list[str]:
    return [] if value is None or isinstance(value, float) else [str(v) for v in value]


def queue(request: Request) -> pd.DataFrame:
    """The review queue of the current data, with each item's decision and whether it still holds."""
    ex = explorer(request)

    def compute() -> pd.DataFrame:
        reader = ex.reader()
        frame = reader.review(limit=QUEUE_LIMIT)
        updated = reader.sql(
            """
            SELECT t.registry, t.trial_id, coalesce(v.record_updated, CAST(v.fetched_at AS DATE)) AS record_updated
            FROM trials t JOIN raw_records v ON v.version_id = t.version_id
            WHERE t.trial_id IN (SELECT UNNEST(?))
            """,
            [list(frame["trial_id"])],
        )
        return frame.merge(updated, on=["registry", "trial_id"], how="left")

    frame: pd.DataFrame = ex.cached("review-queue", compute)
    decisions = curation_actions.review_decisions(curation_actions.curation_path(ex.reader().store))
    verdicts, notes, stale = [], [], []
    for trial_id, updated in zip(frame["trial_id"], frame["record_updated"], strict=True):
        d = decisions.get(trial_id)
        day = parse_date(d.get("date")) if d else None
        when = pd.Timestamp(updated).date() if updated is not None and not pd.isna(updated) else None
        changed = bool(d and day and when and when > day)
        verdicts.append(d["value"] if d and not changed else "")
        notes.append(f"{d['value']} by {d.get('curator')} on {d.get('date')}: {d.get('reason')}" if d else "")
        stale.append(changed)
    return frame.assign(verdict=verdicts, decision=notes, changed_since=stale)


@router.get("/review")
def review_page(
    request: Request, show: str = "pending", flag: str = "", relation: str = "", confidence: str = "", limit: int = 100
) -> Response:
    frame = queue(request)
    flags = sorted({f.split(":", 1)[0] for fs in frame["flags"] for f in _items(fs)})
    show = show if show in SHOW else "pending"
    if show == "pending":
        frame = frame[frame["verdict"] == ""]
    elif show == "decided":
        frame = frame[frame["verdict"] != ""]
    if flag:
        frame = frame[frame["flags"].map(lambda fs: any(f.split(":", 1)[0] == flag for f in _items(fs)))]
    if relation:
        frame = frame[frame["relation"] == relation]
    if confidence:
        frame = frame[frame["confidence"] == confidence]
    limit = max(1, min(limit, 1000))
    shown = frame.head(limit).to_dict("records")
    reader = explorer(request).reader()
    etags = curation_actions.trial_etags(
        reader.store,
        curation_actions.curation_path(reader.store),
        [[(str(r["registry"]), str(r["trial_id"]))] for r in shown],
    )
    for item, etag in zip(shown, etags, strict=True):
        item["etag"] = etag
    return render(
        request,
        "review.html.j2",
        page="review",
        title="Review queue",
        items=shown,
        total=len(frame),
        flags=flags,
        show=show,
        flag=flag,
        relation=relation,
        confidence=confidence,
        limit=limit,
        curator=curator_name(request),
        listify=_items,
    )
