"""The method registry: every adaptation method by name, nothing else in adaptune knows one by name.

A method is a small class that declares, side by side, its hyperparameters (:class:`Param`), the extra
modules it trains (a domain discriminator, ...), and its loss on one source batch and one target batch.
The shared epoch loop in :mod:`adaptune.algorithms.loop` does everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import InputError
from ..hparams import ADV_WEIGHT, FREEZE_DEPTH, LR, Param


@dataclass
class Batch:
    """What a method's loss sees for one step: source features/logits/labels and target features/logits.

    ``progress`` runs from 0 at the first step to 1 at the last, for schedules such as DANN's ramp-up.
    Target tensors are ``None`` when the method declares ``uses_target = False``.
    """

    source_features: torch.Tensor
    source_logits: torch.Tensor
    source_labels: torch.Tensor
    target_features: torch.Tensor | None
    target_logits: torch.Tensor | None
    progress: float


class Method(nn.Module):
    """Base class. Subclasses set the class attributes and implement :meth:`loss`.

    The module's own parameters (e.g. a discriminator) are trained with the classifier by the same optimizer.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str] = ""
    adversarial: ClassVar[bool] = False
    uses_target: ClassVar[bool] = True
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, hparams: dict[str, Any], feature_dim: int, num_classes: int):
        super().__init__()
        self.hparams = hparams
        self.feature_dim = feature_dim
        self.num_classes = num_classes

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss for one step and the named terms to log (detached scalar tensors, averaged per epoch)."""
        raise NotImplementedError

    @classmethod
    def shared_params(cls) -> tuple[Param, ...]:
        """The registry-wide knobs this method uses (``adv_weight`` only for adversarial methods)."""
        return (LR, FREEZE_DEPTH, ADV_WEIGHT) if cls.adversarial else (LR, FREEZE_DEPTH)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {p.name: p.default for p in (*cls.shared_params(), *cls.params)}


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise InputError("methods", f"unknown method {name!r}; expected one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]


# Importing the family modules fills the registry.
from . import adversarial, finetune  # noqa: E402,F401
