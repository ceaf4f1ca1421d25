"""The define-by-run Optuna space, built only from the method registry.

``method`` is drawn first, then that method's ``params`` in its declared order (shared knobs first), so every
method has its own conditional subspace; a search given several feature preprocessings draws ``preprocess``
last, for every method alike. The function must be importable at module level because Tune
pickles the searcher with the standard pickler; the per-search bounds travel in a ``functools.partial``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from adaptune.algorithms.hparams import SEARCH_SPACE_KNOBS, Param
from adaptune.algorithms.methods import METHODS
from adaptune.reports.leaderboard import PREPROCESS_COLUMN


def method_params(method: str, ranges: dict[str, tuple[float, float]]) -> list[Param]:
    """The knobs a method searches, each with this search's bounds where ``ranges`` names it."""
    return [p.with_range(*ranges[p.name]) if p.name in ranges else p for p in METHODS[method].params]


# The trial config key of a searched feature preprocessing (algorithms.preprocess), named as the leaderboard column
# it fills; absent when there is one.
PREPROCESS_KEY = PREPROCESS_COLUMN


def define_space(trial: Any, methods: list[str], ranges: dict[str, tuple[float, float]],
                 preprocess: tuple[str, ...] = ()) -> dict[str, Any]:
    method = trial.suggest_categorical("method", methods)
    constants = {}
    for param in method_params(method, ranges):
        if param.kind != "categorical" and param.low == param.high:
            constants[param.name] = param.default  # a one-point range is not a search dimension
        else:
            param.suggest(trial)
    if preprocess:
        trial.suggest_categorical(PREPROCESS_KEY, list(preprocess))
    return constants


def make_space(methods: list[str], ranges: dict[str, tuple[float, float]], preprocess: tuple[str, ...] = ()
               ) -> Callable[[Any], dict[str, Any]]:
    return functools.partial(define_space, methods=list(methods), ranges=dict(ranges), preprocess=tuple(preprocess))


def default_points(methods: list[str], ranges: dict[str, tuple[float, float]], preprocess: tuple[str, ...] = ()
                   ) -> list[dict[str, Any]]:
    """One configuration per method with its default hyperparameters, evaluated before the sampler takes over.

    With searched preprocessings the methods take them in turn (the first method the first kind, the next the
    next, ...): a default budget affords one default trial per method, and the sampler learns from both kinds.
    """
    return [_point(method, ranges, lambda param: param.default, preprocess, index)
            for index, method in enumerate(methods)]


def _point(method: str, ranges: dict[str, tuple[float, float]], value: Callable[[Param], Any],
           preprocess: tuple[str, ...], turn: int) -> dict[str, Any]:
    """A configuration of ``method``: ``value(param)`` for each knob it searches, and the ``turn``-th searched
    preprocessing in rotation (when the search draws several)."""
    point: dict[str, Any] = {"method": method}
    for param in method_params(method, ranges):
        if param.kind == "categorical" or param.low != param.high:
            point[param.name] = value(param)
    if preprocess:
        point[PREPROCESS_KEY] = preprocess[turn % len(preprocess)]
    return point


def closed_form_points(methods: list[str], ranges: dict[str, tuple[float, float]], draws: int, seed: int,
                       preprocess: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``draws`` random configurations of each closed-form method in ``methods`` (uniform, log-uniform for a log
    knob), the same for the same seed, taken round by round so that every method has its first draw before any
    has its second. They spend no optimizer steps, so a search runs them on top of its budget (though not of its
    time: a JDA fit on 2,000-row tables takes about a minute): TPE alone seldom returns to these methods, and their
    transforms vary most with their knobs."""
    rng = random.Random(seed)
    closed_form = [m for m in methods if METHODS[m].feature_extraction]
    return [_point(method, ranges, lambda param: param.sample(rng), preprocess, draw + index)
            for draw in range(draws) for index, method in enumerate(closed_form)]


def all_param_names() -> list[str]:
    """Every hyperparameter column a leaderboard can have, in a stable order: the knobs a config can re-range,
    then each registered method's knobs in registry order."""
    names = [p.name for p in SEARCH_SPACE_KNOBS]
    for cls in METHODS.values():
        names += [p.name for p in cls.params if p.name not in names]
    return names
