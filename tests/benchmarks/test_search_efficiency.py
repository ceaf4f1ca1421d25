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


def test_ensembles_are_smoothed_as_the_run_smoothed_them():
    import torch

    from adaptune.algorithms.ensemble import Smoothing, smooth_by_neighbours

    torch.manual_seed(0)
    features, labels = torch.randn(30, 4), torch.randint(0, 3, (30,))
    members = [torch.softmax(torch.randn(30, 3), 1) for _ in range(3)]
    assert se.smoother({"smoothing": None}, features) is None and se.smoother({}, features) is None
    smooth = se.smoother({"smoothing": {"neighbours": 5, "weight": 0.5}}, features)
    expected = smooth_by_neighbours(sum(members) / 3, features, Smoothing(5, 0.5)).argmax(1)
    assert se.ensemble_accuracy(members, labels, smooth) == float((expected == labels).float().mean())
    assert se.smoothing_note([{"smoothing": {"neighbours": 5, "weight": 0.5}}]).startswith(
        "Ensembles are smoothed over 5 target neighbours (weight 0.5)")
    assert "plain averages" in se.smoothing_note([{}])


def test_tasks_measured_on_other_seeds_get_their_own_command():
    import pandas as pd

    from benchmarks.search_efficiency import tasks_by_seeds

    table = pd.DataFrame({"task": ["a", "a", "b", "b", "c"], "seed": [0, 1, 1, 0, 0]})
    assert tasks_by_seeds(table) == {(0, 1): ["a", "b"], (0,): ["c"]}


def test_the_defaults_phase_ends_when_every_method_has_finished_a_trial():
    import pandas as pd

    from adaptune.algorithms.methods import METHODS
    from benchmarks.search_efficiency import defaults_phase_end, seed_counts

    trials = [{"method": m, "compute": 100 * (i + 1)} for i, m in enumerate(METHODS)]
    record = {"trials": [{"method": "mcc", "compute": 50}, *reversed(trials)]}
    assert defaults_phase_end(record) == 100 * len(METHODS)
    assert defaults_phase_end({"trials": trials[:-1]}) is None
    assert seed_counts(pd.DataFrame({"task": ["a", "a", "b"], "seed": [0, 1, 0]})) == "1 to 2 seeds"
    assert seed_counts(pd.DataFrame({"task": ["a"], "seed": [0]})) == "1 seed"


def test_target_counts_where_a_searcher_reaches_random_search_by_a_third_of_its_compute():
    def rows(strategy, regrets):
        return [{"task": "t", "seed": 0, "strategy": strategy, "fraction": f, se.ENSEMBLE: r}
                for f, r in zip((0.5, 1.0, 1.5, 2.0), regrets)]

    table = pd.DataFrame(rows("random", [9, 8, 6, 5]) + rows("random+asha", [9, 7, 3, 2])
                         + rows("tpe+asha", [5, 5, 2, 2]) + rows(se.DERIVED_ORDER, [9, 5, 5, 5]))
    assert se.targets_met(table, "tpe+asha") == (1, 1, 2)  # at random's 5 from 0.5 / 2 on; random+asha's 2 late
    assert se.targets_met(table, se.DERIVED_ORDER) == (0, 0, 2)  # reaches random's 5 only at 1.0 / 2


def test_on_mean_regrets_a_point_counts_once_every_run_has_reached_it():
    def rows(task, strategy, regrets, fractions=(0.5, 1.0, 1.5, 2.0)):
        return [{"task": task, "seed": 0, "strategy": strategy, "fraction": f, se.ENSEMBLE: r}
                for f, r in zip(fractions, regrets)]

    # Task b's TPE curve starts at 1.0: at 0.5 the mean would be task a's 1 alone, below random's mean of 4.
    table = pd.DataFrame(rows("amazon:a", "random", [9, 8, 7, 6]) + rows("office-surf:b", "random", [5, 4, 3, 2])
                         + rows("amazon:a", "tpe+asha", [1, 1, 1, 1])
                         + rows("office-surf:b", "tpe+asha", [9, 8, 3], (1.0, 1.5, 2.0)))
    suite = next(row for row in se.mean_to_match(table) if row[0] == "suite" and row[2] == "random")
    assert suite[1] == 2 and suite[3] == 4.0 and suite[-2:] == ["1.00", "1.00"]  # mean 2.0 at 2.0, of random's 2.0
    assert not se.stays_within_third(suite)
    surf = next(row for row in se.mean_to_match(table) if row[0] == "surf" and row[2] == "random")
    assert surf[-2:] == ["never", "never"]  # 3 against random's 2


