"""Commands over the classified atlas: report, curate, review."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, literal, open_atlas, out_console, styled
from cartatlas.cli.data import print_derived_health
from cartatlas.spreadsheet import write_csv

AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Count trials registered up to this date (YYYY-MM-DD; default today).")
]
Focus = Annotated[str, typer.Option("--focus", help="Focus country (ISO code or name).")]


def report_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory (replaced atomically).")],
    as_of: AsOf = None,
    focus: Focus = "CN",
    registry: Annotated[
        list[str] | None, typer.Option("--registry", help="Count only these registries (repeatable).")
    ] = None,
    groups: Annotated[
        str,
        typer.Option(help="Country-group scheme (wei2021, mainland, greater-china) or NAME=CODES;NAME=CODES."),
    ] = "wei2021",
    platform: Annotated[
        list[str] | None, typer.Option("--platform", help="Count only these platforms, e.g. CAR-T (repeatable).")
    ] = None,
    per: Annotated[str, typer.Option(help="Count per 'trial' (registrations merged) or per 'registration'.")] = "trial",
    compare: Annotated[
        Path | None, typer.Option("--compare", help="A previous report's summary.json: show what changed.")
    ] = None,
    no_figures: Annotated[bool, typer.Option("--no-figures", help="Skip rendering figures (faster).")] = False,
    latest_status: Annotated[
        bool,
        typer.Option(
            "--latest-status",
            help="Count trials whose stored versions all postdate --as-of under their latest known status "
            "(the report says how many) instead of as 'not known' on that date.",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Write the landscape report: index.html, figures (PNG+SVG), tables (CSV+Excel), summary.json."""
    group_spec: str | list[str] = groups if "=" not in groups else groups.split(";")
    with open_atlas(db, read_only=True) as atlas:
        try:
            result = atlas.report(
                out,
                compare=compare,
                figures=not no_figures,
                as_of=as_of,
                focus=focus,
                registries=registry,
                groups=group_spec,
                platforms=platform,
                per=per,
                latest_status=latest_status,
                on_step=lambda step: err_console.print(styled("[dim]report: {}[/]", step)),
                on_note=lambda note: err_console.print(styled("[yellow]note:[/] {}", note)),
            )
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    totals = result.summary["facts"]["totals"]
    groups_text = ", ".join(f"{k} {v}" for k, v in totals["by_group"].items() if v)
    err_console.print(
        literal(
            f"wrote {result.out}/index.html: {totals['units']} trials ({groups_text}); "
            f"{len(result.figures)} figure files, {len(result.tables)} table files"
        )
    )
    print_derived_health(result.summary["provenance"])


def curate_cmd(
    file: Annotated[Path | None, typer.Argument(help="Curation CSV: trial_id,field,value,reason,curator,date.")] = None,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Write the curation in force (including the explorer's) as a curation CSV."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Apply a curator's overrides after the rules; they are re-applied after every re-classification.

    List fields take values separated by ";". Write (none) to empty one: an empty value is refused.

    Two lines for the same trial and field are both refused, each naming the other.

    A target or product that the knowledge tables do not list is applied and flagged new_name.

    Exit status 1 when a line is invalid or names an unknown trial; stale overrides (the registry
    changed the record after the curator's date) and new names are applied and listed.
    The file's columns and rules: docs/curation.md.  With --export, write the lines the database
    last applied (from its own log) to a file that this command re-applies.
    """
    if export is not None:
        from cartatlas.curation_actions import write_in_force

        with open_atlas(db, read_only=True) as atlas:
            n = write_in_force(atlas.store, export)
        err_console.print(literal(f"wrote {n} curation lines to {export}"))
        if file is None:
            return
    if file is None:
        raise CliError("give a curation file to apply, or --export FILE")
    with open_atlas(db) as atlas:
        try:
            outcomes = atlas.curate(file)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    err_console.print(literal("curate: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()))))
    for o in outcomes:
        if o.status in ("stale", "new_name", "invalid", "unknown_trial"):
            colour = "yellow" if o.status in ("stale", "new_name") else "red"
            err_console.print(styled(f"  [{colour}]{{}}[/] line {{}}: {{}}", o.status, o.line, o.message))
    if counts.get("invalid") or counts.get("unknown_trial"):
        raise typer.Exit(1)


def review_cmd(
    limit: Annotated[int, typer.Option(help="How many labels to list.")] = 30,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the whole queue as a curation file: fill 'value', then run curate."),
    ] = None,
    curator: Annotated[
        str | None, typer.Option("--curator", help="Name written in the file's curator column (default: your login).")
    ] = None,
    db: DbOption = None,
) -> None:
    """List the labels a curator should check: stale overrides, registrations that disagree, conflicts, doubts."""
    with open_atlas(db, read_only=True) as atlas:
        frame = atlas.review(limit=None, curator=curator if curator is not None else _login())
    if out is not None:
        write_csv(frame, out)
        err_console.print(
            literal(
                f"wrote {len(frame)} labels of {frame['trial_id'].nunique()} trials to review to {out}: "
                "write the new value in the 'value' column of the rows you decide, then run `cartatlas curate` on it"
            )
        )
    if frame.empty:
        out_console.print("nothing to review")
        return
    for r in frame.head(limit).to_dict("records"):
        out_console.print(
            styled(
                "[bold]{}[/]  [bold]{}[/]  {} = {}", f"{r['need']:>3}", r["trial_id"], r["field"], r["current"] or "-"
            )
        )
        out_console.print(literal(f"      {r['why']}"))
        out_console.print(literal(f"      {r['brief_title'] or ''}"), overflow="ellipsis", no_wrap=True, crop=True)


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return ""


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("curate")(curate_cmd)
    app.command("review")(review_cmd)


__all__ = ["register"]
