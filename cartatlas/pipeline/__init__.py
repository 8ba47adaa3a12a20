"""The pipeline: the sequences that turn input into every derived table, above the store and the normalisers.

Sources only fetch and split input into records, the store only stores, normalisers only
normalise; the steps that run them in order live here (docs/architecture.md):

- ``ingest``: parse -> normalise -> store, and ``rebuild`` (re-normalise every stored version), in
  steps of their own: ``prepare`` (hash, normalise, Arrow tables), ``workers`` (the worker processes
  that prepare large files), ``version_plan`` (new versions, current versions), ``write``;
- ``harvest``: the passes over the live sources (ClinicalTrials.gov, ChiCTR, PubMed) that page
  through a registry, store each page and keep the checkpoint;
- ``derived``: ``derive``, which brings classifications, curation, links and publication labels up
  to date, and ``staleness``, which says what is out of date;
- ``upgrade``: what a schema migration leaves for the pipeline (re-normalising, recording state).

The names of ``derived`` are read from this package too (``from cartatlas.pipeline import derive``),
loaded on first use: an import worker imports ``cartatlas.pipeline.workers`` and must not pay for
pandas, which ``derived`` loads through the analysis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cartatlas.pipeline.derived import (
        PRODUCTS,
        RELINK_LIMIT,
        DeriveResult,
        Stale,
        apply_curation_file,
        classify_trials,
        cluster_disagreements,
        curation_file,
        curation_fingerprint,
        derive,
        labels_fingerprint,
        publication_labels_inputs,
        publications_fingerprint,
        relabel_publications,
        relink,
        relink_limit,
        relink_publications,
        staleness,
        trials_fingerprint,
        versions,
    )

__all__ = [
    "PRODUCTS",
    "RELINK_LIMIT",
    "DeriveResult",
    "Stale",
    "apply_curation_file",
    "classify_trials",
    "cluster_disagreements",
    "curation_file",
    "curation_fingerprint",
    "derive",
    "labels_fingerprint",
    "publication_labels_inputs",
    "publications_fingerprint",
    "relabel_publications",
    "relink",
    "relink_limit",
    "relink_publications",
    "staleness",
    "trials_fingerprint",
    "versions",
]


def __getattr__(name: str) -> Any:
    """The names of ``cartatlas.pipeline.derived``, loaded on first use (see the module's docstring)."""
    if name.startswith("__"):
        raise AttributeError(f"module 'cartatlas.pipeline' has no attribute {name!r}")
    derived = importlib.import_module("cartatlas.pipeline.derived")
    try:
        return getattr(derived, name)
    except AttributeError:
        raise AttributeError(f"module 'cartatlas.pipeline' has no attribute {name!r}") from None
