"""benchmarks.search_efficiency's ensemble rules and their leave-one-group-out choice, without Ray."""

from __future__ import annotations

import pandas as pd

from benchmarks import search_efficiency as se


def test_the_shipped_rule_is_the_search_s_own_ensemble():
    from adaptune.search.config import DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD

    rows = [{"method": m, "id": i} for i, m in enumerate(["jda", "jda", "coral", "jda", "coral", "mcc"])]
    assert [r["id"] for r in se.capped(rows, 2)] == [0, 1, 2, 4, 5] and se.capped(rows, None) == rows
    assert se.RULES[se.ENSEMBLE] == (DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD)
    assert se.RULES[se.ONE_PER_METHOD] == (5, 1) and se.RULES[se.SINGLE] == (1, None)


def test_each_group_is_scored_with_the_rule_the_other_groups_chose():
    per_group = pd.DataFrame(9.0, index=list(se.RULES), columns=["a", "b", "c"])
    per_group.loc[se.ENSEMBLE] = [3.0, 3.0, 3.0]
    per_group.loc["top3-max1"] = [1.0, 1.0, 8.0]  # best on a and b, worst on c
    held = {group: (rule, derived, shipped) for group, rule, derived, shipped in se.held_out_rules(per_group)}
    assert held["c"] == ("top3-max1", 8.0, 3.0)
    assert held["a"] == (se.ENSEMBLE, 3.0, 3.0)  # (1 + 8) / 2 > 3 on b and c: the shipped rule stays
    per_group.loc["top7"] = per_group.loc[se.ENSEMBLE]  # a tie goes to the shipped rule
    assert se.held_out_rules(per_group)[0][1] == se.ENSEMBLE
