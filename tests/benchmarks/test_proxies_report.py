"""benchmarks.proxies_report's comparison with no adaptation: which selection it reads, and what it says below."""

from __future__ import annotations

import pandas as pd

from adaptune.algorithms.ensemble import AUTO_SMOOTHING
from adaptune.algorithms.proxies import AUTO_SOURCE_GAP
from benchmarks import proxies_report


def _recommended(task: str, accuracies: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"task": task, "group": "surf", "proxy": name, "ensemble_target_acc": acc}
                         for name, acc in accuracies.items()])


def test_the_shipped_selection_is_compared_and_the_families_reaching_the_baseline_are_named():
    task = "office-surf:W->D"  # baseline: 1-NN, 87.3% (benchmarks/results/baselines.json)
    points = pd.DataFrame({"task": task, "method": ["jda", "mcc", "dann"], "target_acc": [0.898, 0.80, 0.70]})
    above = proxies_report.against_baselines(_recommended(task, {"im_ts": 0.874, "im": 0.5}), {"features": "im_ts"},
                                             ["surf"], points)
    assert "| surf | `im_ts` | 1 | 87.4 |" in above and "Below the baseline" not in above
    below = proxies_report.against_baselines(_recommended(task, {"im_ts": 0.819, "im": 0.95}), {"features": "im_ts"},
                                             ["surf"], points)
    assert "| surf | `im_ts` | 1 | 81.9 |" in below
    assert "- office-surf:W->D: 81.9 < 87.3; jda 89.8 (1 of 3 families; the rest at most 80.0)" in below


def test_the_shipped_rows_are_the_kinds_source_gap_and_smoothing_named_by_their_proxy():
    rows = [{"task": task, "group": group, "proxy": proxies_report.candidate("im", gap), "smoothed": smoothed,
             "top1_regret": 0.0}
            for task, group in (("amazon:B->D", "amazon"), ("usps->mnist", "digits"))
            for gap in (None, 0.05, 0.10) for smoothed in (False, True)]
    shipped = proxies_report.as_shipped(pd.DataFrame(rows))
    expected = {group: (proxies_report.candidate("im", AUTO_SOURCE_GAP[kind]), AUTO_SMOOTHING[kind] is not None)
                for group, kind in (("amazon", "features"), ("digits", "images"))}
    assert len(shipped) == 2 and set(shipped["proxy"]) == {"im"}
    for group, (name, smoothed) in expected.items():
        kept = pd.DataFrame(rows).loc[shipped[shipped.group == group].index[0]]
        assert (kept["proxy"], kept["smoothed"]) == (name, smoothed)
    # A single pick has no smoothing: only the gap decides.
    singles = proxies_report.as_shipped(pd.DataFrame(rows).drop(columns="smoothed").drop_duplicates())
    assert len(singles) == 2


def _regrets(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"task": task, "group": group, "proxy": proxy, "top1_regret": regret}
                         for task, group, proxy, regret in rows])


def test_a_proxy_whose_single_pick_fails_somewhere_is_not_trusted_however_good_its_ensemble():
    tasks = [("amazon:B->D", "amazon"), ("office-surf:D->W", "surf")]
    recommended = _regrets([(t, g, "sharp", 0.00) for t, g in tasks] + [(t, g, "plain", 0.01) for t, g in tasks])
    safe_singles = _regrets([(t, g, p, 0.02) for t, g in tasks for p in ("sharp", "plain")])
    assert proxies_report.auto_rule(recommended, safe_singles) == {"features": "sharp"}
    # One family over-rated on Amazon: the pool's ensemble hides it, the single pick shows it.
    over_rated = safe_singles.assign(top1_regret=[0.18, 0.02, 0.02, 0.02])
    assert proxies_report.auto_rule(recommended, over_rated) == {"features": "plain"}
    held_out = proxies_report.leave_one_group_out(recommended, over_rated)
    # Amazon held out: its over-rating is unseen, so the sharper proxy is trusted there; surf is scored with plain.
    assert held_out == {"amazon": 0.0, "surf": 1.0}


def test_a_proxy_that_one_kind_cannot_have_is_a_candidate_for_the_other_but_not_one_measured_on_some_tasks():
    features = [("amazon:B->D", "amazon"), ("office-surf:D->W", "surf")]
    images = [("usps->mnist", "digits")]
    rows = ([(t, g, "neighbours", 0.00) for t, g in features] + [(t, g, "plain", 0.01) for t, g in features + images])
    recommended = _regrets(rows)
    assert proxies_report.auto_rule(recommended, recommended) == {"features": "neighbours", "images": "plain"}
    late = recommended[~((recommended["proxy"] == "neighbours") & (recommended["group"] == "surf"))]
    assert proxies_report.auto_rule(late, late) == {"features": "plain", "images": "plain"}


def test_the_shipped_proxy_stays_unless_another_gains_enough_on_every_group_left_out():
    tasks = [("amazon:B->D", "amazon"), ("office-surf:D->W", "surf"), ("amazon-5000:B->D", "amazon-5000")]
    small_edge = _regrets([(t, g, "new", 0.010) for t, g in tasks] + [(t, g, "old", 0.011) for t, g in tasks])
    assert proxies_report.auto_rule(small_edge, small_edge) == {"features": "new"}
    assert proxies_report.auto_rule(small_edge, small_edge, {"features": "old"}) == {"features": "old"}
    # A clear edge on two groups, a loss on the third: it does not hold with every group left out.
    one_sided = _regrets([(t, g, "new", 0.0) for t, g in tasks] + [(t, g, "old", r) for (t, g), r in
                                                                   zip(tasks, (0.03, 0.03, -0.03))])
    assert proxies_report.auto_rule(one_sided, one_sided, {"features": "old"}) == {"features": "old"}
    clear = _regrets([(t, g, "new", 0.0) for t, g in tasks] + [(t, g, "old", 0.01) for t, g in tasks])
    assert proxies_report.auto_rule(clear, clear, {"features": "old"}) == {"features": "new"}
    # An incumbent that is no longer a candidate (its single pick failed somewhere) gives way.
    failed = clear.assign(top1_regret=[0.0, 0.0, 0.0, 0.2, 0.01, 0.01])
    assert proxies_report.auto_rule(clear, failed, {"features": "old"}) == {"features": "new"}
