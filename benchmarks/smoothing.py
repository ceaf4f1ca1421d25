"""Neighbourhood smoothing of the recommended ensemble: derived leave one benchmark group out.

The recommended ensemble averages the target predictions of the top trials by the proxy; smoothing then mixes each
target sample's average with the mean average of its k nearest target samples (cosine similarity of the input
features; ``algorithms.ensemble.smooth_by_neighbours``). This script measures every (k, weight) of a grid on two kinds
of evidence and derives the default:

- whole default searches (`adaptune search --task T`, the run directories `benchmarks.skeleton` leaves): the
  members of each run's ensemble row, their kept predictions averaged as the search does;
- pools of one trial per method (`benchmarks.methods_bench run ... --dump-predictions P --dump-predictions-proxies
  im`): the top 5 by `im` among the trials within the features' default source gap, each at its best epoch by `im`.

Regret is against the best trial of the same search or pool, each trial at its checkpoint chosen by the proxy, in
points of target accuracy (the oracle labels report; they choose nothing). The default is the setting with the least
mean regret over the benchmark groups among those that raise no group's regret by more than ``HARM`` points over
the plain average; each group is scored with the setting the other groups chose.

  python -m benchmarks.smoothing collect --runs RUN_DIR ... --pools POOL.jsonl ...   # writes raw/smoothing.pt.gz
  python -m benchmarks.smoothing report                                              # writes smoothing.md
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import time
from collections import defaultdict
from dataclasses import asdict

import pandas as pd
import torch

from adaptune.algorithms.data import load_task
from adaptune.algorithms.domains import with_fewshot
from adaptune.algorithms.ensemble import (
    AUTO_SMOOTHING,
    Smoothing,
    average_predictions,
    mix_with_neighbours,
)
from adaptune.algorithms.neighbours import nearest_neighbours
from adaptune.algorithms.proxies import AUTO_PROXY, AUTO_SOURCE_GAP, oracle_accuracy
from adaptune.reports.leaderboard import FINISHED, selection_order
from adaptune.reports.run_dir import RunDir
from adaptune.search.config import DEFAULT_ENSEMBLE_K
from benchmarks._common import (
    RESULTS,
    group_of,
    header,
    held_out_score,
    kept_metric,
    kept_predictions,
    md_table,
    read_jsonl,
    selection_label,
    update_auto_rule,
    write,
)
from benchmarks.baselines import saved_baseline
from benchmarks.methods_bench import DEFAULT_FEWSHOT_K

RAW = os.path.join(RESULTS, "raw", "smoothing.pt.gz")
NEIGHBOURS = (3, 5, 10, 20, 40)
WEIGHTS = (0.25, 0.5, 0.75, 1.0)
HARM = 0.25  # points: a setting may raise no benchmark group's mean regret more than this over the plain average
HARMS = (0.25, 0.5, 1.0, None)  # the screens the page compares (None: no screen)
PLAIN = "none"
KIND = "features"  # the input kind with a shared feature space to find neighbours in
CHECK = "check"  # entries of searches kept out of the derivation: reported, never used to choose


def setting_name(neighbours: int, weight: float) -> str:
    return f"k={neighbours}, w={weight:g}"


SETTINGS = {setting_name(k, w): Smoothing(k, w) for k in NEIGHBOURS for w in WEIGHTS}


def _entry(source: str, label: str, task_name: str, preprocess: str, fewshot_k: int, best: float,
           probs: torch.Tensor) -> dict:
    return {"source": source, "label": label, "task": task_name, "preprocess": preprocess, "fewshot_k": fewshot_k,
            "best": best, "probs": probs.float()}


def _accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Target accuracy in percent (the oracle column's, scaled)."""
    return 100 * oracle_accuracy(probs, labels)


