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


def test_the_ensemble_rule_is_scored_on_each_group_with_the_rule_the_other_groups_chose():
    from benchmarks.search_efficiency import ENSEMBLE, RULES
    from benchmarks.source_gap import rule_section

    def run(task: str, capped_regret: float) -> dict:
        rules = {rule: 80.0 for rule in RULES}  # 10 points below the best trial
        rules[ENSEMBLE] = 87.0
        rules["top5-max1"] = 90.0 - capped_regret
        return {"task": task, "best_trial": 90.0, "rules": rules}

    # One cap per method wins on surf and amazon and loses on the JDA digits: held out there, it costs 9 points.
    text = rule_section([run("office-surf:D->W", 0.0), run("amazon:B->D", 0.0), run("mnist-usps-jda:U->M", 12.0)])
    assert f"jda-digits: `top5-max1` 12.0 (`{ENSEMBLE}` 3.0)" in text
    assert f"surf: `{ENSEMBLE}` 3.0 (`{ENSEMBLE}` 3.0)" in text
    assert f"Mean 6.0 points held out, against 3.0 for `{ENSEMBLE}`: no derived rule does better" in text


def test_a_cap_per_method_is_chosen_over_the_groups_and_adopted_only_where_it_gains():
    from benchmarks.search_efficiency import RULES
    from benchmarks.source_gap import cap_section

    def run(task: str, regret: dict) -> dict:  # regret per cap, in points below the best trial
        rules = {rule: 80.0 for rule in RULES}
        rules.update({"top5": 90.0 - regret[None], "top5-max2": 90.0 - regret[2], "top5-max1": 90.0 - regret[1]})
        return {"task": task, "best_trial": 90.0, "rules": rules}

    # One family over-rated on the JDA digits fills the uncapped top 5; elsewhere the caps tie.
    runs = [run("mnist-usps-jda:U->M", {None: 8.0, 2: 1.0, 1: 3.0}), run("amazon:B->D", {None: 1.0, 2: 1.0, 1: 1.5}),
            run("office-surf:D->W", {None: 2.0, 2: 2.0, 1: 2.0})]
    text, cap = cap_section(runs)
    assert cap == 2
    # Held out, the JDA digits keep no cap (the others gain nothing from one); the others get 2 from the JDA digits.
    assert "jda-digits: N = none, 8.0; surf: N = 2, 2.0" in text and "Mean 3.7 points held out, against 3.7" in text
    ties = [run("amazon:B->D", {None: 1.0, 2: 1.05, 1: 1.0}), run("office-surf:D->W", {None: 2.0, 2: 1.9, 1: 2.0})]
    assert cap_section(ties)[1] is None  # 0.025 points on average: less than the margin


def test_the_shipped_selection_is_read_on_the_runs_of_the_shipped_proxy_at_the_default_gap():
    from adaptune.algorithms.proxies import AUTO_SOURCE_GAP, auto_proxies
    from benchmarks.source_gap import shipped_section

    gap = AUTO_SOURCE_GAP["features"]
    ranking, kept = auto_proxies("features")

    def run(label: str, proxies: tuple[str, str], at_gap: float, best: float, baseline: float) -> dict:
        return {"label": label, "kind": "features", "proxy": proxies[0], "checkpoint_proxy": proxies[1],
                "best_trial": best, "baseline": baseline, "ensemble": {None: 0.0, gap: at_gap}}

    text = shipped_section([run("a", (ranking, kept), 78.0, 80.0, 76.0),
                            run("b", (ranking, kept), 60.0, 66.0, 62.0),
                            run("c", ("some_other_proxy", kept), 10.0, 90.0, 50.0),  # another rule's search: not read
                            run("d", (ranking, "some_other_proxy"), 10.0, 90.0, 50.0)])
    assert "The 2 runs" in text and "recommended 69.0% on average, 4.0 points below" in text
    assert "(at most 6.0, b), 1 of 2 above" in text


def test_a_run_is_read_at_the_checkpoints_its_checkpoint_proxy_kept():
    from benchmarks._common import kept_metric, selection_label

    split = {"proxy": "neighbour_agreement", "checkpoint_proxy": "im"}
    assert kept_metric(split) == "proxy_im" and selection_label(split) == "neighbour_agreement at im"
    for one in ({"proxy": "im", "checkpoint_proxy": "im"}, {"proxy": "im"}):  # the second: a summary from before
        assert kept_metric(one) == "proxy_im" and selection_label(one) == "im"
