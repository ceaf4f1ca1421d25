"""benchmarks.checkpoint_proxy: each group is scored with the rule the other groups chose, and the page says which
rule selects better."""

from __future__ import annotations

import pandas as pd

from benchmarks._common import held_out_choices
from benchmarks.checkpoint_proxy import BARE, RULES, SHIPPED, adopted_rule, page, searches

IM, ALONE, SPLIT = RULES


def _frame(regrets: dict[str, dict[str, float]], bare: dict[str, dict[str, float]] | None = None) -> pd.DataFrame:
    """Rows of :func:`measure` for one task per group: ``regrets`` as shipped, ``bare`` (default: the same) before
    the gap and the smoothing."""
    return pd.DataFrame([{"task": f"{group}:t", "group": group, "rule": rule, "selection": selection,
                          "regret": regret, "best": 90.0, "accuracy": 90.0 - regret, "baseline": 88.0}
                         for selection, table in ((SHIPPED, regrets), (BARE, bare or regrets))
                         for group, by_rule in table.items() for rule, regret in by_rule.items()])


def _runs(gains: dict[str, float], seeds: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    """Rows of :func:`reranked`: one search by im per group and seed, ranked by im and by the split rule, which
    recommends ``gains[group]`` points more."""
    return pd.DataFrame([{"rule": rule, "seed": seed, "task": f"{group}:t", "group": group,
                          "recommended": 80.0 + (gain if rule == SPLIT else 0.0), "best": 85.0, "baseline": 79.0,
                          "ranked_by": "im", "recorded": 80.0}
                         for group, gain in gains.items() for seed in seeds for rule in (IM, SPLIT)])


NO_PAGES = searches({})


def test_each_group_gets_the_rule_of_least_regret_on_the_others():
    per_group = pd.DataFrame({IM: {"a": 1.0, "b": 1.0, "c": 5.0}, SPLIT: {"a": 0.5, "b": 3.0, "c": 0.0}})
    # a held out: b and c favour SPLIT (1.5 < 3.0); b held out: a and c favour SPLIT too; c held out: IM (1.0 < 1.75)
    assert held_out_choices(per_group) == {"a": SPLIT, "b": SPLIT, "c": IM}


def test_a_tie_goes_to_the_preferred_candidate_then_to_the_earlier_column():
    # Means that differ by float noise only (0.1 + 0.2 against 0.3) tie.
    per_group = pd.DataFrame({"x": {"a": 0.3, "b": 0.3, "c": 0.0}, "y": {"a": 0.1 + 0.2, "b": 0.1 + 0.2, "c": 9.0}})
    assert held_out_choices(per_group)["c"] == "x"
    assert held_out_choices(per_group, preferred="y")["c"] == "y"
    assert held_out_choices(per_group, preferred="y")["a"] == "x"  # 0.15 against 4.65: no tie


def test_the_page_names_the_better_rule_and_the_tasks_below_the_baseline():
    better = _frame({"a": {IM: 1.0, ALONE: 2.0, SPLIT: 0.5}, "b": {IM: 3.0, ALONE: 4.0, SPLIT: 1.0}})
    text = page(better, ["pool.jsonl.gz"], NO_PAGES, _runs({"a": 1.0, "b": 0.5}))
    assert ("selects better than `im` on the pools (0.75 against 2.00); as its own checkpoint rule it does worse "
            "(3.00)") in text
    assert f"| {IM} | 1 of 2 | b:t 87.0 < 88.0 |" in text and f"| {SPLIT} | 2 of 2 | - |" in text
    worse = _frame({"a": {IM: 1.0, ALONE: 2.0, SPLIT: 1.5}, "b": {IM: 1.0, ALONE: 4.0, SPLIT: 1.0}})
    neither = "Neither use of `neighbour_agreement` selects better than `im` alone on the pools"
    worse_page = page(worse, ["pool.jsonl.gz"], NO_PAGES, _runs({"a": 1.0, "b": 0.5}))
    assert neither in worse_page and "do not agree on a better rule" in worse_page
    losing = page(better, ["pool.jsonl.gz"], NO_PAGES, _runs({"a": 1.0, "b": -0.5}))
    assert "(the searches of b (-0.5 points) lose with the split rule), so `im` ranks" in losing
    assert ("so `proxy: auto` ranks the finished trials of a feature table by `neighbour_agreement` at the epochs "
            "`im` keeps, while Tune's sampler and ASHA follow `im`") in text
    assert "| a | 2 | 1.0 | 0.5 |" in text  # the gain on a, and on b with a left out
    assert "Re-ranked by the proxy it ranked by itself, 4 of 4 reproduce the ensemble row the run recorded" in text


def test_the_split_rule_is_adopted_only_where_every_held_out_view_agrees():
    pools = pd.DataFrame({IM: {"a": 1.0, "b": 3.0, "c": 2.0}, ALONE: {"a": 2.0, "b": 4.0, "c": 3.0},
                          SPLIT: {"a": 0.5, "b": 1.0, "c": 1.5}})
    assert adopted_rule(pools, _runs({"a": 1.0, "b": 0.5, "c": 0.2})) == SPLIT
    assert adopted_rule(pools, _runs({"a": 1.0, "b": 0.5, "c": 0.2}, seeds=(0,))) == IM  # one seed is not enough
    assert adopted_rule(pools, _runs({"a": 0.3, "b": 0.3, "c": 0.0})) == IM  # under the least gain
    assert adopted_rule(pools, _runs({"a": 2.0, "b": -1.5, "c": -1.0})) == IM  # a's gain alone: loses with a out
    one_group_prefers_im = pools.assign(**{SPLIT: {"a": 0.5, "b": 1.0, "c": 9.0}})
    assert adopted_rule(one_group_prefers_im, _runs({"a": 1.0, "b": 0.5, "c": 0.2})) == IM


def test_the_page_says_when_the_bare_selection_and_the_shipped_one_disagree():
    shipped = {group: {IM: 1.0, ALONE: 2.0, SPLIT: 0.5} for group in "ab"}
    bare = {group: {IM: 3.0, ALONE: 2.0, SPLIT: 2.5} for group in "ab"}
    text = page(_frame(shipped, bare), ["pool.jsonl.gz"])
    assert "would prefer `neighbour_agreement`, while the selection a search ships prefers `im`" in text
    assert "turns over" not in page(_frame(shipped), ["pool.jsonl.gz"])
