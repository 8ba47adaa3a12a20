"""The old ClinicalTrials.gov website's RSS search feeds: one ``<item>`` a study, in the API v2 layout."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Any

from cartatlas.model import Trial
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.normalise.ctgov_v2_values import (
    V2,
    date_struct,
    findtext,
    iso_date,
    parse_xml_text,
    prune,
    split_intervention,
    v2_status,
)
from cartatlas.normalise.formats import FormatSpec, register_format
from cartatlas.sources.ctgov.identity import (
    rss_item_id,
)

_TAG = re.compile(r"<[^>]+>")
_RSS_FIELD = re.compile(r"<b>\s*([^<]+?)\s*</b>\s*:?\s*(.*?)(?=<br\s*/?>|$)", re.S | re.I)


def _rss_date(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    try:
        return parsedate_to_datetime(text.strip()).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return iso_date(text)


def _rss_description(html: str | None) -> dict[str, Any]:
    """The fields the feed writes into an item's HTML description: conditions,
    interventions, sponsors, and the status as a final bold word."""
    out: dict[str, Any] = {}
    if not html:
        return out
    for label, value in _RSS_FIELD.findall(html):
        parts = [p.strip() for p in _TAG.sub("", value).split(";") if p.strip()]
        key = label.casefold()
        if key in ("condition", "conditions"):
            out["conditions"] = parts
        elif key in ("intervention", "interventions"):
            out["interventions"] = parts
        elif key in ("sponsor", "sponsors"):
            out["sponsors"] = parts
        elif not parts:
            out["status"] = label
    return out


def rss_item_to_v2(text: str) -> V2:
    """One ``<item>`` of the old website's RSS feed: a minimal record (id, title, first-posted date).

    The feed's item date is the study's first-posted date (checked against the
    legacy XML of the same studies); the last-update date is not given.
    """
    item = parse_xml_text(text)
    info = _rss_description(item.findtext("description"))
    interventions = [split_intervention(entry) for entry in info.get("interventions", [])]
    sponsors = info.get("sponsors", [])
    v2: V2 = {
        "protocolSection": {
            "identificationModule": {"nctId": rss_item_id(item), "briefTitle": findtext(item, "title")},
            "statusModule": {
                "overallStatus": v2_status(info.get("status")),
                "studyFirstPostDateStruct": date_struct(_rss_date(item.findtext("pubDate"))),
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {"name": sponsors[0]} if sponsors else None,
                "collaborators": [{"name": s} for s in sponsors[1:]],
            },
            "conditionsModule": {"conditions": info.get("conditions", [])},
            "armsInterventionsModule": {"interventions": interventions},
        }
    }
    return prune(v2)


_RSS_LINK_QUERY = re.compile(r"(<link>[^<?]*)\?[^<]*(</link>)")


def rss_hash_view(text: str) -> str:
    """The search that found an item is written into its link; the study is the same whichever search."""
    return _RSS_LINK_QUERY.sub(r"\1\2", text)


def _rss_trial(payload: Any) -> Trial:
    return normalise_ctgov(rss_item_to_v2(payload), "ctgov_rss")


register_format(FormatSpec("ctgov_rss", "ctgov", 5, False, _rss_trial, rss_hash_view))
