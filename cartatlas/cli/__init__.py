"""The ``cartatlas`` command line.  It parses options and calls the Python API; nothing more.

Each command group lives in its own module and is registered on ``app`` here.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.logging import RichHandler

import cartatlas
from cartatlas.cli import atlas, changes, chictr, classify, common, data, link, serve, sync

app = typer.Typer(
    name="cartatlas",
    help="Build a reproducible atlas of CAR cell-therapy clinical trials from registries and files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cartatlas {cartatlas.__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."),
    version: bool = typer.Option(
        False, "--version", help="Print cartatlas's version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Log to stderr through rich; data goes to stdout or files."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=common.err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )


data.register(app)
sync.register(app)
atlas.register(app)
classify.register(app)
chictr.register(app)
link.register(app)
changes.register(app)
serve.register(app)


def main() -> None:
    try:
        app()
    except common.CliError as exc:
        # One line, however narrow the terminal: a message names a file and what to do about it.
        common.err_console.print(common.styled("[bold red]error:[/] {}", exc), soft_wrap=True)
        sys.exit(2)
    except BrokenPipeError:
        # The reader went away (`cartatlas sql ... -f csv | head`): stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
