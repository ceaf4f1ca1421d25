"""Image trials on the CPU with and without channels-last (NHWC) memory: time per step and what they learn.

Usage: python -m benchmarks.channels_last_cpu [--steps 60] [--methods a,b,...] [--resnet-px 112]
       (writes benchmarks/results/channels_last_cpu.md)

Each trainable method runs one trial of ``--steps`` optimizer steps on ``mnist->usps`` (LeNet, batch 64, its
defaults, seed 0, one thread, as a search's trial on this machine runs) twice: once with the trial loop's rule
(:func:`adaptune.algorithms.loop.uses_channels_last`) and once with that rule switched off. The page gives the
train time per step of each and the held-out source and target accuracy they end with, next to the same trial
with seed 1: the formats differ by float rounding, which training carries on. A ResNet-18 forward + backward
pass at ``--resnet-px`` stands in for image folders.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

from benchmarks._common import header, md_table, rerun_command, write

TASK = "mnist->usps"


def trial(method: str, steps: int, channels_last: bool, seed: int = 0) -> dict[str, float]:
    import torch

    from adaptune.algorithms import loop
    from adaptune.algorithms.data import load_task

    torch.set_num_threads(1)
    rows: list[dict[str, float]] = []
    spec = loop.TrialSpec(method, {}, "lenet", epochs=1, seed=seed, steps_per_epoch=steps)
    rule = loop.uses_channels_last
    with mock.patch.object(loop, "uses_channels_last", lambda shape: channels_last and rule(shape)):
        loop.run_trial(load_task(TASK), spec, lambda metrics, state: rows.append(metrics))
    last = rows[-1]
    return {"ms_per_step": 1000 * last["train_s"] / steps, "source_acc": last["source_acc"],
            "target_acc": last["target_acc"]}


def resnet_step(px: int, channels_last: bool, repeats: int = 8, batch: int = 16) -> float:
    """Milliseconds of one forward + backward + SGD step of a random-init ResNet-18 on ``batch`` images."""
    import torch
    import torchvision

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    x, y = torch.randn(batch, 3, px, px), torch.randint(0, 10, (batch,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # the first step allocates and picks kernels
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return 1000 * (time.perf_counter() - started) / repeats


def main() -> None:
    from adaptune.algorithms.methods import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--methods", help="comma-separated (default: every trainable method)")
    parser.add_argument("--resnet-px", dest="resnet_px", type=int, default=112)
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else sorted(
        name for name, cls in METHODS.items() if not cls.feature_extraction)

    rows, ratios, format_gaps, seed_gaps = [], [], [], []
    for method in methods:
        # Alternated, so a slow spell of the machine falls on both formats alike.
        plain, nhwc = trial(method, args.steps, False), trial(method, args.steps, True)
        reseeded = trial(method, args.steps, False, seed=1)  # how far another seed moves the same trial
        ratio = plain["ms_per_step"] / nhwc["ms_per_step"]
        ratios.append(ratio)
        rows.append([method, plain["ms_per_step"], nhwc["ms_per_step"], f"{ratio:.2f}x",
                     f"{100 * plain['source_acc']:.1f} / {100 * nhwc['source_acc']:.1f}",
                     f"{100 * plain['target_acc']:.1f} / {100 * nhwc['target_acc']:.1f}",
                     f"{100 * reseeded['target_acc']:.1f}"])
        format_gaps.append(abs(plain["target_acc"] - nhwc["target_acc"]))
        seed_gaps.append(abs(plain["target_acc"] - reseeded["target_acc"]))
        print(rows[-1], flush=True)
    resnet_plain, resnet_nhwc = resnet_step(args.resnet_px, False), resnet_step(args.resnet_px, True)

    text = header("Channels-last image trials on the CPU", rerun_command())
    text += (f"\nEach trainable method: one trial of {args.steps} optimizer steps on `{TASK}` (LeNet, batch 64 source "
             "+ 64 target for the methods that read the target, the method's defaults, seed 0, one thread, as a "
             "search's trial runs here), with the image batches and the network in the default (NCHW) and in the "
             "channels-last (NHWC) memory format, one after the other. *ms/step* is the loop's train time per step; "
             "the accuracies (held-out source, target by the oracle labels, reporting only) are NCHW / NHWC after the "
             "same steps; the last column is the NCHW trial with seed 1, for the spread a seed makes.\n\n")
    text += md_table(rows, ["method", "NCHW ms/step", "NHWC ms/step", "speed-up", "source acc %", "target acc %",
                          "target acc %, NCHW seed 1"])
    median = sorted(ratios)[len(ratios) // 2]
    text += (f"\n\nResNet-18 (random init), forward + backward + SGD step on 16 images of {args.resnet_px} px, one "
             f"thread: NCHW {resnet_plain:.0f} ms, NHWC {resnet_nhwc:.0f} ms ({resnet_plain / resnet_nhwc:.2f}x).\n"
             "\n## What follows\n\n"
             f"Channels-last changes the LeNet trials' time per step by {min(ratios):.2f}x to {max(ratios):.2f}x "
             f"(median {median:.2f}x) and ResNet-18's by {resnet_plain / resnet_nhwc:.2f}x. The two formats compute "
             "the same network and sum in a different order; training carries that rounding on, so after "
             f"{args.steps} steps their target accuracies differ by {100 * statistics.fmean(format_gaps):.1f} points "
             f"on average (at most {100 * max(format_gaps):.1f}), against {100 * statistics.fmean(seed_gaps):.1f} "
             f"(at most {100 * max(seed_gaps):.1f}) between seeds 0 and 1. "
             + ("The trial loop keeps image trials channels last on every device "
                "(`adaptune.algorithms.loop.uses_channels_last`), not only on a GPU.\n" if median > 1 else
                "Channels-last does not pay on this CPU: keep it to GPUs.\n"))
    print(write("channels_last_cpu.md", text))


if __name__ == "__main__":
    main()
