"""Image-folder training throughput: the trial loop against a bare torch loop reading the same DataLoader.

Makes an ImageFolder-layout source and target domain of JPEGs in a temporary folder (class-dependent gratings,
the target with other colours and contrast), loads them with ``load_user_task`` and, per method:

- times a ``run_trial`` fine-tuning trial (freeze_depth 0: every layer trains) for ``--epochs`` epochs (default
  4) and keeps the fastest after the first: the first pays for warm-up (cuDNN's algorithm choice, the allocator,
  page cache), and on a machine shared with other work a pass can only be slowed down by it;
- times a bare torch loop for as many passes, kept the same way: the same ``input_batches`` DataLoader (same
  ``Loading``, same index batches and seeds), the same classifier (``build_backbone`` + ``Classifier``), plain
  cross-entropy on the source part of the batch, SGD, the same autocast and channels_last;
- times the model alone on one decoded batch held on the device (no loader), which says whether the two loops
  above are limited by decoding or by the network.

Images/s counts every image through the network: source plus target for a method that reads the target, so a
method that doubles the batch is not shown as half as fast. On CUDA the trial runs as a search runs it there:
bf16 autocast (``amp``), channels_last and pinned memory. The page also gives peak GPU memory per run and the
peak RSS of the process and of its largest DataLoader worker.

  python -m benchmarks.image_throughput            # on a GPU: writes benchmarks/results/image_throughput.md
  python -m benchmarks.image_throughput --device cpu --backbone resnet18 --image-size 96 --steps 20 \\
      --out benchmarks/results/image_throughput_cpu.md

``--device cpu`` is also the dry run the tests use, so the script works the first time it meets a GPU (it is
the first step of ``benchmarks/device_run.sh``). Backbones start from random weights: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import resource
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from adaptune.algorithms.backbones import Backbone
    from adaptune.algorithms.domains import Task
    from adaptune.algorithms.loop import Classifier, TrialSpec

TARGET_RATIO = 0.9  # the trial loop should keep at least 90% of the bare loop's speed
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "image_throughput.md")


# --- the image folder ----------------------------------------------------------------------------------------------


def make_image_folder(root: Path, classes: int, per_class: int, pixels: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/source/<class>/*.jpg`` and ``root/target/<class>/*.jpg``; returns the two domain folders.

    Each class is a sinusoidal grating of its own orientation and frequency, in a colour of its own, with a
    random phase and mild noise, so decoding costs what a JPEG of natural content costs rather than that of a
    flat image (which decodes far faster) or of pure noise (far slower). The target domain swaps the colour
    channels and lowers the contrast: a domain shift, though the numbers here are speeds, not accuracies.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:pixels, 0:pixels].astype(np.float32) / pixels
    folders = root / "source", root / "target"
    for domain, folder in enumerate(folders):
        for label in range(classes):
            angle = np.pi * label / classes
            frequency = 3 + 2 * (label % 4)
            colour = np.array([0.3 + 0.7 * ((label * k) % 5) / 4 for k in (1, 2, 3)], dtype=np.float32)
            if domain == 1:
                colour = colour[::-1]
            contrast = 110.0 if domain == 0 else 60.0
            (folder / f"class_{label:02d}").mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                phase = rng.uniform(0, 2 * np.pi)
                wave = np.sin(2 * np.pi * frequency * (grid[0] * np.cos(angle) + grid[1] * np.sin(angle)) + phase)
                pixels_rgb = 128 + contrast * wave[..., None] * colour + rng.normal(0, 8, (pixels, pixels, 3))
                image = Image.fromarray(np.clip(pixels_rgb, 0, 255).astype(np.uint8))
                image.save(folder / f"class_{label:02d}" / f"{index:05d}.jpg", quality=90)
    return folders


# --- measurements --------------------------------------------------------------------------------------------------


@dataclass
class Speed:
    images_per_s: float
    peak_gpu_mib: float | None  # None on the CPU
    # CPU seconds this process spends per training step (its loader workers not counted: both loops share their
    # code). On a CPU it does not depend on what else runs on the machine, as wall-clock speed does; on CUDA it
    # would count the host spinning while it waits for the GPU, so it is left out there.
    cpu_s_per_step: float | None = None


Row = tuple[str, Speed, Speed, Speed]  # method, trial, bare loop, network alone


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _fresh(device: torch.device) -> None:
    """Free what the previous run left and restart the peak-memory counter, so each run's peak is its own."""
    if device.type == "cuda":  # a full collection costs a fraction of a second; only GPU memory needs it
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


