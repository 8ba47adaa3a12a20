"""What a schema migration leaves for the pipeline: the store migrates tables, the pipeline refills them.

``Store.open`` applies the migrations a database lacks and lists in ``Store.upgrades`` the steps
that need more than the store (``Migration.then``, and ``rebuild`` when a migration recreated
derived tables of a database that had records).  ``open_store`` opens a database and runs them, in
order; ``cartatlas.open`` goes through it, so a database written by an older cartatlas is upgraded
and re-normalised when it is opened for writing, exactly as before the store stopped importing the
normalisers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cartatlas.store.db import Store


def record_publication_labels_state(store: Store) -> None:
    """No article labelled yet (the ``derived_state`` table is new): later labels use the installed knowledge."""
    from cartatlas.pipeline.derived import publication_labels_inputs, versions

    row = store.con.execute("SELECT count(*) FROM publications").fetchone()
    if row is not None and row[0] == 0:
        clf, kb = versions()
        store.con.execute(
            "INSERT INTO derived_state (product, made_at, inputs, knowledge_version, classifier_version, detail) "
            "VALUES ('publication_labels', now(), ?, ?, ?, '{}')",
            [publication_labels_inputs(), kb, clf],
        )


def _rebuild(store: Store) -> None:
    from cartatlas.pipeline.ingest import rebuild

    rebuild(store)


#: The steps a migration may ask for, by the name it gives in ``Migration.then``.
STEPS: dict[str, Callable[[Store], None]] = {
    "publication_labels_state": record_publication_labels_state,
    "rebuild": _rebuild,
}


def finish_upgrade(store: Store) -> None:
    """Run what the migrations just applied left to do (nothing when the schema was current)."""
    while store.upgrades:
        STEPS[store.upgrades.pop(0)](store)


def open_store(path: str | Path | None = None, *, read_only: bool = False) -> Store:
    """``Store.open``, then what its migrations left to do; the store is closed if that fails."""
    store = Store.open(path, read_only=read_only)
    try:
        finish_upgrade(store)
    except BaseException:
        store.close()
        raise
    return store
