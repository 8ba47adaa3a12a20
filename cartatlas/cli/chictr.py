"""``cartatlas sync chictr``: harvest ChiCTR's search results and trial pages.

Registered on the ``sync`` command group of ``cartatlas.cli.sync``, beside
``sync ctgov``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cartatlas.cli.changes import FeedDirOption, NoFeedOption, write_feed_after
from cartatlas.cli.common import CliError, DbOption
from cartatlas.cli.harvest import harvesting
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.chictr import ChictrProgress
from cartatlas.sources.chictr.sync import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE,
    ChictrError,
    WafBlocked,
)


def chictr_cmd(
    query: Annotated[
        str, typer.Option("--query", "-q", help="Words of the trial titles, as typed into ChiCTR's search form.")
    ],
    rate: Annotated[
        float, typer.Option(help="Requests per second (default one every 5 s; ChiCTR blocks clients that hurry).")
    ] = DEFAULT_RATE,
    max_retries: Annotated[int, typer.Option(help="Attempts per page after the first.", min=0)] = DEFAULT_MAX_RETRIES,
    base_url: Annotated[str, typer.Option(help="Site root (point it at a test server).")] = DEFAULT_BASE_URL,
    feed: FeedDirOption = None,
    no_feed: NoFeedOption = False,
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
    with harvesting(
        db, "sync chictr", unit="trial", units="trials", errors=(ChictrError, ValueError), advice=_advice
    ) as (atlas, run):

        def on_trial(prog: ChictrProgress, trial_stats: ImportStats) -> None:
            run.advance(
                trial_stats, done=prog.records_done, total=prog.total, description=f"page {prog.pages_done + 1}"
            )

        # The harvest's own stats also count rows of result pages that could not be read.
        run.stats = atlas.sync_chictr(query, base_url=base_url, rate=rate, max_retries=max_retries, on_trial=on_trial)
        write_feed_after(atlas, feed, skip=no_feed)
    run.finish()


def _advice(exc: Exception) -> str | None:
    """The firewall stopped the harvest: the same command resumes, though perhaps not at once."""
    return "the same command resumes where this one stopped." if isinstance(exc, WafBlocked) else None


def register(app: typer.Typer) -> None:
    """Add ``chictr`` to the ``sync`` group (``app`` is the root, for symmetry with other modules)."""
    from cartatlas.cli.sync import sync_app

    sync_app.command("chictr")(chictr_cmd)