def images_per_step(spec: TrialSpec, uses_target: bool) -> int:
    return spec.batch_size * (2 if uses_target else 1)


def trial_speed(task: Task, spec: TrialSpec, device: torch.device) -> Speed:
    """Images/s of the trial's training steps in its fastest epoch after the first (``train_s`` covers the steps
    alone, not the evaluation that follows each epoch)."""
    from adaptune.algorithms import loop
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.methods import get_method

    _fresh(device)
    history: list[dict] = []
    # CPU time between one epoch's evaluation and the next is that epoch's training steps: the trial reports
    # wall-clock train_s only, so its evaluation is wrapped to mark where the steps end and start.
    marks: list[tuple[float, float]] = []
    evaluation = loop._evaluation_metrics

    def marked(*args: Any, **kwargs: Any) -> Any:
        entered = time.process_time()
        result = evaluation(*args, **kwargs)
        marks.append((entered, time.process_time()))
        return result

    with mock.patch.object(loop, "_evaluation_metrics", marked):
        loop.run_trial(task, spec, lambda metrics, state: history.append(metrics),
                       runtime=loop.Runtime(device=device), store=MemoryStore())
    images = spec.steps_per_epoch * images_per_step(spec, get_method(spec.method).uses_target)
    cpu = min(entered - left for (_, left), (entered, _) in itertools.pairwise(marks))
    return Speed(max(images / metrics["train_s"] for metrics in history[1:]), _peak_mib(device),
                 None if device.type == "cuda" else cpu / spec.steps_per_epoch)


def _model(task: Task, spec: TrialSpec, device: torch.device) -> tuple[Backbone, Classifier]:
    """The trial's classifier for freeze_depth 0, initialised from the trial's seed."""
    from adaptune.algorithms.backbones import build_backbone
    from adaptune.algorithms.loop import Classifier, uses_channels_last

    torch.manual_seed(spec.seed)
    backbone = build_backbone(spec.backbone, task.input_shape, weights=spec.weights)
    model = Classifier(backbone.blocks, backbone.out_features, task.num_classes, spec.bottleneck_dim).to(device)
    if uses_channels_last(task.input_shape):  # as the trial loop keeps image batches
        model = model.to(memory_format=torch.channels_last)
    return backbone, model


def _optimizer(model: torch.nn.Module, spec: TrialSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=spec.hparams.get("lr", 0.01), momentum=spec.momentum,
                           weight_decay=spec.weight_decay, nesterov=True)


