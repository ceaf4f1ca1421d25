"""The papers' SVM protocol on Office-Caltech10 SURF across cross-validation splits: how much of a match is the split?

Usage: python -m benchmarks.papers.svm_seeds [--seeds 0,1,2,3,4]   (writes papers/results/svm_seeds.md)

The CORAL paper's Table 3 (NA, SA, CORAL) picks the SVM's C by LIBSVM's 2-fold cross-validation (``-v 2``), which
draws one random split. ``surf_shallow.py`` and ``sa_dims.py`` use one split (seed 0), so their gaps to Table 3
mix the method with the luck of that split. This script repeats the three published rows for several splits:
- **NA RBF**: the row "NA" of Table 3 comes from the SA code's ``LinAccuracy``, which calls ``svmtrain`` without
  ``-t``: LIBSVM's default RBF kernel ``exp(-gamma |x - x'|^2)`` with gamma = 1 / number of features (1/800),
  on the raw (preprocessed) features.
- **SA d=10 papers'** and **CORAL papers'**: the method's map A, fitted on all source + all target samples with
  the defaults (SA at the paper's d = 10, see sa_dims.md), and the papers' matrices ``Xs A Xs'`` / ``Xs A Xt'``
  (``surf_shallow.papers_kernels``).
Target labels are only scored; nothing here is chosen on them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from statistics import fmean

import torch

from adaptune.algorithms.domains import Task
from benchmarks._common import PAPER_RESULTS, header, md_table, write
from benchmarks.papers.surf_shallow import (
    CORAL_TABLE3,
    TASK_ORDER,
    fitted,
    full_task,
    mean_abs_gap,
    papers_kernels,
    svm,
)
from benchmarks.papers.svm import MAX_ITER

Kernels = tuple[torch.Tensor, torch.Tensor]


def rbf_kernels(task: Task) -> Kernels:
    """LIBSVM's default kernel on the raw features: RBF with gamma = 1 / number of features."""
    xs, xt = task.source_train.x.double(), task.target_val.x.double()
    gamma = 1.0 / xs.shape[1]
    return torch.exp(-gamma * torch.cdist(xs, xs).square()), torch.exp(-gamma * torch.cdist(xt, xs).square())


def mapped_kernels(name: str, **hparams: object) -> Callable[[Task], Kernels]:
    def build(task: Task) -> Kernels:
        return papers_kernels(fitted(name, task, **hparams)[0], task)

    return build


ROWS: dict[str, tuple[Callable[[Task], Kernels], list[float]]] = {
    "NA RBF": (rbf_kernels, CORAL_TABLE3["no_adaptation"]),
    "SA d=10 papers'": (mapped_kernels("subspace_alignment", subspace_dim=10), CORAL_TABLE3["subspace_alignment"]),
    "CORAL papers'": (mapped_kernels("coral"), CORAL_TABLE3["coral"]),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the 2-fold CV split")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.time()
    # accuracy[row][seed][task], chosen C and capped pairs per row
    accuracy: dict[str, dict[int, dict[str, float]]] = {row: {s: {} for s in seeds} for row in ROWS}
    chosen_c: dict[str, set[float]] = {row: set() for row in ROWS}
    capped: dict[str, int] = {row: 0 for row in ROWS}
    for pair in TASK_ORDER:
        task, labels = full_task(*pair.split("->"))
        for row, (build, _) in ROWS.items():
            train_kernel, test_kernel = build(task)
            for seed in seeds:
                acc, c, hit = svm(train_kernel, task.source_train.y, test_kernel, labels, seed)
                accuracy[row][seed][pair] = acc
                chosen_c[row].add(c)
                capped[row] += hit
        print(pair, {row: [round(accuracy[row][s][pair], 1) for s in seeds] for row in ROWS},
              f"{time.time() - started:.0f}s", flush=True)

    def exact(row: str, seed: int) -> int:
        """Tasks whose accuracy rounds to Table 3's number (given to 0.1)."""
        published = ROWS[row][1]
        return sum(round(accuracy[row][seed][pair], 1) == ref for pair, ref in zip(TASK_ORDER, published))

    averages = {row: [fmean(accuracy[row][s].values()) for s in seeds] for row in ROWS}  # 12-task mean per split
    summary = []
    for row, (_, published) in ROWS.items():
        summary.append([row, fmean(published), fmean(averages[row]), min(averages[row]), max(averages[row]),
                        fmean(averages[row]) - fmean(published),
                        fmean(mean_abs_gap(accuracy[row][s], published) for s in seeds),
                        " ".join(str(exact(row, s)) for s in seeds),
                        ", ".join(f"{c:g}" for c in sorted(chosen_c[row])), capped[row]])
    by_seed = [[row, *averages[row]] for row in ROWS]
    per_task = []
    for k, pair in enumerate(TASK_ORDER):
        cells: list[object] = [pair]
        for row, (_, published) in ROWS.items():
            values = [accuracy[row][s][pair] for s in seeds]
            cells += [f"{fmean(values):.1f} ({min(values):.1f}-{max(values):.1f})", published[k]]
        per_task.append(cells)
    text = "\n".join([
        header("The papers' SVM on Office-Caltech10 SURF across CV splits",
               "python -m benchmarks.papers.svm_seeds"
               + (f" --seeds {args.seeds}" if args.seeds != "0,1,2,3,4" else "")),
        f"\nWall time {time.time() - started:.0f} s. Target accuracy (%) on the 12 tasks; C by 2-fold stratified "
        f"source CV over 1e-3 ... 1e4 with split seeds {args.seeds}, refitted on all source samples "
        f"(`benchmarks/papers/svm.py`, SMO capped at {MAX_ITER:,} iterations per class pair). Rows: NA RBF = "
        "LIBSVM's default RBF kernel (gamma 1/800) on the raw features, the classifier behind Table 3's NA row; "
        "SA (d=10) and CORAL on the papers' matrices `Xs A Xs'` / `Xs A Xt'`. Published: CORAL paper Table 3.",
        "\n## 12-task averages over the CV splits\n",
        md_table(summary, ["row", "Table 3", "ours, mean over splits", "min", "max", "mean - Table 3",
                           "mean abs. per-task gap", "tasks equal to Table 3, per split", "C chosen",
                           "capped pairs (all fits)"]),
        "\n## Average per split\n",
        md_table(by_seed, ["row", *(f"seed {s}" for s in seeds)]),
        "\n## Per task: mean over splits (min-max), next to Table 3\n",
        md_table(per_task, ["task", *(h for row in ROWS for h in (row, "Table 3"))]),
        "",
    ])
    print(text)
    print(write("svm_seeds.md", text, PAPER_RESULTS))


if __name__ == "__main__":
    main()
