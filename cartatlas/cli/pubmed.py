"""``cartatlas sync pubmed``: harvest PubMed through the NCBI E-utilities (registered in ``cli.sync``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, open_atlas, progress
from cartatlas.cli.data import _report_stats
from cartatlas.model import ImportStats
from cartatlas.sources.pubmed.eutils import (
    DEFAULT_BASE_URL,
    DEFAULT_BATCH,
    DEFAULT_MAX_RETRIES,
    MAX_BATCH,
    SINCE_OVERLAP_DAYS,
    EutilsError,
    Plan,
    Progress,
)

#: The status a shell gives a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


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
    db: DbOption = None,
) -> None:
    """Harvest PubMed articles into the database and link them to registry trials.

    An API key in NCBI_API_KEY raises the request rate from 3 to 10 per second.
    Each batch is committed and checkpointed: an interrupted sync continues where
    it stopped when the same command is run again.  Exit status 1 when a record
    was rejected, 2 when the E-utilities could not be used, 130 on Ctrl-C.
    """
    if full and since is not None:
        raise CliError("--full and --since exclude each other")
    since_date = None
    if since is not None:
        try:
            since_date = dt.date.fromisoformat(since)
        except ValueError:
            raise CliError(f"--since {since!r}: expected a date as YYYY-MM-DD") from None
    stats = ImportStats()
    last: list[Progress] = []
    with open_atlas(db) as atlas, progress() as bar:
        task = bar.add_task("sync pubmed", total=None)

        def on_plan(plan: Plan) -> None:
            err_console.print(f"sync pubmed: {plan.reason}", highlight=False)

        def on_batch(prog: Progress, batch_stats: ImportStats) -> None:
            stats.add(batch_stats)
            if not last:
                last.append(prog)
            bar.update(task, completed=prog.records_done, total=prog.total, description=f"batch {prog.batches_done}")

        try:
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
        except KeyboardInterrupt:
            bar.stop()
            _report_stats(stats, label="sync pubmed (interrupted)")
            err_console.print("interrupted: every batch saved so far is kept; run the same command again to resume")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (EutilsError, ValueError) as exc:
            bar.stop()
            _report_stats(stats, label="sync pubmed (stopped)")
            raise CliError(f"{exc}\nBatches saved so far are kept; run the same command again to resume.") from exc
        links = atlas.sql("SELECT count(*) AS n FROM publication_links")["n"][0]
    _report_stats(stats, label="sync pubmed")
    if prog is not None:
        for note in prog.notes:
            err_console.print(f"  note: {note}", highlight=False)
        err_console.print(
            f"  pass complete: {prog.records_done:,} records in {prog.batches_done:,} batches"
            + (f" (PubMed counted {prog.total:,})" if prog.total is not None else "")
            + f"; {links:,} links to registry trials",
            highlight=False,
        )
    if stats.rejected:
        raise typer.Exit(1)
