"""Discrepancy family: minimise a statistical distance between source and target features (kernels, moments)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hparams import Param
from . import Batch, Method, register

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


class _DiscrepancyMethod(Method):
    """CE(source) + ``align_weight`` x a discrepancy between the two domains' batches."""

    family = "discrepancy"
    weight = Param("align_weight", 1.0, 0.01, 10.0, log=True, help="weight of the MMD alignment loss")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = (cls.weight,)
        cls.adaptation_weight = cls.weight.name

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        align = self.discrepancy(batch)
        total = cls_loss + self.hparams[self.weight.name] * align
        return total, {"cls_loss": cls_loss.detach(), "align_loss": align.detach()}


@register
class DAN(_DiscrepancyMethod):
    """Deep Adaptation Network (Long et al., ICML 2015): multi-kernel MMD between feature distributions."""

    name = "dan"
    summary = "multi-kernel MMD on features"

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        features = torch.cat([batch.source_features, batch.target_features]).float()
        return mmd_from_kernel(gaussian_kernels(features), len(batch.source_features))


@register
class JAN(_DiscrepancyMethod):
    """Joint Adaptation Network (Long et al., ICML 2017): MMD of the joint kernel over features and predictions."""

    name = "jan"
    summary = "joint MMD over features and class predictions"

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        features = torch.cat([batch.source_features, batch.target_features]).float()
        probs = F.softmax(torch.cat([batch.source_logits, batch.target_logits]).float(), dim=1)
        # TLlib's JMMD: the prediction layer uses one Gaussian kernel of fixed bandwidth sigma = 0.92
        prediction_kernel = torch.exp(-torch.cdist(probs, probs).pow(2) / (2 * 0.92**2))
        return mmd_from_kernel(gaussian_kernels(features) * prediction_kernel, len(batch.source_features))


@register
class DeepCORAL(_DiscrepancyMethod):
    """Deep CORAL (Sun & Saenko, ECCV-W 2016): align second-order feature statistics as a loss."""

    name = "deep_coral"
    summary = "covariance alignment loss on features"
    # The 1/(4 d^2) normalisation makes the raw loss tiny; the paper tunes the weight so both losses end similar.
    weight = Param("coral_weight", 100.0, 1.0, 1e4, log=True, help="weight of the CORAL loss")

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        return coral_distance(batch.source_features.float(), batch.target_features.float())
