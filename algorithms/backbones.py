"""Backbones as an ordered list of blocks, so ``freeze_depth = k`` means "blocks[:k] are frozen".

Because the frozen blocks are a pure function of the input, their outputs can be computed once and shared
by every trial with the same backbone, weights, depth and data (see :mod:`adaptune.algorithms.features`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InputError


@dataclass
class Backbone:
    """An ``nn.Sequential`` of blocks plus the width of the feature vector it ends with."""

    name: str
    blocks: nn.Sequential
    out_features: int
    weights: str | None = None  # what the weights came from; None = random init

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def split(self, freeze_depth: int) -> tuple[nn.Module, nn.Module]:
        """(frozen prefix, trainable rest). The prefix is put in eval mode with gradients off."""
        if not 0 <= freeze_depth <= self.depth:
            raise InputError("freeze_depth", f"expected 0..{self.depth} for backbone {self.name}, got {freeze_depth}")
        frozen = nn.Sequential(*list(self.blocks)[:freeze_depth]).eval().requires_grad_(False)
        trainable = nn.Sequential(*list(self.blocks)[freeze_depth:])
        return frozen, trainable


class LeNet:
    """The LeNet-style digit network of TLlib / ADDA: two conv blocks and a 500-unit fully connected block."""

    @staticmethod
    def build(input_shape: tuple[int, ...], **_: object) -> Backbone:
        channels = input_shape[0]
        side = input_shape[-1]
        conv_out = ((side - 4) // 2 - 4) // 2  # two 5x5 valid convs, each followed by a 2x2 max-pool
        blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2), nn.ReLU()),
            nn.Sequential(nn.Conv2d(20, 50, 5), nn.Dropout2d(0.5), nn.MaxPool2d(2), nn.ReLU()),
            nn.Sequential(nn.Flatten(), nn.Linear(50 * conv_out * conv_out, 500), nn.ReLU(), nn.Dropout(0.5)),
        )
        return Backbone("lenet", blocks, 500)


class MLP:
    """A feature-table backbone: ``hidden`` Linear-ReLU-Dropout blocks."""

    @staticmethod
    def build(input_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 256), **_: object) -> Backbone:
        if len(input_shape) != 1:
            raise InputError("backbone", f"mlp expects feature vectors, got inputs of shape {input_shape}")
        widths = (input_shape[0], *hidden)
        blocks = nn.Sequential(
            *[nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.5)) for a, b in zip(widths, widths[1:])]
        )
        return Backbone("mlp", blocks, widths[-1])


def _load_resnet_weights(model: nn.Module, arch: str, weights: str | None) -> None:
    """Weights from a local file, or a torchvision weights name found in the local torch hub cache.

    Never downloads: a name whose file is not cached is an error that says where to put the file.
    """
    if weights is None:
        return
    if os.path.sep in weights or weights.endswith((".pt", ".pth")):
        if not os.path.isfile(weights):
            raise InputError("weights", f"expected a readable weights file, {weights!r} does not exist")
        state = torch.load(weights, map_location="cpu", weights_only=True)
    else:
        from torchvision.models import get_weight

        try:
            enum = get_weight(weights if "." in weights else f"{arch.capitalize()}_Weights.{weights}")
        except (ValueError, KeyError, AttributeError):
            raise InputError(
                "weights", f"expected a file path or a torchvision weights name such as "
                f"ResNet18_Weights.IMAGENET1K_V1, got {weights!r}"
            ) from None
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))
        if not os.path.isfile(cached):
            raise InputError("weights", f"{weights} is not in the local cache ({cached}); adaptune never "
                             "downloads weights: place the file there or pass its path")
        state = torch.load(cached, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, _ = model.load_state_dict(state, strict=False)
    if any(not k.startswith("fc.") for k in missing):
        raise InputError("weights", f"weights do not fit {arch}: missing {missing[:3]}...")


class ResNet:
    """torchvision ResNet cut into six blocks: stem, layer1..layer4, pooling (all six frozen = feature extraction)."""

    def __init__(self, arch: str):
        self.arch = arch

    def build(self, input_shape: tuple[int, ...], weights: str | None = None, **_: object) -> Backbone:
        import torchvision

        model = getattr(torchvision.models, self.arch)(weights=None)
        _load_resnet_weights(model, self.arch, weights)
        blocks = nn.Sequential(
            nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
            model.layer1, model.layer2, model.layer3, model.layer4,
            nn.Sequential(model.avgpool, nn.Flatten()),
        )
        return Backbone(self.arch, blocks, model.fc.in_features, weights)


BACKBONES: dict[str, Callable[..., Backbone]] = {
    "lenet": LeNet.build,
    "mlp": MLP.build,
    "resnet18": ResNet("resnet18").build,
    "resnet50": ResNet("resnet50").build,
}


def build_backbone(name: str, input_shape: tuple[int, ...], weights: str | None = None) -> Backbone:
    if name not in BACKBONES:
        raise InputError("backbone", f"unknown backbone {name!r}; expected one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](input_shape, weights=weights)


def backbone_depth(name: str, input_shape: tuple[int, ...]) -> int:
    """Number of blocks, without loading weights (used to bound the freeze_depth search range)."""
    return build_backbone(name, input_shape).depth
