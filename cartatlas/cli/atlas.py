"""Commands over the classified atlas: report, curate, review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, open_atlas, out_console

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
    db: DbOption = None,
) -> None:
    """Write the landscape report: index.html, figures (PNG+SVG), tables (CSV+Excel), summary.json."""
    group_spec: str | list[str] = groups if "=" not in groups else groups.split(";")
    with open_atlas(db) as atlas:
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
                on_step=lambda step: err_console.print(f"[dim]report: {step}[/]"),
            )
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    totals = result.summary["facts"]["totals"]
    groups_text = ", ".join(f"{k} {v}" for k, v in totals["by_group"].items() if v)
    err_console.print(
        f"wrote {result.out}/index.html: {totals['units']} trials ({groups_text}); "
        f"{len(result.figures)} figure files, {len(result.tables)} table files"
    )


def curate_cmd(
    file: Annotated[Path, typer.Argument(help="Curation CSV: trial_id,field,value,reason,curator,date.")],
    db: DbOption = None,
) -> None:
    """Apply a curator's overrides after the rules; they are re-applied after every re-classification.

    List fields take values separated by ";". Write (none) to empty one: an empty value is refused.

    Two lines for the same trial and field are both refused, each naming the other.

    A target or product that the knowledge tables do not list is applied and flagged new_name.

    Exit status 1 when a line is invalid or names an unknown trial; stale overrides (the registry
    changed the record after the curator's date) and new names are applied and listed.
    The file's columns and rules: docs/curation.md.
    """
    with open_atlas(db) as atlas:
        try:
            outcomes = atlas.curate(file)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    err_console.print("curate: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items())))
    for o in outcomes:
        if o.status in ("stale", "new_name", "invalid", "unknown_trial"):
            colour = "yellow" if o.status in ("stale", "new_name") else "red"
            err_console.print(f"  [{colour}]{o.status}[/] line {o.line}: {o.message}", highlight=False)
    if counts.get("invalid") or counts.get("unknown_trial"):
        raise typer.Exit(1)


def review_cmd(
    limit: Annotated[int, typer.Option(help="How many trials to list.")] = 30,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the full list as CSV.")] = None,
    db: DbOption = None,
) -> None:
    """List the trials a curator should check first: conflicts, low confidence, unknown targets, CAR words."""
    with open_atlas(db, read_only=True) as atlas:
        frame = atlas.review(limit=limit if out is None else 1_000_000)
    if out is not None:
        frame.to_csv(out, index=False)
        err_console.print(f"wrote {len(frame)} trials to review to {out}")
        frame = frame.head(limit)
    if frame.empty:
        out_console.print("nothing to review")
        return
    for r in frame.to_dict("records"):
        targets = ", ".join(map(str, r["targets"] if r["targets"] is not None else [])) or "-"
        flags = ", ".join(map(str, r["flags"] if r["flags"] is not None else [])) or "-"
        out_console.print(
            f"[bold]{r['priority']:>3}[/]  [bold]{r['trial_id']}[/]  {r['relation']}  targets {targets}  "
            f"confidence {r['confidence']}  [yellow]{flags}[/]",
            highlight=False,
        )
        title = f"      {r['brief_title'] or ''}"
        out_console.print(title, highlight=False, markup=False, overflow="ellipsis", no_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("curate")(curate_cmd)
    app.command("review")(review_cmd)


__all__ = ["register"]
