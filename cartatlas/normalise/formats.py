"""The record formats cartatlas stores, and how each becomes a normalised trial.

A format names how a raw payload is to be read.  The rank orders formats by
how much of a record they carry, so that when two versions of a record carry
the same registry update date the fuller one is shown as current (a website
CSV row never hides the API record it was cut from).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cartatlas.model import Trial
from cartatlas.normalise.ctgov import normalise_ctgov
from cartatlas.store.schema import TRIAL_SCHEMA


@dataclass(frozen=True)
class DerivedTable:
    """Where a format's normalised rows go: the table, its Arrow schema, and its id column.

    Trials go to ``trials`` keyed by (registry, trial_id); other record kinds
    (publications) declare their own table so the store needs no special case.
    """

    name: str
    schema: pa.Schema
    id_column: str


TRIALS = DerivedTable("trials", TRIAL_SCHEMA, "trial_id")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    registry: str
    rank: int
    #: Payload is JSON (dict) rather than text (XML).
    is_json: bool
    #: The normaliser: payload -> one row of ``target`` (a Trial for trial formats).
    to_trial: Callable[[Any], Trial]
    #: What of the payload text counts for "same content" (drops volatile download stamps).
    hash_view: Callable[[str], str] = lambda text: text
    target: DerivedTable = TRIALS


def derived_tables() -> list[DerivedTable]:
    """Every table some registered format normalises into."""
    seen: dict[str, DerivedTable] = {}
    for spec in _FORMATS.values():
        seen.setdefault(spec.target.name, spec.target)
    return list(seen.values())


_FORMATS: dict[str, FormatSpec] = {}


def register_format(spec: FormatSpec) -> None:
    _FORMATS[spec.name] = spec


def format_spec(name: str) -> FormatSpec:
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown record format {name!r}") from None


def known_formats() -> list[str]:
    return sorted(_FORMATS)


_REQUIRED_HEADER = re.compile(r"<required_header>.*?</required_header>", re.S)


def strip_download_header(text: str) -> str:
    """Legacy XML stamps each download with its date; that is not content."""
    return _REQUIRED_HEADER.sub("", text, count=1)


register_format(FormatSpec("ctgov_v2", "ctgov", 40, True, lambda p: normalise_ctgov(p, "ctgov_v2")))
