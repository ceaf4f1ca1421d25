"""Deep trials from their own initialisation or from the shared source-only model (``warm_start``).

Reads pools of ``benchmarks.methods_bench run`` (every method once at its defaults on each task of a group), each
labelled with the ``--warm-start`` it ran with, and reports per group the recommended selection against the
oracle and the no-adaptation baseline (as ``benchmarks.preprocess_pools``), then per deep method its mean target
and held-out source accuracy at the first ASHA rung and at the last epoch. Target labels only score.

  python -m benchmarks.warm_start none=raw/proxies-surf.jsonl.gz source=raw/proxies-surf-warm.jsonl.gz ...
      (paths under benchmarks/results/)
"""

from __future__ import annotations

import os
import statistics
import sys

import pandas as pd

from adaptune.algorithms.budget import DEFAULT_GRACE_EPOCHS
from adaptune.algorithms.loop import WARM_START_EPOCHS
from adaptune.algorithms.methods import get_method
from adaptune.algorithms.preprocess import DEFAULT_PREPROCESS
from benchmarks._common import RESULTS, group_of, header, md_table, rerun_command, write
from benchmarks.baselines import saved_baseline
from benchmarks.methods_bench import ensemble_scheme
from benchmarks.preprocess_pools import PROXY, SCHEMES, SHIPPED, summary_table, task_table
from benchmarks.proxies_report import load

FIRST_RUNG_EPOCH = DEFAULT_GRACE_EPOCHS  # where ASHA first compares trials by default


def pool_rows(label: str, path: str) -> list[dict]:
    """Per task of one pool labelled ``label`` (its warm start): the oracle's best trial, the recommended ensembles
    (as methods_bench recorded them) and the baseline under the default preprocessing, in percent."""
    points, ensembles, _ = load([os.path.join(RESULTS, path)])
    chosen = ensembles[ensembles["selected_by"] == f"proxy_{PROXY}"]
    rows = []
    for task, history in points.groupby("task"):
        row = {"group": group_of(task), "task": task, "warm_start": label,
               "oracle": 100 * history["target_acc"].max(),
               "baseline": saved_baseline(task, DEFAULT_PREPROCESS)["best"]}
        for name, gap in SCHEMES.items():
            match = chosen[(chosen["task"] == task) & (chosen["scheme"] == ensemble_scheme(gap))]["ensemble_target_acc"]
            row[name] = 100 * float(match.iloc[0]) if len(match) else float("nan")
        rows.append(row)
    return rows


def deep_methods(path: str, label: str) -> pd.DataFrame:
    """Per deep method and group of one pool: mean target and source accuracy (%) at the first rung and at the
    last epoch."""
    points, _, _ = load([os.path.join(RESULTS, path)])
    deep = points[points["method"].map(lambda m: not get_method(m).feature_extraction)]
    rows = []
    for (task, method), trial in deep.groupby(["task", "method"]):
        rung, final = trial[trial["epoch"] == FIRST_RUNG_EPOCH], trial[trial["epoch"] == trial["epoch"].max()]
        rows.append({"group": group_of(task), "method": method, "label": label,
                     "rung_target": 100 * rung["target_acc"].mean(), "final_target": 100 * final["target_acc"].mean(),
                     "rung_source": 100 * rung["source_acc"].mean(), "final_source": 100 * final["source_acc"].mean()})
    return pd.DataFrame(rows).groupby(["group", "method", "label"], sort=False).mean().reset_index()


def verdict(recommended: dict[str, dict[str, float]]) -> str:
    """Whether the warm start earns adoption: the recommended selection must not be lower on any group."""
    lower = [group for group, means in recommended.items() if means.get("source", 0.0) < means.get("none", 0.0)]
    if lower:
        return (f"- Not adopted: with the warm start the recommended selection is lower on {len(lower)} of "
                f"{len(recommended)} groups ({', '.join(lower)}), so deep trials keep starting from their own "
                "initialisation and `warm_start` is not a search setting.")
    return (f"- The recommended selection is at least as high with the warm start on all {len(recommended)} groups "
            "measured here; adopting it needs the same on the whole suite.")


def main(pairs: list[str]) -> None:
    labelled = [pair.split("=", 1) for pair in pairs]
    rows = [row for label, path in labelled for row in pool_rows(label, path)]
    summary, recommended = summary_table(rows, "warm_start")
    table = task_table(rows, "warm_start")
    methods = pd.concat([deep_methods(path, label) for label, path in labelled], ignore_index=True)
    wide = methods.pivot_table(index=["group", "method"], columns="label", sort=False,
                               values=["rung_target", "final_target", "final_source"])
    labels = list(dict.fromkeys(label for label, _ in labelled))
    method_rows = [[group, method, *[wide.loc[(group, method), (value, label)] for value in
                                     ("rung_target", "final_target", "final_source") for label in labels]]
                   for group, method in wide.index]
    final_means = {label: statistics.fmean(wide[("final_target", label)]) for label in labels}
    text = "\n".join([
        header("Shared source warm start: deep trials from their init or from the source-only model",
               rerun_command()),
        "Each pool: every method once at its defaults on each task (`benchmarks.methods_bench run ... --configs 1 "
        "--epochs 12 --warm-start KIND`). With `source`, every deep trial starts from the source-only model that "
        f"its own initialisation reaches in {WARM_START_EPOCHS} epochs at source_only's defaults (trained once per "
        "task and seed, shared by the trials); closed-form trials are the same under both. *recommended*: the "
        f"ensemble of the top 5 trials by `{PROXY}` (every trial admitted, and within the shipped source gap); "
        f"*baseline*: the better of source-only LR and 1-NN (`preprocess: {DEFAULT_PREPROCESS}`, baselines.md). "
        "Target accuracy (%); the oracle labels only score.\n",
        summary,
        "",
        table,
        "",
        f"## Deep methods, mean over the group's tasks (%): target at epoch {FIRST_RUNG_EPOCH} (ASHA's first rung), "
        "target and held-out source at the last epoch",
        "",
        md_table(method_rows, ["group", "method",
                               *[f"{name}, {label}" for name in ("rung target", "final target", "final source")
                                 for label in labels]]),
        "",
        "## What follows",
        "",
        *[f"- {group}: the recommended selection ({SHIPPED}) averages "
          + ", ".join(f"{mean:.1f}% with `{label}`" for label, mean in means.items()) + "."
          for group, means in recommended.items()],
        "- Deep trials at their last epoch average " + ", ".join(f"{mean:.1f}% with `{label}`"
                                                                 for label, mean in final_means.items())
        + " over the groups' tasks and methods.",
        verdict(recommended),
        "",
    ])
    print(write("warm_start.md", text))


if __name__ == "__main__":
    main(sys.argv[1:])
