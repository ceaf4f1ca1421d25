"""Backbones as an ordered list of blocks, so ``freeze_depth = k`` means "blocks[:k] are frozen".

Because the frozen blocks are a pure function of the input, their outputs can be computed once and shared
by every trial with the same backbone, weights, depth and data (see :mod:`adaptune.algorithms.features`).
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InputError, first_line


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
    def build(input_shape: tuple[int, ...]) -> Backbone:
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
    def build(input_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 256)) -> Backbone:
        if len(input_shape) != 1:
            raise InputError("backbone", f"mlp expects feature vectors, got inputs of shape {input_shape}")
        widths = (input_shape[0], *hidden)
        blocks = nn.Sequential(
            *[nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.5)) for a, b in zip(widths, widths[1:])]
        )
        return Backbone("mlp", blocks, widths[-1])


def _reason(error: Exception) -> str:
    """One line of why ``torch.load`` refused a file."""
    # weights_only=True wraps the unpickler's reason in several lines of general advice.
    _, marker, reason = str(error).partition("WeightsUnpickler error:")
    return first_line(reason if marker and reason.strip() else error)[:200]


def _read_state_dict(path: str, arch: str) -> Mapping[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True`` so a file can never run code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refused file is reported below; its load warnings add nothing
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a file it cannot read
        reason = _reason(error)
    else:
        if isinstance(state, Mapping) and state and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            return state
        if isinstance(state, Mapping):
            reason = "it holds a mapping, but not one of parameter names to tensors"
        else:
            reason = f"it holds a {type(state).__name__}"
    raise InputError("weights", f"expected a PyTorch state dict (.pt/.pth) for {arch}, {path} is not one ({reason})")


def _cached_weights_file(arch: str, name: str) -> str:
    """The local torch hub cache file of torchvision weights ``name`` for ``arch``: a bare member name such as
    ``IMAGENET1K_V1`` or ``DEFAULT``, or a qualified one such as ``ResNet18_Weights.IMAGENET1K_V1``."""
    from torchvision.models import get_model_weights, get_weight

    family = get_model_weights(arch)
    accepted = ", ".join([*family.__members__][:6])
    try:
        enum = get_weight(name) if "." in name else family[name]
    except (ValueError, KeyError, AttributeError):
        raise InputError(
            "weights", f"expected a file path or a torchvision weights name for {arch} ({accepted}, or "
            f"{family.__name__}.NAME), got {name!r}"
        ) from None
    if not isinstance(enum, family):
        raise InputError("weights", f"{name} are weights of another architecture; expected {family.__name__} for "
                         f"{arch} ({accepted})")
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))
    if not os.path.isfile(cached):
        raise InputError("weights", f"{name} is not in the local cache ({cached}); adaptune never "
                         "downloads weights: place the file there or pass its path")
    return cached


WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors")


def is_weights_file(weights: str) -> bool:
    """``--weights`` names a file, as opposed to a torchvision weights name such as ResNet18_Weights.IMAGENET1K_V1."""
    separators = {os.sep, os.altsep} - {None}
    return (any(sep in weights for sep in separators) or weights.endswith(WEIGHTS_SUFFIXES)
            or os.path.isfile(weights))


def _load_resnet_weights(model: nn.Module, arch: str, weights: str | None) -> None:
    """Weights from a local file, or a torchvision weights name found in the local torch hub cache.

    Never downloads: a name whose file is not cached is an error that says where to put the file.
    """
    if weights is None:
        return
    if is_weights_file(weights):
        if not os.path.isfile(weights):
            raise InputError("weights", f"expected a readable weights file, {weights!r} does not exist")
        path = weights
    else:
        path = _cached_weights_file(arch, weights)
    state = {k: v for k, v in _read_state_dict(path, arch).items() if not k.startswith("fc.")}
    # Checked here rather than left to load_state_dict, whose error lists every mismatch over many lines.
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    if wrong:
        first = wrong[0]
        raise InputError("weights", f"weights in {path} do not fit {arch}: {first} has shape "
                         f"{tuple(state[first].shape)}, expected {tuple(own[first].shape)} "
                         f"({len(wrong)} tensors of the wrong shape)")
    missing = [k for k in model.load_state_dict(state, strict=False).missing_keys if not k.startswith("fc.")]
    if missing:
        raise InputError("weights", f"weights in {path} do not fit {arch}: {len(missing)} tensors missing "
                         f"({', '.join(missing[:3])}, ...)")


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


def pretrained_backbones() -> tuple[str, ...]:
    """The backbones that load pretrained weights: those whose build takes ``weights``."""
    return tuple(name for name, build in BACKBONES.items() if "weights" in inspect.signature(build).parameters)


def build_backbone(name: str, input_shape: tuple[int, ...], weights: str | None = None) -> Backbone:
    """Backbone ``name`` for samples of ``input_shape``: random init, or ``weights`` for a pretrained backbone."""
    if name not in BACKBONES:
        raise InputError("backbone", f"unknown backbone {name!r}; expected one of: {', '.join(BACKBONES)}")
    if weights is None:
        return BACKBONES[name](input_shape)
    if name not in pretrained_backbones():
        # Weights would be ignored, yet they widen the freeze_depth range searched.
        raise InputError("weights", f"expected no weights for the {name} backbone; pretrained weights exist for "
                         f"{', '.join(pretrained_backbones())}")
    return BACKBONES[name](input_shape, weights=weights)


def backbone_depth(name: str, input_shape: tuple[int, ...]) -> int:
    """Number of blocks, without loading weights (used to bound the freeze_depth search range)."""
    return build_backbone(name, input_shape).depth
