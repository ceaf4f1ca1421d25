"""Fine-tuning family: train on labeled source only, all of it (``freeze_depth``) or just the head."""

from __future__ import annotations

from ..hparams import FREEZE_DEPTH, HEAD_L2, LR, Param
from .base import Method, register


@register
class SourceOnly(Method):
    """Supervised fine-tuning on the source domain: the no-adaptation baseline every method must beat.

    ``freeze_depth`` keeps the leading backbone blocks fixed and ``backbone_lr_mult`` scales the learning
    rate of the blocks that do train, the usual recipe for pretrained layers (Yosinski et al., NeurIPS 2014).
    The loss is the base's source cross-entropy alone: no ``adaptation_weight``, no term.
    """

    name = "source_only"
    family = "finetune"
    summary = "fine-tuning on labeled source (no adaptation term)"
    uses_target = False
    params = (LR, FREEZE_DEPTH,
              Param("backbone_lr_mult", 1.0, 0.01, 1.0, log=True, help="learning-rate factor of backbone blocks"))


@register
class LinearProbe(SourceOnly):
    """Feature extraction: the whole backbone is frozen and only the linear head trains on source labels.

    Without pretrained weights the head trains on the raw inputs (multinomial logistic regression).
    """

    name = "linear_probe"
    summary = "frozen backbone, train only the head"
    feature_extraction = True
    params = (HEAD_L2,)
