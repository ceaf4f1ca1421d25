"""Self-training family: use the model's own target predictions as a training signal."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hparams import FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register
from .losses import entropy


def minimum_class_confusion(target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """MCC loss (Jin et al., ECCV 2020): off-diagonal mass of the entropy-weighted class-correlation matrix."""
    probs = F.softmax(target_logits / temperature, dim=1)
    n, classes = probs.shape
    weight = 1 + torch.exp(-entropy(probs).detach())
    weight = (n * weight / weight.sum()).unsqueeze(1)
    confusion = (probs * weight).T @ probs
    confusion = confusion / confusion.sum(dim=1, keepdim=True)
    return (confusion.sum() - torch.trace(confusion)) / classes


MCC_WEIGHT = Param("mcc_weight", 1.0, 0.1, 3.0, log=True, help="weight of the class-confusion loss")


@register
class MCC(Method):
    """Minimum Class Confusion (Jin et al., ECCV 2020): penalise between-class confusion on target batches."""

    name = "mcc"
    family = "self_training"
    summary = "minimum class confusion on target predictions"
    params = (LR, FREEZE_DEPTH, MCC_WEIGHT,
              Param("temperature", 2.5, 1.0, 5.0, help="softmax temperature of the confusion matrix"))
    adaptation_weight = MCC_WEIGHT

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        mcc = minimum_class_confusion(batch.target_logits.float(), self.hparams["temperature"])
        return mcc, {"mcc_loss": mcc.detach()}


PSEUDO_WEIGHT = Param("pseudo_weight", 1.0, 0.1, 3.0, log=True, help="weight of the pseudo-label loss")


@register
class SelfTraining(Method):
    """Confidence-thresholded pseudo-labelling (Lee, ICML-W 2013; the FixMatch-style threshold of Sohn et al.).

    Target samples whose predicted probability exceeds ``threshold`` are trained on their predicted class,
    weighted by ``pseudo_weight`` (ramped up with training progress so early mistakes are not reinforced).
    """

    name = "self_training"
    family = "self_training"
    summary = "confidence-thresholded target pseudo-labels"
    params = (LR, FREEZE_DEPTH,
              Param("threshold", 0.9, 0.5, 0.99, help="minimum confidence for a target pseudo-label"),
              PSEUDO_WEIGHT)
    adaptation_weight = PSEUDO_WEIGHT

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        confidence, pseudo = F.softmax(batch.target_logits.detach().float(), dim=1).max(dim=1)
        mask = (confidence >= self.hparams["threshold"]).float()
        per_sample = F.cross_entropy(batch.target_logits, pseudo, reduction="none")
        pseudo_loss = (per_sample * mask).sum() / mask.sum().clamp_min(1.0)
        return pseudo_loss, {"pseudo_loss": pseudo_loss.detach(), "pseudo_fraction": mask.mean()}

    def adaptation_scale(self, batch: Batch) -> float:
        return super().adaptation_scale(batch) * min(1.0, 2 * batch.progress)
