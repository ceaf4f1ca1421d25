"""The source-gap derivation of benchmarks/source_gap.py on hand-made search outcomes."""

from benchmarks.source_gap import GAPS, derived_gap


def _outcome(kind: str, regret_by_gap: dict, task: str = "t") -> dict:
    accuracy = {gap: 90.0 - regret_by_gap.get(gap, 10.0) for gap in GAPS}
    return {"task": task, "kind": kind, "best_trial": 90.0, "ensemble": accuracy, "single": accuracy}


def test_a_gap_is_adopted_only_where_it_gains_on_runs_of_the_same_kind():
    helped = [_outcome("features", {None: 10.0, 0.02: 1.0}, "a"), _outcome("features", {None: 2.0, 0.02: 2.0}, "b")]
    assert derived_gap(helped, "features", "ensemble") == 0.02
    assert derived_gap(helped, "images", "ensemble") is None  # no run of that kind: no evidence, no gap
    assert derived_gap(helped[:1] * 2, "features", "ensemble") is None  # two runs of one task are not enough
    noise = [_outcome("features", {None: 2.0, 0.02: 1.95}, "a"), _outcome("features", {None: 2.0, 0.02: 2.0}, "b")]
    assert derived_gap(noise, "features", "ensemble") is None  # 0.025 points: less than the margin
