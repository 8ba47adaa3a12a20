"""``cartatlas link``: join registrations of the same trial across registries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, open_atlas, out_console, styled
from cartatlas.cli.output import write_json


def link_cmd(
    curation: Annotated[
        Path | None,
        typer.Option(
            "--curation",
            help="Curation file whose 'link' rows (value same:<registry>:<id> or different:<registry>:<id>) "
            "confirm or split links. Default: the curation file last applied to this database.",
        ),
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Link records of the same trial registered in several registries (ChiCTR, ClinicalTrials.gov, EU CTR...).

    First by ids one record gives for another (secondary ids, partner-registry
    numbers, ids in titles or descriptions), then by a scored match of titles,
    sponsor, dates, target size and interventions; curators' decisions last.
    Writes trial_links (with score and evidence) and the trial_clusters view:
    count DISTINCT cluster_id for trials, rows for registrations.
    """
    if curation is not None and not curation.exists():
        raise CliError(f"no such curation file: {curation}")
    with open_atlas(db) as atlas:
        try:
            stats = atlas.link(curation)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    used = stats.by_method("auto")
    used["curated"] = stats.by_method("confirmed").get("curated", 0)
    candidates = stats.by_method("candidate")
    summary = {
        "registrations": stats.trials,
        "trials": stats.distinct_trials,
        "linked_groups": stats.clusters,
        "registrations_in_groups": stats.clustered_trials,
        "links_used": used,
        "candidates_for_review": candidates,
        "split_by_curators": stats.by_method("rejected").get("curated", 0),
        "curation_problems": stats.problems,
    }
    if as_json:
        write_json(summary)
        return
    out_console.print(
        f"{stats.trials:,} registrations are {stats.distinct_trials:,} trials; "
        f"{stats.clusters:,} trials are registered more than once ({stats.clustered_trials:,} registrations)"
    )
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(used.items()) if v) or "none"
    out_console.print(f"links used: {shown}")
    if sum(candidates.values()):
        out_console.print(
            f"candidates left for a curator: {sum(candidates.values()):,} "
            "(SELECT * FROM trial_links WHERE status = 'candidate' ORDER BY score DESC)"
        )
    for problem in stats.problems:
        err_console.print(styled("  [yellow]curation[/] {}", problem))


def register(app: typer.Typer) -> None:
    app.command("link")(link_cmd)
