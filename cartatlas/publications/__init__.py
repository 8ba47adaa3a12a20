"""Published clinical reports: PubMed articles, what kind they are, and the trials they report (issue 6).

The pieces: ``schema`` (the ``publications`` and ``publication_links`` tables),
``classify`` (kind, targets, platform, disease branch, patients treated),
``places`` (country and Chinese province of the reporting institution) and
``links`` (which registry trials an article reports).  The PubMed readers and
the E-utilities client live in ``cartatlas.sources.pubmed``; the XML
normaliser in ``cartatlas.normalise.pubmed``.
"""
