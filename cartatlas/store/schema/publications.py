"""Column layout of the normalised ``publications`` table and of ``publication_links``.

Built the way ``cartatlas.store.schema`` builds trials: one Arrow schema that
the normaliser's rows are handed through, and DuckDB DDL generated from it so
the two cannot disagree.  A publication is keyed by (registry, pmid) with
registry always ``pubmed``, which is what lets the generic ingest replace the
row of a record seen before.

The classification columns (kind ... report_region) are derived from the
article alone, so they are filled at normalisation time and re-derived by
``rebuild``; links need the trials table as well and live in their own table.
"""

from __future__ import annotations

import pyarrow as pa

from cartatlas.store.schema import VERSION_FIELDS, table_ddl

_str = pa.string()
_strs = pa.list_(pa.string())

AUTHOR = pa.struct(
    [
        ("position", pa.int64()),
        ("last_name", _str),
        ("fore_name", _str),
        ("initials", _str),
        ("collective_name", _str),
        ("orcid", _str),
        ("affiliations", _strs),
        ("is_first", pa.bool_()),
        ("is_last", pa.bool_()),
        #: The XML has no corresponding-author element: an e-mail address in an
        #: author's own affiliation ("Electronic address: ...") is how PubMed shows it.
        ("is_corresponding", pa.bool_()),
        ("equal_contrib", pa.bool_()),
    ]
)
ABSTRACT_SECTION = pa.struct([("label", _str), ("nlm_category", _str), ("text", _str)])
MESH_HEADING = pa.struct([("descriptor", _str), ("ui", _str), ("major", pa.bool_()), ("qualifiers", _strs)])
DATABANK = pa.struct([("name", _str), ("accession_numbers", _strs)])
#: A registry id the article carries; ``found_in`` is databank, abstract or title.
REGISTRY_ID = pa.struct([("registry", _str), ("id", _str), ("found_in", _str)])

PUBLICATION_FIELDS: list[pa.Field] = [
    pa.field("pmid", _str, nullable=False),
    pa.field("registry", _str, nullable=False),
    pa.field("title", _str),
    pa.field("vernacular_title", _str),
    #: The abstract as one text; structured sections keep their labels ("METHODS: ...").
    pa.field("abstract", _str),
    pa.field("abstract_sections", pa.list_(ABSTRACT_SECTION)),
    pa.field("languages", _strs),
    pa.field("authors", pa.list_(AUTHOR)),
    pa.field("author_count", pa.int64()),
    #: "LastName Initials" of the first author (or the group name), as citations print it.
    pa.field("first_author", _str),
    pa.field("journal", _str),
    pa.field("journal_abbrev", _str),
    pa.field("journal_country", _str),
    pa.field("volume", _str),
    pa.field("issue", _str),
    pa.field("pages", _str),
    #: The issue date as printed (Year Month Day, Season, or MedlineDate such as "1998 Dec-1999 Jan").
    pa.field("pub_date_text", _str),
    #: First day of the earliest period the printed date names.
    pa.field("pub_date", pa.date32()),
    #: day | month | season | year: how much of pub_date the journal gave.
    pa.field("pub_date_precision", _str),
    pa.field("pub_year", pa.int64()),
    #: Electronic publication date (ArticleDate), often months before the issue.
    pa.field("article_date", pa.date32()),
    pa.field("publication_types", _strs),
    pa.field("mesh_headings", pa.list_(MESH_HEADING)),
    pa.field("keywords", _strs),
    pa.field("doi", _str),
    pa.field("pmc_id", _str),
    pa.field("databanks", pa.list_(DATABANK)),
    pa.field("registry_ids", pa.list_(REGISTRY_ID)),
    pa.field("nct_ids", _strs),
    pa.field("chictr_ids", _strs),
    pa.field("medline_status", _str),
    pa.field("publication_status", _str),
    pa.field("date_completed", pa.date32()),
    pa.field("date_revised", pa.date32()),
    # -- classification (cartatlas.publications.classify) --------------------
    #: clinical-report | preclinical | review | guideline | commentary | other
    pa.field("kind", _str),
    #: Why the kind was chosen: the cues found, in order of weight.
    pa.field("kind_evidence", _str),
    #: Whether the article is about a CAR-based therapy at all (a PubMed query also finds near misses).
    pa.field("is_car", pa.bool_()),
    pa.field("targets", _strs),
    pa.field("platforms", _strs),
    #: The trial classifier's branches: heme-malignancy | solid-tumor | autoimmune | infection | other | mixed
    pa.field("disease_branch", _str),
    pa.field("diseases", _strs),
    pa.field("patients_treated", pa.int64()),
    #: The sentence fragment the patient count was read from.
    pa.field("patients_evidence", _str),
    #: ISO 3166-1 alpha-2 of the reporting institution (see places.report_country for the rule).
    pa.field("report_country", _str),
    #: corresponding author | first author | any author: whose affiliation decided the country.
    pa.field("report_country_basis", _str),
    pa.field("report_institution", _str),
    #: ISO 3166-2 subdivision (a Chinese province: CN-BJ, CN-SH, ...) of the reporting institution.
    pa.field("report_region", _str),
    pa.field("report_region_name", _str),
    pa.field("source_format", _str),
]

PUBLICATION_SCHEMA = pa.schema(PUBLICATION_FIELDS + VERSION_FIELDS)
PUBLICATION_COLUMNS: list[str] = [f.name for f in PUBLICATION_FIELDS]


def publications_ddl(table: str = "publications") -> str:
    return table_ddl(table, PUBLICATION_SCHEMA, ("registry", "pmid"))


LINKS_DDL = """
CREATE TABLE publication_links (
    pmid VARCHAR NOT NULL,
    trial_registry VARCHAR NOT NULL,  -- ctgov | chictr | ...: the registry the id belongs to
    trial_id VARCHAR NOT NULL,        -- the registry id (NCT..., ChiCTR...)
    method VARCHAR NOT NULL,          -- databank | abstract_id | scored
    score DOUBLE NOT NULL,            -- 1.0 for an id the article carries; the match score otherwise
    evidence VARCHAR NOT NULL,        -- what matched, in words
    in_store BOOLEAN NOT NULL,        -- the trial is in the trials table
    linked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pmid, trial_registry, trial_id)
)
"""

VIEWS = """
CREATE OR REPLACE VIEW publication_authors AS
    SELECT pmid, UNNEST(a) FROM (SELECT pmid, UNNEST(authors) AS a FROM publications);
CREATE OR REPLACE VIEW publication_registry_ids AS
    SELECT pmid, UNNEST(r) FROM (SELECT pmid, UNNEST(registry_ids) AS r FROM publications);
CREATE OR REPLACE VIEW publication_targets AS
    SELECT pmid, UNNEST(targets) AS target FROM publications;
CREATE OR REPLACE VIEW clinical_reports AS
    SELECT * FROM publications WHERE kind = 'clinical-report' AND is_car;
"""
