"""Published CAR clinical reports for the report: Fig. 2a-2c and Table 1 of the review (issue 6).

Every function takes the store (or an ``Atlas``), an as-of date and a focus
country, and returns a DataFrame; nothing is written.  What is counted: rows of
``publications`` with ``kind = 'clinical-report'`` and ``is_car`` (a CAR
product was given to people), published on or before the as-of date.  An
article's publication date is the earlier of its electronic date
(``article_date``) and its issue date (``pub_date``), which is when readers
could first see it.  Its country is the reporting institution's
(``report_country``: the corresponding author's, else the first author's; see
``cartatlas.publications.places``).  Articles fall into the same country
groups as the trials of the report (``--groups``; by default the ``wei2021``
scheme of ``knowledge/country_groups.csv``: China with Taiwan, Hong Kong and
Macao, as the review counted); a focus country outside every group of the
scheme stands alone.

Each aggregate carries the PMIDs it counts (``pmids``), so every bar can be
traced back to its articles.  The tables are drawn by the report
(``cartatlas/report/figures/publications.py``), in the style and group colours
of every other figure.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from cartatlas.store.db import Store

if TYPE_CHECKING:
    from cartatlas.analysis.groups import CountryGroups

log = logging.getLogger(__name__)


class Atlas(Protocol):
    """What these functions need of a ``cartatlas.Atlas``: its store (the analysis does not import the API)."""

    store: Store


US = "United States"
OTHER = "Other countries"
UNKNOWN = "Country not stated"


def _store(source: Store | Atlas) -> Store:
    return source if isinstance(source, Store) else source.store


def _scheme(groups: CountryGroups | None) -> CountryGroups | None:
    if groups is not None:
        return groups
    try:
        from cartatlas.analysis.groups import load_scheme

        return load_scheme("wei2021")
    except (ImportError, ValueError, OSError) as exc:  # the scheme file is optional here
        log.debug("country groups unavailable (%s); the focus country stands alone", exc)
        return None


def focus_group(focus: str, groups: CountryGroups | None = None) -> tuple[str, frozenset[str]]:
    """(group name, ISO codes) of the focus country in ``groups`` (default wei2021), else the country alone."""
    code = focus.strip().upper()
    scheme = _scheme(groups)
    if scheme is not None:
        for name, members in scheme.groups.items():
            if code in members:
                return name, frozenset(members)
    from cartatlas.normalise.countries import country_name

    return country_name(code) or code, frozenset({code})


def group_names(focus: str, groups: CountryGroups | None = None) -> list[str]:
    """The groups articles are counted in, focus first (as the review's Fig. 2a: China, US, others)."""
    name, _ = focus_group(focus, groups)
    scheme = _scheme(groups)
    others = [g for g in scheme.names if g != name] if scheme is not None else [US, OTHER]
    return [name, *others]


def _group_of(country: str | None, focus: str, groups: CountryGroups | None) -> str:
    if not country:
        return UNKNOWN
    name, members = focus_group(focus, groups)
    if country in members:
        return name
    scheme = _scheme(groups)
    if scheme is None:
        return US if country == "US" else OTHER
    return scheme.group_of_country(country)


def _links(store: Store) -> pd.DataFrame:
    """Stored links; computed on the fly (not written) when none are stored yet."""
    frame = store.con.execute(
        "SELECT pmid, trial_registry, trial_id, method, score, evidence FROM publication_links"
    ).df()
    if frame.empty and store.con.execute("SELECT count(*) FROM publications").fetchone() != (0,):
        from cartatlas.publications.links import compute_links

        frame = pd.DataFrame(
            [(k.pmid, k.trial_registry, k.trial_id, k.method, k.score, k.evidence) for k in compute_links(store)],
            columns=["pmid", "trial_registry", "trial_id", "method", "score", "evidence"],
        )
    return frame


def clinical_reports(
    source: Store | Atlas, as_of: dt.date | None = None, focus: str = "CN", groups: CountryGroups | None = None
) -> pd.DataFrame:
    """One row per CAR clinical report published by ``as_of``, with its country group and linked trials."""
    store = _store(source)
    as_of = as_of or dt.date.today()
    frame = store.con.execute(
        "SELECT pmid, first_author, pub_year, pub_date, article_date, journal, journal_abbrev, title, targets, "
        "platforms, diseases, disease_branch, patients_treated, patients_evidence, report_country, "
        "report_country_basis, report_institution, report_region, report_region_name, doi, kind_evidence, "
        "nct_ids, chictr_ids FROM publications WHERE kind = 'clinical-report' AND is_car"
    ).df()
    if frame.empty:
        frame["published"] = pd.Series(dtype="object")
        frame["year"] = pd.Series(dtype="int64")
        frame["group"] = pd.Series(dtype="object")
        frame["linked_trials"] = pd.Series(dtype="object")
        return frame
    published = []
    for pub, epub in zip(frame["pub_date"], frame["article_date"], strict=True):
        dates = [d for d in (pub, epub) if d is not None and not pd.isna(d)]
        published.append(min(pd.Timestamp(d).date() for d in dates) if dates else None)
    frame["published"] = published
    frame = frame[[d is not None and d <= as_of for d in frame["published"]]].copy()
    frame["year"] = [d.year for d in frame["published"]]
    frame["group"] = [_group_of(c, focus, groups) for c in frame["report_country"]]
    links = _links(store)
    by_pmid: dict[str, list[str]] = {}
    for row in links.sort_values(["pmid", "score", "trial_id"], ascending=[True, False, True]).itertuples():
        by_pmid.setdefault(str(row.pmid), []).append(str(row.trial_id))
    frame["linked_trials"] = [by_pmid.get(p, []) for p in frame["pmid"]]
    return frame.sort_values(["published", "pmid"]).reset_index(drop=True)


def _pmids(values: pd.Series) -> list[str]:
    return sorted(set(values), key=lambda p: (len(p), p))


def fig2a_reports_per_year(
    source: Store | Atlas, as_of: dt.date | None = None, focus: str = "CN", groups: CountryGroups | None = None
) -> pd.DataFrame:
    """Fig. 2a: CAR clinical reports per publication year, focus group vs the United States vs others."""
    frame = clinical_reports(source, as_of, focus, groups)
    names = group_names(focus, groups)
    if frame.empty:
        return pd.DataFrame(columns=["year", "group", "reports", "cumulative", "pmids"])
    years = range(int(frame["year"].min()), int(frame["year"].max()) + 1)
    rows = []
    for group in names + ([UNKNOWN] if (frame["group"] == UNKNOWN).any() else []):
        running = 0
        for year in years:
            chosen = frame[(frame["group"] == group) & (frame["year"] == year)]
            running += len(chosen)
            rows.append(
                {
                    "year": year,
                    "group": group,
                    "reports": len(chosen),
                    "cumulative": running,
                    "pmids": _pmids(chosen["pmid"]),
                }
            )
    return pd.DataFrame(rows)


def _focus_reports(
    source: Store | Atlas, as_of: dt.date | None, focus: str, groups: CountryGroups | None = None
) -> pd.DataFrame:
    frame = clinical_reports(source, as_of, focus, groups)
    name, _ = focus_group(focus, groups)
    return frame[frame["group"] == name]


def fig2b_reports_per_target(
    source: Store | Atlas, as_of: dt.date | None = None, focus: str = "CN", groups: CountryGroups | None = None
) -> pd.DataFrame:
    """Fig. 2b: the focus group's reports per target (a multi-target report counts for each target)."""
    frame = _focus_reports(source, as_of, focus, groups)
    counts: dict[str, list[str]] = {}
    for pmid, targets in zip(frame["pmid"], frame["targets"], strict=True):
        for target in list(targets) if targets is not None and len(targets) else ["not stated"]:
            counts.setdefault(target, []).append(pmid)
    branch_of = {
        t: _branch_label(frame[[t in list(ts) for ts in frame["targets"]]]["disease_branch"])
        for t in counts
        if t != "not stated"
    }
    rows = [
        {"target": t, "reports": len(p), "branch": branch_of.get(t, "unknown"), "pmids": _pmids(pd.Series(p))}
        for t, p in counts.items()
    ]
    return pd.DataFrame(rows, columns=["target", "reports", "branch", "pmids"]).sort_values(
        ["reports", "target"], ascending=[False, True], ignore_index=True
    )


def _branch_label(branches: pd.Series) -> str:
    values = {b for b in branches if b}
    if values <= {"heme-malignancy"} and values:
        return "hematologic"
    if values <= {"solid-tumor"} and values:
        return "solid tumour"
    return "other" if values else "unknown"


def fig2c_reports_per_region(
    source: Store | Atlas, as_of: dt.date | None = None, focus: str = "CN", groups: CountryGroups | None = None
) -> pd.DataFrame:
    """Fig. 2c: the focus group's reports by region (province) of the reporting institution."""
    frame = _focus_reports(source, as_of, focus, groups)
    from cartatlas.normalise.countries import country_name

    labels = []
    for code, region, country in zip(
        frame["report_region"], frame["report_region_name"], frame["report_country"], strict=True
    ):
        if region:
            labels.append((code, region))
        elif country and country != focus.upper():
            labels.append((country, country_name(country) or country))
        else:
            labels.append(("", "region not stated"))
    frame = frame.assign(region_code=[c for c, _ in labels], region=[r for _, r in labels])
    rows = [
        {"region_code": code, "region": region, "reports": len(g), "pmids": _pmids(g["pmid"])}
        for (code, region), g in frame.groupby(["region_code", "region"], sort=False)
    ]
    return pd.DataFrame(rows, columns=["region_code", "region", "reports", "pmids"]).sort_values(
        ["reports", "region"], ascending=[False, True], ignore_index=True
    )


def table1_focus_reports(
    source: Store | Atlas, as_of: dt.date | None = None, focus: str = "CN", groups: CountryGroups | None = None
) -> pd.DataFrame:
    """Table 1: the focus group's clinical reports, oldest first, with what the review's table lists."""
    frame = _focus_reports(source, as_of, focus, groups)
    out = pd.DataFrame(
        {
            "pmid": frame["pmid"],
            "first_author": frame["first_author"],
            "year": frame["year"],
            "journal": frame["journal_abbrev"].where(frame["journal_abbrev"].notna(), frame["journal"]),
            "target": ["/".join(t) if t is not None and len(t) else "" for t in frame["targets"]],
            "disease": ["; ".join(d) if d is not None and len(d) else "" for d in frame["diseases"]],
            "patients_treated": frame["patients_treated"].astype("Int64"),
            "linked_trials": ["; ".join(t) for t in frame["linked_trials"]],
            "region": frame["report_region_name"],
            "institution": frame["report_institution"],
            "doi": frame["doi"],
        }
    )
    return out.reset_index(drop=True)
