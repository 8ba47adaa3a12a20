"""Screening and link features in worker processes, for runs over many trials.

Screening a trial (``classify_trial``) and computing its link features
(``cartatlas.link.features.feature_table``) depend on that trial's row alone,
cost a fraction of a millisecond each, and at registry scale (560,000 trials)
took minutes on one core while the other idled.  Above ``PARALLEL_FROM`` trials
the batches go to ``import_workers()`` worker processes (``ordered_map``) as
Arrow IPC, and their results come back in order; this process only reads and
writes the database.  Below it the start of the workers (importing cartatlas
and building the classifier's automata, about a second each) would cost more
than it saves, and the work runs here.  A worker checks that its classifier,
knowledge base and features code are those this process stamps the results
with, so a result can never carry a version that did not make it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from cartatlas.pipeline.workers import _from_ipc, _to_ipc, import_workers, ordered_map

#: Trials from which screening and link features use worker processes.
PARALLEL_FROM = 20_000


def screen_task(classifier_version: str, kb_version: str) -> Callable[[bytes], bytes]:
    """In a worker: classify a batch of trials (Arrow IPC) into ``classifications`` rows (Arrow IPC)."""
    from cartatlas import knowledge
    from cartatlas.classify import CLASSIFIER_VERSION, classify_trial
    from cartatlas.store.classifications import classify_table

    stamp = (classifier_version, kb_version)
    mine = (CLASSIFIER_VERSION, knowledge.knowledge_version())  # what ``derived.versions`` stamps
    if mine != stamp:
        raise RuntimeError(f"worker classifier {mine} is not the caller's {stamp}")
    return lambda data: _to_ipc(classify_table(_from_ipc(data), classify_trial, stamp))  # type: ignore[arg-type]


def features_task(version: str) -> Callable[[bytes], bytes]:
    """In a worker: the link features of a batch of trials rows (Arrow IPC in and out)."""
    from cartatlas.link.features import feature_table, features_version

    if features_version() != version:
        raise RuntimeError(f"worker link features {features_version()} are not the caller's {version}")
    return lambda data: _to_ipc(feature_table(_from_ipc(data), version))


def _mapper(
    setup: str, args: tuple[str, ...], local: Callable[[pa.Table], pa.Table]
) -> Callable[[Iterator[pa.Table], int], Iterator[pa.Table]]:
    def run(tables: Iterator[pa.Table], n: int) -> Iterator[pa.Table]:
        workers = import_workers()
        if n < PARALLEL_FROM or workers < 1:
            yield from (local(t) for t in tables)
            return
        for data in ordered_map(setup, args, (_to_ipc(t) for t in tables), workers):
            yield _from_ipc(data)

    return run


def screen_in_workers(versions: tuple[str, str]) -> Callable[[Iterator[pa.Table], int], Iterator[pa.Table]]:
    """A ``TableMap`` for ``save_classifications``: worker processes for a large run, this process for a small."""
    from cartatlas.classify import classify_trial
    from cartatlas.store.classifications import classify_table

    return _mapper(
        "cartatlas.pipeline.parallel:screen_task",
        versions,
        lambda t: classify_table(t, classify_trial, versions),  # type: ignore[arg-type]
    )


def features_in_workers() -> Callable[[Iterator[pa.Table], int], Iterator[pa.Table]]:
    """A ``FeatureMap`` for ``link_trials``: worker processes for a large run, this process for a small."""
    from cartatlas.link.features import feature_table, features_version

    version = features_version()
    return _mapper("cartatlas.pipeline.parallel:features_task", (version,), lambda t: feature_table(t, version))
