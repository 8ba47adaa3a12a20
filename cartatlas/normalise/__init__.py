"""Turning raw registry records into normalised rows (the middle of the pipeline)."""

from cartatlas.normalise.formats import FormatSpec, format_spec, known_formats, register_format

__all__ = ["FormatSpec", "format_spec", "known_formats", "register_format"]
