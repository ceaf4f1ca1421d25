"""Backbones as an ordered list of stages, so ``freeze_depth = k`` means "stages[:k] are frozen".

Because the frozen stages are a pure function of the input, their outputs can be computed once and shared
by every trial with the same backbone, weights, depth and data (see :mod:`adaptune.algorithms.features`).

Names: the built-in ``lenet``, ``mlp``, ``resnet18`` and ``resnet50``; ``torchvision:NAME`` for any torchvision
ResNet (``resnet18`` is ``torchvision:resnet18``); ``timm:NAME`` for any model timm can create. Every backbone
ends in a flat feature vector of ``out_features`` (the model's own pooling, without its classifier: what
timm's ``forward_head(pre_logits=True)`` returns). The stages ``freeze_depth`` counts, per family:

- LeNet: conv, conv, fully connected (3).
- MLP: one Linear-ReLU-Dropout per hidden layer (2).
- ResNet (torchvision, ``timm:resnet*``, ``timm:resnext*``, ...): stem (conv1, bn1, activation, maxpool),
  layer1..layer4, pooling (6).
- ConvNeXt (timm): stem, stages.0..3, final norm and pooling (6).
- ViT (timm's ``vision_transformer`` models): embedding (patches, class/register tokens, positions), the
  transformer blocks in 4 consecutive groups (3 blocks each for 12), final norm and token pooling (6). ViTs are
  created with ``dynamic_img_size``, so any input size works and checkpoints for 224x224 still load.
- EfficientNet (timm): stem (conv_stem, bn1), each block stage (blocks.0..6), head (conv_head, bn2, pooling)
  (9 for efficientnet_b0 and _lite0; 7 or 8 for configs with fewer block stages, such as efficientnetv2).
- Any other timm model: the whole model as one stage (1): freeze_depth 0 fine-tunes it all, 1 uses it as a
  frozen feature extractor. Cutting a model elsewhere needs its forward pass spelled out stage by stage, which
  only the families above have here.

Nothing reaches the network: models are created with random init (torchvision ``weights=None``, timm
``pretrained=False`` with a name timm has registered, never an ``hf-hub:`` one), and weights come only from a
local file or, for torchvision ResNets, the local torch hub cache.
"""

from __future__ import annotations

import difflib
import inspect
import os
import reprlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import torch
from torch import nn

from .errors import InputError, counted, first_line
from .images import IMAGENET_MEAN, IMAGENET_STD

TIMM_PREFIX = "timm:"
TORCHVISION_PREFIX = "torchvision:"
TIMM_REQUIREMENT = "timm>=1.0,<2"


class BackboneNotice(UserWarning):
    """Something about a backbone the user should read once, such as a checkpoint's classifier being left out.

    The CLI prints each as one ``adaptune: ...`` line; elsewhere it is an ordinary warning.
    """


@dataclass
class Backbone:
    """An ``nn.Sequential`` of stages plus the width of the feature vector it ends with."""

    name: str
    blocks: nn.Sequential
    out_features: int
    weights: str | None = None  # what the weights came from; None = random init
    stages: str = ""  # what the blocks are, in order: what freeze_depth counts
    weights_file: str | None = None  # the file the weights were read from (a name resolved to its cache file)
    # The per-channel mean and std its images are normalised with: ImageNet's, or what a timm model was trained
    # with (e.g. 0.5 / 0.5 for TensorFlow-ported and ViT weights).
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def split(self, freeze_depth: int) -> tuple[nn.Module, nn.Module]:
        """(frozen prefix, trainable rest). The prefix is put in eval mode with gradients off."""
        if not 0 <= freeze_depth <= self.depth:
            raise InputError("freeze_depth", f"expected 0..{self.depth} for backbone {self.name}, got {freeze_depth}")
        frozen = FrozenStages(*list(self.blocks)[:freeze_depth]).eval().requires_grad_(False)
        trainable = nn.Sequential(*list(self.blocks)[freeze_depth:])
        return frozen, trainable


class FrozenStages(nn.Sequential):
    """A frozen prefix that stays in eval mode when a module holding it is put in train mode: its BatchNorm
    statistics are part of the pretrained weights, and its outputs are cached as a pure function of the input."""

    def train(self, mode: bool = True) -> FrozenStages:
        return super().train(False)


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
        return Backbone("lenet", blocks, 500, stages="conv, conv, fully connected")


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
        return Backbone("mlp", blocks, widths[-1], stages="Linear-ReLU-Dropout per hidden layer")


