"""The harvest passes over the live sources, one module per source (``ctgov``, ``chictr``, ``pubmed``).

Each pass reads the checkpoint of its query (``cartatlas.store.sync_state``), asks its client
(``cartatlas.sources``) for the next page or batch, stores its records (``cartatlas.pipeline.ingest``)
and checkpoints, so an interrupted pass continues where it stopped.
"""
