"""benchmarks.preprocess_pools on the committed JDA-digits pools: the rows it forms from them."""

from __future__ import annotations

import pytest

from benchmarks import preprocess_pools


def test_each_pool_and_their_union_hold_the_oracle_the_recommendation_and_their_own_baseline():
    rows, metas = preprocess_pools.rows_of("jda-digits")
    assert len(metas) == len(preprocess_pools.KINDS) and all("--dump-predictions" in meta["command"] for meta in metas)
    by_task: dict[str, dict[str, dict]] = {}
    for row in rows:
        assert row["group"] == "jda-digits"
        assert all(0 < row[label] <= 100 for label in preprocess_pools.SCHEMES)
        by_task.setdefault(row["task"], {})[row["preprocess"]] = row
    assert list(by_task) == ["mnist-usps-jda:M->U", "mnist-usps-jda:U->M"]
    for pools in by_task.values():
        zscore, scaled, union = (pools[label] for label in ("zscore", "domain-scale", "zscore|domain-scale"))
        # The baselines are measured under each pool's own preprocessing; the union has both kinds to beat.
        assert zscore["baseline"] != scaled["baseline"]
        assert union["baseline"] == max(zscore["baseline"], scaled["baseline"])
        assert union["oracle"] == max(zscore["oracle"], scaled["oracle"])
        # The union's ensemble draws on both pools' trials, each named with its preprocessing.
        assert {"(zscore)", "(domain-scale)"} & set(union["members"].split())


def group_rows(per_group: tuple[tuple[str, tuple[int, ...]], ...]) -> list[dict]:
    """One task per group, its recommended accuracy at the shipped gap under each of preprocess_pools.CHOICES: the
    three kinds, then zscore|domain-scale, zscore|zscore-clip and auto (here always zscore's)."""
    return [{"group": group, "task": f"{group}:t", "preprocess": label, preprocess_pools.SHIPPED: accuracy}
            for group, accuracies in per_group
            for label, accuracy in zip(preprocess_pools.CHOICES, (*accuracies, accuracies[0]), strict=True)]


SPLIT = (("a", (50, 60, 45, 55, 40)), ("b", (70, 60, 65, 69, 60)), ("c", (40, 50, 45, 49, 40)))


def test_the_default_is_derived_over_the_single_kinds_and_their_union():
    logo, fixed = preprocess_pools.derivation_tables(*preprocess_pools.derivation(group_rows(SPLIT)))
    # Held out a: b and c together favour the union (59.0 against 55.0 and 55.0), which scores 55 on a.
    # A union's | is escaped, so it stays one cell.
    assert "| a | zscore\\|domain-scale | 55.0 | domain-scale | 60.0 |" in logo
    assert "| zscore\\|domain-scale | 5.0 | 1.0 | 1.0 | 2.3 | 5.0 |" in fixed


def test_auto_cuts_in_the_middle_of_the_widest_run_of_shares_that_do_best():
    # (group, mismatch, accuracy under zscore / zscore-clip): clipping pays above 0.2 and costs below 0.1; d1's
    # two kinds lie within preprocess_pools.TIE_POINTS, so it does not move the cut.
    tasks = {"a1": ("a", 0.0, {"zscore": 50.0, "zscore-clip": 45.0}),
             "a2": ("a", 0.1, {"zscore": 60.0, "zscore-clip": 59.0}),
             "b1": ("b", 0.3, {"zscore": 40.0, "zscore-clip": 55.0}),
             "c1": ("c", 0.2, {"zscore": 70.0, "zscore-clip": 72.0}),
             "d1": ("c", 0.12, {"zscore": 70.0, "zscore-clip": 70.5})}
    assert preprocess_pools.chosen_share(tasks) == pytest.approx(0.15)  # between a2 (0.1) and c1 (0.2)
    assert preprocess_pools.auto_score(tasks, 0.15) == pytest.approx((55.0 + 55.0 + (72.0 + 70.25) / 2) / 3)
    assert preprocess_pools.auto_score(tasks, 0.15, ties=False) == pytest.approx((55.0 + 55.0 + 71.0) / 3)
    # Without the tasks that pay, nothing argues for clipping: the cut moves above every task.
    assert preprocess_pools.chosen_share({t: v for t, v in tasks.items() if v[0] == "a"}) == pytest.approx(0.55)
    rows = [{"group": v[0], "task": t, "preprocess": k, preprocess_pools.SHIPPED: acc}
            for t, v in tasks.items() for k, acc in v[2].items()]
    logo, share = preprocess_pools.auto_derivation(rows, {t: v[1] for t, v in tasks.items()})
    assert share == pytest.approx(0.15)
    # Held out b: a and c alone put the cut between 0.1 and 0.2, so b1 (0.3) is still clipped.
    assert logo[1][:4] == ["b", "0.30", "0.150", "1 of 1"] and logo[1][4] == 55.0


def test_the_findings_follow_the_derivation():
    split = preprocess_pools.findings(*preprocess_pools.derivation(group_rows(SPLIT))[:2])
    assert "`zscore|domain-scale` is chosen for 2 of 3 held-out groups (`domain-scale` with b held out)" in split
    assert "misses the held-out group's best in 3 of 3 groups: a (best `domain-scale`, 5.0 points)" in split
    agreed = preprocess_pools.findings(*preprocess_pools.derivation(group_rows(
        (("a", (50, 60, 45, 55, 40)), ("b", (50, 70, 45, 69, 40)), ("c", (40, 50, 35, 49, 30)))))[:2])
    assert "`domain-scale` is chosen for 3 of 3 held-out groups." in agreed
    assert "in 0 of 3 groups; 0.0 points lost there on average" in agreed
    assert "`domain-scale` loses the least, on average (0.0 points) and at worst (0.0)" in agreed
