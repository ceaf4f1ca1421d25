"""Discrepancy family: minimise a statistical distance between source and target features (kernels, moments)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hparams import FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register
from .losses import coral_distance, gaussian_kernels, mmd_from_kernel

ALIGN_WEIGHT = Param("align_weight", 1.0, 0.01, 10.0, log=True, help="weight of the MMD alignment loss")
# The 1/(4 d^2) normalisation makes the raw CORAL loss tiny; the paper tunes the weight so both losses end similar.
CORAL_WEIGHT = Param("coral_weight", 100.0, 1.0, 1e4, log=True, help="weight of the CORAL loss")


class _DiscrepancyMethod(Method):
    """The adaptation term is a discrepancy between the two domains' batches, logged as ``align_loss``."""

    family = "discrepancy"

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        align = self.discrepancy(batch)
        return align, {"align_loss": align.detach()}


@register
class DAN(_DiscrepancyMethod):
    """Deep Adaptation Network (Long et al., ICML 2015): multi-kernel MMD between feature distributions."""

    name = "dan"
    summary = "multi-kernel MMD on features"
    params = (LR, FREEZE_DEPTH, ALIGN_WEIGHT)
    adaptation_weight = ALIGN_WEIGHT

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        features = torch.cat([batch.source_features, batch.target_features]).float()
        return mmd_from_kernel(gaussian_kernels(features), len(batch.source_features))


@register
class JAN(_DiscrepancyMethod):
    """Joint Adaptation Network (Long et al., ICML 2017): MMD of the joint kernel over features and predictions."""

    name = "jan"
    summary = "joint MMD over features and class predictions"
    params = (LR, FREEZE_DEPTH, ALIGN_WEIGHT)
    adaptation_weight = ALIGN_WEIGHT

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
    params = (LR, FREEZE_DEPTH, CORAL_WEIGHT)
    adaptation_weight = CORAL_WEIGHT

    def discrepancy(self, batch: Batch) -> torch.Tensor:
        return coral_distance(batch.source_features.float(), batch.target_features.float())
