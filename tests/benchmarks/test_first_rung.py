"""benchmarks.first_rung's leave-one-group-out choice between ranking every trial and the first-rung rule."""

from __future__ import annotations


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
                           every: [78.0, 78.0, 69.5], trained: [79.0, 78.0, 69.0]})
    text = check_section(checks)
    assert "3 searches of 2 groups" in text
    assert "more than every trial would in 1 and less in 1 of 3" in text
    assert "2 of 3 give back" not in text and "3 of 3 give back the ensemble row" in text
