"""PubMed: the XML file reader and the NCBI E-utilities client (issue 6).

Importing this package registers the reader with ``cartatlas.sources.files``;
the ``pubmed_xml`` record format is registered by ``cartatlas.normalise.pubmed``.
"""

from cartatlas.sources.pubmed import xml_files  # noqa: F401  (registers the PubMed XML reader)
