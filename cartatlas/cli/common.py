"""Options and helpers shared by every command: the database option, consoles, progress.

The consoles are for people.  They never read the text they are given as Rich
markup or emoji codes, and never wrap it: registry titles, file names and
curators' values carry brackets and colons (``cart [draft].json``, ``[/x]``,
``:x:``) that must come out as written.  Styled messages are built with
``styled``, which never parses the values it fills in, and data shown as it is
goes through ``literal``; both show control characters as U+FFFD.  Machine
output (CSV, JSON, stored payloads) does not go through a console at all
(``cartatlas.cli.output``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

import cartatlas
from cartatlas.store.db import StoreError, storage_error

# markup and emoji off: a plain string printed is printed as it is; soft_wrap: no line breaks are inserted
# into messages (a path in an error message stays on one line when stderr is a file).
out_console = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

#: Control characters a terminal would act on (ESC starts escape sequences), other than tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def literal(value: object) -> Text:
    """Data shown to a person: taken literally, with control characters replaced so a terminal cannot act on them."""
    return Text(_CONTROL.sub("\ufffd", str(value)))


#: Stands for a value while a template's markup is parsed (a private-use character no template contains).
_SLOT = "\ue000"


def styled(template: str, *values: object) -> Text:
    """A styled message: ``template`` is Rich markup whose ``{}`` are filled with ``values`` taken literally.

    ``styled("[yellow]rejected[/] {}", reject)`` colours the word and prints the
    reject's text exactly, brackets and all.  The template's markup is parsed
    with a placeholder in each slot, and the values are put in afterwards with
    the slot's style: they are never parsed (escaping them instead goes wrong
    for a value that ends with a backslash).
    """
    base = Text.from_markup(template.replace("{}", _SLOT), emoji=False)
    slots = [i for i, c in enumerate(base.plain) if c == _SLOT]
    if len(slots) != len(values):
        raise ValueError(f"template {template!r} has {len(slots)} slots for {len(values)} values")
    pieces = base.divide(sorted({o for i in slots for o in (i, i + 1)}))
    filled = iter(values)
    out = Text()
    for piece in pieces:
        if piece.plain != _SLOT:
            out.append_text(piece)
            continue
        value = literal(next(filled))
        for span in piece.spans:
            value.stylize(span.style)
        out.append_text(value)
    return out


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Database file (default: $CARTATLAS_DB, else ./cartatlas.duckdb).",
        envvar="CARTATLAS_DB",
        show_envvar=True,
    ),
]


@contextmanager
def open_atlas(db: Path | None, *, read_only: bool = False) -> Iterator[cartatlas.Atlas]:
    """The atlas for one command; the store's failures become one line that says why, not a traceback.

    A full disk surfaces as whatever DuckDB statement met it, so storage
    failures are recognised wherever they come from (``storage_error``).
    """
    try:
        atlas = cartatlas.open(db, read_only=read_only)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    try:
        yield atlas
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    except duckdb.Error as exc:
        translated = storage_error(exc, atlas.store.path)
        if translated is None:
            raise
        raise CliError(str(translated)) from exc
    finally:
        try:
            atlas.close()
        except duckdb.Error as exc:  # the checkpoint on close can meet a full disk too
            translated = storage_error(exc, atlas.store.path)
            if translated is None:
                raise
            raise CliError(str(translated)) from exc


def progress(*, total_known: bool = True) -> Progress:
    """A progress bar on stderr that switches itself off when stderr is not a terminal."""
    # The description names files: shown literally, not read as markup.
    columns = [SpinnerColumn(), TextColumn("{task.description}", style="progress.description", markup=False)]
    if total_known:
        columns += [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} records"), TimeElapsedColumn()]
    return Progress(*columns, console=err_console, disable=not err_console.is_terminal, transient=False)
