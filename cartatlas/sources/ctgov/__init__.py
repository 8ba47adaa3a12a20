"""ClinicalTrials.gov: file readers for every published format, and the API v2 client.

Importing this package registers its readers with ``cartatlas.sources.files``.
"""

from cartatlas.sources.ctgov import json_files  # noqa: F401  (registers readers)
