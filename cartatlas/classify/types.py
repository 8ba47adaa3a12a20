"""The shape of a classification and the closed vocabularies of its fields.

A Classification is a plain dict (TypedDict) for the same reason a Trial is:
the store hands rows straight to Arrow, and JSON lines are written as they
are.  The vocabularies are tuples so that the database, the exports and the
evaluation all agree on the spelling of every value.
"""

from __future__ import annotations

from typing import TypedDict

from cartatlas.knowledge.labels import values

# The vocabularies are declared once, with every other property of a label, in ``knowledge/labels.py``.
#: What the trial does with a CAR product (issue 3).  A landscape counts therapy and follow_up.
RELATIONS: tuple[str, ...] = values("relation")
LANDSCAPE_RELATIONS: frozenset[str] = frozenset({"therapy", "follow_up"})
PLATFORMS: tuple[str, ...] = values("platforms")
TARGET_STRATEGIES: tuple[str, ...] = values("target_strategy")
#: ``unknown`` is used when no disease can be read from the record at all.
BRANCHES: tuple[str, ...] = values("branch")
PRODUCT_SOURCES: tuple[str, ...] = values("product_source")
COMBINATIONS: tuple[str, ...] = values("combinations")
CONFIDENCE_LABELS: tuple[str, ...] = values("confidence")
#: Placeholder target when a CAR product is given but its antigen is not disclosed.
UNKNOWN_TARGET = "unknown"


class Evidence(TypedDict):
    """One reason for one decision, precise enough for a curator to check it in the record."""

    #: The field decided: relation, platforms, targets, target_strategy, branch, disease_entity,
    #: product_source, combinations.
    decision: str
    #: The value this evidence supports (or argues against, see the rule id).
    value: str
    #: Where in the trial the text was found, e.g. ``brief_title`` or ``interventions[0].name``.
    field: str
    #: The matched text as written in the record (empty for rules that fire on absence).
    text: str
    #: Stable id of the rule that fired, e.g. ``relation.car_in_intervention``.
    rule: str


class Classification(TypedDict):
    """The screening result for one trial (issue 3).

    Labels declared with a ``rule`` in ``knowledge/labels.py`` are added to it by the engine under their
    name, beyond the keys listed here.
    """

    trial_id: str
    registry: str
    relation: str
    platforms: list[str]
    targets: list[str]
    target_strategy: str
    branch: str
    disease_entity: list[str]
    product_source: str
    combinations: list[str]
    #: Named CAR products recognised in the record (canonical names from the knowledge base).
    products: list[str]
    confidence: str
    confidence_score: float
    #: Why a curator might want to look: ``conflict:relation``, ``unknown-target``, ``default:platform``, ...
    flags: list[str]
    evidence: list[Evidence]
    classifier_version: str
