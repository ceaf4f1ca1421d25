"""Held-out source accuracy against optimizer steps, for every trainable method at its defaults.

This is the evidence behind ``algorithms.budget.MIN_STEPS_PER_EPOCH``: ASHA first compares trials after
``grace_period`` epochs, so an epoch must be long enough that every method's source objective has had a fair
chance to converge by then, on the smallest task as on the largest. Plain torch (the trial loop the search
runs), one report every ``--every`` steps, seeds 0..``--seeds``-1.

  python -m benchmarks.source_curves [--tasks T,...] [--steps 1200] [--every 25] [--seeds 3] [--workers 2]
  python -m benchmarks.source_curves --report-only      # rewrite the page from the committed raw file

Rows of the tasks run replace their earlier rows in the raw file; other tasks' rows are kept.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks._common import RESULTS, header, md_table, read_jsonl, write

RAW = os.path.join(RESULTS, "raw", "source_curves.jsonl.gz")
DEFAULT_TASKS = ("office-surf:D->W", "office-decaf:D->W", "mnist-usps-jda:U->M", "amazon-5000:B->D", "mnist->usps")
SHOWN_STEPS = (25, 50, 100, 200, 300, 400, 600, 800, 1200)
TOLERANCE = 0.02  # a curve has plateaued once it stays within 2 points of its final level ...


def run_one(job: dict) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.loop import TrialSpec, run_trial

    task = load_task(job["task"])
    rows: list[dict] = []
    spec = TrialSpec(job["method"], {}, task.default_backbone, epochs=job["steps"] // job["every"],
                     steps_per_epoch=job["every"], seed=job["seed"])
    started = time.perf_counter()
    run_trial(task, spec, lambda metrics, state: rows.append(
        {**job, "at": metrics["steps"], "source_acc": metrics["source_acc"],
         "train_cls_loss": metrics.get("train_cls_loss"), "n_source": len(task.source_train),
         "n_val": len(task.source_val)}))
    for row in rows:
        row["wall_s"] = time.perf_counter() - started
    return rows


def plateau_step(points: list[tuple[int, float]], n_val: int) -> int:
    """The first step from which the curve never drops more than the tolerance below its final level.

    The final level is the mean of the last quarter of the curve. The tolerance is TOLERANCE or one held-out
    sample, whichever is larger: on a 16-sample validation split one sample is 6 points, and a curve that
    moves by one sample has not moved.
    """
    points = sorted(points)
    tail = [acc for _, acc in points[-max(1, len(points) // 4):]]
    level, tolerance = statistics.fmean(tail), max(TOLERANCE, 1.0 / n_val)
    step = points[-1][0]
    for at, acc in reversed(points):
        if acc < level - tolerance:
            break
        step = at
    return step


def report(rows: list[dict], command: str) -> str:
    by_curve: dict[tuple[str, str], dict[int, list[float]]] = {}
    sizes, n_val = {}, {}
    for row in rows:
        by_curve.setdefault((row["task"], row["method"]), {}).setdefault(row["at"], []).append(row["source_acc"])
        sizes[row["task"]], n_val[row["task"]] = row["n_source"], row["n_val"]
    tasks = sorted(sizes, key=sizes.get)
    table, plateaus = [], {}
    for task in tasks:
        for (t, method), curve in sorted(by_curve.items()):
            if t != task:
                continue
            mean_curve = [(at, statistics.fmean(accs)) for at, accs in sorted(curve.items())]
            plateaus[(task, method)] = plateau_step(mean_curve, n_val[task])
            shown = {at: acc for at, acc in mean_curve}
            table.append([task, method, *[100 * shown[s] if s in shown else "" for s in SHOWN_STEPS],
                          plateaus[(task, method)]])
    summary = []
    for task in tasks:
        values = [v for (t, _), v in plateaus.items() if t == task]
        worst = max(plateaus[(t, m)] for (t, m) in plateaus if t == task)
        slowest = [m for (t, m), v in plateaus.items() if t == task and v == worst]
        summary.append([task, sizes[task], n_val[task], statistics.median(values), worst, ", ".join(slowest)])
    seeds = sorted({row["seed"] for row in rows})
    from adaptune.algorithms.budget import DEFAULT_GRACE_EPOCHS, MIN_STEPS_PER_EPOCH

    grace = DEFAULT_GRACE_EPOCHS
    smallest = [t for t in tasks if sizes[t] == sizes[tasks[0]]]
    small_plateaus = sorted(v for (t, _), v in plateaus.items() if t in smallest)
    covered = sum(v <= grace * MIN_STEPS_PER_EPOCH for v in small_plateaus)
    findings = (
        f"\n## What follows\n\nAn epoch is at least `MIN_STEPS_PER_EPOCH` = {MIN_STEPS_PER_EPOCH} steps, so with the "
        f"default `grace_period` of {grace} epochs ASHA first compares trials after {grace * MIN_STEPS_PER_EPOCH} "
        f"steps. On the smallest tasks ({', '.join(smallest)}: {sizes[tasks[0]]} labeled source rows, one pass = "
        f"{-(-sizes[tasks[0]] // 64)} steps) {covered} of {len(small_plateaus)} method curves have plateaued by then "
        f"(median {statistics.median(small_plateaus):g} steps, slowest {small_plateaus[-1]}); before the floor, a "
        f"pass of {-(-sizes[tasks[0]] // 64)} steps made the first rung {grace * -(-sizes[tasks[0]] // 64)} steps. "
        "Larger sources get one pass per epoch once a pass is longer than the floor."
    )
    return "\n".join([
        header("Source accuracy against optimizer steps", command),
        f"Every trainable method at its defaults (seeds {', '.join(map(str, seeds))}, batch 64, the task's default "
        "backbone), trained by the search's trial loop; held-out source accuracy (%) is the mean over seeds. "
        f"*plateau* is the first step from which the mean curve stays within {100 * TOLERANCE:.0f} points (or one "
        "held-out sample, when that is more) of its final level (the mean of its last quarter). Target labels play "
        "no part.\n",
        "## Where the curves flatten, per task (smallest source first)\n",
        md_table(summary, ["task", "source_train rows", "source_val rows", "median plateau (steps)",
                           "slowest plateau (steps)", "slowest method(s)"]),
        "\n## Curves\n",
        md_table(table, ["task", "method", *[f"{s}" for s in SHOWN_STEPS], "plateau"]),
        findings,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--methods", help="comma-separated (default: every trainable method)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    command = "python -m benchmarks.source_curves" + "".join(
        f" --{k} '{v}'" for k, v in (("tasks", args.tasks), ("methods", args.methods), ("steps", args.steps),
                                     ("every", args.every), ("seeds", args.seeds))
        if v != parser.get_default(k))
    if not args.report_only:
        from adaptune.algorithms.methods import METHODS

        methods = args.methods.split(",") if args.methods else sorted(
            n for n, c in METHODS.items() if not c.feature_extraction)
        jobs = [{"task": t, "method": m, "seed": s, "steps": args.steps, "every": args.every}
                for t in args.tasks.split(",") for m in methods for s in range(args.seeds)]
        with ProcessPoolExecutor(args.workers) as pool:
            new = [row for trial_rows in pool.map(run_one, jobs) for row in trial_rows]
        rerun = {job["task"] for job in jobs}
        kept = [row for row in read_raw() if row["task"] not in rerun]
        os.makedirs(os.path.dirname(RAW), exist_ok=True)
        with gzip.open(RAW, "wt") as out:
            out.writelines(json.dumps(row) + "\n" for row in kept + new)
    rows = read_raw()
    if args.report_only:  # the command that reproduces the whole raw file
        seeds = len({row["seed"] for row in rows})
        tasks = ",".join(dict.fromkeys(row["task"] for row in rows))
        command = "python -m benchmarks.source_curves" + (f" --tasks '{tasks}'" if set(tasks.split(",")) != set(
            DEFAULT_TASKS) else "") + (f" --seeds {seeds}" if seeds != parser.get_default("seeds") else "")
    print(write("source_curves.md", report(rows, command)))


def read_raw() -> list[dict]:
    if not os.path.exists(RAW):
        return []
    return read_jsonl(RAW)


if __name__ == "__main__":
    main()
