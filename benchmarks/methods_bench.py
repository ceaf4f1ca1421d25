"""Every method on real benchmarks: target accuracy picked by the default proxy and by the oracle.

Plain torch (no Ray, no Optuna), so it also runs on a GPU machine where Ray is absent. For each task and
method it trains ``--configs`` configurations: the method's defaults, then random draws from its declared
search space (the same ``Param`` objects the Optuna search uses), with the run_trial loop the search uses.
Every (trial, epoch) is recorded; selection is then:
  * by proxy: the (trial, epoch) with the highest default proxy (``proxy: auto``, AUTO_PROXY for the input
    kind); its target accuracy is reported;
  * by oracle: the (trial, epoch) with the highest target accuracy (an upper bound; never used to select).

  python -m benchmarks.methods_bench run --group surf --out results-surf.jsonl [--workers 2] [--device cpu]
  python -m benchmarks.methods_bench report results-*.jsonl        # writes benchmarks/results/methods.md
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from adaptune.algorithms.domains import Task
from adaptune.algorithms.loop import DEFAULT_WEIGHT_DECAY, WARM_STARTS
from adaptune.algorithms.preprocess import DEFAULT_PREPROCESS
from benchmarks._common import rerun_command

GROUPS = {
    "digits": ["mnist->usps", "usps->mnist"],
    "surf": [f"office-surf:{s}->{t}" for s in "ACWD" for t in "ACWD" if s != t],
    "amazon": [f"amazon:{s}->{t}" for s in "BDEK" for t in "BDEK" if s != t],
    "decaf": ["office-decaf:D->W", "office-decaf:W->D"],
    "jda-digits": ["mnist-usps-jda:M->U", "mnist-usps-jda:U->M"],
    "amazon-5000": [f"amazon-5000:{s}->{t}" for s in "BDEK" for t in "BDEK" if s != t],
    "digits-pixels": ["digits-pixels:M->U", "digits-pixels:U->M"],
}
# Epochs and batch size per group: one trial of a default search (12 epochs of max(one pass, 100) steps at the
# search's batch size) unless --epochs says otherwise.
SETTINGS = {group: {"epochs": 12, "batch_size": 64} for group in GROUPS}
# Gaps in held-out source accuracy (fractions) of the gated ensembles: a trial far below the search's best source
# accuracy is left out, however confident it is on the target.
SOURCE_GAPS = (0.01, 0.02, 0.03, 0.05, 0.10)
DEFAULT_FEWSHOT_K = 3  # labeled target samples per class for proxy_fewshot, taken out of the oracle's samples


def ensemble_scheme(gap: float | None, smoothed: bool = False) -> str:
    """The ``scheme`` a top-k ensemble row is recorded under: every trial admitted, or those within ``gap``; with
    the average smoothed over target neighbourhoods by the task kind's ``AUTO_SMOOTHING`` rule, or not."""
    return ("top_k" if gap is None else f"top_k_gap{round(100 * gap)}") + ("_smoothed" if smoothed else "")


def configs(task: str, method: str, n: int) -> list[dict]:
    from adaptune.algorithms.methods import get_method

    cls = get_method(method)
    # Narrower than the search's defaults: with a handful of draws, lr < 1e-3 never trains in this budget.
    ranges = {"lr": (1e-3, 1e-1), "adv_weight": (0.1, 3.0)}
    params = [p.with_range(*ranges[p.name]) if p.name in ranges else p
              for p in cls.params if p.name != "freeze_depth"]
    rng = random.Random(zlib.crc32(f"{task}|{method}".encode()))
    out = [{p.name: p.default for p in params}]
    out += [{p.name: p.sample(rng) for p in params} for _ in range(n - 1)]
    return out


def run_one(job: dict) -> tuple[list[dict], dict[str, tuple[float, torch.Tensor, float]]]:
    """One trial: its (trial, epoch) rows, and per proxy the trial's best score with that epoch's predictions and
    held-out source accuracy."""
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.domains import with_fewshot
    from adaptune.algorithms.features import DiskStore
    from adaptune.algorithms.loop import PREDICTIONS, Diverged, Runtime, TrialSpec, run_trial

    torch.set_num_threads(job["threads"])
    task = with_fewshot(load_task(job["task"], preprocess=job["preprocess"]), job["fewshot_k"])
    device = torch.device(job["device"])
    rows: list[dict] = []
    best: dict[str, tuple[float, torch.Tensor, float]] = {}  # proxy -> (score, target probs, source acc)
    started = time.perf_counter()

    def report(metrics: dict, state) -> None:  # noqa: ANN001
        rows.append({**{k: job[k] for k in ("task", "method", "config_index")}, "hparams": job["hparams"],
                     **{k: v for k, v in metrics.items() if isinstance(v, int | float)}})
        probs = None
        for key, value in metrics.items():
            if key.startswith("proxy_") and math.isfinite(value) and value > best.get(key, (-math.inf,))[0]:
                probs = state()[PREDICTIONS] if probs is None else probs
                best[key] = (value, probs, metrics["proxy_source_acc"])

    spec = TrialSpec(job["method"], job["hparams"], task.default_backbone, epochs=job["epochs"],
                     batch_size=job["batch_size"], seed=job["config_index"], amp=job["amp"],
                     warm_start=job["warm_start"], weight_decay=job["weight_decay"])
    # One store for every job of the run, so a shared warm start is trained once per task and seed.
    store = DiskStore(job["store"]) if job["store"] else None
    try:
        run_trial(task, spec, report, runtime=Runtime(device=device), store=store)
    except Diverged as error:
        rows.append({**{k: job[k] for k in ("task", "method", "config_index")}, "hparams": job["hparams"],
                     "diverged": str(error)})
    for row in rows:
        row["trial_wall_s"] = time.perf_counter() - started
    return rows, best


