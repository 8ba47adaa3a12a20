"""cartatlas: a reproducible atlas of CAR cell-therapy clinical development.

The Python API mirrors the CLI: ``import_files`` and ``Store`` here, more as
the pipeline grows (classification, analysis, report).
"""

from __future__ import annotations

__version__ = "0.1.0"

from cartatlas.api import Atlas, import_files, open

__all__ = ["Atlas", "__version__", "import_files", "open"]
