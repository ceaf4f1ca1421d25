"""Memory of an image-folder search as the folders grow, and what the frozen-feature cache saves.

For each size (total images over the source and target folders; copies of a few distinct JPEGs, hard-linked,
at 256x256 px), the product's real search (``adaptune search CONFIG`` as a subprocess, Ray included) decodes
the folders at 224 px with a small timm backbone and runs three trials of one CPU, in two searches:

* ``source_only``, fine-tuning from freeze depth 0: augmented batches streamed by a DataLoader worker, and an
  evaluation pass over every held-out source and target image after each epoch;
* ``linear_probe`` twice, one after the other: the whole backbone frozen, so the first trial encodes every image
  once and writes the run's feature cache, and the second reads it.

While the search runs, the resident memory (RSS) of every process of its tree (driver, Ray's own processes,
trial workers, their DataLoader workers) is sampled twice a second. The page reports the largest RSS of any
one trial process, of the driver, and of the sum over the tree (an upper bound: shared library pages count in
every process), and the wall time of the two linear-probe trials.

  python -m benchmarks.image_scale [--sizes 4000,16000,64000] [--work DIR]
      (writes benchmarks/results/image_scale.md; needs psutil, in the dev extra)

Targets: at most 3 GiB per trial process and at most 10% growth from the smallest to the largest size; the
second full-freeze trial at least 10x faster than the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import yaml

from benchmarks._common import header, md_table, rerun_command, write

BACKBONE = "timm:mobilenetv3_small_050"  # the memory under test is the data path's, not the network's
IMAGE_SIZE = 224
DISTINCT_PER_CLASS = 20
CLASSES = 10
TRIAL_MARK = "ray::"  # Ray names its worker processes ray::<task or actor>; trial processes are among them
GiB = 2**30


def write_folders(root: str, total: int) -> tuple[str, str]:
    """Source and target folders of ``total / 2`` images each: hard links to a few distinct JPEGs per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    originals = os.path.join(root, "originals")
    if not os.path.isdir(originals):
        os.makedirs(originals)
        for c in range(CLASSES):
            for i in range(DISTINCT_PER_CLASS):
                base = rng.integers(0, 256, 3)
                pixels = np.clip(base + rng.normal(0, 40, (256, 256, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(originals, f"{c}-{i}.jpg"), quality=90)
    folders = []
    for domain in ("source", "target"):
        folder = os.path.join(root, f"{total}", domain)
        per_class = total // 2 // CLASSES
        if not os.path.isdir(folder):
            for c in range(CLASSES):
                os.makedirs(os.path.join(folder, f"class{c}"))
                for i in range(per_class):
                    os.link(os.path.join(originals, f"{c}-{i % DISTINCT_PER_CLASS}.jpg"),
                            os.path.join(folder, f"class{c}", f"{i}.jpg"))
        folders.append(folder)
    return folders[0], folders[1]


@dataclass
class MemoryPeaks:
    driver: int = 0
    trial: int = 0
    total: int = 0
    by_pid: dict[int, int] = field(default_factory=dict)


def watch(pid: int, peaks: MemoryPeaks, stop: threading.Event) -> None:
    """Sample the RSS of ``pid`` and its descendants until ``stop`` is set."""
    import psutil

    root = psutil.Process(pid)
    while not stop.is_set():
        total = 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                rss, name = process.memory_info().rss, " ".join(process.cmdline()[:1])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += rss
            peaks.by_pid[process.pid] = max(peaks.by_pid.get(process.pid, 0), rss)
            if process.pid == pid:
                peaks.driver = max(peaks.driver, rss)
            elif name.startswith(TRIAL_MARK) and "IDLE" not in name:
                peaks.trial = max(peaks.trial, rss)
        peaks.total = max(peaks.total, total)
        stop.wait(0.5)


@dataclass
class Outcome:
    total_images: int
    finetune: MemoryPeaks  # the fine-tuning search: streamed batches and evaluation passes
    probe: MemoryPeaks  # the full-freeze search: the frozen features of every image, cached and held
    wall_s: float
    probe_s: list[float]
    backbone: str = BACKBONE
    # per probe trial: its head_l2, head fit s, L-BFGS iterations, evaluation s
    probe_parts: list[tuple[float, float, int, float]] = field(default_factory=list)


def _search(config: dict, out: str, peaks: MemoryPeaks) -> None:
    """One ``adaptune search`` of ``config`` into ``out``, its process tree's memory sampled into ``peaks``."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "config.in.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    adaptune = os.path.join(os.path.dirname(sys.executable), "adaptune")
    process = subprocess.Popen([adaptune, "search", path, "--out", os.path.join(out, "run"), "--quiet"])
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(process.pid, peaks, stop), daemon=True)
    watcher.start()
    code = process.wait()
    stop.set()
    watcher.join()
    if code != 0:
        sys.exit(f"adaptune search exited with {code} for {config['source']}")


def run_searches(source: str, target: str, out: str, backbone: str = BACKBONE) -> Outcome:
    """Fine-tuning (one trial), then two full-freeze trials one after the other (the second reads the cache)."""
    from adaptune.reports.run_dir import RunDir

    common = {"source": source, "target": target, "image_size": IMAGE_SIZE, "backbone": backbone, "epochs": 1,
              "steps_per_epoch": 20, "batch_size": 32, "seed": 0, "ensemble_k": 0}
    finetune, probe, started = MemoryPeaks(), MemoryPeaks(), time.perf_counter()
    _search({**common, "methods": ["source_only"], "trials": 1, "resources": {"cpus_per_trial": 1}},
            os.path.join(out, "finetune"), finetune)
    # feature_engine trial: the first trial computes the features itself (Ray Data would, from 10,000 images on,
    # before any trial), which is what the second trial's speed-up is measured against.
    _search({**common, "methods": ["linear_probe"], "trials": 2, "feature_engine": "trial",
             "resources": {"cpus_per_trial": 1, "max_concurrent": 1}}, os.path.join(out, "probe"), probe)
    board = RunDir(os.path.join(out, "probe", "run")).read_table(RunDir.LEADERBOARD)
    probes = board[board["method"] == "linear_probe"].sort_values("started_at")
    history = RunDir(os.path.join(out, "probe", "run")).read_table(RunDir.HISTORY).set_index("trial_id")
    parts = [(float(c), float(history.loc[t, "train_s"]), int(history.loc[t, "steps"]),
              float(history.loc[t, "eval_s"])) for t, c in zip(probes["trial_id"], probes["head_l2"])]
    n = sum(len(files) for folder in (source, target) for _, _, files in os.walk(folder))
    return Outcome(n, finetune, probe, time.perf_counter() - started, [float(s) for s in probes["wall_s"]], backbone,
                   parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4000,16000,64000", help="total images (source + target) per search")
    parser.add_argument("--work", default=None, help="where the folders and runs go (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="results page (default benchmarks/results/image_scale.md)")
    parser.add_argument("--backbone", default=BACKBONE, help="the network the full-freeze trials encode with")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="adaptune-image-scale-")
    outcomes = []
    try:
        for total in sizes:
            source, target = write_folders(work, total)
            outcome = run_searches(source, target, os.path.join(work, f"runs-{total}"), args.backbone)
            outcomes.append(outcome)
            print(f"{total} images: fine-tuning trial {outcome.finetune.trial / GiB:.2f} GiB, full-freeze trial "
                  f"{outcome.probe.trial / GiB:.2f} GiB, probes {outcome.probe_s}", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = page(outcomes)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    else:
        write("image_scale.md", text)
    print(text)


def page(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        first, *later = o.probe_s or [float("nan")]
        driver = max(o.finetune.driver, o.probe.driver)
        tree = max(o.finetune.total, o.probe.total)
        rows.append([f"{o.total_images:,}", f"{o.finetune.trial / GiB:.2f}", f"{o.probe.trial / GiB:.2f}",
                     f"{driver / GiB:.2f}", f"{tree / GiB:.2f}", f"{first:.1f}",
                     ", ".join(f"{s:.1f}" for s in later) or "-", f"{first / min(later):.0f}x" if later else "-",
                     "; ".join(f"C {c:.2g}: {fit:.1f} s / {its} / {ev:.1f} s" for c, fit, its, ev in o.probe_parts)
                     or "-",
                     f"{o.wall_s:.0f}"])
    small, large = outcomes[0], outcomes[-1]
    growth = large.finetune.trial / small.finetune.trial - 1
    probe_growth = large.probe.trial - small.probe.trial
    largest = max(large.finetune.trial, large.probe.trial)
    speedups = [o.probe_s[0] / min(o.probe_s[1:]) for o in outcomes if len(o.probe_s) > 1]
    lines = [
        header("Image folders at scale: memory of a search, and the frozen-feature cache",
               rerun_command(locations=("--work", "--out"))),
        "",
        f"Each size: `{small.backbone}` at {IMAGE_SIZE} px on two image folders (half the images each, 10 classes, "
        f"hard links to {DISTINCT_PER_CLASS} distinct 256x256 JPEGs per class), two searches of one-CPU trials: "
        "one `source_only` fine-tuning trial (20 steps of 32 augmented images streamed by a DataLoader worker, then "
        "an evaluation pass over every held-out source and target image), then two `linear_probe` trials one after "
        "the other (the whole backbone frozen: the first trial encodes every image into the run's feature cache, "
        "the second reads it; `feature_engine: trial`). RSS sampled every 0.5 s over each search's process tree.",
        "",
        "*fine-tune trial GiB* / *full-freeze trial GiB*: the largest RSS of one trial process of that search; "
        "*driver GiB*: the `adaptune search` process; *tree GiB*: the largest sum over every process of a search, "
        "Ray's included (shared pages counted in each); *1st probe s* / *later probe s*: wall time of the "
        "linear-probe trials, the first computing the frozen features, the later reading them; *head fit / L-BFGS "
        "iterations / evaluation*: per probe trial, in order, its `head_l2` (the first at the default, the second "
        "sampled), the seconds its head took to fit, the L-BFGS iterations, and the seconds of its evaluation pass "
        "and proxies.",
        "",
        md_table(rows, ["images", "fine-tune trial GiB", "full-freeze trial GiB", "driver GiB", "tree GiB",
                        "1st probe s", "later probe s", "speed-up",
                        "head_l2: head fit / L-BFGS iterations / evaluation", "search s"]),
        "",
        "## What follows",
        "",
        f"- Streaming: the fine-tuning trial peaked at {large.finetune.trial / GiB:.2f} GiB with "
        f"{large.total_images:,} images, {100 * growth:+.0f}% from {small.total_images:,} (targets: at most 3 GiB "
        f"per trial, {'met' if largest <= 3 * GiB else 'not met'}; at most +10% growth, "
        f"{'met' if growth <= 0.10 else 'not met'}). It holds the file names and a batch of decoded images per "
        "DataLoader worker; the evaluation keeps each image's features and logits, not the image.",
        f"- A full-freeze trial holds what it trains on, the frozen features of every image (images x the backbone's "
        f"feature width, float32): {probe_growth / GiB:+.2f} GiB from {small.total_images:,} to "
        f"{large.total_images:,} images here. That grows with the data by design; a wider backbone (ResNet-50: "
        "2,048 features) grows it fourfold.",
        f"- The later full-freeze trials ran {min(speedups):.0f}x to {max(speedups):.0f}x faster than the first "
        f"(target at least 10x: {'met' if speedups and min(speedups) >= 10 else 'not met'}): the cache serves "
        "every trial process of a run, and with `feature_cache: DIR` every run. What a later trial still spends "
        "grows with the images, not with the backbone: fitting its head to convergence (L-BFGS over every source "
        "image) and its proxies. The first trial's extra is the encoding, which grows "
        f"with the backbone's cost per image, so a network costlier than `{small.backbone}` raises the ratio."
        if speedups else
        "- Fewer than two linear-probe trials ran: no cache speed-up measured.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