def ensemble_rows(task: str, trials: list[tuple[str, dict[str, tuple[float, torch.Tensor, float]]]],
                  oracle: torch.Tensor, k: int = 5,
                  smooth: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[dict]:
    """Per proxy: average the predictions of the top-k trials by that proxy (the search's ensemble row), and of
    the best trial by that proxy in each method family (``scheme`` per_family: one vote per family, so one
    family that the proxy over-rates cannot fill the ensemble), of the top-k trials with distinct methods
    (``scheme`` top_k_methods: the best trial of each of the k best methods); the top-k trials among those whose
    held-out source accuracy lies within a gap of the best one's (``scheme`` top_k_gap<points>); and the
    consensus picks. With ``smooth`` (the search's neighbourhood smoothing of an ensemble's average), the top-k
    schemes are recorded smoothed as well (:func:`ensemble_scheme` ``smoothed``): the selection a search ships."""
    from adaptune.algorithms.ensemble import average_predictions, ensemble_metrics, top_k
    from adaptune.algorithms.methods import get_method
    from adaptune.reports.leaderboard import selection_order
    from benchmarks.consensus import consensus_agreement

    out = []
    for key in sorted({key for _, trial in trials for key in trial}):
        scored = [(i, t[key][0]) for i, (_, t) in enumerate(trials) if key in t]
        family_of = {i: get_method(trials[i][0]).family for i, _ in scored}
        families: dict[str, list[tuple[int, float]]] = {}
        for i, score in scored:
            families.setdefault(family_of[i], []).append((i, score))
        best_per_family = [top_k(family, 1) for family in families.values()]
        best_per_method: dict[str, tuple[int, float]] = {}
        for i, score in scored:  # scored is in trial order, so ties keep the first trial
            if math.isfinite(score) and score > best_per_method.get(trials[i][0], (None, -math.inf))[1]:
                best_per_method[trials[i][0]] = (i, score)
        schemes = {ensemble_scheme(None): top_k(scored, k), "per_family": [best[0] for best in best_per_family if best],
                   "top_k_methods": top_k(list(best_per_method.values()), k)}
        rows = [{"trial": i, "score": score, "source_acc": trials[i][1][key][2]} for i, score in scored]
        for gap in SOURCE_GAPS:  # the search's own rule: reports.leaderboard.selection_order
            schemes[ensemble_scheme(gap)] = [r["trial"] for r in selection_order(rows, gap)[0][:k]]
        smoothed = {ensemble_scheme(gap, smoothed=True): schemes[ensemble_scheme(gap)]
                    for gap in (None, *SOURCE_GAPS)} if smooth is not None else {}
        for scheme, members in {**schemes, **smoothed}.items():
            averaged = average_predictions([trials[i][1][key][1] for i in members])
            if scheme in smoothed:
                averaged = smooth(averaged)
            metrics = ensemble_metrics(averaged, oracle)
            out.append({"kind": "ensemble", "scheme": scheme, "task": task, "selected_by": key,
                        "members": len(members), "ensemble_target_acc": metrics["target_acc"]})
        # Consensus picks (one trial, not an ensemble): the trial whose target predictions agree most with the
        # average of every trial's (all), or of each family's average (by_family).
        probs = {i: trials[i][1][key][1].float() for i, _ in scored}
        for scheme, groups in (("consensus_all", None), ("consensus_by_family", family_of)):
            agreement = consensus_agreement(probs, groups)
            pick = max(agreement, key=agreement.get)
            out.append({"kind": "ensemble", "scheme": scheme, "task": task, "selected_by": key, "members": 1,
                        "ensemble_target_acc": (probs[pick].argmax(1) == oracle).float().mean().item(),
                        "method": trials[pick][0]})
    return out


def search_smoothing(task: Task) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What a default search does to its ensemble's average on this task (the kind's ``AUTO_SMOOTHING`` over its
    target validation samples, whose order the pool's predictions share), or None where it leaves it as it is."""
    from adaptune.algorithms.ensemble import AUTO_SMOOTHING, mix_with_neighbours
    from adaptune.algorithms.neighbours import nearest_neighbours

    smoothing = AUTO_SMOOTHING.get(task.input_kind)
    if smoothing is None:
        return None
    neighbours = nearest_neighbours(task.target_val.x, smoothing.neighbours)  # once per task, not per ensemble
    return lambda probs: mix_with_neighbours(probs, neighbours, smoothing.weight)


def cmd_run(args: argparse.Namespace) -> None:
    from adaptune.algorithms.methods import METHODS

    methods = args.methods.split(",") if args.methods else sorted(METHODS)
    tasks = [t for g in args.group.split(",") for t in GROUPS[g] if not args.tasks or t in args.tasks.split(",")]
    group_of = {t: g for g in GROUPS for t in GROUPS[g]}
    jobs = [{"task": t, "method": m, "config_index": i, "hparams": h, "device": args.device, "amp": args.amp,
             "fewshot_k": args.fewshot_k, "preprocess": args.preprocess, "warm_start": args.warm_start,
             "weight_decay": args.weight_decay,
             "store": args.out + ".store" if args.warm_start != "none" else None,
             "threads": args.threads, **SETTINGS[group_of[t]], **({"epochs": args.epochs} if args.epochs else {})}
            for t in tasks for m in methods for i, h in enumerate(configs(t, m, args.configs))]
    started = time.time()
    spawn = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked workers
    predictions: dict[str, list] = {t: [] for t in tasks}
    with open(args.out, "w") as handle, ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        futures = {pool.submit(run_one, job): job["task"] for job in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            rows, best = future.result()
            predictions[futures[future]].append((rows[0]["method"], best))
            for row in rows:
                handle.write(json.dumps(row) + "\n")
            handle.flush()
            if done % 20 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} trials, {time.time() - started:.0f}s", flush=True)
        if args.dump_predictions:  # for offline study of aggregation rules: each trial's best predictions per proxy
            keep = {f"proxy_{name}" for name in args.dump_predictions_proxies.split(",")}
            torch.save({task_name: [(method, {k: (score, probs.half()) for k, (score, probs, _) in best.items()
                                              if k in keep}) for method, best in trials]
                        for task_name, trials in predictions.items()}, args.dump_predictions)
        from adaptune.algorithms.data import load_task
        from adaptune.algorithms.domains import with_fewshot

        for task_name, trials in predictions.items():
            task = with_fewshot(load_task(task_name, preprocess=args.preprocess), args.fewshot_k)
            for row in ensemble_rows(task_name, trials, task.target_oracle, smooth=search_smoothing(task)):
                handle.write(json.dumps(row) + "\n")
    with open(args.out + ".meta.json", "w") as handle:
        json.dump({"command": rerun_command(), "wall_s": time.time() - started, "device": args.device,
                   "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                   "torch": torch.__version__, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                           time.gmtime())}, handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--group", required=True, help=f"{', '.join(GROUPS)} (comma-separated)")
    run.add_argument("--tasks", help="comma-separated subset of the groups' tasks (default: all)")
    run.add_argument("--methods", help="comma-separated (default: all)")
    run.add_argument("--configs", type=int, default=4)
    run.add_argument("--epochs", type=int)
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--device", default="cpu")
    run.add_argument("--amp", action="store_true")
    run.add_argument("--fewshot-k", type=int, default=DEFAULT_FEWSHOT_K,
                     help="labeled target samples per class for proxy_fewshot (taken out of the oracle's samples); "
                     "0 = none")
    run.add_argument("--preprocess", default=DEFAULT_PREPROCESS, help="feature tables' preprocessing "
                     f"(default {DEFAULT_PREPROCESS}, the search's)")
    run.add_argument("--warm-start", default="none", choices=WARM_STARTS,
                     help="deep trials start from the shared source-only model (source) or from their init (none)")
    run.add_argument("--weight-decay", type=float, default=DEFAULT_WEIGHT_DECAY,
                     help=f"deep trials' SGD weight decay (default {DEFAULT_WEIGHT_DECAY}, the search's)")
    run.add_argument("--out", required=True)
    run.add_argument("--dump-predictions", help="also save each trial's best target predictions per proxy (torch.save)")
    run.add_argument("--dump-predictions-proxies", default="im,bnm,im_ts,bnm_ts,entropy,iwcv,source_acc")
    report = sub.add_parser("report")
    report.add_argument("files", nargs="+")
    report.add_argument("--out", default="methods.md", help="file name under benchmarks/results/")
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args)
    else:
        from benchmarks.methods_report import cmd_report

        cmd_report(args.files, args.out)
