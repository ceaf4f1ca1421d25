"""benchmarks.checkpoint_proxy: each group is scored with the rule the other groups chose, and the page says which
rule selects better."""

from __future__ import annotations

import pandas as pd

from benchmarks.checkpoint_proxy import BARE, RULES, SHIPPED, held_out_rules, page

IM, ALONE, SPLIT = RULES


def _frame(regrets: dict[str, dict[str, float]], bare: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Rows of :func:`measure` for one task per group: ``regrets`` as shipped, ``bare`` (default: the same) before
    the gap and the smoothing."""
    return pd.DataFrame([{"task": f"{group}:t", "group": group, "rule": rule, "selection": selection,
                          "regret": regret, "best": 90.0, "accuracy": 90.0 - regret, "baseline": 88.0}
                         for selection, table in ((SHIPPED, regrets), (BARE, bare or regrets))
                         for group, by_rule in table.items() for rule, regret in by_rule.items()])


def test_each_group_gets_the_rule_of_least_regret_on_the_others():
    per_group = pd.DataFrame({IM: {"a": 1.0, "b": 1.0, "c": 5.0}, SPLIT: {"a": 0.5, "b": 3.0, "c": 0.0}})
    # a held out: b and c favour SPLIT (1.5 < 3.0); b held out: a and c favour SPLIT too; c held out: IM (1.0 < 1.75)
    assert held_out_rules(per_group) == {"a": SPLIT, "b": SPLIT, "c": IM}


def test_the_page_names_the_better_rule_and_the_tasks_below_the_baseline():
    better = _frame({"a": {IM: 1.0, ALONE: 2.0, SPLIT: 0.5}, "b": {IM: 3.0, ALONE: 4.0, SPLIT: 1.0}})
    text = page(better, ["pool.jsonl.gz"])
    assert ("selects better than `im` on the pools (0.75 against 2.00); as its own checkpoint rule it does worse "
            "(3.00)") in text
    assert f"| {IM} | 1 of 2 | b:t 87.0 < 88.0 |" in text and f"| {SPLIT} | 2 of 2 | - |" in text
    worse = _frame({"a": {IM: 1.0, ALONE: 2.0, SPLIT: 1.5}, "b": {IM: 1.0, ALONE: 4.0, SPLIT: 1.0}})
    neither = "Neither use of `neighbour_agreement` selects better than `im` alone on the pools"
    assert neither in page(worse, ["pool.jsonl.gz"]) and "do not agree on a better rule" in page(worse, ["p.gz"])
    # The committed whole searches (search_suite*.md) recommend more with the split rule than with im.
    assert "one seed of whole searches per task agree" in text


def test_the_page_says_when_the_bare_selection_and_the_shipped_one_disagree():
    shipped = {group: {IM: 1.0, ALONE: 2.0, SPLIT: 0.5} for group in "ab"}
    bare = {group: {IM: 3.0, ALONE: 2.0, SPLIT: 2.5} for group in "ab"}
    text = page(_frame(shipped, bare), ["pool.jsonl.gz"])
    assert "would prefer `neighbour_agreement`, while the selection a search ships prefers `im`" in text
    assert "turns over" not in page(_frame(shipped), ["pool.jsonl.gz"])
