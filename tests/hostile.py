"""Real sample records with hostile text injected, for the tests of what cartatlas prints and writes.

Each helper copies one real ClinicalTrials.gov record from the leukemia sample
(NCT02349698, a CD19 CAR-T trial in China), changes the fields named, and
writes it into a temporary folder: the sample data itself is never modified.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import CTGOV

LEUKEMIA = CTGOV / "api_v2" / "leukemia_query_100.json"
BASE_ID = "NCT02349698"

#: Rich markup (a closing tag that matches nothing, an opening tag) and an emoji code.
MARKUP = "[/x] [bold]bold :x: cart [draft]"


@cache
def _studies() -> list[dict[str, Any]]:
    studies: list[dict[str, Any]] = json.loads(LEUKEMIA.read_text())
    return studies


def base_study(base_id: str = BASE_ID) -> dict[str, Any]:
    """A deep copy of a real record of the leukemia sample."""
    return copy.deepcopy(
        next(s for s in _studies() if s["protocolSection"]["identificationModule"]["nctId"] == base_id)
    )


def hostile_study(
    nct_id: str, *, title: str | None = None, sponsor: str | None = None, base_id: str = BASE_ID
) -> dict[str, Any]:
    """A real record under another NCT id, with its brief title and lead sponsor replaced when given."""
    study = base_study(base_id)
    ps = study["protocolSection"]
    ps["identificationModule"]["nctId"] = nct_id
    if title is not None:
        ps["identificationModule"]["briefTitle"] = title
    if sponsor is not None:
        ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = sponsor
    return study


def write_studies(path: Path, studies: list[dict[str, Any]]) -> Path:
    """An API v2 list file, the format of the leukemia sample."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(studies), encoding="utf-8")
    return path