def search_entry(run: str) -> dict | None:
    """A whole default search on a feature table: its ensemble row's members' kept predictions, averaged."""
    run_dir = RunDir(run)
    (config, _), summary = run_dir.read_config(), run_dir.read_summary()
    board = run_dir.read_table(RunDir.LEADERBOARD)
    if load_task(config["task"], preprocess=summary["preprocess"]).input_kind != KIND:
        return None
    ensemble = board.loc[board["status"] == "ensemble"].iloc[0]
    metric = kept_metric(summary)
    probs = average_predictions([kept_predictions(run, member, metric) for member in ensemble["members"].split(",")])
    trials = board[board["status"].isin(FINISHED)]
    label = f"{config['task']} ({selection_label(summary)}, seed {config.get('seed', 0)})"
    return _entry("search", label, config["task"], summary["preprocess"], 0, 100 * trials["target_acc"].max(), probs)


def read_pool(jsonl: str) -> tuple[list[dict], dict[str, list], int]:
    """A pool of one trial per method (``methods_bench --dump-predictions``): its rows, its dump (per task, each
    trial's method and, per proxy, its best score and predictions; next to ``jsonl`` as ``.pt``) and the
    ``fewshot_k`` it ran with."""
    with open(jsonl.removesuffix(".gz") + ".meta.json") as handle:
        command = json.load(handle)["command"]
    fewshot_k = int(command.split("--fewshot-k ")[1].split()[0]) if "--fewshot-k " in command else DEFAULT_FEWSHOT_K
    dump = jsonl.removesuffix(".gz").removesuffix(".jsonl") + ".pt"
    raw = gzip.open(dump + ".gz").read() if os.path.exists(dump + ".gz") else open(dump, "rb").read()
    return read_jsonl(jsonl), torch.load(io.BytesIO(raw), weights_only=False), fewshot_k


def pool_candidates(rows: list[dict], task_name: str, trials: list, metric: str, checkpoint: str) -> list[dict]:
    """A pool's trials on one task as a search ranks them: each at the epoch whose predictions the dump kept (its
    best by ``checkpoint``), scored there by ``metric``, with its held-out source accuracy and predictions."""
    epochs = defaultdict(list)
    for row in rows:
        if row.get("task") == task_name and "epoch" in row and metric in row and checkpoint in row:
            epochs[row["method"]].append(row)
    candidates = []
    for method, best in trials:
        if checkpoint not in best or not epochs[method]:
            continue
        chosen = max(epochs[method], key=lambda r: r[checkpoint])
        candidates.append({"trial_id": method, "method": method, "score": chosen[metric],
                           "source_acc": chosen["proxy_source_acc"], "probs": best[checkpoint][1]})
    return candidates


def pool_entries(jsonl: str, proxy: str | None = None, checkpoint_proxy: str | None = None,
                 source_gap: float | None = AUTO_SOURCE_GAP[KIND]) -> list[dict]:
    """A pool of one trial per method (``methods_bench --dump-predictions``, next to ``jsonl`` as ``.pt``): per task,
    the top 5 trials by ``proxy`` (default: the features' auto proxy) among those within ``source_gap`` (default:
    the features' default; None: every trial), each at its best epoch by ``checkpoint_proxy`` (default: ``proxy``;
    the dump must hold its predictions), their predictions averaged."""
    proxy, gap = proxy or AUTO_PROXY[KIND], source_gap
    metric, checkpoint = f"proxy_{proxy}", f"proxy_{checkpoint_proxy or proxy}"
    rows, predictions, fewshot_k = read_pool(jsonl)
    entries = []
    for task_name, trials in predictions.items():
        task = with_fewshot(load_task(task_name), fewshot_k)
        candidates = pool_candidates(rows, task_name, trials, metric, checkpoint)
        admitted, _ = selection_order(candidates, gap)
        probs = average_predictions([c["probs"] for c in admitted[:DEFAULT_ENSEMBLE_K]])
        best_trial = max(_accuracy(c["probs"], task.target_oracle) for c in candidates)
        entries.append(_entry("pool", f"{task_name} (pool)", task_name, task.extra["preprocess"], fewshot_k,
                              best_trial, probs))
    return entries


