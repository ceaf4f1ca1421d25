"""Adversarial family: a domain discriminator (or adversarial head) trained through gradient reversal."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..hparams import Param
from . import Batch, Method, register
from .self_training import entropy


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


def domain_adversarial_loss(
    discriminator: nn.Module, source: torch.Tensor, target: torch.Tensor, progress: float,
    source_weight: torch.Tensor | None = None, target_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE of ``discriminator`` telling source (1) from target (0) behind a gradient-reversal layer.

    Optional per-sample weights (each normalised to mean 1 within its domain) serve CDAN's entropy
    conditioning and IWDAN's class importance weights. Returns (loss, discriminator accuracy).
    """
    inputs = torch.cat([source, target])
    logits = discriminator(reverse_gradient(inputs, grl_ramp(progress))).squeeze(1).float()
    labels = torch.cat([inputs.new_ones(len(source)), inputs.new_zeros(len(target))]).float()
    weight = None
    if source_weight is not None or target_weight is not None:
        ws = source_weight if source_weight is not None else source.new_ones(len(source))
        wt = target_weight if target_weight is not None else target.new_ones(len(target))
        weight = torch.cat([ws / ws.mean().clamp_min(1e-12), wt / wt.mean().clamp_min(1e-12)]).detach().float()
    loss = F.binary_cross_entropy_with_logits(logits, labels, weight=weight)
    accuracy = ((logits.detach() > 0).float() == labels).float().mean()
    return loss, accuracy


DISC_HIDDEN = Param("disc_hidden", 512, choices=(256, 512, 1024), help="width of the domain discriminator")


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
    adaptation_weight = "adv_weight"
    params = (DISC_HIDDEN,)

    def __init__(self, hparams: dict, feature_dim: int, num_classes: int, input_shape: tuple[int, ...] = ()):
        super().__init__(hparams, feature_dim, num_classes, input_shape)
        self.discriminator = domain_discriminator(feature_dim, int(hparams["disc_hidden"]))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, batch.source_features,
                                                       batch.target_features, batch.progress)
        total = cls_loss + self.hparams["adv_weight"] * adv_loss
        return total, {"cls_loss": cls_loss.detach(), "adv_loss": adv_loss.detach(), "domain_acc": domain_acc}


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
    adversarial = True
    adaptation_weight = "adv_weight"
    params = (DISC_HIDDEN, Param("entropy_conditioning", True, choices=(True, False), help="CDAN+E weights"))

    def __init__(self, hparams: dict, feature_dim: int, num_classes: int, input_shape: tuple[int, ...] = ()):
        super().__init__(hparams, feature_dim, num_classes, input_shape)
        self.multilinear = MultilinearMap(feature_dim, num_classes)
        self.discriminator = domain_discriminator(self.multilinear.out_features, int(hparams["disc_hidden"]))

    def conditioned(self, features: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = F.softmax(logits.float(), dim=1).detach()
        return self.multilinear(features.float(), probs), 1 + torch.exp(-entropy(probs))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        hs, ws = self.conditioned(batch.source_features, batch.source_logits)
        ht, wt = self.conditioned(batch.target_features, batch.target_logits)
        if not self.hparams["entropy_conditioning"]:
            ws = wt = None
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, hs, ht, batch.progress, ws, wt)
        total = cls_loss + self.hparams["adv_weight"] * adv_loss
        return total, {"cls_loss": cls_loss.detach(), "adv_loss": adv_loss.detach(), "domain_acc": domain_acc}


@register
class MDD(Method):
    """Margin Disparity Discrepancy (Zhang et al., ICML 2019), as in TLlib.

    An adversarial head h' behind gradient reversal maximises its disagreement with the main head's
    predictions on target while agreeing on source (margin ``mdd_margin``); the features minimise it.
    """

    name = "mdd"
    family = "adversarial"
    summary = "margin disparity discrepancy with an adversarial classifier head"
    adversarial = True
    adaptation_weight = "adv_weight"
    params = (Param("mdd_margin", 4.0, 1.0, 8.0, help="margin gamma of the disparity"),)

    def __init__(self, hparams: dict, feature_dim: int, num_classes: int, input_shape: tuple[int, ...] = ()):
        super().__init__(hparams, feature_dim, num_classes, input_shape)
        hidden = 1024
        self.adversarial_head = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(0.5),
                                              nn.Linear(hidden, num_classes))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        features = torch.cat([batch.source_features, batch.target_features])
        # TLlib caps MDD's reversed gradient at 0.1: the disparity is unbounded and overwhelms the features.
        adv_logits = self.adversarial_head(reverse_gradient(features, 0.1 * grl_ramp(batch.progress))).float()
        adv_s, adv_t = adv_logits[: len(batch.source_features)], adv_logits[len(batch.source_features) :]
        pred_s, pred_t = batch.source_logits.argmax(1).detach(), batch.target_logits.argmax(1).detach()
        source_disparity = F.cross_entropy(adv_s, pred_s)
        # log(1 - p) of the main head's class: pushes h' away from it on target
        target_disparity = F.nll_loss(torch.log((1 - F.softmax(adv_t, dim=1)).clamp_min(1e-6)), pred_t)
        disparity = self.hparams["mdd_margin"] * source_disparity + target_disparity
        total = cls_loss + self.hparams["adv_weight"] * disparity
        return total, {"cls_loss": cls_loss.detach(), "adv_loss": disparity.detach()}
