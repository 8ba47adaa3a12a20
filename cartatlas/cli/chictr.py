"""``cartatlas sync chictr``: harvest ChiCTR's search results and trial pages.

Registered on the ``sync`` command group of ``cartatlas.cli.sync``, beside
``sync ctgov``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, open_atlas, progress
from cartatlas.cli.data import _report_stats
from cartatlas.model import ImportStats
from cartatlas.sources.chictr.sync import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE,
    ChictrError,
    ChictrProgress,
    WafBlocked,
)

#: The status a shell gives a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def chictr_cmd(
    query: Annotated[
        str, typer.Option("--query", "-q", help="Words of the trial titles, as typed into ChiCTR's search form.")
    ],
    rate: Annotated[
        float, typer.Option(help="Requests per second (default one every 5 s; ChiCTR blocks clients that hurry).")
    ] = DEFAULT_RATE,
    max_retries: Annotated[int, typer.Option(help="Attempts per page after the first.", min=0)] = DEFAULT_MAX_RETRIES,
    base_url: Annotated[str, typer.Option(help="Site root (point it at a test server).")] = DEFAULT_BASE_URL,
    db: DbOption = None,
) -> None:
    """Harvest ChiCTR: walk the search result pages of a query and store every trial page listed.

    Each trial page is committed and checkpointed before the next is asked
    for: run the same command again to resume an interrupted harvest.  ChiCTR's
    firewall often refuses automated clients (HTTP 405 or a JavaScript
    challenge); the harvest then stops and says so, keeping its checkpoint.
    For bulk ChiCTR records, import a WHO ICTRP export instead.  Exit status 1
    when a trial was rejected, 2 when the site could not be used, 130 on Ctrl-C.
    """
    if rate <= 0:
        raise CliError("--rate must be positive")
    stats = ImportStats()
    with open_atlas(db) as atlas, progress() as bar:
        task = bar.add_task("sync chictr", total=None)

        def on_trial(prog: ChictrProgress, trial_stats: ImportStats) -> None:
            stats.add(trial_stats)
            bar.update(task, completed=prog.records_done, total=prog.total, description=f"page {prog.pages_done + 1}")

        try:
            stats = atlas.sync_chictr(query, base_url=base_url, rate=rate, max_retries=max_retries, on_trial=on_trial)
        except KeyboardInterrupt:
            bar.stop()
            _report_stats(stats, label="sync chictr (interrupted)")
            err_console.print("interrupted: every trial saved so far is kept; run the same command again to resume.")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except WafBlocked as exc:
            bar.stop()
            _report_stats(stats, label="sync chictr (stopped)")
            raise CliError(
                f"{exc}\nTrials saved so far are kept; the same command resumes where this one stopped."
            ) from exc
        except (ChictrError, ValueError) as exc:
            bar.stop()
            _report_stats(stats, label="sync chictr (stopped)")
            raise CliError(f"{exc}\nTrials saved so far are kept; run the same command again to resume.") from exc
    _report_stats(stats, label="sync chictr")
    if stats.rejected:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``chictr`` to the ``sync`` group (``app`` is the root, for symmetry with other modules)."""
    from cartatlas.cli.sync import sync_app

    sync_app.command("chictr")(chictr_cmd)
