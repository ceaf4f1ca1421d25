"""benchmarks.first_rung's selection without the trials stopped at the first rung, without Ray."""

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

    shipped, trained = RULE_NAMES
    searches = pd.DataFrame({"group": ["a", "b", "c"], "best": [80.0, 80.0, 80.0],
                             shipped: [79.0, 79.0, 78.0], trained: [79.5, 79.5, 77.0]})
    # a and b gain by keeping early-stopped trials out, c loses more: held out, a and b get the shipped way, c the rule
    line = held_out_line(group_regrets(searches))
    assert f"choose {shipped} or {trained}" in line or f"choose {trained} or {shipped}" in line
    assert "scores 1.67 points per group against 1.33 as shipped" in line
