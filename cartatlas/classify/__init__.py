"""Screening of registry records for CAR cell therapies, with evidence for every decision (issue 3).

``classify_trial(trial)`` turns a normalised ``Trial`` into a ``Classification``:
relation to CAR therapy, platforms, target antigens and strategy, disease
branch and entities, product source, combinations, confidence, flags and the
evidence behind each of them.  The vocabularies are data files in
``cartatlas/knowledge/`` (see ``cartatlas.classify.knowledge``).
"""

from cartatlas.classify.engine import CLASSIFIER_VERSION, classifier_version, classify_many, classify_trial
from cartatlas.classify.knowledge import Knowledge, knowledge, load_knowledge
from cartatlas.classify.types import (
    BRANCHES,
    COMBINATIONS,
    LANDSCAPE_RELATIONS,
    PLATFORMS,
    PRODUCT_SOURCES,
    RELATIONS,
    TARGET_STRATEGIES,
    UNKNOWN_TARGET,
    Classification,
    Evidence,
)

__all__ = [
    "BRANCHES",
    "CLASSIFIER_VERSION",
    "COMBINATIONS",
    "LANDSCAPE_RELATIONS",
    "PLATFORMS",
    "PRODUCT_SOURCES",
    "RELATIONS",
    "TARGET_STRATEGIES",
    "UNKNOWN_TARGET",
    "Classification",
    "Evidence",
    "Knowledge",
    "classifier_version",
    "classify_many",
    "classify_trial",
    "knowledge",
    "load_knowledge",
]
