"""benchmarks.first_rung: the selection without trials stopped at the first rung, and the choice, without Ray."""

from __future__ import annotations

from benchmarks.first_rung import past_first_rung


def test_trials_stopped_at_the_first_rung_are_kept_out_unless_nothing_else_is_left():
    rows = [{"trial_id": "early", "method": "dann", "steps": 200, "score": 0.9, "source_acc": 0.8},
            {"trial_id": "closed", "method": "coral", "steps": 0, "score": 0.8, "source_acc": 0.8},
            {"trial_id": "long", "method": "mcc", "steps": 1200, "score": 0.7, "source_acc": 0.8}]
    admitted, _ = past_first_rung(200)(rows, None)
    assert [r["trial_id"] for r in admitted] == ["closed", "long"]  # a closed-form trial trains no steps
    assert [r["trial_id"] for r in past_first_rung(None)(rows, None)[0]] == ["early", "closed", "long"]
    assert [r["trial_id"] for r in past_first_rung(200)(rows[:1], None)[0]] == ["early"]


def test_each_group_is_scored_with_the_way_the_other_groups_chose():
    import pandas as pd

    from benchmarks.first_rung import RULE_NAMES, group_regrets, held_out_line

    every, trained = RULE_NAMES
    searches = pd.DataFrame({"group": ["a", "b", "c"], "best": [80.0, 80.0, 80.0],
                             every: [79.0, 79.0, 78.0], trained: [79.5, 79.5, 77.0]})
    # a and b gain by keeping early-stopped trials out, c loses more: held out, a and b get every trial, c the rule
    line = held_out_line(group_regrets(searches))
    assert f"choose {every} or {trained}" in line or f"choose {trained} or {every}" in line
    assert "scores 1.67 points per group against 1.33 from every trial" in line


def test_searches_run_with_the_rule_are_checked_against_what_they_recorded():
    import pandas as pd

    from benchmarks.first_rung import RULE_NAMES, check_section

    every, trained = RULE_NAMES
    checks = pd.DataFrame({"group": ["a", "a", "b"], "best": [80.0, 80.0, 70.0], "recorded": [79.0, 78.0, 69.0],
                           every: [78.0, 78.0, 69.5], trained: [79.0, 78.0, 69.0], "baseline": [78.5, 70.0, 69.2]})
    text = check_section(checks)
    assert "3 searches of 2 groups" in text
    assert "more than every trial would in 1 and less in 1 of 3" in text
    assert "2 of 3 give back" not in text and "3 of 3 give back the ensemble row" in text
    assert f"{every} 2 of 3, {trained} 2 of 3" in text


def test_the_verdict_pools_both_sets_of_searches_against_the_least_gain():
    import pandas as pd

    from benchmarks.first_rung import RULE_NAMES, pooled_line

    every, trained = RULE_NAMES
    first = pd.DataFrame({"group": ["a", "b"], "best": [80.0, 80.0], every: [79.0, 79.0], trained: [79.5, 79.5]})
    later = pd.DataFrame({"group": ["a", "b"], "best": [80.0, 80.0], every: [79.5, 79.5], trained: [79.0, 79.0]})
    assert "gain of 0.00" in pooled_line(first, later) and "keeps recommending from every trial" in pooled_line(
        first, later)
    assert "does not hold on searches it was not chosen on" in pooled_line(first, later)
    assert "the rule replaces ranking every trial" in pooled_line(first, first)
    assert "does not hold" not in pooled_line(first, first)


def test_both_ways_compare_the_same_runs():
    from benchmarks.first_rung import remeasured_only

    def run(task, strategy, seed):
        return {"task": task, "strategy": strategy, "seed": seed}

    records = [run("a", "tpe+asha", 0), run("a", "tpe+asha", 1), run("b", "random", 0)]
    remeasured = [run("a", "tpe+asha", 1), run("b", "random", 0)]
    assert remeasured_only(records, remeasured) == remeasured
