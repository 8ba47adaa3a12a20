"""The explorer: ``cartatlas serve``, a web app over the Python API to search, filter, read, curate and watch.

``create_app(Settings(db=path))`` builds the ASGI app; ``cartatlas serve``
runs it with uvicorn.  Pages are server-rendered from the same API the CLI
and notebooks use (``cartatlas.api.Atlas``), so a number on a page is the
number ``cartatlas report`` gives for the same options.  See docs/explorer.md.
"""

from __future__ import annotations

from cartatlas.explorer.app import create_app
from cartatlas.explorer.state import Settings

__all__ = ["Settings", "create_app"]
