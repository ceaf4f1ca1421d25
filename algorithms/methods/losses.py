"""Loss pieces that methods combine: gradient reversal, the domain-adversarial loss, entropy, MMD, CORAL.

Each is a plain function of tensors (or a small module factory), with no knowledge of a method's knobs; a method's
:meth:`~adaptune.algorithms.methods.base.Method.adaptation` picks the pieces and the base weighs the result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Source cross-entropy as a weighted mean over the batch: sum(w_i CE_i) / sum(w_i)."""
    per_sample = F.cross_entropy(logits, labels, reduction="none")
    return (weights * per_sample).sum() / weights.sum().clamp_min(1e-6)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of each row of class probabilities."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


# ---------------------------------------------------------------------------------------------------------
# Gradient reversal and the domain-adversarial loss


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
    """The discriminator of :func:`domain_adversarial_loss`: two hidden layers with batch norm, one logit."""
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


# ---------------------------------------------------------------------------------------------------------
# Statistical distances between the domains' batches: kernel MMD and CORAL

BANDWIDTH_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)  # TLlib's multi-kernel family, alpha = 2^-3 .. 2^1


def gaussian_kernels(x: torch.Tensor, factors: tuple[float, ...] = BANDWIDTH_FACTORS) -> torch.Tensor:
    """Sum of Gaussian kernel matrices whose bandwidths are ``factors`` x the mean squared distance."""
    distances = torch.cdist(x, x).pow(2)
    mean = distances.detach().mean().clamp_min(1e-12)
    return sum(torch.exp(-distances / (2 * factor * mean)) for factor in factors)


def mmd_from_kernel(kernel: torch.Tensor, n_source: int) -> torch.Tensor:
    """Biased quadratic-time MMD^2 estimate from a joint kernel over [source; target]."""
    ss, tt, st = kernel[:n_source, :n_source], kernel[n_source:, n_source:], kernel[:n_source, n_source:]
    return ss.mean() + tt.mean() - 2 * st.mean()


def coral_distance(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance of feature covariances / (4 d^2) (Sun & Saenko, ECCV-W 2016)."""
    d = source.shape[1]
    return (torch.cov(source.T) - torch.cov(target.T)).pow(2).sum() / (4 * d * d)
