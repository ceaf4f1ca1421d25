"""The method registry: every adaptation method by name, nothing else in adaptune knows one by name.

A method is a small class that declares, side by side, its hyperparameters (:class:`Param`), the extra
modules it trains (a domain discriminator, ...), and its loss on one source batch and one target batch.
The shared epoch loop in :mod:`adaptune.algorithms.loop` does everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..domains import Task
from ..errors import InputError
from ..hparams import ADV_WEIGHT, FREEZE_DEPTH, HEAD_C, LR, Param


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
    source_inputs: torch.Tensor | None = None  # inputs of the trainable part, for methods that re-run the model
    target_inputs: torch.Tensor | None = None
    source_index: torch.Tensor | None = None  # positions in the source training set (per-sample weights)
    classifier: nn.Module | None = None  # returns (features, logits); meta and generative methods call it again


class Method(nn.Module):
    """Base class. Subclasses set the class attributes and implement :meth:`loss`.

    The module's own parameters (e.g. a discriminator) are trained with the classifier by the same optimizer.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str] = ""
    adversarial: ClassVar[bool] = False
    uses_target: ClassVar[bool] = True
    # The whole backbone stays frozen (no freeze_depth to search) and the head is a logistic regression fitted
    # to convergence (algorithms.linear_head), so the method's knobs are its own plus the head's ``head_c``.
    feature_extraction: ClassVar[bool] = False
    adaptation_weight: ClassVar[str | None] = None  # the knob that turns the adaptation term off at 0
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, hparams: dict[str, Any], feature_dim: int, num_classes: int,
                 input_shape: tuple[int, ...] = ()):
        super().__init__()
        self.hparams = hparams
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.input_shape = input_shape  # shape of one input to the trainable part (after the frozen prefix)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss for one step and the named terms to log (detached scalar tensors, averaged per epoch)."""
        raise NotImplementedError

    @classmethod
    def shared_params(cls) -> tuple[Param, ...]:
        """The registry-wide knobs this method uses (``adv_weight`` only for adversarial methods)."""
        if cls.feature_extraction:
            return (HEAD_C,)
        return (LR, FREEZE_DEPTH, ADV_WEIGHT) if cls.adversarial else (LR, FREEZE_DEPTH)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {p.name: p.default for p in (*cls.shared_params(), *cls.params)}


class ShallowMethod(Method):
    """A closed-form adaptation on extracted features (SA, CORAL, TCA, JDA, KMM).

    :meth:`adapt` fits on the source and target training features and returns the task with every domain
    transformed; the shared loop then fits a logistic-regression head on the result (weighted by
    :meth:`source_weights`), so shallow and deep methods meet on one leaderboard. Fitted matrices should be
    registered as buffers so checkpoints hold them.
    """

    feature_extraction = True
    uses_target = False

    def adapt(self, task: Task) -> Task:
        raise NotImplementedError

    def source_weights(self) -> torch.Tensor | None:
        """Per-sample weights of ``source_train`` for the head's loss; None = uniform."""
        return None


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Source cross-entropy as a weighted mean over the batch: sum(w_i CE_i) / sum(w_i)."""
    per_sample = F.cross_entropy(logits, labels, reduction="none")
    return (weights * per_sample).sum() / weights.sum().clamp_min(1e-6)


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise InputError("methods", f"unknown method {name!r}; expected one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]


# Importing the family modules fills the registry.
from . import (  # noqa: E402,F401
    adversarial,
    collaborative,
    discrepancy,
    finetune,
    generative,
    meta,
    reweight,
    self_training,
    subspace,
)
