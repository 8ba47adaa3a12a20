"""What every ``sync`` command does around its harvest: options, progress, the closing lines, exit codes.

The ``sync ctgov``, ``sync pubmed`` and ``sync chictr`` commands differ in
their options and in what their pass reports, not in how a run behaves, so
that behaviour lives here once:

- ``--full`` and ``--since`` exclude each other, and ``--since`` is a date;
- a progress bar on stderr, and the run's stats added up step by step, so
  that a run that stops still says what it stored;
- Ctrl-C: the stats so far, where the next run resumes, exit status 130;
- the registry failing: the stats so far, the error and the advice to run
  the same command again (exit status 2 through ``CliError``);
- at the end: the stats, the pass's notes and summary, exit status 1 when a
  record was rejected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import Progress, TaskID

import cartatlas
from cartatlas.cli.common import CliError, err_console, literal, open_atlas, progress
from cartatlas.cli.data import _report_stats
from cartatlas.model import ImportStats

#: The status a shell gives a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def parse_since(since: str | None, full: bool) -> dt.date | None:
    """The ``--since`` date, refusing it beside ``--full`` (a full pass has no start date)."""
    if full and since is not None:
        raise CliError("--full and --since exclude each other")
    if since is None:
        return None
    try:
        return dt.date.fromisoformat(since)
    except ValueError:
        raise CliError(f"--since {since!r}: expected a date as YYYY-MM-DD") from None


class HarvestRun:
    """One sync command's run as its callbacks see it: the stats so far and the progress bar."""

    def __init__(self, name: str, bar: Progress, task: TaskID, resume_from: Callable[[], str]) -> None:
        self.name = name
        self.stats = ImportStats()
        self._resume_from = resume_from
        self._bar = bar
        self._task = task

    def announce(self, reason: str, *, done: int | None = None, total: int | None = None) -> None:
        """Say what the run will do (resume, full pass, since a date) and start the bar where it stands."""
        err_console.print(literal(f"{self.name}: {reason}"))
        if done is not None:
            self._bar.update(self._task, completed=done, total=total)

    def advance(self, step: ImportStats, *, done: int, total: int | None, description: str) -> None:
        """Count one committed step (a page, a batch, a trial) and move the bar."""
        self.stats.add(step)
        self._bar.update(self._task, completed=done, total=total, description=description)

    def move(self, done: int, total: int | None, description: str) -> None:
        """Move the bar without counting records (a download's bytes)."""
        self._bar.update(self._task, completed=done, total=total, description=description)

    def _stopped(self, how: str) -> None:
        self._bar.stop()
        _report_stats(self.stats, label=f"{self.name} ({how})")

    def _resume_advice(self) -> str:
        where = self._resume_from()
        return f"run the same command again to resume {where}" if where else "run the same command again to resume."

    def finish(self, notes: Sequence[str] = (), summary: str | None = None) -> None:
        """The closing lines of a run that got through; exit status 1 when a record was rejected."""
        _report_stats(self.stats, label=self.name)
        for note in notes:
            err_console.print(literal(f"  note: {note}"))
        if summary is not None:
            err_console.print(literal(f"  {summary}"))
        if self.stats.rejected:
            raise typer.Exit(1)


@contextmanager
def harvesting(
    db: Path | None,
    name: str,
    *,
    unit: str,
    units: str,
    errors: tuple[type[Exception], ...],
    advice: Callable[[Exception], str | None] = lambda exc: None,
    resume_from: Callable[[], str] = lambda: "",
) -> Iterator[tuple[cartatlas.Atlas, HarvestRun]]:
    """Open the database and a progress bar for a sync command, and turn how it stops into exit codes.

    ``unit`` and ``units`` name what is committed at a time ("batch", "batches").
    ``errors`` are the registry's failures, reported as a ``CliError`` with
    the stats so far; ``advice`` may replace the usual "run the same command
    again" for some of them (ChiCTR's firewall).  ``resume_from`` says where the
    next run would continue ("from page 4."), or "" when the command does not
    know.  Ctrl-C exits with 130.
    """
    with open_atlas(db) as atlas, progress() as bar:
        run = HarvestRun(name, bar, bar.add_task(name, total=None), resume_from)
        try:
            yield atlas, run
        except KeyboardInterrupt:
            run._stopped("interrupted")
            err_console.print(literal(f"interrupted: every {unit} saved so far is kept; {run._resume_advice()}"))
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except errors as exc:
            run._stopped("stopped")
            told = advice(exc) or run._resume_advice()
            raise CliError(f"{exc}\n{units.capitalize()} saved so far are kept; {told}") from exc
