"""Adversarial family: a domain discriminator (or adversarial head) trained through gradient reversal."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..hparams import ADV_WEIGHT, DISC_HIDDEN, FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register
from .losses import domain_adversarial_loss, domain_discriminator, entropy, grl_ramp, reverse_gradient


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
    params = (LR, FREEZE_DEPTH, ADV_WEIGHT, DISC_HIDDEN)
    adaptation_weight = ADV_WEIGHT

    def build(self) -> None:
        self.discriminator = domain_discriminator(self.feature_dim, int(self.hparams["disc_hidden"]))

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, batch.source_features,
                                                       batch.target_features, batch.progress)
        return adv_loss, {"adv_loss": adv_loss.detach(), "domain_acc": domain_acc}


class MultilinearMap(nn.Module):
    """CDAN's conditioning f ⊗ g; above ``max_dim`` outputs, the randomized version with fixed projections."""

    def __init__(self, feature_dim: int, num_classes: int, max_dim: int = 4096):
        super().__init__()
        self.randomized = feature_dim * num_classes > max_dim
        self.out_features = 1024 if self.randomized else feature_dim * num_classes
        if self.randomized:
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("rf", torch.randn(feature_dim, 1024, generator=generator))
            self.register_buffer("rg", torch.randn(num_classes, 1024, generator=generator))

    def forward(self, features: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        if self.randomized:
            return (features @ self.rf) * (probs @ self.rg) / math.sqrt(1024)
        return torch.bmm(probs.unsqueeze(2), features.unsqueeze(1)).flatten(1)


@register
class CDAN(Method):
    """Conditional adversarial domain adaptation (Long et al., NeurIPS 2018).

    The discriminator sees the multilinear map of features and (detached) class predictions, so alignment is
    conditioned on the class structure. With ``entropy_conditioning`` (CDAN+E) confident samples weigh more:
    w = 1 + exp(-H(p)).
    """

    name = "cdan"
    family = "adversarial"
    summary = "conditional adversarial alignment of features x predictions (+E: entropy weights)"
    params = (LR, FREEZE_DEPTH, ADV_WEIGHT, DISC_HIDDEN,
              Param("entropy_conditioning", True, choices=(True, False), help="CDAN+E weights"))
    adaptation_weight = ADV_WEIGHT

    def build(self) -> None:
        self.multilinear = MultilinearMap(self.feature_dim, self.num_classes)
        self.discriminator = domain_discriminator(self.multilinear.out_features, int(self.hparams["disc_hidden"]))

    def conditioned(self, features: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = F.softmax(logits.float(), dim=1).detach()
        return self.multilinear(features.float(), probs), 1 + torch.exp(-entropy(probs))

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        hs, ws = self.conditioned(batch.source_features, batch.source_logits)
        ht, wt = self.conditioned(batch.target_features, batch.target_logits)
        if not self.hparams["entropy_conditioning"]:
            ws = wt = None
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, hs, ht, batch.progress, ws, wt)
        return adv_loss, {"adv_loss": adv_loss.detach(), "domain_acc": domain_acc}


@register
class MDD(Method):
    """Margin Disparity Discrepancy (Zhang et al., ICML 2019), as in TLlib.

    An adversarial head h' behind gradient reversal maximises its disagreement with the main head's
    predictions on target while agreeing on source (margin ``mdd_margin``); the features minimise it.
    """

    name = "mdd"
    family = "adversarial"
    summary = "margin disparity discrepancy with an adversarial classifier head"
    params = (LR, FREEZE_DEPTH, ADV_WEIGHT, Param("mdd_margin", 4.0, 1.0, 8.0, help="margin gamma of the disparity"))
    adaptation_weight = ADV_WEIGHT

    def build(self) -> None:
        hidden = 1024
        self.adversarial_head = nn.Sequential(nn.Linear(self.feature_dim, hidden), nn.ReLU(), nn.Dropout(0.5),
                                              nn.Linear(hidden, self.num_classes))

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        features = torch.cat([batch.source_features, batch.target_features])
        # TLlib caps MDD's reversed gradient at 0.1: the disparity is unbounded and overwhelms the features.
        adv_logits = self.adversarial_head(reverse_gradient(features, 0.1 * grl_ramp(batch.progress))).float()
        adv_s, adv_t = adv_logits[: len(batch.source_features)], adv_logits[len(batch.source_features) :]
        pred_s, pred_t = batch.source_logits.argmax(1).detach(), batch.target_logits.argmax(1).detach()
        source_disparity = F.cross_entropy(adv_s, pred_s)
        # log(1 - p) of the main head's class: pushes h' away from it on target
        target_disparity = F.nll_loss(torch.log((1 - F.softmax(adv_t, dim=1)).clamp_min(1e-6)), pred_t)
        disparity = self.hparams["mdd_margin"] * source_disparity + target_disparity
        return disparity, {"adv_loss": disparity.detach()}
