"""The version of cartatlas, in a module of its own.

Every layer stamps it on what it writes (database runs, HTTP user agent, report provenance);
reading it from ``cartatlas`` itself would make those layers import the package's top, which
loads the Python API, the highest layer of all (docs/architecture.md).
"""

from __future__ import annotations

__version__ = "0.1.0"