def bare_speed(task: Task, spec: TrialSpec, device: torch.device, uses_target: bool) -> Speed:
    """Images/s of a plain supervised loop over the trial's own DataLoader, in its fastest pass after the first.

    The index batches and loader seeds are the trial's for each epoch (its ``_batches`` and seeds), so both
    loops decode the same files with the same crops; each pass starts a fresh DataLoader, as a trial epoch does.
    """
    from adaptune.algorithms.images import input_batches
    from adaptune.algorithms.loop import _batches, _loading, bf16_autocast, uses_channels_last

    _fresh(device)
    backbone, model = _model(task, spec, device)
    optimizer = _optimizer(model, spec)
    xs_all = task.source_train.x.normalised(backbone.mean, backbone.std)
    xt_all = task.target_train.x.normalised(backbone.mean, backbone.std)
    ys_all = task.source_train.y.to(device)
    loading = _loading(spec, device)  # the trial's Loading: workers, augmentation, pinned memory on CUDA
    channels_last = uses_channels_last(task.input_shape)
    seconds, cpu_seconds = [], []
    for epoch in range(spec.epochs):
        synchronize(device)
        started, cpu_started = time.perf_counter(), time.process_time()
        epoch_seed = spec.seed * 100_003 + epoch  # the trial loop's per-epoch seed
        generator = torch.Generator().manual_seed(epoch_seed)
        steps = spec.steps_per_epoch
        source_batches = list(_batches(len(xs_all), spec.batch_size, steps, generator, 0, 1))
        target_batches = list(_batches(len(xt_all), spec.batch_size, steps, generator, 0, 1))
        sources = input_batches(xs_all, source_batches, device, loading, seed=2 * epoch_seed)
        targets = (input_batches(xt_all, target_batches, device, loading, seed=2 * epoch_seed + 1)
                   if uses_target else itertools.repeat(None))
        for xs, xt, index in zip(sources, targets, source_batches):
            ys = ys_all[index.to(device)]
            if channels_last:
                xs = xs.contiguous(memory_format=torch.channels_last)
                xt = None if xt is None else xt.contiguous(memory_format=torch.channels_last)
            with bf16_autocast(device, spec.amp):
                _, logits = model(xs if xt is None else torch.cat([xs, xt]))
                loss = F.cross_entropy(logits[: len(xs)], ys)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    return Speed(spec.steps_per_epoch * images_per_step(spec, uses_target) / min(seconds[1:]), _peak_mib(device),
                 None if device.type == "cuda" else min(cpu_seconds[1:]) / spec.steps_per_epoch)


