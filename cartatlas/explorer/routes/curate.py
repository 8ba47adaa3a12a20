"""Curation in the browser: overrides, link decisions and review decisions, as lines of the curation file.

Every action goes through ``Atlas.record_curation``, the same path a
notebook uses: validated like a line of the file, refused with 409 when the
trial changed since the form was loaded (the form carries the etag it was
built from), written to the curation file, then applied.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cartatlas.curation import NONE_MARKER
from cartatlas.curation_actions import LINK_FIELD, REVIEW_VERDICTS, CurationAction, StaleEdit
from cartatlas.explorer.routes.trial import trial_context
from cartatlas.explorer.security import CSRF_FIELD, check_write
from cartatlas.explorer.web import error, explorer, remember_curator, render
from cartatlas.store.classifications import CURATABLE, LIST_FIELDS

router = APIRouter()

#: Where a review decision may send the browser back to (never another site).
NEXT_PREFIXES = ("/review", "/trial/")


def current_value(row: dict[str, Any], field: str) -> str:
    """A label's value now, as a curation line writes it (lists with ';', an empty list as (none))."""
    value = row.get(field)
    if field in LIST_FIELDS:
        items = [str(v) for v in (value or [])]
        return ";".join(items) if items else NONE_MARKER
    return "" if value is None else str(value)


@router.post("/trial/{trial_id}/curate")
async def curate(request: Request, trial_id: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    ex = explorer(request)
    check_write(request, form.get(CSRF_FIELD), read_only=ex.settings.read_only, token=ex.settings.token)
    record = ex.reader().trial(trial_id)
    if record is None:
        return error(request, 404, f"No registration has the id {trial_id!r}.")
    kind = form.get("kind", "override")
    registry, _, registration = form.get("registration", "").partition(":")
    if (registry, registration) not in record.keys:
        return error(request, 400, f"{registry}:{registration} is not a registration of {record.trial_id}.")
    if kind == "override":
        field, value = form.get("field", ""), form.get("value", "")
    elif kind == "link":
        field = LINK_FIELD
        value = f"{form.get('verdict', '')}:{form.get('other_registry', '').strip()}:{form.get('other_id', '').strip()}"
    elif kind == "review":
        # A verdict on a queue item keeps the label as it is now, as a curator's; the reason carries the verdict.
        verdict, field = form.get("verdict", ""), form.get("field", "")
        if verdict not in REVIEW_VERDICTS or field not in CURATABLE:
            return error(request, 400, f"a review decision is {' or '.join(REVIEW_VERDICTS)} on a label")
        row = next(r for r in record.registrations if (r["registry"], r["trial_id"]) == (registry, registration))
        value = current_value(row, field)
        if form.get("reason", "").strip():
            form["reason"] = f"{verdict}: {form['reason'].strip()}"
    else:
        return error(request, 400, f"unknown action {kind!r}")
    # A form about one registration (the review queue's) was built on that registration alone.
    keys = [(registry, registration)] if form.get("scope") == "registration" else record.keys
    action = CurationAction(
        registration, registry, field, value.strip(), form.get("reason", ""), form.get("curator", "")
    )
    try:
        ex.write(lambda atlas: atlas.record_curation(action, keys=keys, expected_etag=form.get("etag") or None))
    except (StaleEdit, ValueError) as exc:
        status = 409 if isinstance(exc, StaleEdit) else 400
        fresh = ex.reader().trial(trial_id) or record
        return render(
            request,
            "trial.html.j2",
            status=status,
            page="trial",
            title=record.trial_id,
            saved=None,
            problem=str(exc),
            form=form,
            **trial_context(request, fresh),
        )
    target = form.get("next", "")
    if not target.startswith(NEXT_PREFIXES) or "//" in target:
        target = f"/trial/{registration}?saved={kind}"
    response = RedirectResponse(target, status_code=303)
    remember_curator(response, action.curator)
    return response
