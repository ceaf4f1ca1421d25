"""benchmarks.proxies_report's comparison with no adaptation: which selection it reads, and what it says below."""

from __future__ import annotations

import pandas as pd

from benchmarks import proxies_report


def _recommended(task: str, accuracies: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"task": task, "group": "surf", "proxy": name, "ensemble_target_acc": acc}
                         for name, acc in accuracies.items()])


def test_the_default_gap_is_read_where_recorded_and_families_reaching_the_baseline_are_named():
    task = "office-surf:W->D"  # baseline: 1-NN, 87.3% (benchmarks/results/baselines.json)
    points = pd.DataFrame({"task": task, "method": ["jda", "mcc", "dann"], "target_acc": [0.898, 0.80, 0.70]})
    gated = proxies_report.against_baselines(_recommended(task, {"im_ts": 0.819, "im_ts@gap2": 0.874}),
                                             {"features": "im_ts"}, ["surf"], points)
    assert "| surf | `im_ts@gap2` | 1 | 87.4 |" in gated and "Below the baseline" not in gated
    ungated = proxies_report.against_baselines(_recommended(task, {"im_ts": 0.819}), {"features": "im_ts"},
                                               ["surf"], points)
    assert "| surf | `im_ts` | 1 | 81.9 |" in ungated
    assert "- office-surf:W->D: 81.9 < 87.3; jda 89.8 (1 of 3 families; the rest at most 80.0)" in ungated
