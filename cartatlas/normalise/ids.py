"""Recognising which registry a trial identifier belongs to.

Cross-registry linking (issue 5) starts from the ids one registration gives
for another, so every secondary id is tagged with its registry.  The id forms
are described with every other fact about a registry in
``knowledge/registries.csv``; the functions live in
``cartatlas.knowledge.registries`` (below the readers, which need them too)
and are re-exported here, where the normalisers and earlier callers find them.
"""

from __future__ import annotations

from cartatlas.knowledge.registries import find_registry_ids as find_registry_ids
from cartatlas.knowledge.registries import id_matches as id_matches
from cartatlas.knowledge.registries import id_registry as id_registry
