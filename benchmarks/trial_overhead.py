"""Per-trial overhead of Tune and of Tune + Ray Train, against the same training loop run bare.

Usage: python benchmarks/trial_overhead.py [--epochs 22] [--trials 2]   (writes benchmarks/results/trial_overhead.md)

One fixed configuration (source_only on mnist->usps, LeNet, lr 0.01, 1 CPU thread) is trained
``--epochs`` epochs, about 60 s here. Bare: ``run_trial`` in this process. Tune / Train: a search of
``--trials`` identical trials run one at a time (ASHA cannot stop them: grace period = epochs), timed
around ``Tuner.fit`` after Ray has started. Overhead per trial = (fit wall / trials) - bare wall.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, md_table, write  # noqa: E402


def bare(epochs: int) -> float:
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.loop import TrialSpec, run_trial

    torch.set_num_threads(1)
    started = time.perf_counter()
    task = load_task("mnist->usps")
    run_trial(task, TrialSpec("source_only", {"lr": 0.01}, "lenet", epochs=epochs, seed=0), lambda m, s: None)
    return time.perf_counter() - started


def searched(runner: str, epochs: int, trials: int) -> tuple[float, int]:
    from adaptune.search.config import build_config
    from adaptune.search.run import prepare, run_search

    out = tempfile.mkdtemp(prefix=f"adaptune-overhead-{runner}-")
    raw = {"task": "mnist->usps", "methods": ["source_only"], "trials": trials, "epochs": epochs,
           "out": os.path.join(out, "run"), "quiet": True, "search_space": {"lr": [0.01, 0.01]},
           "scheduler": {"grace_period": epochs},
           "resources": {"runner": runner, "cpus_per_trial": 1, "max_concurrent": 1}}
    summary = run_search(prepare(build_config(raw)))
    return summary["wall_s"], summary["trials"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=22)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    bare_s = bare(args.epochs)
    print(f"bare: {bare_s:.1f}s", flush=True)

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, dashboard_host="127.0.0.1", log_to_driver=False)
    init_s = time.perf_counter() - started
    rows = [["bare run_trial (no Ray)", bare_s, 0.0, 0.0]]
    for runner in ("tune", "train"):
        wall, n = searched(runner, args.epochs, args.trials)
        per_trial = wall / n
        rows.append([f"runner={runner} ({n} trials, one at a time)", per_trial, per_trial - bare_s,
                     100 * (per_trial - bare_s) / bare_s])
        print(rows[-1], flush=True)
    ray.shutdown()
    text = "\n".join([
        header("Trial overhead: Tune and Tune + Ray Train vs the bare loop",
               f"python benchmarks/trial_overhead.py --epochs {args.epochs} --trials {args.trials}"),
        f"\nSame fixed trial everywhere: source_only, mnist->usps, LeNet, lr 0.01, batch 64, {args.epochs} epochs, "
        f"1 CPU thread. `ray.init` ({init_s:.1f} s) is paid once per search and excluded.\n",
        md_table(rows, ["path", "seconds per trial", "overhead s", "overhead % of the trial"]),
        "\nTarget: Tune + Train overhead at most 10% of a 60-second trial. The overhead includes Tune's "
        "scheduling, per-epoch checkpoints written to the run directory, and (train) the TorchTrainer "
        "controller, worker group and placement group of every trial.",
    ])
    print(write("trial_overhead.md", text + "\n"))


if __name__ == "__main__":
    main()
