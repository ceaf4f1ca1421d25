"""The method registry: every adaptation method by name, nothing else in adaptune knows one by name.

A method is a small class in one family module that declares its whole search space (``params``), the modules
it trains besides the classifier (:meth:`Method.build`) and its adaptation term (:meth:`Method.adaptation`);
:mod:`.base` composes the loss, :mod:`.losses` and :mod:`.linalg` hold the pieces methods share, and the shared
epoch loop in :mod:`adaptune.algorithms.loop` does everything else.
"""

from .base import METHODS, Batch, Logs, Method, ShallowMethod, get_method, register

# Importing a family registers its methods. The registry keeps this order, and search.space.all_param_names lists
# the leaderboard's knob columns in it, so a new family goes at the end.
# isort: off
from . import self_training, adversarial, collaborative, discrepancy, finetune, generative, meta, subspace, reweight
# isort: on

__all__ = [
    "METHODS",
    "Batch",
    "Logs",
    "Method",
    "ShallowMethod",
    "adversarial",
    "collaborative",
    "discrepancy",
    "finetune",
    "generative",
    "get_method",
    "meta",
    "register",
    "reweight",
    "self_training",
    "subspace",
]
