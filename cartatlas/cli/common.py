"""Options and helpers shared by every command: the database option, consoles, progress."""

from __future__ import annotations

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

import cartatlas
from cartatlas.store.db import StoreError, storage_error

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
    columns = [SpinnerColumn(), TextColumn("[progress.description]{task.description}")]
    if total_known:
        columns += [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} records"), TimeElapsedColumn()]
    return Progress(*columns, console=err_console, disable=not err_console.is_terminal, transient=False)
