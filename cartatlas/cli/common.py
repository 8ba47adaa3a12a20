"""Options and helpers shared by every command: the database option, consoles, progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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

import cartatlas
from cartatlas.store.db import SchemaError

out_console = Console()
err_console = Console(stderr=True)


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
    try:
        atlas = cartatlas.open(db, read_only=read_only)
    except SchemaError as exc:
        raise CliError(str(exc)) from exc
    try:
        yield atlas
    finally:
        atlas.close()


def progress(*, total_known: bool = True) -> Progress:
    """A progress bar on stderr that switches itself off when stderr is not a terminal."""
    columns = [SpinnerColumn(), TextColumn("[progress.description]{task.description}")]
    if total_known:
        columns += [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} records"), TimeElapsedColumn()]
    return Progress(*columns, console=err_console, disable=not err_console.is_terminal, transient=False)
