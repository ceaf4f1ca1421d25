"""How much does the size of the MNIST source pool cost on MNIST->USPS? (methods.md compares with TLlib's 60k.)

The built-in MNIST is the 10k test pool (9,000 source training images after the 10% source validation split);
TLlib trains on the 60k training set. This trains ``source_only`` and ``dann`` (defaults, seed 0) on stratified
subsets of the 9,000 images, with the same number of optimiser steps for every size (one pass over the full
pool per epoch), and reports the target accuracy reached, so the slope per doubling of the source can be read
off. Plain torch (no Ray).

  python -m benchmarks.papers.digits_pool [--epochs 15] [--workers 2]   # writes papers/results/digits_pool.md
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import torch

from benchmarks._common import PAPER_RESULTS, header, md_table, write

FRACTIONS = (0.25, 0.5, 1.0)
METHODS = ("source_only", "dann")
TLLIB_MNIST_TO_USPS = {"source_only": 82.1, "dann": 91.7}  # TLlib's digits table: LeNet, full 60k MNIST


def run(job: tuple[str, float, int]) -> dict:
    from adaptune.algorithms.data import load_task, stratified_split
    from adaptune.algorithms.loop import TrialSpec, run_trial

    method, fraction, epochs = job
    torch.set_num_threads(1)
    task = load_task("mnist->usps")
    full = len(task.source_train)
    idx = torch.from_numpy(stratified_split(task.source_train.y.numpy(), 1.0 - fraction, seed=0)[0])
    source = replace(task.source_train, x=task.source_train.x[idx], y=task.source_train.y[idx])
    task = replace(task, source_train=source)
    history: list[float] = []
    started = time.perf_counter()
    steps = math.ceil(full / 64)
    spec = TrialSpec(method, {}, task.default_backbone, epochs=epochs, batch_size=64, seed=0, steps_per_epoch=steps)
    run_trial(task, spec, lambda metrics, state: history.append(100 * metrics["target_acc"]))
    return {"method": method, "fraction": fraction, "images": len(idx), "final": history[-1], "best": max(history),
            "steps": steps, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    jobs = [(m, f, args.epochs) for m in METHODS for f in FRACTIONS]
    import multiprocessing

    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(run, jobs))
    rows, notes = [], []
    for method in METHODS:
        mine = sorted((r for r in results if r["method"] == method), key=lambda r: r["images"])
        for r in mine:
            rows.append([method, r["images"], r["final"], r["best"], f"{r['seconds']:.0f}"])
        # accuracy per doubling of the source pool, from the smallest to the full pool (least squares in log2)
        xs = [math.log2(r["images"]) for r in mine]
        ys = [r["final"] for r in mine]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        notes.append(f"- {method}: {slope:+.1f} points per doubling of the source pool (final epoch, least squares "
                     f"over {len(mine)} sizes); TLlib's pool is {54_000 / mine[-1]['images']:.1f}x ours "
                     f"({math.log2(54_000 / mine[-1]['images']):.1f} doublings; 54k = 60k less a 10% validation "
                     f"split). TLlib reports {TLLIB_MNIST_TO_USPS[method]} on M->U.")
    text = "\n".join([
        header("MNIST->USPS: target accuracy vs the size of the MNIST source pool",
               "python -m benchmarks.papers.digits_pool" + (f" --epochs {args.epochs}" if args.epochs != 15 else "")),
        f"\nWall time {time.time() - started:.0f} s. LeNet, defaults of each method (lr 0.01, batch 64), seed 0, "
        f"{args.epochs} epochs of {results[0]['steps']} steps for every pool size (the same number of updates), "
        "target = the built-in USPS target split; stratified subsets of the 9,000 MNIST training images.\n",
        md_table(rows, ["method", "source images", "target acc, final epoch (%)", "best epoch (oracle, %)",
                        "seconds"]),
        "",
        *notes,
        "",
    ])
    print(text)
    print(write("digits_pool.md", text, PAPER_RESULTS))


if __name__ == "__main__":
    main()
