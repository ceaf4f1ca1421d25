"""The step budget: epoch length from the data's size, ASHA's expected cost, and the plan of a search."""

import pytest

from adaptune.algorithms.budget import (
    MIN_STEPS_PER_EPOCH,
    expected_trial_steps,
    plan_search,
    rungs,
    steps_per_epoch,
)


def test_an_epoch_is_one_pass_or_the_floor_whichever_is_longer():
    assert steps_per_epoch(648, 64) == MIN_STEPS_PER_EPOCH  # a small table: 11 steps per pass
    big = 64 * (MIN_STEPS_PER_EPOCH + 20)
    assert steps_per_epoch(big, 64) == MIN_STEPS_PER_EPOCH + 20
    assert steps_per_epoch(big, 64, world_size=2) == MIN_STEPS_PER_EPOCH  # data parallel: a pass is shorter
    assert steps_per_epoch(648, 64, override=7) == 7


def test_rungs_and_the_expected_cost_of_successive_halving():
    assert rungs(1200, 200, 2) == [200, 400, 800]
    # all trials train 200 steps, half of them 200 more, a quarter 400 more, an eighth the last 400
    assert expected_trial_steps(1200, 200, 2) == pytest.approx(200 + 200 / 2 + 400 / 4 + 400 / 8)
    assert expected_trial_steps(1200, 1200, 2) == 1200  # grace = max: no early stopping


def test_the_plan_affords_more_trials_with_more_budget_and_fewer_on_bigger_data():
    base = dict(batch_size=64, epochs=12, grace_epochs=2, reduction_factor=2, n_methods=19, n_closed_form=6)
    small = plan_search(budget=24_000, n_source=648, **base)
    richer = plan_search(budget=48_000, n_source=648, **base)
    bigger = plan_search(budget=24_000, n_source=64 * 300, **base)
    assert richer.trials > small.trials > bigger.trials >= 19  # never fewer than one trial per method
    assert small.grace_steps == 2 * MIN_STEPS_PER_EPOCH and small.rungs[0] == small.grace_steps
    expected_deep = (small.trials - 6) * small.expected_trial_steps
    assert expected_deep <= 24_000 + small.expected_trial_steps  # the budget is what the trained trials spend
    assert small.capped and "no trial starts once 24,000 steps are spent" in small.describe()
    drawn = plan_search(budget=24_000, n_source=648, closed_form_draws=2, **base)
    assert drawn.trials == small.trials + 12 and drawn.closed_form == 18  # draws ride on top of the budget
    fixed = plan_search(budget=12_000, n_source=648, trials=5, **base)
    assert fixed.trials == 5 and not fixed.capped  # an explicit count wins, and the budget stops nothing
    assert fixed.describe().startswith("5 trials,") and "steps expected" in fixed.describe()
    assert plan_search(budget=12_000, n_source=648, trials=1, **base).describe().startswith("1 trial,")


def test_without_early_stopping_a_trial_costs_its_full_length():
    plan = plan_search(budget=12_000, n_source=648, batch_size=64, epochs=12, grace_epochs=2, reduction_factor=2,
                       n_methods=1, early_stopping=False)
    assert plan.rungs == [] and plan.expected_trial_steps == plan.max_trial_steps
    assert plan.trials == 12_000 // plan.max_trial_steps
    assert "no early stopping" in plan.describe()
