"""Adversarial family: a domain discriminator on features, trained through gradient reversal."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..hparams import Param
from . import Batch, Method, register


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # noqa: ANN001
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity forward, gradient multiplied by ``-coeff`` backward (Ganin & Lempitsky, ICML 2015)."""
    return _ReverseGrad.apply(x, coeff)


def grl_ramp(progress: float, gamma: float = 10.0) -> float:
    """DANN's schedule 2 / (1 + exp(-gamma p)) - 1: suppresses noisy discriminator gradients early on."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def domain_discriminator(in_features: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, 1),
    )


@register
class DANN(Method):
    """Domain-adversarial training (Ganin et al., JMLR 2016).

    loss = CE(source) + adv_weight * BCE(discriminator(GRL(features)), domain), where the gradient reversal
    layer makes the feature extractor maximise the discriminator's loss, aligning the two feature
    distributions. ``adv_weight = 0`` reduces it exactly to source-only training.
    """

    name = "dann"
    family = "adversarial"
    summary = "domain-adversarial network with gradient reversal"
    adversarial = True
    params = (Param("disc_hidden", 512, choices=(256, 512, 1024), help="width of the domain discriminator"),)

    def __init__(self, hparams: dict, feature_dim: int, num_classes: int):
        super().__init__(hparams, feature_dim, num_classes)
        self.discriminator = domain_discriminator(feature_dim, int(hparams["disc_hidden"]))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        features = torch.cat([batch.source_features, batch.target_features])
        domain = torch.cat([features.new_ones(len(batch.source_features)),
                            features.new_zeros(len(batch.target_features))]).float()
        logits = self.discriminator(reverse_gradient(features, grl_ramp(batch.progress))).squeeze(1).float()
        adv_loss = F.binary_cross_entropy_with_logits(logits, domain)
        domain_acc = ((logits.detach() > 0).float() == domain).float().mean()
        total = cls_loss + self.hparams["adv_weight"] * adv_loss
        return total, {"cls_loss": cls_loss.detach(), "adv_loss": adv_loss.detach(), "domain_acc": domain_acc}
