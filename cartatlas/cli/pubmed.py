"""``cartatlas sync pubmed``: harvest PubMed through the NCBI E-utilities (registered in ``cli.sync``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cartatlas.cli.changes import FeedDirOption, NoFeedOption, write_feed_after
from cartatlas.cli.common import DbOption
from cartatlas.cli.harvest import harvesting, parse_since
from cartatlas.model import ImportStats
from cartatlas.pipeline.harvest.pubmed import Plan, Progress
from cartatlas.sources.pubmed.eutils import (
    DEFAULT_BASE_URL,
    DEFAULT_BATCH,
    DEFAULT_MAX_RETRIES,
    MAX_BATCH,
    SINCE_OVERLAP_DAYS,
    EutilsError,
)


def pubmed_cmd(
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            "-q",
            help='PubMed search (default: "Receptors, Chimeric Antigen"[MeSH] OR the CAR-T / CAR-NK / '
            "chimeric antigen receptor text words).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only records NLM modified on or after this date (YYYY-MM-DD). Default: since the last "
            f"complete pass of the same query began, less {SINCE_OVERLAP_DAYS} days."
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Fetch every record of the query, not only changes.")] = False,
    email: Annotated[
        str | None,
        typer.Option(help="Your e-mail address, sent to NCBI with every request as it asks.", envvar="NCBI_EMAIL"),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Requests per second (default and maximum: 3, or 10 with NCBI_API_KEY).", min=0.001),
    ] = None,
    max_retries: Annotated[
        int, typer.Option(help="Attempts per request after the first.", min=0)
    ] = DEFAULT_MAX_RETRIES,
    batch_size: Annotated[int, typer.Option(help="Records per efetch request.", min=1, max=MAX_BATCH)] = DEFAULT_BATCH,
    base_url: Annotated[str, typer.Option(help="E-utilities root (a test server or a mirror).")] = DEFAULT_BASE_URL,
    feed: FeedDirOption = None,
    no_feed: NoFeedOption = False,
    db: DbOption = None,
) -> None:
    """Harvest PubMed articles into the database and link them to registry trials.

    An API key in NCBI_API_KEY raises the request rate from 3 to 10 per second.
    Each batch is committed and checkpointed: an interrupted sync continues where
    it stopped when the same command is run again.  Exit status 1 when a record
    was rejected, 2 when the E-utilities could not be used, 130 on Ctrl-C.
    """
    since_date = parse_since(since, full)
    harvest = harvesting(db, "sync pubmed", unit="batch", units="batches", errors=(EutilsError, ValueError))
    with harvest as (atlas, run):

        def on_plan(plan: Plan) -> None:
            run.announce(plan.reason)

        def on_batch(prog: Progress, batch_stats: ImportStats) -> None:
            run.advance(batch_stats, done=prog.records_done, total=prog.total, description=f"batch {prog.batches_done}")

        _, prog = atlas.sync_pubmed(
            query,
            since_date,
            full,
            email=email,
            base_url=base_url,
            rate=rate,
            max_retries=max_retries,
            batch_size=batch_size,
            on_plan=on_plan,
            on_batch=on_batch,
        )
        links = atlas.sql("SELECT count(*) AS n FROM publication_links")["n"][0]
        write_feed_after(atlas, feed, skip=no_feed)
    summary = None
    if prog is not None:
        summary = (
            f"pass complete: {prog.records_done:,} records in {prog.batches_done:,} batches"
            + (f" (PubMed counted {prog.total:,})" if prog.total is not None else "")
            + f"; {links:,} links to registry trials"
        )
    run.finish(prog.notes if prog is not None else (), summary)
