"""Generative family: synthesise target-like virtual samples from labeled source samples and train on them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..hparams import ADV_WEIGHT, FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register
from .losses import domain_adversarial_loss


class ResidualGenerator(nn.Module):
    """x -> x + G(x, z): a residual generator keeps the source content, so its label stays valid.

    Images (``[C, H, W]``) get PixelDA's convolutional design (Bousmalis et al., CVPR 2017); feature vectors
    an MLP, the feature-level counterpart.
    """

    def __init__(self, input_shape: tuple[int, ...], noise_dim: int, hidden: int = 32):
        super().__init__()
        self.noise_dim = noise_dim
        self.images = len(input_shape) == 3
        if self.images:
            channels = input_shape[0]
            self.net = nn.Sequential(
                nn.Conv2d(channels + noise_dim, hidden, 3, padding=1), nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                nn.Conv2d(hidden, channels, 3, padding=1),
            )
        else:
            width = input_shape[0]
            self.net = nn.Sequential(nn.Linear(width + noise_dim, 4 * hidden), nn.ReLU(),
                                     nn.Linear(4 * hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(len(x), self.noise_dim, device=x.device, dtype=x.dtype)
        if self.images:
            noise = noise[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return x + self.net(torch.cat([x, noise], dim=1))


def input_discriminator(input_shape: tuple[int, ...], hidden: int = 64) -> nn.Module:
    if len(input_shape) == 3:
        return nn.Sequential(
            nn.Conv2d(input_shape[0], hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, 2 * hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * hidden, 1),
        )
    return nn.Sequential(nn.Linear(input_shape[0], 4 * hidden), nn.LeakyReLU(0.2), nn.Linear(4 * hidden, 1))


@dataclass
class VirtualBatch(Batch):
    """A batch plus the generator's virtual samples (one per source sample) and the classifier's logits on them."""

    virtual_inputs: torch.Tensor | None = None
    virtual_logits: torch.Tensor | None = None


@register
class GANSynthesis(Method):
    """Train the classifier on generated target-like samples (PixelDA, Bousmalis et al., CVPR 2017).

    A residual generator maps each source sample (plus noise) to a virtual sample that a discriminator cannot
    tell from real target samples (gradient reversal, weight ``adv_weight``); the classifier learns from real
    source and virtual samples with the source labels (``virtual_weight`` for the latter). The generator works
    on the input of the trainable part: pixels for images, the feature vector for feature tables.
    """

    name = "gan_synthesis"
    family = "generative"
    summary = "GAN-generated target-like samples from source (pixel- or feature-level)"
    params = (
        LR, FREEZE_DEPTH, ADV_WEIGHT,
        Param("noise_dim", 8, choices=(4, 8, 16), help="noise channels of the generator"),
        Param("virtual_weight", 1.0, 0.1, 3.0, log=True, help="weight of the classification loss on virtual samples"),
    )
    adaptation_weight = ADV_WEIGHT

    def build(self) -> None:
        self.generator = ResidualGenerator(self.input_shape, int(self.hparams["noise_dim"]))
        self.discriminator = input_discriminator(self.input_shape)

    def prepare(self, batch: Batch) -> VirtualBatch:
        virtual = self.generator(batch.source_inputs)
        _, virtual_logits = batch.classifier(virtual)
        fields_of_batch = {f.name: getattr(batch, f.name) for f in fields(batch)}
        return VirtualBatch(**fields_of_batch, virtual_inputs=virtual, virtual_logits=virtual_logits)

    def source_loss(self, batch: VirtualBatch) -> tuple[torch.Tensor, Logs]:
        """Cross-entropy on the real source samples plus ``virtual_weight`` x the one on their virtual copies."""
        cls_loss, logs = super().source_loss(batch)
        virtual_loss = F.cross_entropy(batch.virtual_logits, batch.source_labels)
        return cls_loss + self.hparams["virtual_weight"] * virtual_loss, {**logs, "virtual_loss": virtual_loss.detach()}

    def adaptation(self, batch: VirtualBatch) -> tuple[torch.Tensor, Logs]:
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, batch.virtual_inputs, batch.target_inputs,
                                                       batch.progress)
        return adv_loss, {"adv_loss": adv_loss.detach(), "domain_acc": domain_acc}
