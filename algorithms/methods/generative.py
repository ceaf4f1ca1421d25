"""Generative family: synthesise target-like virtual samples from labeled source samples and train on them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..hparams import Param
from . import Batch, Method, register
from .adversarial import domain_adversarial_loss


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
    adversarial = True
    adaptation_weight = "adv_weight"
    params = (
        Param("noise_dim", 8, choices=(4, 8, 16), help="noise channels of the generator"),
        Param("virtual_weight", 1.0, 0.1, 3.0, log=True, help="weight of the classification loss on virtual samples"),
    )

    def __init__(self, hparams: dict, feature_dim: int, num_classes: int, input_shape: tuple[int, ...] = ()):
        super().__init__(hparams, feature_dim, num_classes, input_shape)
        self.generator = ResidualGenerator(input_shape, int(hparams["noise_dim"]))
        self.discriminator = input_discriminator(input_shape)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        virtual = self.generator(batch.source_inputs)
        _, virtual_logits = batch.classifier(virtual)
        virtual_loss = F.cross_entropy(virtual_logits, batch.source_labels)
        adv_loss, domain_acc = domain_adversarial_loss(self.discriminator, virtual, batch.target_inputs, batch.progress)
        total = cls_loss + self.hparams["virtual_weight"] * virtual_loss + self.hparams["adv_weight"] * adv_loss
        return total, {"cls_loss": cls_loss.detach(), "virtual_loss": virtual_loss.detach(),
                       "adv_loss": adv_loss.detach(), "domain_acc": domain_acc}
