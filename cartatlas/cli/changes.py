"""Commands about change and freshness: ``refresh``, ``diff``, ``feed`` (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.common import DbOption, err_console, open_atlas


def refresh_cmd(
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Redo every step, even those already up to date.")] = False,
) -> None:
    """Bring everything derived up to date: labels, curation, links, publication labels and links.

    Import, sync, curate and rebuild do this at their end; run it after an
    upgrade of cartatlas (a new knowledge base) or when report or summary
    says something is stale.
    """
    with open_atlas(db) as atlas:
        result = atlas.refresh(force=force, on_step=lambda step: err_console.print(f"[dim]refresh: {step}[/]"))
        stale = atlas.staleness()
    lines = result.describe()
    err_console.print("refresh: " + ("; ".join(lines) if lines else "everything was up to date"), highlight=False)
    for s in stale:  # pragma: no cover - derive leaves nothing stale; kept so a regression is visible
        err_console.print(f"[yellow]still stale[/] {s}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh_cmd)


__all__ = ["Path", "register"]
