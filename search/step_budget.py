"""The search's budget as a cap: once the trials' optimizer steps reach it, no new trial starts.

The plan (:mod:`adaptune.algorithms.budget`) sizes a search from the expected cost of one trial under ASHA, but
asynchronous rungs stop fewer trials than successive halving assumes, so a search run to its planned count
spends more than its budget. :class:`StepBudget` wraps the searcher and counts the steps each trial has
reported (a running trial's too); each method's defaults always run, and after them no trial starts once the
budget is spent. Running trials finish, so a search ends at most their remaining steps above the budget.
Closed-form trials fit their head by L-BFGS and spend no optimizer steps (:func:`budget_steps`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ray.tune.search import Searcher

from adaptune.algorithms.methods import METHODS


def spends_budget(method: str | None) -> bool:
    """Whether a trial of ``method`` spends optimizer steps: every method but the closed-form ones."""
    return not (method in METHODS and METHODS[method].feature_extraction)


def budget_steps(method: str | None, steps: float | None) -> int:
    """The optimizer steps a trial spends from the budget: its reported steps, none for a closed-form method."""
    if not steps or not spends_budget(method):
        return 0
    return int(steps)


def spent_steps(rows: Iterable[Mapping[str, Any]]) -> int:
    """The budget a search's trials spent: their optimizer steps summed."""
    return sum(budget_steps(r.get("method"), r.get("steps")) for r in rows)


class StepBudget(Searcher):
    """Wraps ``searcher``: its first ``always_run`` suggestions start; later ones only while the spent steps are
    below ``budget``. Tune saves and restores this state with the searcher (``adaptune resume``)."""

    def __init__(self, searcher: Searcher, budget: int, always_run: int) -> None:
        self.searcher = searcher
        self.budget = budget
        self.always_run = always_run
        self.started = 0
        self.methods: dict[str, str | None] = {}  # trial id -> method
        self.steps: dict[str, int] = {}  # trial id -> the steps it spent so far
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def spent(self) -> int:
        return sum(self.steps.values())

    @property
    def exhausted(self) -> bool:
        return self.started >= self.always_run and self.spent >= self.budget

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.exhausted:
            return Searcher.FINISHED
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict):
            self.started += 1
            self.methods[trial_id] = suggestion.get("method")
            self.steps[trial_id] = 0
        return suggestion

    def _count(self, trial_id: str, result: dict | None) -> None:
        if result and trial_id in self.steps:
            spent = budget_steps(self.methods.get(trial_id), result.get("steps"))
            self.steps[trial_id] = max(self.steps[trial_id], spent)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._count(trial_id, result)
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._count(trial_id, result)
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    # Tune saves a wrapper's own state with get_state and the wrapped searcher by itself (SearchGenerator).
    def get_state(self) -> dict:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "searcher"})

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
