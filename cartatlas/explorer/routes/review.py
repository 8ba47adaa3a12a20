"""The review queue: the labels that need a person, with the reasons, filterable, worked with the keyboard.

The queue is ``Atlas.review`` (``cartatlas.review``): one item per label of a
trial (stale overrides, registrations that disagree, conflicting rules, low
confidence, undisclosed or inferred targets...), most needed first.  Accepting
or dismissing an item sets that label to the value it has, as an override
whose reason carries the verdict (``cartatlas.curation_actions``): the label
is a curator's from then on and leaves the queue, until the registry changes
the record and the override goes stale, which brings it back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cartatlas import curation_actions
from cartatlas.explorer.web import curator_name, explorer, render

router = APIRouter()

SHOW = ("pending", "decided")


def _items(value: Any) -> list[str]:
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, str):
        return [v for v in value.split(";") if v]
    return [str(v) for v in value]


def queue(request: Request) -> pd.DataFrame:
    """The review queue of the current data (computed once per data version)."""
    ex = explorer(request)
    frame: pd.DataFrame = ex.cached("review-queue", lambda: ex.reader().review(limit=None))
    return frame


def decided(request: Request) -> list[dict[str, str]]:
    """Review verdicts in the curation file, newest first."""
    reader = explorer(request).reader()
    _, rows = curation_actions.read_rows(curation_actions.curation_path(reader.store))
    verdicts = tuple(f"{v}:" for v in curation_actions.REVIEW_VERDICTS)
    return [r for r in reversed(rows) if (r.get("reason") or "").startswith(verdicts)]


@router.get("/review")
def review_page(
    request: Request, show: str = "pending", field: str = "", relation: str = "", confidence: str = "", limit: int = 100
) -> Response:
    show = show if show in SHOW else "pending"
    frame = queue(request)
    fields = sorted(set(frame["field"]))
    if field:
        frame = frame[frame["field"] == field]
    if relation:
        frame = frame[frame["relation"] == relation]
    if confidence:
        frame = frame[frame["confidence"] == confidence]
    limit = max(1, min(limit, 1000))
    shown = frame.head(limit).to_dict("records") if show == "pending" else []
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
        trials=frame["trial_id"].nunique(),
        decided=decided(request)[:limit] if show == "decided" else [],
        fields=fields,
        show=show,
        field=field,
        relation=relation,
        confidence=confidence,
        limit=limit,
        curator=curator_name(request),
        listify=_items,
    )
