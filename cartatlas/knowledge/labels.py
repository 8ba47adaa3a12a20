"""Every classification label, declared once.

A label is a column of the ``classifications`` table: what the screening decides about a trial
(its relation to a CAR product, platforms, targets, disease branch, cell source, ...).  Everything
that names labels is generated from ``LABELS``: the table's DDL and the migration that adds a new
label's column to an existing database (``store/migrations.py``), its Arrow schema, row mapping and
export columns (``store/classifications.py``), the curation vocabularies (``curation.py``, the
explorer's trial page), the explorer's facets and table columns (``analysis/filters.py``), the
landscape's count tables (``analysis/landscape.py``), the report's supplementary table and the
words shown for each value (``report/labels.py``), the review queue and the curation etag.

It is a Python module rather than a CSV because a label is structure, not a list of terms: a kind,
a closed tuple of values whose spelling every layer shares, a rule to run; mypy checks it, and it
sits in the lowest layer (``knowledge``) so that the store, the classifier and the explorer can all
import it.  The terms a label's rule reads stay CSVs beside it, each row with its source.

Adding a label: one ``Label(...)`` entry below (with ``schema_version`` one above the latest
migration, so that databases made before gain the column), the terms CSV in this folder, and the
rule module in ``cartatlas/classify/`` named by ``rule``.  Nothing else: the engine runs declared
rules and its classifier version follows the rule module's code and the knowledge files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

#: The schema version that created the classifications table (migration 3): labels declared before
#: labels could be added by declaration.
BASE_SCHEMA = 3


@dataclass(frozen=True)
class Label:
    """One classification label and how it is stored, curated and shown."""

    #: Column name in ``classifications``, key in a Classification, field name in a curation file.
    name: str
    #: ``scalar``: one value per trial; ``list``: any number of values.
    kind: Literal["scalar", "list"]
    #: What people call it (explorer, docs).
    display: str
    #: One sentence: what it says about a trial.
    description: str
    #: The closed vocabulary, or ``None`` when open (targets, diseases, products are named by the knowledge base).
    values: tuple[str, ...] | None = None
    #: Words shown for a value where they differ from the token (the report, the trial panel).
    value_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: A curator may override it (``cartatlas curate``, the explorer's trial page).
    curatable: bool = True
    #: The value is never missing (``NOT NULL`` in the table).
    required: bool = False
    #: A note kept in the DDL beside the column.
    comment: str = ""
    #: Key of its facet in the explorer (``None``: no facet).
    facet: str | None = None
    #: Key of its column in the explorer's table (``None``: no column).
    column: str | None = None
    #: The column's heading where it differs from ``display`` (a list label's plural).
    column_title: str = ""
    #: Name of the value column of its count table in the landscape (``landscape.tables[name]``, the report's
    #: ``tables/NAME.csv``); ``None``: no generic count table (the landscape counts it its own way, or not).
    count_column: str | None = None
    #: What a trial without a value is counted as in its count table (``None``: not counted).
    count_missing: str | None = None
    #: In the report's supplementary table of counted trials.
    in_trial_table: bool = True
    #: How registrations of one trial combine: the preferred registration's value (``first``), or the union of
    #: every registration's values (``union``, list labels only).
    merge: Literal["first", "union"] = "first"
    #: ``module:function`` of the rule that decides it, run by the engine from this declaration (the labels
    #: older than the declaration are decided by the engine itself).  The function takes the rule context,
    #: the relation and the chosen CAR mentions, adds its evidence to the context and returns the value.
    rule: str | None = None
    #: The schema migration that adds its column: ``BASE_SCHEMA`` for the labels the table was created with;
    #: a new label takes the next version, and ``store/migrations.py`` makes that migration from it.
    schema_version: int = BASE_SCHEMA

    @property
    def is_list(self) -> bool:
        return self.kind == "list"

    @property
    def sql_type(self) -> str:
        return "VARCHAR[]" if self.is_list else "VARCHAR"

    def shown(self, token: str) -> str:
        """The words for ``token`` (the token itself when it has none)."""
        return self.value_labels.get(token, token)


NOT_STATED = "Not stated"

#: In the order of the table's columns and of every export (``flags`` is written before ``confidence``).
#: A new label goes before ``confidence``, with the next ``schema_version``.
LABELS: tuple[Label, ...] = (
    Label(
        "relation",
        "scalar",
        "Relation",
        "What the trial does with a CAR product; a landscape counts `therapy` and `follow_up`.",
        ("therapy", "follow_up", "ancillary", "none"),
        MappingProxyType(
            {
                "therapy": "CAR therapy",
                "follow_up": "Follow-up of a CAR therapy",
                "ancillary": "Ancillary to a CAR therapy",
                "none": "Not a CAR trial",
            }
        ),
        required=True,
        comment="therapy | follow_up | ancillary | none",
    ),
    Label(
        "platforms",
        "list",
        "Platform",
        "The CAR platforms given (CAR-T, CAR-NK, ...).",
        (
            "CAR-T",
            "CAR-NK",
            "CAR-gdT",
            "CAR-NKT",
            "CAR-Treg",
            "CAAR-T",
            "CAR-M",
            "in-vivo-CAR",
            "CAR-other",
        ),
        MappingProxyType({"CAR-gdT": "CAR-γδT", "in-vivo-CAR": "In vivo CAR", "CAR-other": "Other CAR"}),
        facet="platform",
        column="platforms",
        column_title="Platforms",
        count_column="platform",
        merge="union",
    ),
    Label(
        "targets",
        "list",
        "Target",
        'Canonical antigen symbols of the CAR products\' targets (any spelling: "CD-19", "GD 2", '
        '"IL13Ralpha2" name the symbol of `knowledge/antigens.csv`); `unknown` when a CAR product is given '
        "without its antigen.",
        facet="target",
        column="targets",
        column_title="Targets",
        merge="union",
    ),
    Label(
        "target_strategy",
        "scalar",
        "Target strategy",
        "One target, a multi-specific CAR, or several CAR products given together.",
        ("single", "multi-specific-CAR", "co-administered", "unknown"),
        MappingProxyType(
            {
                "single": "One target",
                "multi-specific-CAR": "Multi-specific CAR",
                "co-administered": "Co-administered CARs",
                "unknown": NOT_STATED,
            }
        ),
        facet="strategy",
        column="strategy",
    ),
    Label(
        "branch",
        "scalar",
        "Branch",
        "The disease branch (`unknown` when no disease can be read from the record; `mixed`: several).",
        ("heme-malignancy", "solid-tumor", "autoimmune", "infection", "other", "mixed", "unknown"),
        MappingProxyType(
            {
                "heme-malignancy": "Haematological malignancies",
                "solid-tumor": "Solid tumours",
                "autoimmune": "Autoimmune diseases",
                "infection": "Infections",
                "other": "Other diseases",
                "mixed": "Several branches",
                "unknown": NOT_STATED,
            }
        ),
        facet="branch",
        column="branch",
        count_column="branch",
        count_missing="unknown",
    ),
    Label(
        "disease_entity",
        "list",
        "Disease",
        "The diseases treated: entities of `knowledge/diseases.csv`.",
        facet="disease",
        column="diseases",
        column_title="Diseases",
    ),
    Label(
        "product_source",
        "scalar",
        "Cell source",
        "Autologous, allogeneic or in vivo.",
        ("autologous", "allogeneic", "in-vivo", "unknown"),
        MappingProxyType(
            {"autologous": "Autologous", "allogeneic": "Allogeneic", "in-vivo": "In vivo", "unknown": NOT_STATED}
        ),
        facet="source",
        column="source",
        count_column="product_source",
        count_missing="unknown",
    ),
    Label(
        "combinations",
        "list",
        "Combination",
        "Other treatments given with the CAR product: another listed intervention (the CAR product listed "
        'again under another name, such as "genetically engineered lymphocyte therapy" or a dose level, is '
        "not one).",
        ("HSCT", "checkpoint-inhibitor", "radiotherapy", "other-drug"),
        MappingProxyType(
            {
                "HSCT": "Stem-cell transplant",
                "checkpoint-inhibitor": "Checkpoint inhibitor",
                "radiotherapy": "Radiotherapy",
                "other-drug": "Other drug",
            }
        ),
        merge="union",
    ),
    Label(
        "products",
        "list",
        "Product",
        "Named CAR products recognised in the record (canonical names of `knowledge/products.csv`).",
        comment="named CAR products recognised",
    ),
    Label(
        "costim_domains",
        "list",
        "Co-stimulatory domain",
        "The co-stimulatory (signalling) domains of the CAR products, as the record or a named product's label "
        "states them; empty when neither says (most records). Generations are not derived from them: a trial "
        "comparing a CD28 and a 4-1BB CAR names two domains without being third-generation.",
        ("CD28", "4-1BB", "OX40", "ICOS", "CD27", "DAP10", "DAP12", "2B4", "MyD88-CD40", "other"),
        MappingProxyType({"MyD88-CD40": "Inducible MyD88/CD40", "other": "Other domain", "unknown": NOT_STATED}),
        facet="costim",
        column="costim",
        column_title="Co-stimulatory domains",
        count_column="costim_domain",
        count_missing="unknown",
        merge="union",
        rule="cartatlas.classify.costim:decide",
        schema_version=10,
    ),
    Label(
        "confidence",
        "scalar",
        "Confidence",
        "The rules' confidence: the weakest of the relation, target and disease evidence "
        "(`confidence_score` holds the score).",
        ("high", "medium", "low"),
        MappingProxyType({"high": "High", "medium": "Medium", "low": "Low"}),
        facet="confidence",
        column="confidence",
    ),
)

BY_NAME: Mapping[str, Label] = MappingProxyType({label.name: label for label in LABELS})
#: Label fields a curator may override: lists first, then scalars (the order of messages and of ``auto``).
LIST_FIELDS: tuple[str, ...] = tuple(la.name for la in LABELS if la.curatable and la.is_list)
SCALAR_FIELDS: tuple[str, ...] = tuple(la.name for la in LABELS if la.curatable and not la.is_list)
CURATABLE: tuple[str, ...] = LIST_FIELDS + SCALAR_FIELDS
#: Closed vocabularies of the curatable labels that have one.
VOCABULARIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {la.name: la.values for la in LABELS if la.curatable and la.values is not None}
)


def values(name: str) -> tuple[str, ...]:
    """The closed vocabulary of label ``name`` (a KeyError names a label without one)."""
    found = BY_NAME[name].values
    if found is None:
        raise KeyError(f"label {name!r} has an open vocabulary")
    return found


def value_labels(name: str) -> dict[str, str]:
    """The words shown for the values of label ``name`` (a plain dict, for the report's tables)."""
    return dict(BY_NAME[name].value_labels)


def with_rules() -> tuple[Label, ...]:
    """The labels whose rule the engine runs from the declaration."""
    return tuple(la for la in LABELS if la.rule is not None)
