"""cartatlas: a reproducible atlas of CAR cell-therapy clinical development.

The Python API mirrors the CLI: ``import_files`` and ``Store`` here, more as
the pipeline grows (classification, analysis, report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cartatlas.version import __version__

if TYPE_CHECKING:
    from cartatlas.api import Atlas, import_files, open

__all__ = ["Atlas", "__version__", "import_files", "open"]


def __getattr__(name: str) -> Any:
    """``cartatlas.open`` and friends load the API (and pandas) on first use, not on ``import cartatlas.x``.

    Import worker processes and the classifier need only their own modules; pulling in
    pandas for them took seconds per process.
    """
    if name in ("Atlas", "import_files", "open"):
        from cartatlas import api

        return getattr(api, name)
    raise AttributeError(f"module 'cartatlas' has no attribute {name!r}")
