"""The training budget in optimizer steps: how long an epoch is, and how many trials a search can afford.

An epoch is ``max(one pass over source_train, MIN_STEPS_PER_EPOCH)`` optimizer steps: a pass over a small
table is a handful of steps, far too few for the source objective to converge before early stopping compares
trials (benchmarks/results/source_curves.md measures where held-out source accuracy plateaus). A search's
``budget`` is the optimizer steps it may spend summed over trials; with ASHA most trials stop early, so the
plan divides the budget by the expected steps of one trial under successive halving to bound the number of
trials, and the search stops starting trials once the budget is spent (``adaptune.search.step_budget``).
Everything here depends only on the data's size and the settings, so the same budget plans the same search on
any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import counted

MIN_STEPS_PER_EPOCH = 100  # see benchmarks/results/source_curves.md
DEFAULT_GRACE_EPOCHS = 2  # ASHA's first rung, in epochs: most source curves have plateaued by then (same page)
DEFAULT_BUDGET = 10_000  # optimizer steps over all trials of a search; see benchmarks/results/search_budget.md


def steps_per_epoch(n_source: int, batch_size: int, world_size: int = 1, override: int | None = None) -> int:
    """Optimizer steps in one epoch: ``override`` when set, else max(one pass, :data:`MIN_STEPS_PER_EPOCH`)."""
    if override:
        return override
    one_pass = max(1, math.ceil(n_source / (batch_size * world_size)))
    return max(one_pass, MIN_STEPS_PER_EPOCH)


def rungs(max_steps: int, grace_steps: int, reduction_factor: int) -> list[int]:
    """ASHA's milestones below ``max_steps``: grace, grace * rf, grace * rf^2, ..."""
    milestones, step = [], grace_steps
    while step < max_steps:
        milestones.append(step)
        step *= reduction_factor
    return milestones


def expected_trial_steps(max_steps: int, grace_steps: int, reduction_factor: int) -> float:
    """Steps of an average trial under successive halving: a 1/rf share of trials passes each rung."""
    bounds = [*rungs(max_steps, grace_steps, reduction_factor), max_steps]
    total, previous = 0.0, 0
    for k, bound in enumerate(bounds):
        total += (bound - previous) / reduction_factor**k
        previous = bound
    return total


@dataclass(frozen=True)
class Plan:
    """What a search will run: trials, the length of an epoch and of a trial, ASHA's rungs, all in steps."""

    budget: int
    trials: int
    epochs: int
    steps_per_epoch: int
    grace_steps: int
    reduction_factor: int
    early_stopping: bool
    closed_form: int = 0  # trials of closed-form methods that run first (defaults, draws): they train no SGD steps
    capped: bool = False  # the budget stops the search (trials follow from it); False when trials are given

    @property
    def max_trial_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def rungs(self) -> list[int]:
        return rungs(self.max_trial_steps, self.grace_steps, self.reduction_factor) if self.early_stopping else []

    @property
    def expected_trial_steps(self) -> float:
        if not self.early_stopping:
            return float(self.max_trial_steps)
        return expected_trial_steps(self.max_trial_steps, self.grace_steps, self.reduction_factor)

    def describe(self) -> str:
        stopping = f"ASHA rungs at {', '.join(map(str, self.rungs))} steps" if self.rungs else "no early stopping"
        count = counted(self.trials, "trial")
        trials = f"up to {count}" if self.capped else count
        spend = (f"no trial starts once {self.budget:,} steps are spent" if self.capped else
                 f"~{max(self.trials - self.closed_form, 0) * self.expected_trial_steps:,.0f} steps expected")
        return f"{trials}, up to {self.epochs} epochs x {self.steps_per_epoch} steps, {stopping}; {spend}"


def plan_search(*, budget: int, n_source: int, batch_size: int, epochs: int, grace_epochs: int,
                reduction_factor: int, n_methods: int, n_closed_form: int = 0, closed_form_draws: int = 0,
                trials: int | None = None, world_size: int = 1, steps_override: int | None = None,
                early_stopping: bool = True) -> Plan:
    """Trials from the budget: one per method at its defaults and ``closed_form_draws`` more per closed-form method,
    then up to as many as the budget affords.

    Closed-form trials (a logistic-regression head fitted by L-BFGS) train no SGD steps, so only the
    trainable methods draw on the budget; ``trials`` (when given) fixes the count and the budget stops nothing.
    """
    spe = steps_per_epoch(n_source, batch_size, world_size, steps_override)
    grace = min(grace_epochs, epochs) * spe
    drawn = n_closed_form * closed_form_draws
    plan = Plan(budget, trials or 0, epochs, spe, grace, reduction_factor, early_stopping, n_closed_form + drawn)
    if trials is not None:
        return plan
    affordable = int(budget // plan.expected_trial_steps)
    return replace(plan, trials=max(n_methods + drawn, plan.closed_form + affordable), capped=True)