def collect(runs: list[str], pools: list[str], checks: list[str]) -> None:
    """Save the ensembles of the run directories ``runs`` and of the pools (derivation), and of the run
    directories ``checks`` (searches kept out of the derivation, reported apart)."""
    entries = [e for e in map(search_entry, runs) if e is not None]
    for jsonl in pools:
        entries += pool_entries(jsonl)
    entries += [{**e, "source": CHECK} for e in map(search_entry, checks) if e is not None]
    buffer = io.BytesIO()
    # The run directories are wherever a machine's searches left them; the command names what they hold instead.
    command = "python -m benchmarks.smoothing collect" + (
        f" --runs <{len(runs)} run directories of default searches>" if runs else "") + (
        f" --pools {' '.join(pools)}" if pools else "") + (
        f" --checks <{len(checks)} run directories of default searches kept out>" if checks else "")
    torch.save({"command": command, "entries": entries}, buffer)
    with gzip.open(RAW, "wb") as handle:
        handle.write(buffer.getvalue())
    print(f"{len(entries)} ensembles -> {RAW}")


def accuracies(entry: dict) -> dict:
    """The target accuracy (%) of an entry's plain average and of its average smoothed by every grid setting; also
    the target's ``shape`` (samples, features) and the seconds its nearest-neighbour pass took (``knn_s``)."""
    task = with_fewshot(load_task(entry["task"], preprocess=entry["preprocess"]), entry["fewshot_k"])
    probs, labels = entry["probs"].float(), task.target_oracle
    started = time.perf_counter()
    neighbours = nearest_neighbours(task.target_val.x, max(NEIGHBOURS))
    out = {"knn_s": time.perf_counter() - started, "shape": tuple(task.target_val.x.flatten(1).shape),
           PLAIN: _accuracy(probs, labels)}
    for name, setting in SETTINGS.items():
        out[name] = _accuracy(mix_with_neighbours(probs, neighbours[:, : setting.neighbours], setting.weight), labels)
    return out


def choose(per_group: pd.DataFrame, harm: float | None = HARM) -> str:
    """The setting with the least mean regret over the groups (rows) of ``per_group`` among those that raise no
    group's regret more than ``harm`` points over the plain average (None: any); the plain average when none does
    better."""
    raised = per_group[list(SETTINGS)].sub(per_group[PLAIN], axis=0).max()
    allowed = [name for name in SETTINGS if harm is None or raised[name] <= harm]
    mean = per_group.mean()
    return min([PLAIN, *allowed], key=lambda name: mean[name])


def check_section(checks: pd.DataFrame, chosen: str) -> str:
    """The derived smoothing on whole searches that the derivation never saw."""
    regret = checks.groupby("group")[[PLAIN, chosen]].mean()
    text = ("\n## Held out: default searches the derivation never saw\n\n"
            f"{len(checks)} default searches (benchmarks/results/search_suite.md), run after the rule was derived and "
            "not part of it, on tasks that enter the derivation only as pools of one trial per method (the TPE "
            "search's own top 5 there is new). Target accuracy (%):\n\n")
    text += md_table([[r["label"], r["best"], r[f"acc {PLAIN}"], r[f"acc {chosen}"], r["baseline"]]
                      for r in checks.to_dict("records")],
                     ["search", "best trial", "plain average", f"smoothed, {chosen}", "max(LR, 1-NN)"])
    above = {name: int((checks[f"acc {name}"] >= checks["baseline"]).sum()) for name in (PLAIN, chosen)}
    better = int((checks[f"acc {chosen}"] > checks[f"acc {PLAIN}"]).sum())
    worse = int((checks[f"acc {chosen}"] < checks[f"acc {PLAIN}"]).sum())
    text += (f"\n\nRegret against the best trial, mean per group ({', '.join(regret.index)}): plain average "
             f"{regret[PLAIN].mean():.2f}, smoothed {regret[chosen].mean():.2f} points; per search "
             f"{checks[PLAIN].mean():.2f} and {checks[chosen].mean():.2f}. Smoothing raised {better} of "
             f"{len(checks)} and lowered {worse}; at or above max(LR, 1-NN): {above[PLAIN]} plain, {above[chosen]} "
             "smoothed.\n")
    return text


