"""ClinicalTrials.gov: file readers for every published format, and the API v2 client.

Importing this package registers its readers with ``cartatlas.sources.files``.
"""

from cartatlas.sources.ctgov import (
    classic,  # noqa: F401  (registers the classic API JSON layouts)
    csv_files,  # noqa: F401  (registers the website CSV reader)
    json_files,  # noqa: F401  (registers readers)
    xml_files,  # noqa: F401  (registers the legacy XML and RSS reader)
)
