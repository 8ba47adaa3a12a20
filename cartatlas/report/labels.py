"""What the report calls each classification token: one mapping for figures, tables and trial cards.

The screening writes tokens (``in-vivo-CAR``, ``heme-malignancy``,
``co-administered``); people read labels ("In vivo CAR", "Haematological
malignancies").  Figures, the HTML tables and the trial panel all take their
words from here, so a chart and the table beside it never name one thing
twice.  Registries keep their one mapping in
:func:`cartatlas.analysis.landscape.registry_name` (the landscape's tables
already carry those names).  CSV tables and summary.json keep the tokens:
they are read by programs.
"""

from __future__ import annotations

from typing import Literal

from cartatlas.analysis.landscape import registry_name

PLATFORM_LABELS = {"CAR-gdT": "CAR-γδT", "in-vivo-CAR": "In vivo CAR", "CAR-other": "Other CAR"}
PRODUCT_SOURCE_LABELS = {
    "autologous": "Autologous",
    "allogeneic": "Allogeneic",
    "in-vivo": "In vivo",
    "unknown": "Not stated",
}
BRANCH_LABELS = {
    "heme-malignancy": "Haematological malignancies",
    "solid-tumor": "Solid tumours",
    "autoimmune": "Autoimmune diseases",
    "infection": "Infections",
    "other": "Other diseases",
    "mixed": "Several branches",
    "unknown": "Not stated",
}
STRATEGY_LABELS = {
    "single": "One target",
    "multi-specific-CAR": "Multi-specific CAR",
    "co-administered": "Co-administered CARs",
    "unknown": "Not stated",
}
COMBINATION_LABELS = {
    "HSCT": "Stem-cell transplant",
    "checkpoint-inhibitor": "Checkpoint inhibitor",
    "radiotherapy": "Radiotherapy",
    "other-drug": "Other drug",
}
RELATION_LABELS = {
    "therapy": "CAR therapy",
    "follow_up": "Follow-up of a CAR therapy",
    "ancillary": "Ancillary to a CAR therapy",
    "none": "Not a CAR trial",
}
CONFIDENCE_LABELS = {"high": "High", "medium": "Medium", "low": "Low"}

Kind = Literal["platform", "product_source", "branch", "strategy", "combination", "relation", "confidence", "registry"]

_BY_KIND: dict[str, dict[str, str]] = {
    "platform": PLATFORM_LABELS,
    "product_source": PRODUCT_SOURCE_LABELS,
    "branch": BRANCH_LABELS,
    "strategy": STRATEGY_LABELS,
    "combination": COMBINATION_LABELS,
    "relation": RELATION_LABELS,
    "confidence": CONFIDENCE_LABELS,
}


def label(kind: Kind, token: object) -> str:
    """The label of ``token`` (a missing value is "Not stated"; a token without a label is shown as it is)."""
    if token is None or token == "" or (isinstance(token, float) and token != token):  # None, "" or NaN
        return "Not stated"
    if kind == "registry":
        return registry_name(str(token))
    return _BY_KIND[kind].get(str(token), str(token))


def rank_key(n: int, text: str) -> tuple[int, str, str]:
    """The order of every ranked table and chart of the report: most trials first, then by label, case aside."""
    return (-n, text.casefold(), text)