def report() -> None:
    with gzip.open(RAW, "rb") as handle:
        saved = torch.load(io.BytesIO(handle.read()), weights_only=False)
    records = []
    for entry in saved["entries"]:
        accuracy = accuracies(entry)
        records.append({"source": entry["source"], "label": entry["label"], "task": entry["task"],
                        "knn_s": accuracy.pop("knn_s"), "shape": accuracy.pop("shape"),
                        "group": group_of(entry["task"]), "best": entry["best"],
                        "baseline": saved_baseline(entry["task"], entry["preprocess"])["best"],
                        **{f"acc {name}": value for name, value in accuracy.items()},
                        **{name: entry["best"] - value for name, value in accuracy.items()}})
    everything = pd.DataFrame(records)
    frame, checks = everything[everything["source"] != CHECK], everything[everything["source"] == CHECK]
    names = [PLAIN, *SETTINGS]
    per_group = {source: frame[frame["source"].isin(sources)].groupby("group")[names].mean()
                 for source, sources in (("searches", ["search"]), ("pools", ["pool"]),
                                         ("both", ["search", "pool"]))}
    both = per_group["both"]
    groups = list(both.index)
    derived = choose(both)
    held = {group: choose(both.drop(group)) for group in groups}

    text = header("Neighbourhood smoothing of the recommended ensemble", "python -m benchmarks.smoothing report")
    text += (f"- evidence: `{saved['command']}` (raw: benchmarks/results/raw/smoothing.pt.gz)\n\n"
             "The recommended ensemble averages the target predictions of the top trials by the proxy. Smoothing mixes "
             "each target sample's average with the mean average of its k nearest target samples (cosine similarity "
             "of the preprocessed input features), weight w: `(1 - w) * own + w * neighbours' mean`. No label is "
             "read; the oracle labels score the result. Evidence: the ensemble rows of whole default searches on "
             f"feature tables ({(frame['source'] == 'search').sum()} searches), and pools of one trial per method "
             f"({(frame['source'] == 'pool').sum()} tasks; the top {DEFAULT_ENSEMBLE_K} by `{AUTO_PROXY[KIND]}` "
             "within the features' default source gap, the selection a search makes). Regret: points of target "
             "accuracy against the best trial of the same search or pool, each trial at its checkpoint chosen by the "
             "proxy; negative where the ensemble beats them all.\n")

    text += "\n## Regret per benchmark group (points), searches and pools together\n\n"
    shown = [PLAIN, *sorted(SETTINGS, key=lambda n: both[n].mean())[:8]]
    text += md_table([[name, *both.loc[:, name], both[name].mean(),
                       (both[name] - both[PLAIN]).max() if name != PLAIN else 0.0] for name in shown],
                     ["smoothing", *groups, "mean", "worst rise over plain"])
    text += (f"\n\nThe eight settings with the least mean regret of the {len(SETTINGS)} measured (k in "
             f"{', '.join(map(str, NEIGHBOURS))}; w in {', '.join(f'{w:g}' for w in WEIGHTS)}). "
             "Each source alone:\n\n")
    for source in ("searches", "pools"):
        table = per_group[source]
        if table.empty:
            continue
        text += f"**{source}**\n\n" + md_table(
            [[name, *table.loc[:, name], table[name].mean()] for name in (PLAIN, derived)],
            ["smoothing", *table.index, "mean"]) + "\n\n"

    text += "## Leave one group out\n\n"
    rows = []
    for group in groups:
        rows.append([group, held[group], *(per_group[s].loc[group, held[group]] if group in per_group[s].index
                                           else float("nan") for s in ("searches", "pools", "both")),
                     both.loc[group, PLAIN]])
    text += md_table(rows, ["held-out group", "chosen on the other groups", "searches", "pools", "both",
                            "plain average (both)"])
    text += "\n\nMean regret held out, against the plain average: " + "; ".join(
        f"{source} **{held_out_score(table, held):.2f}** ({table[PLAIN].mean():.2f})"
        for source, table in per_group.items() if not table.empty) + ".\n\n"
    text += (f"The screen: a setting may raise no group's regret more than {HARM:g} points over the plain average "
             "(a rule that wins on average by losing one kind of data is a rule users of that kind pay for). Its "
             "effect, each screen applied both in sample and leave one group out (both sources):\n\n")
    text += md_table([["none" if harm is None else f"{harm:g}", choose(both, harm),
                       held_out_score(both, {group: choose(both.drop(group), harm) for group in groups})]
                      for harm in HARMS], ["screen (points)", "chosen on every group", "leave one group out"])

    text += "\n\n## Against no adaptation\n\n"
    chosen = derived
    rows = []
    for source in ("search", "pool"):
        part = frame[frame["source"] == source]
        for accuracy in (PLAIN, chosen):
            column = f"acc {accuracy}"
            below = part[part[column] < part["baseline"]].to_dict("records")
            rows.append([source, accuracy, part[column].mean(), f"{len(part) - len(below)} of {len(part)}",
                         ", ".join(f"{r['label']} {r[column]:.1f} < {r['baseline']:.1f}" for r in below) or "-"])
    text += md_table(rows, ["evidence", "ensemble", "mean accuracy (%)", "at or above max(LR, 1-NN)", "below"])
    text += ("\n\nThe baseline is the better of source-only logistic regression and 1-NN on the same preprocessed "
             "features (benchmarks/results/baselines.md).\n")

    if not checks.empty:
        text += check_section(checks, chosen)
    text += "\n## Per search and pool\n\n"
    text += md_table([[r["label"], r["best"], r[f"acc {PLAIN}"], r[f"acc {chosen}"], r["baseline"]]
                      for r in frame.to_dict("records")],
                     ["ensemble of", "best trial (%)", "plain average (%)", f"smoothed, {chosen} (%)",
                      "max(LR, 1-NN) (%)"])

    rule = SETTINGS.get(derived)
    slowest = frame.loc[frame["knn_s"].idxmax()]
    text += ("\n\n## What follows\n\n"
             f"`smoothing: auto` smooths the ensemble of a feature table with {derived} "
             f"(`benchmarks/results/proxy_auto.json` holds it, and a test keeps `AUTO_SMOOTHING` equal to it). "
             "Image folders keep the plain average: their inputs are pixels, whose nearest neighbours need not share "
             "content (photos), and this page holds no image evidence to derive a rule from. Smoothing changes the "
             "recommended predictions only, never which trials are recommended; it costs one k-nearest-neighbour "
             "pass over the target (N^2 D multiply-adds, in blocks of rows): "
             f"{slowest['knn_s']:.1f} s here on the largest target above, {slowest['task']} "
             f"({slowest['shape'][0]:,} samples x {slowest['shape'][1]:,} features).\n")
    update_auto_rule(smoothing={KIND: None if rule is None else asdict(rule),
                                **{kind: None for kind in AUTO_SMOOTHING if kind != KIND}},
                     smoothing_criterion=f"the (k, weight) with the least mean regret of the smoothed top-5 ensemble "
                                         f"over the benchmark groups (whole default searches and pools), among "
                                         f"settings that raise no group's regret more than {HARM:g} points over "
                                         f"the plain average",
                     smoothing_source="benchmarks/results/smoothing.md")
    print(write("smoothing.md", text))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    gather = sub.add_parser("collect")
    gather.add_argument("--runs", nargs="*", default=[], help="run directories of default searches")
    gather.add_argument("--pools", nargs="*", default=[], help="methods_bench --out files with --dump-predictions")
    gather.add_argument("--checks", nargs="*", default=[],
                        help="run directories of default searches kept out of the derivation (reported apart)")
    sub.add_parser("report")
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.runs, args.pools, args.checks)
    else:
        report()
