"""Turning raw registry records into normalised rows (the middle of the pipeline)."""

from cartatlas.normalise import chictr as chictr  # registers ChiCTR's own XML and web pages
from cartatlas.normalise import (
    ctgov_classic,  # noqa: F401  (registers the older ClinicalTrials.gov formats, one module each)
    ctgov_csv,  # noqa: F401
    ctgov_rss,  # noqa: F401
    ctgov_xml,  # noqa: F401
    ictrp,  # noqa: F401  (registers WHO ICTRP exports)
    pubmed,  # noqa: F401  (registers pubmed_xml, normalised into publications)
)
from cartatlas.normalise.formats import (
    TRIALS,
    DerivedTable,
    FormatSpec,
    derived_tables,
    format_spec,
    known_formats,
    register_format,
)

__all__ = [
    "TRIALS",
    "DerivedTable",
    "FormatSpec",
    "derived_tables",
    "format_spec",
    "known_formats",
    "register_format",
]
