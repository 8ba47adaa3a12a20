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
from cartatlas.knowledge.labels import LABELS, value_labels

# The words of every label's values are declared with the label (``knowledge/labels.py``).
PLATFORM_LABELS = value_labels("platforms")
PRODUCT_SOURCE_LABELS = value_labels("product_source")
BRANCH_LABELS = value_labels("branch")
STRATEGY_LABELS = value_labels("target_strategy")
COMBINATION_LABELS = value_labels("combinations")
RELATION_LABELS = value_labels("relation")
CONFIDENCE_LABELS = value_labels("confidence")

Kind = Literal["platform", "product_source", "branch", "strategy", "combination", "relation", "confidence", "registry"]

#: The report's short names of the labels it shows; any declared label is also found by its own name.
_BY_KIND: dict[str, dict[str, str]] = {
    **{label.name: value_labels(label.name) for label in LABELS},
    "platform": PLATFORM_LABELS,
    "strategy": STRATEGY_LABELS,
    "combination": COMBINATION_LABELS,
}


def label(kind: Kind | str, token: object) -> str:
    """The label of ``token`` (a missing value is "Not stated"; a token without a label is shown as it is)."""
    if token is None or token == "" or (isinstance(token, float) and token != token):  # None, "" or NaN
        return "Not stated"
    if kind == "registry":
        return registry_name(str(token))
    return _BY_KIND[kind].get(str(token), str(token))


def rank_key(n: int, text: str) -> tuple[int, str, str]:
    """The order of every ranked table and chart of the report: most trials first, then by label, case aside."""
    return (-n, text.casefold(), text)
