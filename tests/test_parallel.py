"""Screening and link features in worker processes store exactly what this process computes."""

from __future__ import annotations

from pathlib import Path

import pytest

import cartatlas
from cartatlas.link import link_trials
from cartatlas.pipeline import parallel, workers
from cartatlas.pipeline.derived import classify_trials
from tests.conftest import CTGOV, DATA

CORPUS = CTGOV / "reconstructed" / "cart_monitor_2026-08-22.jsonl.gz"


def _tables(atlas: cartatlas.Atlas) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "classifications": "SELECT * EXCLUDE (classified_at) FROM classifications ORDER BY registry, trial_id",
        "features": "SELECT * FROM link_features ORDER BY registry, trial_id",
        "links": "SELECT * EXCLUDE (linked_at) FROM trial_links ORDER BY ALL",
    }
    return {name: [tuple(r) for r in atlas.store.con.execute(q).fetchall()] for name, q in queries.items()}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The monitor corpus and the ICTRP samples (links across registries), imported, nothing derived yet."""
    path = tmp_path_factory.mktemp("parallel") / "base.duckdb"
    with cartatlas.open(path) as atlas:
        atlas.import_files([CORPUS, DATA / "ictrp"], classify=False)
    return path


def _derive(base: Path, path: Path) -> dict[str, list[tuple[object, ...]]]:
    path.write_bytes(base.read_bytes())
    with cartatlas.open(path) as atlas:
        n, _ = classify_trials(atlas.store)
        stats = link_trials(atlas.store, map_features=parallel.features_in_workers())
        assert n == stats.trials > 2587
        return _tables(atlas)


def test_workers_screen_and_link_as_this_process_does(
    imported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    here = _derive(imported, tmp_path / "here.duckdb")  # below PARALLEL_FROM: this process
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 0)
    spawned: list[str] = []
    real = workers._Workers.__init__

    def spy(self: workers._Workers, n: int, setup: str, args: tuple[object, ...] = ()) -> None:
        spawned.append(setup)
        real(self, n, setup, args)

    monkeypatch.setattr(workers._Workers, "__init__", spy)
    there = _derive(imported, tmp_path / "there.duckdb")
    assert spawned == ["cartatlas.pipeline.parallel:screen_task", "cartatlas.pipeline.parallel:features_task"]
    assert there == here
    assert len(here["classifications"]) == len(here["features"]) and len(here["links"]) > 100


def test_a_worker_with_another_classifier_refuses(imported: Path) -> None:
    """A result is never stamped with a version that did not make it: the worker's error reaches the caller."""
    with cartatlas.open(imported, read_only=True) as atlas:
        from cartatlas.store.classifications import iter_trials

        ids = [r[0] for r in atlas.store.con.execute("SELECT trial_id FROM trials LIMIT 10").fetchall()]
        batches = iter_trials(atlas.store, ids)
        data = (parallel._to_ipc(t) for t in batches)
        with pytest.raises(RuntimeError, match=r"worker classifier .* is not the caller's"):
            list(workers.ordered_map("cartatlas.pipeline.parallel:screen_task", ("0.0", "kb.other"), data, 1))


def test_ordered_map_keeps_the_input_order() -> None:
    """More items than workers, results of unequal cost: still in input order."""
    import pyarrow as pa

    from cartatlas.link.features import features_version

    version = features_version()
    tables = [
        pa.table(
            {
                "content_hash": [f"h{i}"],
                "registry": ["ctgov"],
                "trial_id": [f"NCT{90000000 + i}"],
                "brief_title": [" ".join(["CD19 CAR T cells"] * (1 + 40 * (i % 3)))],
            }
        )
        for i in range(9)
    ]
    out = list(
        workers.ordered_map(
            "cartatlas.pipeline.parallel:features_task", (version,), (parallel._to_ipc(t) for t in tables), 2
        )
    )
    ids = [parallel._from_ipc(d).column("trial_id").to_pylist()[0] for d in out]
    assert ids == [f"NCT{90000000 + i}" for i in range(9)]
