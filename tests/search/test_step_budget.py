"""The budget as a cap (search/step_budget.py) around a real OptunaSearch, without a Ray cluster."""

import pytest
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from adaptune.search.step_budget import StepBudget, budget_steps, spent_steps

DEFAULTS = [{"method": "source_only", "lr": 0.01}, {"method": "coral", "lr": 0.01}]


def _result(steps: int, score: float) -> dict:
    return {"steps": steps, "score": score, "training_iteration": 1}


def _wrapped(budget: int, always_run: int = len(DEFAULTS)) -> StepBudget:
    searcher = OptunaSearch(metric="score", mode="max", seed=0, points_to_evaluate=[dict(p) for p in DEFAULTS])
    wrapped = StepBudget(searcher, budget, always_run)
    space = {"method": tune.choice(["source_only", "coral", "dann"]), "lr": tune.loguniform(1e-4, 1e-1)}
    assert wrapped.set_search_properties("score", "max", space)
    return wrapped


def test_closed_form_trials_spend_nothing():
    assert budget_steps("coral", 37) == 0 and budget_steps("dann", 120) == 120 and budget_steps("dann", None) == 0
    assert spent_steps([{"method": "coral", "steps": 40}, {"method": "dann", "steps": 60},
                        {"method": "source_only", "steps": 100}]) == 160


def test_the_defaults_start_then_no_trial_once_the_budget_is_spent():
    wrapped = _wrapped(budget=250)
    first = wrapped.suggest("t1")
    wrapped.on_trial_result("t1", _result(300, 0.5))  # already past the budget ...
    assert first == DEFAULTS[0] and wrapped.suggest("t2") == DEFAULTS[1]  # ... yet every default starts
    wrapped.on_trial_complete("t2", _result(80, 0.4))  # coral: closed form, no optimizer steps
    assert wrapped.spent == 300 and wrapped.suggest("t3") == Searcher.FINISHED


def test_running_trials_count_and_a_restart_is_not_counted_twice():
    wrapped = _wrapped(budget=250)
    for trial_id in ("t1", "t2"):
        wrapped.suggest(trial_id)
    wrapped.on_trial_result("t1", _result(100, 0.5))
    third = wrapped.suggest("t3")
    assert isinstance(third, dict)  # 100 of 250 spent
    wrapped.on_trial_result("t1", _result(60, 0.5))  # restarted from an earlier checkpoint
    assert wrapped.spent == 100
    wrapped.on_trial_result("t1", _result(250, 0.6))  # the running trial alone reaches the budget
    assert wrapped.spent == 250 and wrapped.suggest("t4") == Searcher.FINISHED


@pytest.mark.parametrize("always_run", [0, 2])
def test_the_count_survives_save_and_restore(always_run, tmp_path):
    wrapped = _wrapped(budget=100, always_run=always_run)
    wrapped.suggest("t1")
    wrapped.on_trial_complete("t1", _result(120, 0.5))
    restored = _wrapped(budget=100, always_run=always_run)
    restored.set_state(wrapped.get_state())
    assert restored.spent == 120 and restored.started == 1
    assert (restored.suggest("t2") == Searcher.FINISHED) is (always_run <= 1)