def test_defaults_run_in_the_order_the_other_groups_recommend(tmp_path):
    import json

    from adaptune.algorithms.methods import METHODS
    from benchmarks.defaults_order import SHIPPED_RULE, held_out_order, order, recommended_shares, shipped_searches

    searches = [("a", "mcc,dann"), ("a", "mcc,jda"), ("b", "jda,tca"), ("c", "tca"), ("c", "tca,jda")]
    path = tmp_path / "searches.jsonl"
    path.write_text("".join(json.dumps({"rule": rule, "group": group, "members": members}) + "\n"
                            for group, members in searches for rule in (SHIPPED_RULE, "im")))
    shares = recommended_shares(shipped_searches(str(path)))
    assert shares.loc["jda"].tolist() == [0.5, 1.0, 0.5] and shares.loc["tca"].tolist() == [0.0, 1.0, 1.0]
    assert order(shares)[:4] == ["jda", "tca", "mcc", "dann"] and sorted(order(shares)) == sorted(METHODS)
    assert held_out_order("c", str(path))[:2] == ["jda", "mcc"]  # tca is recommended on b alone then
    assert held_out_order("unseen", str(path)) == order(shares)


def test_the_shipped_trial_bound_is_read_back_from_a_recorded_plan():
    from dataclasses import asdict

    from adaptune.algorithms.budget import plan_search

    plan = plan_search(budget=20_000, n_source=9000, batch_size=64, epochs=12, grace_epochs=2, reduction_factor=2,
                       n_methods=19, n_closed_form=6)
    assert se.shipped_trial_bound(asdict(plan)) == plan.trials


def test_the_two_orders_of_the_defaults_are_compared_on_the_same_searches():
    table = pd.DataFrame({"task": ["a", "a", "a", "b"], "seed": [0, 0, 1, 0],
                          "strategy": ["tpe+asha", se.DERIVED_ORDER, "tpe+asha", "tpe+asha"]})
    kept = se.with_derived_order(table)
    assert list(zip(kept["task"], kept["seed"], kept["strategy"])) == [("a", 0, "tpe+asha"), ("a", 0, se.DERIVED_ORDER)]


def test_a_larger_budget_is_chosen_on_the_other_groups_within_the_time_target():
    tasks = {"amazon:B->D": (1.0, 0.0), "office-surf:D->W": (4.0, 2.0), "mnist-usps-jda:U->M": (6.0, 1.0)}
    rows = [{"task": task, "seed": 0, "strategy": "tpe+asha", "fraction": fraction, se.ENSEMBLE: regret}
            for task, regrets in tasks.items() for fraction, regret in zip((1.0, 2.0), regrets)]
    records = [{"task": task, "seed": 0, "strategy": "tpe+asha", "wall_s": 200.0, "plan": {"budget": 20_000}}
               for task in tasks]
    per_group, chosen, allowed = se.budget_choice(pd.DataFrame(rows), records)
    assert allowed == ["1x", "1.25x", "1.5x", "1.75x", "2x"]  # 200 s at 2x: every budget fits 10 minutes
    assert per_group.loc["surf", "2x"] == 2.0 and chosen == {"amazon": "2x", "surf": "2x", "jda-digits": "2x"}
    records = [{**r, "wall_s": 1000.0} for r in records]  # 500 s at 1x, 625 s at 1.25x
    assert se.budget_choice(pd.DataFrame(rows), records)[2] == ["1x"]


def test_the_larger_budget_is_checked_on_fresh_searches_paired_by_task(tmp_path):
    import json

    from benchmarks.ensemble_settings import SHIPPED

    later, check = tmp_path / "later.jsonl", tmp_path / "check.jsonl"
    later.write_text("\n".join(json.dumps({"task": t, "seed": 0, "accuracy": {SHIPPED: a}})
                               for t, a in [("amazon:D->E", 80.0), ("office-surf:A->C", 40.0)]))
    check.write_text("\n".join(json.dumps({"task": t, "seed": s, "budget": b, "recommended": a, "wall_s": 99.0})
                               for t, s, b, a in [("amazon:D->E", 0, 15000, 79.0), ("office-surf:A->C", 0, 15000, 43.0),
                                                  ("office-surf:A->C", 3, 10000, 41.0),
                                                  ("office-surf:A->C", 3, 15000, 44.0)]))
    text = se.budget_check_section(str(check), str(later))
    assert "amazon -1.00, surf +3.00" in text  # surf: seed 0 against the later search, seed 3 against its own
    # Each group held out gets the budget the other chose: amazon 15,000 (-1), surf 10,000 (0).
    assert "gain -0.50 points: less than" in text
    assert se.budget_check_section(str(tmp_path / "none.jsonl"), str(later)) == ""