# --- weights files -------------------------------------------------------------------------------------------

WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors")
CHECKPOINT_ENTRIES = ("state_dict", "model")  # where training scripts nest the state dict in a checkpoint
SHOWN_KEYS = 3  # parameter names quoted in a one-line error


def is_weights_file(weights: str) -> bool:
    """``--weights`` names a file, as opposed to a torchvision weights name such as ResNet18_Weights.IMAGENET1K_V1."""
    separators = {os.sep, os.altsep} - {None}
    return (any(sep in weights for sep in separators) or weights.endswith(WEIGHTS_SUFFIXES)
            or os.path.isfile(weights))


def _reason(error: Exception) -> str:
    """One line of why ``torch.load`` refused a file."""
    # weights_only=True wraps the unpickler's reason in several lines of general advice.
    _, marker, reason = str(error).partition("WeightsUnpickler error:")
    return first_line(reason if marker and reason.strip() else error)[:200]


def _is_state_dict(value: object) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _read_safetensors(path: str, arch: str) -> Mapping[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise InputError("weights", f"reading {path} needs the safetensors package (pip install safetensors)") from None
    try:
        return load_file(path, device="cpu")
    except Exception as error:  # the reader raises its own error type (and OSError) for a file it cannot parse
        raise InputError("weights", f"expected a safetensors file of tensors for {arch}, {path} is not one "
                         f"({first_line(error)[:200]})") from None


def _read_state_dict(path: str, arch: str) -> Mapping[str, torch.Tensor]:
    """The state dict in ``path``: a ``.safetensors`` file, or a PyTorch file holding a state dict or a checkpoint
    with one under ``state_dict`` or ``model``, read with ``weights_only=True`` so a file can never run code."""
    if path.endswith(".safetensors"):
        return _read_safetensors(path, arch)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refused file is reported below; its load warnings add nothing
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a file it cannot read
        reason = _reason(error)
    else:
        if _is_state_dict(state):
            return state
        if isinstance(state, Mapping):
            for entry in CHECKPOINT_ENTRIES:
                if _is_state_dict(state.get(entry)):
                    return state[entry]
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


def _weights_path(weights: str, backbone: str, cached: Callable[[str], str] | None) -> str:
    """The file ``weights`` names: a path, or a weights name that ``cached`` finds in a local cache."""
    if is_weights_file(weights):
        if not os.path.isfile(weights):
            raise InputError("weights", f"expected a readable weights file, {weights!r} does not exist")
        return weights
    if cached is None:
        raise InputError("weights", f"expected a weights file ({', '.join(WEIGHTS_SUFFIXES)}) for {backbone}, got "
                         f"{weights!r}; adaptune never downloads weights, so pretrained names are not looked up")
    return cached(weights)


def _some(keys: Sequence[str]) -> str:
    return ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")


def _load_weights(model: nn.Module, backbone: str, path: str, classifier: Sequence[str]) -> None:
    """Load ``path`` into ``model``, whose classifier is already removed: every tensor must match by name and
    shape, except the checkpoint's classifier (under the ``classifier`` prefixes), which is left out with a notice.

    Checked here rather than left to ``load_state_dict``, whose error lists every mismatch over many lines.
    """
    state = _read_state_dict(path, backbone)

    def is_classifier(key: str) -> bool:
        return any(key == prefix or key.startswith(f"{prefix}.") for prefix in classifier)

    body = {k: v for k, v in state.items() if not is_classifier(k)}
    own = model.state_dict()
    wrong = [k for k, v in body.items() if k in own and v.shape != own[k].shape]
    if wrong:
        first = wrong[0]
        raise InputError("weights", f"weights in {path} do not fit {backbone}: {first} has shape "
                         f"{tuple(body[first].shape)}, expected {tuple(own[first].shape)} "
                         f"({counted(len(wrong), 'tensor')} of the wrong shape)")
    # torch's own rules of what may be missing: BatchNorm's num_batches_tracked is absent from older checkpoints,
    # torchvision's published ones included.
    result = model.load_state_dict(body, strict=False)
    missing, unexpected = result.missing_keys, result.unexpected_keys
    problems = ([f"{counted(len(missing), 'tensor')} missing ({_some(missing)})"] if missing else []) + (
        [f"{len(unexpected)} unexpected ({_some(unexpected)})"] if unexpected else [])
    if problems:
        raise InputError("weights", f"weights in {path} do not fit {backbone}: {'; '.join(problems)}")
    if len(body) < len(state):
        head = next((state[f"{p}.weight"] for p in classifier if f"{p}.weight" in state), None)
        what = "its classifier" if head is None else f"classifier for {head.shape[0]} classes"
        warnings.warn(f"weights {path}: {what} not used; adaptune trains a new head for the task's classes",
                      BackboneNotice, stacklevel=2)


# --- stage cuts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCut:
    """How a model family is cut into stages, the units ``freeze_depth`` counts."""

    family: str
    stages: str  # the stages in order, as `adaptune backbones` lists them
    cut: Callable[[nn.Module], list[nn.Module]]
    create_kwargs: Mapping[str, object] = field(default_factory=dict)  # what timm.create_model needs for the cut


def _resnet_stages(model: nn.Module) -> list[nn.Module]:
    # timm's ResNet keeps torchvision's parameter names but calls the activation act1 and pools with global_pool.
    activation = model.act1 if hasattr(model, "act1") else model.relu
    pool = model.global_pool if hasattr(model, "global_pool") else nn.Sequential(model.avgpool, nn.Flatten())
    return [nn.Sequential(model.conv1, model.bn1, activation, model.maxpool),
            model.layer1, model.layer2, model.layer3, model.layer4, pool]


def _convnext_stages(model: nn.Module) -> list[nn.Module]:
    # With the classifier reset, timm's head is pooling + norm + flatten: forward_head(pre_logits=True).
    return [model.stem, *model.stages, nn.Sequential(model.norm_pre, model.head)]


def _efficientnet_stages(model: nn.Module) -> list[nn.Module]:
    return [nn.Sequential(model.conv_stem, model.bn1), *model.blocks,
            nn.Sequential(model.conv_head, model.bn2, model.global_pool)]


class _VitPart(nn.Module):
    """A piece of a timm VisionTransformer that runs timm's own methods on the modules, parameters and settings
    it shares with the model (the same objects, so weights loaded into the model are the ones used here)."""

    def __init__(self, vit: nn.Module, names: Sequence[str]):
        super().__init__()
        self.vit_class = type(vit)
        for name in names:
            setattr(self, name, getattr(vit, name))


class _VitEmbedding(_VitPart):
    """Patch embedding, class/register tokens and position embedding: forward_features before the blocks."""

    def __init__(self, vit: nn.Module):
        super().__init__(vit, ("patch_embed", "cls_token", "reg_token", "pos_embed", "pos_drop", "patch_drop",
                               "norm_pre", "no_embed_class", "num_prefix_tokens", "dynamic_img_size"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_pre(self.patch_drop(self.vit_class._pos_embed(self, self.patch_embed(x))))


class _VitPool(_VitPart):
    """Final norm and token pooling (class token, average or attention pool): forward_head(pre_logits=True)."""

    def __init__(self, vit: nn.Module):
        super().__init__(vit, ("norm", "attn_pool", "fc_norm", "head_drop", "global_pool", "num_prefix_tokens",
                               "pool_include_prefix"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_drop(self.fc_norm(self.vit_class.pool(self, self.norm(x))))


VIT_BLOCK_GROUPS = 4  # a ViT's blocks are frozen a group at a time, like a CNN's four stages


def _groups(blocks: nn.Sequential, count: int) -> list[nn.Sequential]:
    """``blocks`` in ``count`` consecutive groups of near-equal size (fewer groups when there are fewer blocks)."""
    bounds = [round(i * len(blocks) / count) for i in range(count + 1)]
    return [blocks[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def _vit_stages(model: nn.Module) -> list[nn.Module]:
    return [_VitEmbedding(model), *_groups(model.blocks, VIT_BLOCK_GROUPS), _VitPool(model)]


RESNET_CUT = StageCut("ResNet", "stem, layer1..layer4, pool", _resnet_stages)
# Keyed by the timm module that defines a family's models: known before the model is created, which its
# create_kwargs need. Every model of these modules in timm 1.0 is of the family's class.
TIMM_CUTS = {
    "resnet": RESNET_CUT,
    "convnext": StageCut("ConvNeXt", "stem, stages.0..3, norm+pool", _convnext_stages),
    "vision_transformer": StageCut("ViT", f"embedding, blocks in {VIT_BLOCK_GROUPS} groups, norm+pool", _vit_stages,
                                   {"dynamic_img_size": True, "dynamic_img_pad": True}),
    "efficientnet": StageCut("EfficientNet", "stem, one per blocks.i, conv_head+pool", _efficientnet_stages),
}
WHOLE_MODEL_CUT = StageCut("other timm", "the whole model (one stage)", lambda model: [model])


# --- names -----------------------------------------------------------------------------------------------------

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = 80  # a name quoted in a one-line error stays short


def _import_timm() -> ModuleType:
    try:
        import timm
    except ImportError:
        needed = f"timm: backbones need the timm package (pip install '{TIMM_REQUIREMENT}')"
        raise InputError("backbone", needed) from None
    return timm


def _timm_cut(arch: str) -> StageCut:
    """The stage cut for timm model ``arch`` (a registered name, optionally with a pretrained tag)."""
    timm = _import_timm()
    from timm.models import is_model, is_model_in_modules

    if arch.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        raise InputError("backbone", f"{_SHOWN.repr(arch)} is read from a hub or a folder; expected a timm model "
                         "name (adaptune never downloads: pass the weights as --weights FILE)")
    if not is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise InputError("backbone", f"unknown timm model {_SHOWN.repr(arch)}; {hint}expected a name "
                         f"timm.list_models() lists (timm {timm.__version__})")
    return next((cut for module, cut in TIMM_CUTS.items() if is_model_in_modules(arch, module)), WHOLE_MODEL_CUT)


def torchvision_resnets() -> list[str]:
    """torchvision's ResNet architectures (resnet*, resnext*, wide_resnet*): ``torchvision:NAME`` backbones."""
    import torchvision
    from torchvision.models import get_model_builder

    return [name for name in torchvision.models.list_models(module=torchvision.models)
            if get_model_builder(name).__module__ == "torchvision.models.resnet"]


def _check_torchvision(arch: str) -> None:
    import torchvision

    if arch in torchvision_resnets():
        return
    if arch in torchvision.models.list_models(module=torchvision.models):
        # Other torchvision classifiers share no forward structure to cut into stages; timm has them with one.
        raise InputError("backbone", f"torchvision:{arch} is not a ResNet; torchvision backbones are its ResNets "
                         f"({', '.join(torchvision_resnets())}); timm:NAME has most other architectures")
    raise InputError("backbone", f"unknown torchvision model {_SHOWN.repr(arch)}; expected one of its ResNets: "
                     f"{', '.join(torchvision_resnets())}")


def check_backbone_name(name: str) -> None:
    """Refuse an unknown backbone name (one line) without building the backbone."""
    if name.startswith(TIMM_PREFIX):
        _timm_cut(name.removeprefix(TIMM_PREFIX))
    elif name.startswith(TORCHVISION_PREFIX):
        _check_torchvision(name.removeprefix(TORCHVISION_PREFIX))
    elif name not in BACKBONES:
        raise InputError("backbone", f"unknown backbone {_SHOWN.repr(name)}; expected one of: {', '.join(BACKBONES)}, "
                         "torchvision:NAME, timm:NAME")


# --- building ----------------------------------------------------------------------------------------------------


class ResNet:
    """A torchvision ResNet cut into six stages: stem, layer1..layer4, pooling (all six frozen = feature extraction).

    Weights: a local file, or a torchvision weights name (``IMAGENET1K_V1``, ``DEFAULT``, ...) whose file is in the
    local torch hub cache.
    """

    def __init__(self, arch: str, name: str | None = None):
        self.arch = arch
        self.name = name or arch

    def build(self, input_shape: tuple[int, ...], weights: str | None = None, **_: object) -> Backbone:
        import torchvision

        model = torchvision.models.get_model(self.arch, weights=None)
        out_features = model.fc.in_features
        model.fc = nn.Identity()  # adaptune trains its own head on the pooled features
        path = None
        if weights is not None:
            path = _weights_path(weights, self.name, lambda name: _cached_weights_file(self.arch, name))
            _load_weights(model, self.name, path, classifier=("fc",))
        return Backbone(self.name, nn.Sequential(*_resnet_stages(model)), out_features, weights, RESNET_CUT.stages,
                        weights_file=path)


def _timm_backbone(name: str, weights: str | None) -> Backbone:
    """timm model ``timm:ARCH`` with random init (``pretrained=False``: nothing is downloaded), its classifier
    removed, weights from a local file, cut into stages by family."""
    arch = name.removeprefix(TIMM_PREFIX)
    cut = _timm_cut(arch)
    timm = _import_timm()
    try:
        model = timm.create_model(arch, pretrained=False, **cut.create_kwargs)
    except (RuntimeError, ValueError) as error:  # e.g. a pretrained tag timm does not know
        raise InputError("backbone", f"timm cannot create {_SHOWN.repr(arch)} ({first_line(error)[:160]})") from None
    classifier = model.pretrained_cfg.get("classifier") or ()
    # Some models widen the pooled features before the classifier (a pre-logits layer): that is what they output.
    out_features = getattr(model, "head_hidden_size", None) or model.num_features
    model.reset_classifier(0)
    path = None
    if weights is not None:
        path = _weights_path(weights, name, cached=None)
        _load_weights(model, name, path, classifier=(classifier,) if isinstance(classifier, str) else classifier)
    config = model.pretrained_cfg
    return Backbone(name, nn.Sequential(*cut.cut(model)), out_features, weights, cut.stages, weights_file=path,
                    mean=tuple(config.get("mean", IMAGENET_MEAN)), std=tuple(config.get("std", IMAGENET_STD)))


BACKBONES: dict[str, Callable[..., Backbone]] = {
    "lenet": LeNet.build,
    "mlp": MLP.build,
    "resnet18": ResNet("resnet18").build,
    "resnet50": ResNet("resnet50").build,
}


def pretrained_backbones() -> tuple[str, ...]:
    """The built-in backbones that load pretrained weights: those whose build takes ``weights`` (every
    ``torchvision:`` and ``timm:`` backbone does too)."""
    return tuple(name for name, build in BACKBONES.items() if "weights" in inspect.signature(build).parameters)


def build_backbone(name: str, input_shape: tuple[int, ...], weights: str | None = None) -> Backbone:
    """Backbone ``name`` for samples of ``input_shape``: random init, or ``weights`` for a pretrained backbone.

    ``name`` is a built-in name, ``torchvision:NAME`` or ``timm:NAME`` (see the module docstring for what each
    family's stages are). A checkpoint's classifier is left out with a :class:`BackboneNotice`.
    """
    check_backbone_name(name)
    if name.startswith(TIMM_PREFIX):
        return _timm_backbone(name, weights)
    if name.startswith(TORCHVISION_PREFIX):
        return ResNet(name.removeprefix(TORCHVISION_PREFIX), name).build(input_shape, weights=weights)
    if weights is None:
        return BACKBONES[name](input_shape)
    if name not in pretrained_backbones():
        # Weights would be ignored, yet they widen the freeze_depth range searched.
        raise InputError("weights", f"expected no weights for the {name} backbone; pretrained weights exist for "
                         f"{', '.join(pretrained_backbones())}, torchvision:NAME and timm:NAME")
    return BACKBONES[name](input_shape, weights=weights)


# --- listing -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneInfo:
    """One line of `adaptune backbones`."""

    name: str
    depth: int  # stages: freeze_depth ranges over 0..depth
    out_features: int
    weights: str  # what --weights accepts
    stages: str


# One example per family; any other torchvision ResNet or timm model works the same way.
LISTED_BACKBONES = ("lenet", "mlp", "resnet18", "resnet50", "torchvision:wide_resnet50_2", "timm:resnet50",
                    "timm:convnext_tiny", "timm:vit_small_patch16_224", "timm:efficientnet_lite0",
                    "timm:mobilenetv3_large_100")
EXAMPLE_SHAPES = {"lenet": (1, 28, 28), "mlp": (8,)}  # the others take any image shape


def accepted_weights(name: str) -> str:
    """What ``--weights`` accepts for backbone ``name``."""
    if name.startswith(TIMM_PREFIX):
        return "file"
    if name.startswith(TORCHVISION_PREFIX) or name in pretrained_backbones():
        return "file or cached name"
    return "none"


def describe_backbone(name: str) -> BackboneInfo:
    """Depth, width and stages of ``name``, built on the meta device: no memory for weights, no initialisation."""
    with torch.device("meta"):
        backbone = build_backbone(name, EXAMPLE_SHAPES.get(name, (3, 224, 224)))
    return BackboneInfo(name, backbone.depth, backbone.out_features, accepted_weights(name), backbone.stages)


def timm_version() -> str | None:
    """The version of timm, None when it cannot be imported (its backbones are then refused)."""
    try:
        return _import_timm().__version__
    except InputError:
        return None
