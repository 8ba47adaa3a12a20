"""The publication operations behind ``Atlas`` (reading), kept here so ``api`` stays thin.

The PubMed harvest (``sync_pubmed``) is the pipeline's: ``cartatlas.pipeline.harvest.pubmed``.
"""

from __future__ import annotations

import pandas as pd

from cartatlas.store.db import Store


def publications(
    store: Store,
    *,
    kind: str | None = None,
    country: str | None = None,
    car_only: bool = False,
) -> pd.DataFrame:
    """Normalised publications with their linked trial ids, one row per PMID."""
    where, params = [], []
    if kind:
        where.append("p.kind = ?")
        params.append(kind)
    if country:
        where.append("p.report_country = ?")
        params.append(country.upper())
    if car_only:
        where.append("p.is_car")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return store.con.execute(
        "SELECT p.*, coalesce(l.linked_trials, []) AS linked_trials FROM publications p "
        "LEFT JOIN (SELECT pmid, list(trial_id ORDER BY score DESC, trial_id) AS linked_trials "
        "FROM publication_links GROUP BY pmid) l USING (pmid) "
        f"{clause} ORDER BY TRY_CAST(p.pmid AS BIGINT), p.pmid",
        params,
    ).df()
