"""What a method is: the :class:`Method` base class, the :class:`Batch` its loss sees, and the registry.

A method declares its whole search space (``params``), builds the modules it trains besides the classifier
(:meth:`Method.build`) and returns its adaptation term (:meth:`Method.adaptation`); the base composes one step's
loss as ``source_loss + weight * term``. The shared epoch loop in :mod:`adaptune.algorithms.loop` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..domains import Task
from ..errors import InputError
from ..hparams import HEAD_L2, LR, Param
from .losses import weighted_cross_entropy

Logs = dict[str, torch.Tensor]  # named terms to log: detached scalar tensors, averaged per epoch


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
    source_weights: torch.Tensor | None = None  # per-sample weights of the source loss (None = uniform)


class Method(nn.Module):
    """Base class: subclasses set the class attributes, and implement :meth:`adaptation` unless they have no term.

    One step's loss is ``source_loss + weight * term``: the cross-entropy on the labeled source batch (weighted by
    ``batch.source_weights`` when :meth:`prepare` sets them), plus the method's term scaled by the value of its
    ``adaptation_weight`` knob (:meth:`adaptation_scale`). The module's own parameters (a discriminator, ...) are
    trained with the classifier by the same optimizer.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str] = ""
    # The whole search space, in the order Optuna suggests it (shared knobs first, as the leaderboard lists them).
    params: ClassVar[tuple[Param, ...]] = ()
    # The knob that scales the adaptation term and turns it off at 0; None: a method without a term.
    adaptation_weight: ClassVar[Param | None] = None
    uses_target: ClassVar[bool] = True
    # The whole backbone stays frozen and the head is a logistic regression fitted to convergence
    # (algorithms.linear_head) with the ``head_l2`` knob; there is no learning rate or freeze depth to search.
    feature_extraction: ClassVar[bool] = False

    def __init__(self, hparams: dict[str, Any], feature_dim: int, num_classes: int,
                 input_shape: tuple[int, ...] = ()):
        super().__init__()
        self.hparams = hparams
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.input_shape = input_shape  # shape of one input to the trainable part (after the frozen prefix)
        self.build()

    def build(self) -> None:
        """Create the method's own modules and buffers from ``self.hparams`` and the dimensions; none by default."""

    def prepare(self, batch: Batch) -> Batch:
        """What both the source loss and the adaptation term need from this step (importance weights, generated
        samples), computed once; the batch as it is by default."""
        return batch

    def source_loss(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """Cross-entropy on the labeled source batch, weighted when ``batch.source_weights`` is set."""
        if batch.source_weights is None:
            loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        else:
            loss = weighted_cross_entropy(batch.source_logits, batch.source_labels, batch.source_weights)
        return loss, {"cls_loss": loss.detach()}

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The adaptation term (before its weight) and what to log about it."""
        raise NotImplementedError(f"{type(self).__name__} names an adaptation_weight but has no adaptation()")

    def adaptation_scale(self, batch: Batch) -> float:
        """The factor of the adaptation term in this step: the value of the ``adaptation_weight`` knob."""
        return self.hparams[self.adaptation_weight.name]

    def loss(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """Total loss for one step and the named terms to log."""
        batch = self.prepare(batch)
        source, logs = self.source_loss(batch)
        if self.adaptation_weight is None:
            return source, logs
        term, term_logs = self.adaptation(batch)
        return source + self.adaptation_scale(batch) * term, {**logs, **term_logs}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {p.name: p.default for p in cls.params}


class ShallowMethod(Method):
    """A closed-form adaptation on extracted features (SA, CORAL, TCA, JDA, KMM).

    :meth:`adapt` fits on the source and target training features and returns the task with every domain
    transformed; the shared loop then fits a logistic-regression head on the result (weighted by
    :meth:`source_weights`), so shallow and deep methods meet on one leaderboard. Fitted matrices should be
    registered as buffers (in :meth:`build`) so checkpoints hold them.
    """

    feature_extraction = True
    uses_target = False
    params = (HEAD_L2,)

    def adapt(self, task: Task) -> Task:
        raise NotImplementedError

    def source_weights(self) -> torch.Tensor | None:
        """Per-sample weights of ``source_train`` for the head's loss; None = uniform."""
        return None


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a method to the registry, after checking that its space holds every knob the loop and the loss read."""
    names = [p.name for p in cls.params]
    # The loop trains deep methods with ``lr`` and fits the head of feature-extraction ones with ``head_l2``.
    required = [HEAD_L2 if cls.feature_extraction else LR]
    if cls.adaptation_weight is not None:
        required.append(cls.adaptation_weight)
    missing = [p.name for p in required if p not in cls.params]
    if missing:
        raise TypeError(f"method {cls.__name__}: params lacks {', '.join(missing)}, which the loop or its loss reads")
    if len(set(names)) != len(names):
        raise TypeError(f"method {cls.__name__}: params lists a knob twice ({', '.join(names)})")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise InputError("methods", f"unknown method {name!r}; expected one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]
