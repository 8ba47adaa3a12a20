"""The landscape's counting must stay linear in the number of trials (the explorer counts 100,000 of them)."""

from __future__ import annotations

import time

from cartatlas.analysis.landscape import _count_rows


def test_count_rows_is_linear_in_the_trials_of_one_bucket() -> None:
    # One key shared by 60,000 units (every trial of one country group): a list-membership test per
    # pair made this quadratic (about 20 s on this machine); a set makes it a few tens of milliseconds.
    pairs = [(("China",), f"NCT{i:08d}") for i in range(60_000)]
    pairs += [(("China",), "NCT00000007"), (("United States",), "NCT00000007")]
    started = time.perf_counter()
    table = _count_rows(pairs, ["group"])
    elapsed = time.perf_counter() - started
    assert table["n"].tolist() == [60_000, 1]
    assert table["trial_ids"][1] == ["NCT00000007"]
    assert table["trial_ids"][0][:2] == ["NCT00000000", "NCT00000001"]
    assert elapsed < 2.0, f"{elapsed:.1f} s for 60,000 pairs"
