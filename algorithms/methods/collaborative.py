"""Collaborative family: sample-level and feature-level adaptation optimised together."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ..hparams import ADV_WEIGHT, DISC_HIDDEN, FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register
from .losses import domain_adversarial_loss, domain_discriminator

WARMUP_STEPS = 20  # steps of confusion statistics before class weights are trusted


def class_importance_weights(confusion: torch.Tensor, target_prediction: torch.Tensor,
                             max_weight: float = 5.0) -> torch.Tensor:
    """w >= 0 with C w ≈ μ_t (BBSE, Lipton et al. 2018): C[i, j] = P_s(pred = i, y = j), μ_t = P_t(pred = i).

    Solved by least squares and clipped to [0, max_weight]; w_j estimates P_t(y = j) / P_s(y = j).
    """
    solution = torch.linalg.lstsq(confusion.double(), target_prediction.double().unsqueeze(1)).solution.squeeze(1)
    return solution.clamp(0.0, max_weight).float()


@register
class IWDAN(Method):
    """Importance-weighted DANN (Tachet des Combes, Zhao, Wang, Gordon, NeurIPS 2020).

    Feature-level: a domain discriminator behind gradient reversal, as DANN. Sample-level: each source sample
    is weighted by its class importance weight w_y = P_t(y)/P_s(y), estimated from running (EMA) statistics
    of source confusion and target predictions, in both the classification and the adversarial loss. Under
    label shift this aligns P_t(z) with the reweighted source instead of forcing the marginals together.
    """

    name = "collaborative"
    family = "collaborative"
    summary = "IWDAN: class importance weights inside adversarial alignment"
    params = (LR, FREEZE_DEPTH, ADV_WEIGHT, DISC_HIDDEN,
              Param("weight_ema", 0.9, 0.5, 0.99, help="EMA factor of the class-weight statistics"))
    adaptation_weight = ADV_WEIGHT

    def build(self) -> None:
        num_classes = self.num_classes
        self.discriminator = domain_discriminator(self.feature_dim, int(self.hparams["disc_hidden"]))
        self.register_buffer("confusion", torch.full((num_classes, num_classes), 1.0 / num_classes**2))
        self.register_buffer("target_prediction", torch.full((num_classes,), 1.0 / num_classes))
        self.register_buffer("class_weights", torch.ones(num_classes))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update_weights(self, batch: Batch) -> None:
        ema = self.hparams["weight_ema"]
        probs_s = F.softmax(batch.source_logits.float(), dim=1)
        onehot = F.one_hot(batch.source_labels, self.num_classes).float()
        self.confusion.mul_(ema).add_((1 - ema) * probs_s.T @ onehot / len(onehot))
        self.target_prediction.mul_(ema).add_((1 - ema) * F.softmax(batch.target_logits.float(), dim=1).mean(0))
        self.steps += 1
        if self.steps > WARMUP_STEPS:
            self.class_weights.copy_(class_importance_weights(self.confusion, self.target_prediction))

    def prepare(self, batch: Batch) -> Batch:
        """Update the statistics with this batch, then weigh its source samples by their class."""
        self.update_weights(batch)
        return replace(batch, source_weights=self.class_weights[batch.source_labels])

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, batch.source_features,
                                                       batch.target_features, batch.progress,
                                                       source_weight=batch.source_weights)
        return adv_loss, {"adv_loss": adv_loss.detach(), "domain_acc": domain_acc,
                          "max_class_weight": self.class_weights.max()}
