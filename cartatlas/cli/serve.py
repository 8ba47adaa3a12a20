"""``cartatlas serve``: the explorer, a web app over the database (docs/explorer.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cartatlas.cli.common import CliError, DbOption, err_console, out_console
from cartatlas.store.db import default_db_path


def serve_cmd(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Open the database read-only and switch curation off.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Token every write must carry (required to serve writes on a non-loopback address).",
            envvar="CARTATLAS_TOKEN",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Serve the explorer: search, filter, read, curate and watch the landscape in a browser.

    Listens on 127.0.0.1 unless --host says otherwise; on any other address it
    starts only with --token (or $CARTATLAS_TOKEN) or --read-only.  While it
    runs it holds the database (DuckDB lets one process write a file):
    stop it before running other cartatlas commands that write.
    """
    import uvicorn

    from cartatlas.explorer import Settings, create_app
    from cartatlas.explorer.security import LOOPBACK_HOSTS
    from cartatlas.store.db import SchemaError

    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        raise CliError(f"no database at {path}: build one first (cartatlas build ...) or pass --db")
    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    if not loopback and not token and not read_only:
        raise CliError(
            f"serving on {host} lets others reach the explorer: give --token (or $CARTATLAS_TOKEN) for writes, "
            "or --read-only"
        )
    settings = Settings(db=path, host=host, port=port, read_only=read_only, token=token or None)
    try:
        app = create_app(settings)
    except SchemaError as exc:
        raise CliError(str(exc)) from exc
    shown = f"[{host}]" if ":" in host else host
    out_console.print(
        f"cartatlas explorer on http://{shown}:{port}/  (database {path}; Ctrl-C stops it)", highlight=False
    )
    if token and not os.environ.get("CARTATLAS_TOKEN"):
        err_console.print(f"to curate, open http://{shown}:{port}/login and enter the token", highlight=False)
    if read_only:
        err_console.print("read-only: curation is switched off", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