def model_speed(task: Task, spec: TrialSpec, device: torch.device, uses_target: bool, warmup: int = 3) -> Speed:
    """Images/s of the bare loop's steps on one decoded batch held on the device: the network alone."""
    from adaptune.algorithms.images import eval_batches
    from adaptune.algorithms.loop import bf16_autocast, uses_channels_last

    _fresh(device)
    backbone, model = _model(task, spec, device)
    optimizer = _optimizer(model, spec)
    images = images_per_step(spec, uses_target)
    xs_all = task.source_train.x.normalised(backbone.mean, backbone.std)
    batch = next(iter(eval_batches(xs_all[: spec.batch_size], spec.batch_size, device)))
    x = batch.repeat(-(-images // len(batch)), 1, 1, 1)[:images]  # a folder smaller than a batch: repeat it
    if uses_channels_last(task.input_shape):
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(spec.batch_size, device=device) % task.num_classes

    def step() -> None:
        with bf16_autocast(device, spec.amp):
            _, logits = model(x)
            loss = F.cross_entropy(logits[: spec.batch_size], y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(spec.steps_per_epoch):
        step()
    synchronize(device)
    return Speed(spec.steps_per_epoch * images / (time.perf_counter() - started), _peak_mib(device))


# --- the page ------------------------------------------------------------------------------------------------------


def _versions() -> str:
    found = []
    for name in ("torch", "torchvision", "pillow"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:  # the GPU machine's image may lack one; the page still gets written
            pass
    return ", ".join(found)


def _machine(device: torch.device) -> str:
    from benchmarks._common import machine

    gpu = f"GPU {torch.cuda.get_device_name()}" if device.type == "cuda" else "no GPU"
    return f"{machine().removesuffix(', no GPU')}, {gpu}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def conclusion(rows: list[Row], device: torch.device) -> str:
    """The "What follows" line: the lowest trial/bare ratio against the target, and what limits both loops."""
    worst = min(rows, key=lambda row: row[1].images_per_s / row[2].images_per_s)
    ratio = worst[1].images_per_s / worst[2].images_per_s
    where = "at or above" if ratio >= TARGET_RATIO else "below"
    verdict = f"the trial loop runs at {ratio:.2f}x of the bare loop at worst ({worst[0]}), {where} the " \
              f"{TARGET_RATIO:.1f}x target"
    cpu_rows = [row for row in rows if row[1].cpu_s_per_step and row[2].cpu_s_per_step]
    if cpu_rows:  # the trial's extra work per step shows in CPU time, whatever else the machine is doing
        cpu_worst = max(cpu_rows, key=lambda row: row[1].cpu_s_per_step / row[2].cpu_s_per_step)
        cpu_ratio = cpu_worst[1].cpu_s_per_step / cpu_worst[2].cpu_s_per_step
        verdict += (f"; per step the trial's process uses at most {cpu_ratio:.2f}x the bare loop's CPU time "
                    f"({cpu_worst[0]}), a measure that other work on the machine changes far less")
        if ratio < TARGET_RATIO and cpu_ratio <= 1 / TARGET_RATIO:
            verdict += (", so the wall-clock gap is not work the trial loop adds: it is time its process spent "
                        "waiting, for a core or for its loader")
    elif ratio < TARGET_RATIO:
        verdict += ": both read the same DataLoader, so the gap is work the trial loop adds around it"
    loader_bound = [name for name, _, bare, alone in rows if bare.images_per_s < 0.8 * alone.images_per_s]
    if loader_bound:
        verdict += (f"; the bare loop runs below 0.8x of the network alone for {', '.join(loader_bound)}, so "
                    "the DataLoader (decoding, and starting its workers each epoch), not the network, sets the "
                    "pace there")
    else:
        verdict += "; the bare loop runs within 0.8x of the network alone, so the network, not decoding, sets the pace"
    if device.type == "cpu":
        verdict += ". A CPU run: no autocast or pinned memory, and the loader shares the cores with " \
                   "the network"
    return verdict + "."


def page(args: argparse.Namespace, command: str, device: torch.device, rows: list[Row], rss: tuple[float, float],
         per_domain: int) -> str:
    on_gpu = device.type == "cuda"
    header = [
        "# Image-folder training throughput: trial loop vs bare torch loop on the same DataLoader\n",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {_machine(device)}",
        f"- versions: {_versions()}",
        f"- data: {args.classes} classes x {args.images_per_class} JPEGs of {args.source_px}x{args.source_px} px per "
        f"domain ({per_domain} source, {per_domain} target), made on the spot; decoded at {args.image_size} px with "
        f"`{args.augment}` augmentation by {args.loader_workers} DataLoader worker(s)"
        + (", pinned memory" if on_gpu else ""),
        f"- model: {args.backbone}, random init, freeze_depth 0 (every layer trains), 256-d bottleneck + head; batch "
        f"{args.batch_size} source (+ {args.batch_size} target for methods that read it); "
        + ("bf16 autocast + channels_last" if on_gpu else "float32 + channels_last (autocast is CUDA-only)"),
        f"- timing: {args.epochs} epochs of {args.steps} steps, the fastest after the first kept (an epoch includes "
        "starting its DataLoader, as every trial epoch does); images/s counts source + target images through the "
        "network; network alone = the bare loop's step on one decoded batch held on the device; CPU s/step = CPU "
        "time of this process (not its loader workers) per training step, CPU runs only",
        f"- torch threads in this process: {torch.get_num_threads()}",
        f"- peak RSS: this process {rss[0]:,.0f} MiB, largest DataLoader worker {rss[1]:,.0f} MiB\n",
    ]
    table = [
        "| method | trial images/s | bare loop images/s | trial / bare | network alone images/s | "
        "CPU s/step trial | CPU s/step bare | peak GPU MiB trial | peak GPU MiB bare |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {name} | {trial.images_per_s:,.1f} | {bare.images_per_s:,.1f} | "
          f"{trial.images_per_s / bare.images_per_s:.2f}x | {alone.images_per_s:,.1f} | "
          f"{_cpu(trial.cpu_s_per_step)} | {_cpu(bare.cpu_s_per_step)} | "
          f"{_mib(trial.peak_gpu_mib)} | {_mib(bare.peak_gpu_mib)} |" for name, trial, bare, alone in rows],
    ]
    lines = [*header, *table, "", f"What follows: {conclusion(rows, device)}", ""]
    gpu_page = (f"`benchmarks/results/{os.path.basename(DEFAULT_OUT)}` (ResNet-50 at 224 px, bf16 autocast, "
                "channels_last)")
    if not on_gpu and os.path.exists(DEFAULT_OUT):
        lines += [f"The GPU table: {gpu_page}, written by `bash benchmarks/device_run.sh` (its first step).", ""]
    elif not on_gpu:
        lines += [f"No GPU table yet: {gpu_page} has not been run because no GPU was available. On a GPU machine, "
                  "from the repository root: `bash benchmarks/device_run.sh` (its first step).", ""]
    return "\n".join(lines)


def _peak_rss_mib() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished (joined) child: a DataLoader worker here.

    ``ru_maxrss`` is in KiB on Linux. A forked worker's RSS counts the pages it shares with this process.
    """
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", help=f"the page to write (default on CUDA: {os.path.relpath(DEFAULT_OUT)})")
    parser.add_argument("--methods", default="source_only,dann", help="comma-separated deep methods")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224, help="px the images are decoded (and cropped) to")
    parser.add_argument("--source-px", type=int, default=256, help="px of the JPEGs written")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--images-per-class", type=int, help="per domain (default: 100 on CUDA, 8 on the CPU)")
    parser.add_argument("--steps", type=int, help="training steps per epoch (default: 100 on CUDA, 3 on the CPU)")
    parser.add_argument("--epochs", type=int, default=4, help="the first is warm-up; the fastest of the rest counts")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loader-workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--augment", default="crop-flip")
    parser.add_argument("--threads", type=int, help="torch threads of this process (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first is warm-up")
    if args.threads:
        # On a CPU shared with other work, two OpenMP threads that wait on each other at every barrier can run a
        # step 10-20x slower than one thread: a fixed count keeps the numbers about the loops, not the scheduler.
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --device cpu for a dry run")
    if args.out is None:
        if device.type == "cpu":
            parser.error("--out is required with --device cpu (the default page is the GPU's)")
        args.out = DEFAULT_OUT
    on_gpu = device.type == "cuda"
    args.images_per_class = args.images_per_class or (100 if on_gpu else 8)
    args.steps = args.steps or (100 if on_gpu else 3)
    command = " ".join(["python -m benchmarks.image_throughput",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])

    # DataLoader workers fork from this process: with the transforms imported here, no worker of either loop
    # imports torchvision again (seconds per fresh loader on a busy CPU), which would blur the comparison.
    import torchvision.transforms.v2  # noqa: F401

    from adaptune.algorithms.data import load_user_task
    from adaptune.algorithms.loop import TrialSpec
    from adaptune.algorithms.methods import get_method

    deep = [name for name in args.methods.split(",") if not get_method(name).feature_extraction]
    if deep != args.methods.split(","):
        parser.error("--methods takes deep methods only: a feature-extraction method has no training steps to time")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="image-throughput-") as root:
        started = time.perf_counter()
        source, target = make_image_folder(Path(root), args.classes, args.images_per_class, args.source_px)
        print(f"image folder: {2 * args.classes * args.images_per_class} JPEGs in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        task = load_user_task(source, target, image_size=args.image_size)
        for name in args.methods.split(","):
            spec = TrialSpec(name, {"freeze_depth": 0, "lr": 0.01}, args.backbone, epochs=args.epochs, weights=None,
                             batch_size=args.batch_size, steps_per_epoch=args.steps, amp=on_gpu,
                             augment=args.augment, loader_workers=args.loader_workers)
            uses_target = get_method(name).uses_target
            bare = bare_speed(task, spec, device, uses_target)
            trial = trial_speed(task, spec, device)
            alone = model_speed(task, spec, device, uses_target)
            rows.append((name, trial, bare, alone))
            print(f"{name}: trial {trial.images_per_s:,.1f} images/s, bare {bare.images_per_s:,.1f}, ratio "
                  f"{trial.images_per_s / bare.images_per_s:.2f}x, network alone {alone.images_per_s:,.1f}; CPU s/step "
                  f"trial {_cpu(trial.cpu_s_per_step)}, bare {_cpu(bare.cpu_s_per_step)}", flush=True)
            # Rewritten after every method: a run stopped by a time limit keeps the rows it finished.
            text = page(args, command, device, rows, _peak_rss_mib(), args.classes * args.images_per_class)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as handle:
                handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
