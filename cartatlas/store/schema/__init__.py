"""Column layout of the normalised trials table, in Arrow and in DuckDB terms.

Rows are built as dicts by the normaliser and handed to DuckDB through Arrow,
which is the only bulk path that keeps nested lists and structs intact at
speed.  The DuckDB DDL is generated from the same Arrow schema so the two can
never disagree.
"""

from __future__ import annotations

import pyarrow as pa

_str = pa.string()
_strs = pa.list_(pa.string())

SECONDARY_ID = pa.struct([("id", _str), ("type", _str), ("domain", _str), ("registry", _str)])
SPONSOR = pa.struct([("name", _str), ("sponsor_class", _str)])
INTERVENTION = pa.struct([("type", _str), ("name", _str), ("other_names", _strs), ("description", _str)])
ARM_GROUP = pa.struct([("label", _str), ("type", _str), ("description", _str), ("intervention_names", _strs)])
SITE = pa.struct(
    [
        ("facility", _str),
        ("city", _str),
        ("state", _str),
        ("country", _str),
        ("country_code", _str),
        ("zip", _str),
        ("status", _str),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        # Migration 6 (issue 12): the place in one spelling (cartatlas.normalise.places).
        ("region_code", _str),
        ("region", _str),
        ("city_normalised", _str),
    ]
)

#: Normalised trial columns, in export order (trial_id and registry first).
TRIAL_FIELDS: list[pa.Field] = [
    pa.field("trial_id", _str, nullable=False),
    pa.field("registry", _str, nullable=False),
    pa.field("nct_id", _str),
    pa.field("org_study_id", _str),
    pa.field("secondary_ids", pa.list_(SECONDARY_ID)),
    pa.field("brief_title", _str),
    pa.field("official_title", _str),
    pa.field("acronym", _str),
    pa.field("overall_status", _str),
    pa.field("study_type", _str),
    pa.field("phases", _strs),
    pa.field("first_submitted", pa.date32()),
    pa.field("first_posted", pa.date32()),
    pa.field("start_date", pa.date32()),
    pa.field("primary_completion_date", pa.date32()),
    pa.field("completion_date", pa.date32()),
    pa.field("last_update_posted", pa.date32()),
    pa.field("lead_sponsor", _str),
    pa.field("lead_sponsor_class", _str),
    pa.field("collaborators", pa.list_(SPONSOR)),
    pa.field("conditions", _strs),
    pa.field("keywords", _strs),
    pa.field("mesh_terms", _strs),
    pa.field("interventions", pa.list_(INTERVENTION)),
    pa.field("arm_groups", pa.list_(ARM_GROUP)),
    pa.field("brief_summary", _str),
    pa.field("detailed_description", _str),
    pa.field("eligibility_criteria", _str),
    pa.field("sex", _str),
    pa.field("minimum_age", _str),
    pa.field("maximum_age", _str),
    pa.field("enrollment", pa.int64()),
    pa.field("enrollment_type", _str),
    pa.field("primary_outcomes", _strs),
    pa.field("sites", pa.list_(SITE)),
    pa.field("countries", _strs),
    pa.field("has_results", pa.bool_()),
    pa.field("source_format", _str),
    # Migration 4 (issue 5): registries beyond ClinicalTrials.gov; see cartatlas.model.Trial.
    pa.field("brief_title_local", _str),
    pa.field("official_title_local", _str),
    pa.field("lead_sponsor_local", _str),
    pa.field("brief_summary_local", _str),
    pa.field("detailed_description_local", _str),
    pa.field("conditions_local", _strs),
    pa.field("eligibility_criteria_local", _str),
    pa.field("language", _str),
    pa.field("source_register", _str),
    pa.field("web_address", _str),
    pa.field("phase_text", _str),
    pa.field("study_design", _str),
    pa.field("secondary_outcomes", _strs),
    # Migration 6 (issue 12): what bounds an estimated registration date, and where a site-less trial is.
    pa.field("results_first_submitted", pa.date32()),
    pa.field("results_first_posted", pa.date32()),
    pa.field("sponsor_country", _str),
]

#: Bookkeeping columns that tie a normalised row to the raw version it came from.
VERSION_FIELDS: list[pa.Field] = [
    pa.field("version_id", pa.int64(), nullable=False),
    pa.field("content_hash", _str, nullable=False),
]

TRIAL_SCHEMA = pa.schema(TRIAL_FIELDS + VERSION_FIELDS)
TRIAL_COLUMNS: list[str] = [f.name for f in TRIAL_FIELDS]


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB spelling of an Arrow type used in this schema."""
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in t)
        return f"STRUCT({inner})"
    raise TypeError(f"no DuckDB mapping for {t}")


def table_ddl(table: str, schema: pa.Schema, primary_key: tuple[str, ...]) -> str:
    """CREATE TABLE for a derived table, from its Arrow schema (the one place column types are spelled)."""
    cols = ",\n    ".join(f'"{f.name}" {duckdb_type(f.type)}' + ("" if f.nullable else " NOT NULL") for f in schema)
    return f"CREATE TABLE {table} (\n    {cols},\n    PRIMARY KEY ({', '.join(primary_key)})\n)"


def trials_ddl(table: str = "trials") -> str:
    return table_ddl(table, TRIAL_SCHEMA, ("registry", "trial_id"))
