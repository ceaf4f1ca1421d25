"""Hyperparameters: one :class:`Param` per searchable knob (its Optuna distribution and its default).

The knobs several methods share live here (``lr``, ``freeze_depth``, ``adv_weight``, ``head_l2``, ``disc_hidden``);
a knob only one method uses is declared next to that method. A method lists its whole search space in ``params``,
so a new knob is one line in one place and a method's space is read in one place.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a float/int range (optionally log-scaled) or a categorical choice."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""

    @property
    def kind(self) -> str:
        if self.choices is not None:
            return "categorical"
        return "int" if isinstance(self.default, int) and not isinstance(self.default, bool) else "float"

    def suggest(self, trial: Any) -> Any:
        """Draw a value from an Optuna trial (define-by-run)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def sample(self, rng: random.Random) -> Any:
        """A uniform (or log-uniform) random draw without Optuna, for plain-torch benchmarks."""
        if self.kind == "categorical":
            return rng.choice(self.choices)
        low, high = float(self.low), float(self.high)
        value = math.exp(rng.uniform(math.log(low), math.log(high))) if self.log else rng.uniform(low, high)
        return int(round(value)) if self.kind == "int" else value

    def with_range(self, low: float, high: float) -> Param:
        """The same knob searched over ``[low, high]``, its default clipped into that range."""
        return replace(self, default=min(max(self.default, low), high), low=low, high=high)

    def describe(self) -> str:
        if self.kind == "categorical":
            space = "{" + ", ".join(map(str, self.choices)) + "}"
        else:
            space = f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")
        return f"{self.name} {space} default {self.default}"


LR = Param("lr", 1e-2, 1e-4, 1e-1, log=True, help="SGD learning rate of the head; the backbone uses the same")
FREEZE_DEPTH = Param("freeze_depth", 0, 0, 0, help="leading backbone blocks kept frozen; max = feature extraction")
ADV_WEIGHT = Param("adv_weight", 1.0, 1e-2, 3.0, log=True, help="weight of the adversarial domain loss")
# A fixed penalty per unit of mean loss, not scikit-learn's C: chosen on the suite, leave one group out, where it
# beat every fixed C (benchmarks/results/head_penalty.md).
HEAD_L2 = Param("head_l2", 0.3, 1e-2, 3.0, log=True,
                help="L2 strength of the logistic-regression head of feature-extraction methods, per unit of mean "
                "loss (scikit-learn's 1 / (C n))")
DISC_HIDDEN = Param("disc_hidden", 512, choices=(256, 512, 1024), help="width of the domain discriminator")

# The knobs whose range a search config's ``search_space:`` may set; the ranges above are the defaults.
SEARCH_SPACE_KNOBS = (LR, FREEZE_DEPTH, ADV_WEIGHT)


def default_ranges() -> dict[str, tuple[float, float]]:
    """``{name: (low, high)}`` of :data:`SEARCH_SPACE_KNOBS`, before a config or the backbone narrows them."""
    return {p.name: (p.low, p.high) for p in SEARCH_SPACE_KNOBS}
