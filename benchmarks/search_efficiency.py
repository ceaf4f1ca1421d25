"""Does the search earn its compute? Regret of the recommendation against the optimizer steps spent.

Four strategies, each a real ``adaptune search`` on the same task and seed:
  * ``tpe+asha``: the default (each method's defaults first, then TPE; ASHA rungs in steps);
  * ``random+asha``: Optuna's random sampler over the same space, same ASHA;
  * ``random``: the random sampler, no early stopping (every trial runs all its epochs);
  * ``defaults``: each method once at its defaults, no early stopping (one point: its whole compute).
One experiment beside them (``--strategies`` names it): ``tpe+asha (defaults in derived order)``, the default search
with each method's defaults in the order derived with the task's group left out (benchmarks.defaults_order).
The first three run at ``--scale`` times the default budget; the recommendation at a smaller compute c is what
the search recommends from the trials that had finished when the trials together had trained c optimizer
steps. The samplers do not depend on the planned trial count (TPE's startup trials are fixed at 10 here,
ASHA's rungs depend on the data only), so the trials up to c are the ones a search with budget c would run,
up to the order in which concurrent trials finish. Closed-form trials (L-BFGS heads) count no steps, as in
the plan (algorithms.budget).

Regret = the best target accuracy of any trial of any strategy on that task and seed (each trial at its
checkpoint, the epoch its proxy chose) minus the target accuracy of the recommendation (the ensemble of the
top 5 trials by the proxy, the default; the single best trial and other ensembles beside it, ``RULES``). Which
ensemble rule generalizes is derived leave one group out on these runs. Target labels only score.

  python -m benchmarks.search_efficiency --tasks 'office-surf:D->W,amazon:B->D' [--seeds 0] [--scale 2]
  python -m benchmarks.search_efficiency --report-only     # rebuild the page from raw/search_efficiency.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import tempfile
from collections.abc import Callable

import pandas as pd
import torch
import yaml

from adaptune.algorithms.budget import DEFAULT_BUDGET, plan_search
from adaptune.algorithms.ensemble import Smoothing, average_predictions, mix_with_neighbours
from adaptune.algorithms.methods import METHODS
from adaptune.algorithms.neighbours import nearest_neighbours
from adaptune.reports.leaderboard import at_most_per_method, selection_order
from adaptune.reports.run_dir import RunDir
from adaptune.reports.svg import Series, color, xy_chart
from adaptune.search.config import DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD
from adaptune.search.step_budget import budget_steps, spends_budget
from benchmarks._common import (
    MIN_GAIN,
    RESULTS,
    SEARCH_TIME_TARGET_S,
    group_of,
    header,
    held_out_choices,
    held_out_score,
    kept_metric,
    kept_predictions,
    md_table,
    merge_searches,
    read_jsonl,
    selection_label,
    write,
)
from benchmarks.baselines import saved_baseline
from benchmarks.skeleton import measured_search, run_default_search

RAW = os.path.join(RESULTS, "raw", "search_efficiency.jsonl.gz")
PLOT = "search_efficiency.svg"
# Default searches run at a larger budget after budget_section weighed it, and the same tasks and seeds at the
# default budget (re-ranked as shipped by benchmarks.ensemble_settings --rows): the fresh check of a larger budget.
BUDGET_CHECK = os.path.join(RESULTS, "raw", "budget-check.jsonl")
LATER_SEARCHES = os.path.join(RESULTS, "raw", "ensemble-settings-later.jsonl")
STRATEGIES = {  # name -> config keys that differ from the defaults
    "tpe+asha": {},
    "random+asha": {"searcher": "random"},
    "random": {"searcher": "random", "scheduler": {"kind": "none"}},
    "defaults": {"trials": len(METHODS), "scheduler": {"kind": "none"}},
}
# The default search with each method's defaults in the order derived on the other groups (defaults_order.md), run
# beside the default (which runs them in name order) to measure whether that order earns compute.
DERIVED_ORDER = "tpe+asha (defaults in derived order)"
FRACTIONS = (0.25, 0.5, 1.0, 2.0)  # of the default budget, the columns of the table
GRID = 0.05  # the curves' resolution, as a fraction of the default budget
# Ensembles a search could recommend: the top k admitted trials by the proxy, at most ``cap`` of one method.
def rule_name(k: int, cap: int | None) -> str:
    """An ensemble rule's name: the top ``k`` admitted trials, at most ``cap`` of one method (``-maxN``)."""
    return f"top{k}" + ("" if cap is None else f"-max{cap}")


RULES = {rule_name(k, cap): (k, cap) for k in (1, 3, 5, 7, 10) for cap in (None, 2, 1) if k > 1 or cap is None}
ENSEMBLE = rule_name(DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD)  # what a search recommends by default
SINGLE = "top1"
ONE_PER_METHOD = rule_name(DEFAULT_ENSEMBLE_K, 1)


def compute_timeline(out: str) -> pd.DataFrame:
    """One row per finished trial, in the order they ended, with the steps all trials had trained by then."""
    board = pd.read_parquet(os.path.join(out, "leaderboard.parquet"))
    board = board[board["status"] != "ensemble"].copy()
    history = pd.read_parquet(os.path.join(out, "history.parquet"))
    history = history[history["trial_id"].isin(board["trial_id"]) & history["method"].map(spends_budget)]
    board = board.sort_values("ended_at").reset_index(drop=True)
    trained = [history[history["reported_at"] <= ended].groupby("trial_id")["steps"].max().sum()
               for ended in board["ended_at"]]
    own = [budget_steps(method, steps) for method, steps in zip(board["method"], board["steps"].fillna(0))]
    # A trial's own steps are in by the time it ends whatever the clocks say, and compute never goes back.
    board["compute"] = pd.Series([max(a, b) for a, b in zip(trained, own)], dtype="int64").cummax()
    return board


Smoother = Callable[[torch.Tensor], torch.Tensor]


def smoother(summary: dict, target_features: torch.Tensor) -> Smoother | None:
    """The neighbourhood smoothing the run's ensemble row had (summary.json ``smoothing``), as a function of the
    averaged predictions; None for a plain average (and for runs recorded before smoothing existed)."""
    if not summary.get("smoothing"):
        return None
    smoothing = Smoothing(**summary["smoothing"])
    neighbours = nearest_neighbours(target_features, smoothing.neighbours)  # once per run, not per curve point
    return lambda probs: mix_with_neighbours(probs, neighbours, smoothing.weight)


def ensemble_accuracy(member_probs: list[torch.Tensor], labels: torch.Tensor, smooth: Smoother | None = None
                      ) -> float:
    """Target accuracy (a fraction) of the members' averaged predictions, as a search's ensemble row, smoothed by
    ``smooth`` when given."""
    probs = average_predictions(member_probs)
    if smooth is not None:
        probs = smooth(probs)
    return float((probs.argmax(1) == labels).float().mean())


def capped(rows: list[dict], cap: int | None) -> list[dict]:
    """``rows`` in order, without those beyond the first ``cap`` of their method (the search's own rule)."""
    return list(at_most_per_method(rows, cap))


Order = Callable[[list[dict], float | None], tuple[list[dict], list[dict]]]


def curve(out: str, labels: torch.Tensor, points: list[int], source_gap: float | None, metric: str,
          smooth: Smoother | None = None, order: Order = selection_order) -> tuple[list[dict], list[dict]]:
    """What the search recommends at each compute point: the ensemble of every rule in ``RULES`` over the trials in
    ``order`` (the product's, ``reports.leaderboard.selection_order``, by default) at the run's source gap,
    smoothed as its ensemble row was."""
    board = compute_timeline(out)
    kept = [kept_predictions(out, t, metric) for t in board["trial_id"]]
    board["probs"] = [None if p is None else p.float() for p in kept]
    rows = []
    for point in points:
        seen = board[(board["compute"] <= point) & board["probs"].notna()].to_dict("records")
        admitted, _ = order(seen, source_gap)
        rows.append({"compute": point, "trials": len(admitted),
                     **{name: ensemble_accuracy([m["probs"] for m in capped(admitted, cap)[:k]], labels,
                                                smooth if k > 1 else None)  # a single pick ships its own
                        if admitted else None
                        for name, (k, cap) in RULES.items()}})
    trials = board.drop(columns=["probs"])[["trial_id", "method", "status", "steps", "compute", "score",
                                             "target_acc", "source_acc"]]
    return rows, trials.to_dict("records")


def run_dir(root: str, task: str, strategy: str, seed: int) -> str:
    name = f"{task.replace(':', '-').replace('>', '')}-{strategy}-{seed}"
    return os.path.join(root, name.replace(" ", "-").replace("(", "").replace(")", ""))


def measure(task: str, strategy: str, seed: int, out: str, wall: float, order: Order = selection_order) -> dict:
    """The record of one finished search: its trials and its recommendation (``order``) at every compute point."""
    from adaptune.search.trial import resolve_task

    with open(os.path.join(out, "summary.json")) as handle:
        summary = json.load(handle)
    resolved = resolve_task(task, source=None, target=None, fewshot_k=0, seed=seed, preprocess=summary["preprocess"])
    labels = resolved.target_oracle
    total = int(max(summary["steps_used"], 1))
    step = int(GRID * DEFAULT_BUDGET)
    points = sorted({*range(step, total + step, step), total}) if strategy != "defaults" else [10**12]
    rows, trials = curve(out, labels, points, summary.get("source_gap"), kept_metric(summary),
                         smoother(summary, resolved.target_val.x), order)
    if strategy == "defaults":
        rows[0]["compute"] = max(t["compute"] for t in trials)
    return {"task": task, "strategy": strategy, "seed": seed, "wall_s": wall, "plan": summary["plan"],
            "steps_used": summary["steps_used"], "preprocess": summary["preprocess"],
            "source_gap": summary.get("source_gap"), "proxy": selection_label(summary),
            "smoothing": summary.get("smoothing"), "curve": rows,
            "trials": trials}


def run(task: str, strategy: str, seed: int, scale: float, root: str) -> dict:
    out = run_dir(root, task, strategy, seed)
    config = {"task": task, "seed": seed, "quiet": True, **STRATEGIES.get(strategy, {})}
    if strategy == DERIVED_ORDER:
        from benchmarks.defaults_order import held_out_order  # it reads checkpoint_proxy, which imports this module

        config["methods"] = held_out_order(group_of(task))
    if strategy != "defaults":
        config["budget"] = int(scale * DEFAULT_BUDGET)
    config_path = out + ".yaml"
    os.makedirs(root, exist_ok=True)
    with open(config_path, "w") as handle:
        yaml.safe_dump(config, handle)
    wall, _, _ = run_default_search(out, config=config_path)
    return measure(task, strategy, seed, out, wall)


def load_raw(path: str = RAW) -> list[dict]:
    if not os.path.exists(path):
        return []
    return read_jsonl(path)


def save_raw(records: list[dict], path: str = RAW) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with gzip.open(path + ".tmp", "wt") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    os.replace(path + ".tmp", path)


def at(record: dict, compute: float, key: str) -> float:
    """The recommendation's accuracy at ``compute`` steps: the last curve point within it (NaN before any)."""
    within = [row for row in record["curve"] if row["compute"] <= compute and row.get(key) is not None]
    return within[-1][key] if within else math.nan


def regrets(records: list[dict]) -> pd.DataFrame:
    """Per task, seed, strategy and compute fraction: regret (points) of the ensemble and single picks."""
    rows = []
    for (task, seed), runs in pd.DataFrame(records).groupby(["task", "seed"]):
        best = max(t["target_acc"] for record in runs.to_dict("records") for t in record["trials"]
                   if t["target_acc"] is not None and math.isfinite(t["target_acc"]))
        for record in runs.to_dict("records"):
            fractions = [record["curve"][0]["compute"] / DEFAULT_BUDGET] if record["strategy"] == "defaults" else [
                row["compute"] / DEFAULT_BUDGET for row in record["curve"]]
            for fraction in fractions:
                rows.append({"task": task, "seed": seed, "strategy": record["strategy"], "fraction": fraction,
                             **{key: 100 * (best - at(record, fraction * DEFAULT_BUDGET + 0.5, key))
                                for key in RULES},
                             "best": 100 * best})
    return pd.DataFrame(rows)


def regret_at(table: pd.DataFrame, strategy: str, fraction: float, key: str = ENSEMBLE) -> pd.Series:
    """Per (task, seed): regret at the largest curve point within ``fraction`` of the default budget."""
    chosen = table[(table["strategy"] == strategy) & (table["fraction"] <= fraction + 1e-9)]
    return chosen.sort_values("fraction").groupby(["task", "seed"])[key].last()


def compute_to_match(table: pd.DataFrame, searcher: str = "tpe+asha") -> list[list]:
    """Per task: the compute from which ``searcher``'s regret stays at or below random search's final regret (and
    where it first gets there), against random search's whole compute."""
    rows = []
    for (task, seed), runs in table.groupby(["task", "seed"]):
        tpe = runs[runs["strategy"] == searcher].sort_values("fraction")
        for other in ("random+asha", "random"):
            final = runs[runs["strategy"] == other].sort_values("fraction")
            if final.empty or tpe.empty:
                continue
            target, spent = final[ENSEMBLE].iloc[-1], final["fraction"].iloc[-1]
            rows.append([task, seed, other, target, f"{spent * DEFAULT_BUDGET:,.0f}",
                         *reach(tpe["fraction"].tolist(), tpe[ENSEMBLE].tolist(), target, spent)])
    return rows


def reach(fractions: list[float], values: list[float], target: float, spent: float) -> list[str]:
    """Where a regret curve (``values`` at ``fractions`` of the default budget) first gets to ``target`` and from
    where it stays there, each as a multiple of ``spent`` ("never" where it does not)."""
    within = [value <= target + 1e-9 for value in values]
    first = fractions[within.index(True)] if any(within) else math.inf
    above = [i for i, ok in enumerate(within) if not ok]
    stays = math.inf if above and above[-1] == len(within) - 1 else (
        fractions[above[-1] + 1] if above else fractions[0])
    return ["never" if math.isinf(f) else f"{f / spent:.2f}" for f in (first, stays)]


def mean_to_match(table: pd.DataFrame, searcher: str = "tpe+asha") -> list[list]:
    """:func:`compute_to_match` on mean regrets: over the whole suite's runs and over each benchmark group's, the
    compute from which ``searcher``'s mean regret stays at or below random search's mean final regret (a curve point
    counts once every run of the scope has reached it), against random search's mean compute."""
    runs = table[table["strategy"].isin([searcher, "random+asha", "random"])]
    groups = runs["task"].map(group_of)
    rows = []
    for scope in ["suite", *sorted(groups.unique())]:
        chosen = runs if scope == "suite" else runs[groups == scope]
        n_runs = chosen[["task", "seed"]].drop_duplicates().shape[0]
        fractions = sorted(chosen.loc[chosen["strategy"] == searcher, "fraction"].unique())
        curve = [(f, at_f.mean()) for f in fractions
                 if (at_f := regret_at(chosen, searcher, f)).notna().sum() == n_runs]
        for other in ("random+asha", "random"):
            finals = chosen[chosen["strategy"] == other].sort_values("fraction").groupby(["task", "seed"]).last()
            target, spent = finals[ENSEMBLE].mean(), finals["fraction"].mean()
            rows.append([scope, n_runs, other, target, f"{spent * DEFAULT_BUDGET:,.0f}",
                         *reach([f for f, _ in curve], [m for _, m in curve], target, spent)])
    return rows


def plot(table: pd.DataFrame) -> str:
    """Mean ensemble regret over the tasks against compute, one line per strategy, plus the defaults' point."""
    series = []
    for index, strategy in enumerate([*STRATEGIES, DERIVED_ORDER]):
        chosen = table[table["strategy"] == strategy]
        if chosen.empty:
            continue
        if strategy == "defaults":
            points = [(chosen["fraction"].mean() * DEFAULT_BUDGET, chosen[ENSEMBLE].mean(),
                       f"defaults only: {chosen[ENSEMBLE].mean():.1f} points")]
            series.append(Series(strategy, points, color(index), style="points", marker="diamond", size=5))
            continue
        grid = sorted(chosen["fraction"].round(2).unique())
        points = []
        for fraction in grid:
            values = regret_at(table, strategy, fraction)
            if values.notna().all() and len(values) == chosen.groupby(["task", "seed"]).ngroups:
                points.append((fraction * DEFAULT_BUDGET, values.mean(),
                               f"{strategy}, {fraction * DEFAULT_BUDGET:,.0f} steps: {values.mean():.1f} points"))
        series.append(Series(strategy, points, color(index), marker="none", style="line"))
    return xy_chart(series, title="Regret of the recommendation against compute (mean over tasks)",
                    x_label="optimizer steps spent by the search", y_label="regret (points)", width=620,
                    height=360)


def cell(value: float) -> str:
    """One decimal; '-' where no trial had finished yet."""
    return "-" if math.isnan(value) else f"{value:.1f}"


def report(records: list[dict]) -> str:
    table = regrets(records)
    tasks = sorted(table["task"].unique())
    scale = max(r["plan"]["budget"] for r in records if r["strategy"] != "defaults") / DEFAULT_BUDGET
    with open(os.path.join(RESULTS, PLOT), "w") as handle:
        handle.write(plot(table) + "\n")
    seed_sets = tasks_by_seeds(table)
    command = "; ".join(f"python -m benchmarks.search_efficiency --tasks '{','.join(names)}' "
                        f"--seeds {','.join(map(str, seeds))} --scale {scale:g}" for seeds, names in seed_sets.items())
    if (table["strategy"] == DERIVED_ORDER).any():
        command += f"; each with --strategies '{DERIVED_ORDER}' for the defaults in a derived order"
    command += "  (--report-only rebuilds this page from the raw file)"
    text = header("Does the search earn its compute?", command)
    text += ("\nEach strategy is one real `adaptune search` per task and seed (everything else at its default; "
             f"{len(METHODS)} methods, proxy `auto`, which selected by {proxies_of(records)} when they ran): "
             "`tpe+asha` is the default search; `random+asha` and `random` "
             "sample the same space with Optuna's random sampler (`searcher: random`), with ASHA and without early "
             "stopping (`scheduler: {kind: none}`); `defaults` trains each method once at its defaults, without "
             f"early stopping. The first three ran at {scale:.2g}x the default budget of {DEFAULT_BUDGET:,} steps; the "
             "recommendation at a smaller compute is what the search recommends from the trials that had finished "
             "when all trials together had trained that many optimizer steps (the samplers and rungs do not depend "
             "on the planned trial count, so these are the trials a smaller budget runs, up to the order in which "
             "two concurrent trials finish). Regret: the best target accuracy of any trial of any strategy on the "
             "same task and seed, minus the target accuracy of the recommendation (the ensemble of the top "
             f"{DEFAULT_ENSEMBLE_K} trials by the proxy, at most {DEFAULT_ENSEMBLE_PER_METHOD} of one method: what a "
             f"search recommends by default), in points. {smoothing_note(records)} {gap_note(records)} Target "
             "labels only score.\n\n")
    measured = "; ".join(f"{', '.join(names)} on {seed_word(len(seeds))} {', '.join(map(str, seeds))}"
                         for seeds, names in seed_sets.items())
    derived = sum(r["strategy"] == DERIVED_ORDER for r in records)
    text += f"Runs: {len(records) - derived}: {measured}" + (
        f"; and {derived} default searches of {derived} of these tasks and seeds with the defaults in a derived "
        f"order (`{DERIVED_ORDER}`, the section before what follows)" if derived else "") + \
        ". Raw: `benchmarks/results/raw/search_efficiency.jsonl.gz` (every trial and every curve point).\n\n"
    text += "## Regret of the recommended ensemble at equal compute\n\nPoints; the columns are fractions of the " \
            "default budget; `defaults` is one point at its own compute.\n\n"
    rows = []
    for task in [*tasks, "mean"]:
        chosen = table if task == "mean" else table[table["task"] == task]
        for strategy in STRATEGIES:
            if strategy == "defaults":
                d = chosen[chosen["strategy"] == "defaults"]
                if len(d):
                    rows.append([task, strategy, *["-"] * len(FRACTIONS),
                                 f"{d[ENSEMBLE].mean():.1f} at {d['fraction'].mean() * DEFAULT_BUDGET:,.0f} steps"])
                continue
            cells = [regret_at(chosen, strategy, f).mean() for f in FRACTIONS]
            single = regret_at(chosen, strategy, FRACTIONS[2], SINGLE).mean()
            one_each = regret_at(chosen, strategy, FRACTIONS[2], ONE_PER_METHOD).mean()
            rows.append([task, strategy, *[cell(v) for v in cells],
                         f"at 1x: single best trial {cell(single)}, top {DEFAULT_ENSEMBLE_K} one per method "
                         f"{cell(one_each)}"])
    text += md_table(rows, ["task", "strategy", *[f"{f:g}x" for f in FRACTIONS], "note"])
    text += f"\n\n![regret against compute]({PLOT})\n"
    text += "\n## Compute TPE + ASHA needs to match random search's final regret\n\n"
    text += md_table(compute_to_match(table),
                     ["task", "seed", "random search", "its final regret", "its compute (steps)",
                      "TPE+ASHA first reaches it at (x its compute)", "and stays there from (target <= 0.33)"])
    text += ("\n\nThe same on mean regrets: over all runs of the suite and over each benchmark group's, TPE + ASHA's "
             "mean regret (a compute point counts once every run has reached it) against random search's mean final "
             "regret, as a multiple of random search's mean compute.\n\n")
    text += md_table(mean_to_match(table),
                     ["runs", "task-seeds", "random search", "its mean final regret", "its mean compute (steps)",
                      "TPE+ASHA first reaches it at (x its compute)", "and stays there from (target <= 0.33)"])
    text += "\n\n## Against the no-adaptation baselines, at the default budget\n\n"
    base_rows = []
    for record in records:
        if record["strategy"] != "tpe+asha":
            continue
        base = saved_baseline(record["task"], record["preprocess"])
        shipped = 100 * at(record, DEFAULT_BUDGET + 0.5, ENSEMBLE)
        base_rows.append([record["task"], record["seed"], shipped, base["lr"], base["nn"],
                          "yes" if shipped >= base["best"] else "no"])
    text += md_table(base_rows, ["task", "seed", "recommended (%)", "source-only LR", "1-NN", "beats both"])
    text += "\n\n" + rule_section(table, records) + "\n\n"
    if any(r["strategy"] == DERIVED_ORDER for r in records):
        text += order_section(table, records) + "\n\n"
    text += budget_section(table, records) + "\n\n"
    text += findings(table, records) + "\n"
    return text


RULE_VIEWS = {  # the searches a rule is derived on: strategies, compute fractions
    "the default search at the default budget": (("tpe+asha",), (1.0,)),
    "every strategy at 0.5x, 1x and 2x": (("tpe+asha", "random+asha", "random"), (0.5, 1.0, 2.0)),
}


def rule_regrets(table: pd.DataFrame, strategies: tuple[str, ...], fractions: tuple[float, ...]) -> pd.DataFrame:
    """Mean regret per ensemble rule (rows) and benchmark group (columns) over the tasks, seeds, strategies and
    compute fractions of a view."""
    rows = []
    for strategy in strategies:
        for fraction in fractions:
            for rule in RULES:
                for (task, _), value in regret_at(table, strategy, fraction, rule).items():
                    rows.append({"rule": rule, "group": group_of(task), "regret": value})
    return pd.DataFrame(rows).groupby(["rule", "group"])["regret"].mean().unstack().loc[list(RULES)]


def held_out_rules(per_group: pd.DataFrame) -> list[tuple[str, str, float, float]]:
    """Per held-out group: the rule with the least mean regret over the other groups (the shipped rule on a tie),
    its regret on the held-out group, and the shipped rule's there."""
    chosen = held_out_choices(per_group.T, ENSEMBLE)
    return [(group, rule, per_group.loc[rule, group], per_group.loc[ENSEMBLE, group]) for group, rule in chosen.items()]


def held_out_means(held: list[tuple[str, str, float, float]]) -> tuple[float, float]:
    """Over :func:`held_out_rules`' groups: the mean regret of the rules derived without each group, and of the
    shipped rule."""
    derived, shipped = (sum(h[i] for h in held) / len(held) for i in (2, 3))
    return derived, shipped


def tasks_by_seeds(table: pd.DataFrame) -> dict[tuple[int, ...], list[str]]:
    """Seeds -> the tasks measured on exactly those: tasks measured on the same seeds share one command on the
    page, and a task added later on fewer seeds gets its own."""
    out: dict[tuple[int, ...], list[str]] = {}
    for task, seeds in table.groupby("task")["seed"]:
        out.setdefault(tuple(sorted(int(seed) for seed in seeds.unique())), []).append(str(task))
    return out


def seed_word(count: int) -> str:
    return "seeds" if count > 1 else "seed"


def rule_section(table: pd.DataFrame, records: list[dict]) -> str:
    """Which ensemble a search should recommend: every rule's regret per group, then leave one group out."""
    text = ("## Which ensemble to recommend, leave one group out\n\n"
            "Each rule averages the predictions of the top k admitted trials by the proxy (`-maxN`: at most N trials "
            f"of one method); `{ENSEMBLE}` is what a search recommends. Regret per benchmark group, mean over its "
            "tasks and seeds, for the default search at the default budget:\n\n")
    views = {name: rule_regrets(table, *view) for name, view in RULE_VIEWS.items()}
    default_view = next(iter(views.values()))
    groups = list(default_view.columns)
    text += md_table([[rule, *[cell(default_view.loc[rule, g]) for g in groups], cell(default_view.loc[rule].mean())]
                      for rule in RULES], ["rule", *groups, "mean"])
    text += ("\n\nLeave one group out: for each group, the rule with the least regret on the other groups, scored on "
             "the held-out group, against the shipped rule there.\n\n")
    rows, verdicts, means = [], [], []
    for name, per_group in views.items():
        held = held_out_rules(per_group)
        rows += [[name, group, rule, cell(derived), cell(shipped)] for group, rule, derived, shipped in held]
        derived, shipped = held_out_means(held)
        rows.append([name, "mean", "", cell(derived), cell(shipped)])
        verdicts.append(f"{name[0].upper()}{name[1:]}: derived rules {derived:.1f}, `{ENSEMBLE}` {shipped:.1f} "
                        "points held out")
        means.append((derived, shipped))
    text += md_table(rows, ["searches", "held-out group", "rule derived on the others", "its regret",
                            f"`{ENSEMBLE}`'s regret"])
    text += "\n\n" + "\n".join(f"- {v}." for v in verdicts)
    if all(derived >= shipped for derived, shipped in means):
        text += (f"\n- Rules derived on the other groups do no better than `{ENSEMBLE}` on the group held out, so the "
                 f"search keeps recommending `{ENSEMBLE}`. A cap per method helps a search whose top trials are all "
                 "one over-rated family and hurts one whose best trials share a method; these runs have both:")
    elif all(derived < shipped for derived, shipped in means):
        text += f"\n- Rules derived on the other groups beat `{ENSEMBLE}` on the held-out groups: a candidate to ship."
    else:
        favour = {name: derived >= shipped for name, (derived, shipped) in zip(views, means)}
        text += (f"\n- The views disagree: `{ENSEMBLE}` does better held out on "
                 + " and ".join(name for name, keeps in favour.items() if keeps) + ", the derived rules on "
                 + " and ".join(name for name, keeps in favour.items() if not keeps) + f"; the search keeps "
                 f"recommending `{ENSEMBLE}`, whose cap per method source_gap.md derives on default searches of "
                 "more groups.")
    at_default = {key: regret_at(table, "tpe+asha", 1.0, key) for key in (ENSEMBLE, ONE_PER_METHOD)}
    for record in records:
        if record["strategy"] != "tpe+asha":
            continue
        within = [t for t in record["trials"] if t["compute"] <= DEFAULT_BUDGET + 0.5 and t["score"] is not None]
        top = selection_order(within, record["source_gap"])[0][:DEFAULT_ENSEMBLE_K]
        if len(top) == DEFAULT_ENSEMBLE_K and len({t["method"] for t in top}) == 1:
            accuracies = [100 * t["target_acc"] for t in top]
            key = (record["task"], record["seed"])
            change = at_default[ONE_PER_METHOD][key] - at_default[ENSEMBLE][key]
            text += (f"\n  - {record['task']}, seed {record['seed']}: the top {DEFAULT_ENSEMBLE_K} are all "
                     f"`{top[0]['method']}` ({min(accuracies):.1f}-{max(accuracies):.1f}% on the target); one per "
                     f"method changes the regret by {change:+.1f} points.")
    return text


def within_third(cell: str) -> bool:
    """Whether a multiple of random search's compute (a :func:`reach` cell) is at most the target's third."""
    return cell != "never" and float(cell) <= 1 / 3


def stays_within_third(row: list) -> bool:
    """Whether a :func:`compute_to_match` or :func:`mean_to_match` row meets the target (it stays from a third on)."""
    return within_third(row[-1])


def targets_met(table: pd.DataFrame, searcher: str) -> tuple[int, int, int]:
    """Of the comparisons with random search: where ``searcher`` stays at random's final regret from a third of
    random's compute on, where it first gets there by then, and how many comparisons there are."""
    matches = compute_to_match(table, searcher)
    return (sum(stays_within_third(row) for row in matches), sum(within_third(row[-2]) for row in matches),
            len(matches))


def shipped_trial_bound(plan: dict) -> int:
    """The trials this commit's plan allows a search of the recorded plan's budget and shape."""
    return plan_search(budget=plan["budget"], n_source=1, batch_size=1, epochs=plan["epochs"],
                       grace_epochs=plan["grace_steps"] // plan["steps_per_epoch"],
                       reduction_factor=plan["reduction_factor"], n_methods=len(METHODS),
                       n_closed_form=plan["closed_form"], steps_override=plan["steps_per_epoch"]).trials


def derived_order_pairs(table: pd.DataFrame) -> set[tuple[str, int]]:
    """The (task, seed) pairs that also ran with the defaults in the derived order."""
    return set(map(tuple, table.loc[table["strategy"] == DERIVED_ORDER, ["task", "seed"]].drop_duplicates().values))


def with_derived_order(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`derived_order_pairs`: the two orders compared on the same searches."""
    pairs = derived_order_pairs(table)
    return table[[pair in pairs for pair in zip(table["task"], table["seed"])]]


def order_section(table: pd.DataFrame, records: list[dict]) -> str:
    """The default search against the same search with its defaults in the derived order, on the (task, seed) pairs
    that ran both."""
    pairs = derived_order_pairs(table)
    table = with_derived_order(table)
    records = [r for r in records if (r["task"], r["seed"]) in pairs]
    text = ("## Each method's defaults in a derived order\n\n"
            f"`{DERIVED_ORDER}` is the default search with each method's defaults in the order derived on the other "
            "groups (defaults_order.md: the methods a search's recommendation held most often first) instead of "
            "name order, on the same tasks and seeds. Regret of the recommended ensemble (points) at fractions of "
            "the default budget; where the defaults were all done (mean over seeds); and the target against random "
            "search (third section).\n\n")
    rows = []
    for task in [*sorted(table["task"].unique()), "mean"]:
        chosen = table if task == "mean" else table[table["task"] == task]
        for searcher in ("tpe+asha", DERIVED_ORDER):
            done = [end for end in (defaults_phase_end(r) for r in records
                                    if r["strategy"] == searcher and task in ("mean", r["task"])) if end is not None]
            met, first, total = targets_met(chosen, searcher)
            rows.append([task, "derived" if searcher == DERIVED_ORDER else "name",
                         *[cell(regret_at(chosen, searcher, f).mean()) for f in FRACTIONS],
                         f"{sum(done) / len(done) / DEFAULT_BUDGET:.2f}x" if done else "-",
                         f"{met} / {first} of {total}"])
    text += md_table(rows, ["task", "defaults order", *[f"{f:g}x" for f in FRACTIONS], "defaults done at",
                            "target met: stays / first reaches"])
    derived = [r for r in records if r["strategy"] == DERIVED_ORDER]
    over = [r for r in derived if len(r["trials"]) > shipped_trial_bound(r["plan"])]
    within = [r for r in over
              if sum(t["compute"] <= DEFAULT_BUDGET for t in r["trials"]) > shipped_trial_bound(r["plan"])]
    if over:
        text += ("\n\nGood defaults first, ASHA stops the later trials sooner, and a search meets the plan's bound on "
                 "its trials (the budget over a trial's expected steps under successive halving) before it has spent "
                 "its budget. These runs bounded the trials by what the budget pays if every trial stops at the first "
                 f"rung instead (a rerun at this commit keeps the shipped bound); {len(over)} of {len(derived)} ran "
                 f"more trials than the shipped bound allows ({len(within)} of them within the default budget, so up "
                 "to 1x the others are what the shipped plan runs too).")
    return text


def order_finding(table: pd.DataFrame) -> str:
    """What the derived order of the defaults changed, in one line."""
    table = with_derived_order(table)
    means = {s: [regret_at(table, s, f).mean() for f in FRACTIONS] for s in ("tpe+asha", DERIVED_ORDER)}
    (met, first, total), (met_name, first_name, _) = (targets_met(table, s) for s in (DERIVED_ORDER, "tpe+asha"))
    at = ", ".join(f"{derived:.1f} against {name:.1f} at {f:g}x"
                   for f, derived, name in zip(FRACTIONS, means[DERIVED_ORDER], means["tpe+asha"]))
    verdict = ("it does better at the default budget: a candidate for the default search"
               if means[DERIVED_ORDER][2] < means["tpe+asha"][2] else
               "a default search keeps the name order, because what it recommends at the default budget counts more "
               "than what it holds when stopped early")
    return (f"- Each method's defaults in the derived order (the section above): the recommendation loses {at}; "
            f"the target against random search is met in {met} of {total} comparisons (first reached in {first}), "
            f"against {met_name} ({first_name}) in name order. The order buys an early recommendation; {verdict}.")


def proxies_of(records: list[dict]) -> str:
    """The selecting proxies of the runs (``_common.selection_label``), in words (records made before runs recorded
    it selected by im_ts, the feature tables' auto proxy then)."""
    return ", ".join(f"`{name}`" for name in sorted({r.get("proxy", "im_ts") for r in records}))


def smoothing_note(records: list[dict]) -> str:
    """How the runs' ensembles were smoothed over target neighbourhoods (summary.json ``smoothing`` of each run)."""
    settings = sorted({Smoothing(**r["smoothing"]).describe() if r.get("smoothing") else "not smoothed"
                       for r in records})
    if settings == ["not smoothed"]:
        return "Ensembles are plain averages of their members' predictions."
    return f"Ensembles are {' or '.join(settings)}, as the runs' ensemble rows were; single picks are not."


def gap_note(records: list[dict]) -> str:
    """How the runs' recommendations treated held-out source accuracy (the ``source_gap`` each was searched with)."""
    gaps = sorted({r.get("source_gap") for r in records}, key=lambda g: -1 if g is None else g)
    if gaps == [None]:
        return "No source gap: every trial could be recommended."
    return ("Source gap " + ", ".join("none" if g is None else f"{100 * g:g} points" for g in gaps) + " (`source_gap: "
            "auto`): a trial whose held-out source accuracy lies further below the best finished trial's is not "
            "recommended.")


def concentration(record: dict, fraction: float = 1.0) -> tuple[str, float]:
    """The method with the most trials among those finished within ``fraction`` of the budget, and its share."""
    trials = [t for t in record["trials"] if t["compute"] <= fraction * DEFAULT_BUDGET]
    methods = pd.Series([t["method"] for t in trials]).value_counts()
    return methods.index[0], methods.iloc[0] / max(len(trials), 1)


def defaults_phase_end(record: dict) -> int | None:
    """Compute (optimizer steps of all trials) at which every method had finished a trial: where the defaults that
    a default search runs first are done and the sampler's own trials take over; None if some method never ran."""
    methods: set[str] = set()
    for trial in sorted(record["trials"], key=lambda t: t["compute"]):
        methods.add(trial["method"])
        if len(methods) == len(METHODS):
            return trial["compute"]
    return None


def seed_counts(table: pd.DataFrame) -> str:
    """``"3 seeds"``, or ``"1 to 3 seeds"`` where tasks were measured on different numbers of seeds."""
    counts = [len(seeds) for seeds in tasks_by_seeds(table)]
    low, high = min(counts), max(counts)
    return f"{high} {seed_word(high)}" if low == high else f"{low} to {high} seeds"


BUDGET_SCALES = (1.0, 1.25, 1.5, 1.75, 2.0)  # default budgets weighed against the shipped one, x the default


def slowest_at(records: list[dict], scale: float) -> float:
    """The wall time (s) the slowest default search of these runs would take at ``scale`` x the default budget:
    its measured time, pro rata to the budget it ran at (an estimate; ASHA's trials do not cost the same)."""
    return max(r["wall_s"] * scale * DEFAULT_BUDGET / r["plan"]["budget"] for r in records
               if r["strategy"] == "tpe+asha")


def budget_choice(table: pd.DataFrame, records: list[dict]) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """The default search's mean regret per benchmark group (rows) at each budget of :data:`BUDGET_SCALES` that
    these runs reach (columns, as labels), the budget each group gets chosen on the others among those whose slowest
    search fits :data:`SEARCH_TIME_TARGET_S`, and those budgets."""
    reached = [scale for scale in BUDGET_SCALES if scale * DEFAULT_BUDGET <= min(
        r["plan"]["budget"] for r in records if r["strategy"] == "tpe+asha")]
    per_run = pd.DataFrame({f"{scale:g}x": regret_at(table, "tpe+asha", scale) for scale in reached})
    per_group = per_run.groupby([group_of(task) for task, _ in per_run.index]).mean()
    allowed = [f"{scale:g}x" for scale in reached if slowest_at(records, scale) <= SEARCH_TIME_TARGET_S]
    return per_group, held_out_choices(per_group[allowed], "1x"), allowed


def budget_section(table: pd.DataFrame, records: list[dict]) -> str:
    """What a larger default budget would buy the default search, chosen leave one group out."""
    per_group, chosen, allowed = budget_choice(table, records)
    held = held_out_score(per_group, chosen)
    shipped = per_group["1x"].mean()
    text = ("## A larger default budget?\n\n"
            "The default search's (`tpe+asha`) mean regret per benchmark group when it stops at a larger budget "
            "(the same runs: the trials a search of that budget runs), and the time the slowest of these searches "
            "would take there (its measured time pro rata; other tasks of the suite may be slower). A budget competes "
            "only where that time is within "
            f"{SEARCH_TIME_TARGET_S // 60} minutes.\n\n")
    text += md_table([[group, *[cell(v) for v in per_group.loc[group]], chosen[group]] for group in per_group.index]
                     + [["mean", *[cell(v) for v in per_group.mean()], ""],
                        ["slowest search (s)", *[f"{slowest_at(records, float(c[:-1])):.0f}" for c in per_group], ""]],
                     ["group", *per_group.columns, "chosen on the other groups"])
    gain = shipped - held
    verdict = (f"a gain of at least {MIN_GAIN:g} points: a candidate for the default budget of feature tables, to be "
               "checked on fresh default searches of the whole suite and against the time target on its slowest "
               "task before it ships" if gain >= MIN_GAIN else
               f"less than the {MIN_GAIN:g} points a default change asks: the default budget stays")
    return text + (f"\n\nLeave one group out among {', '.join(allowed)}: {held:.2f} points held out against "
                   f"{shipped:.2f} at the default budget, {verdict}.") + budget_check_section()


def budget_check_row(run: str) -> dict:
    """A default search of the budget check (``benchmarks.skeleton [--budget N]``): what it recommended and its
    time; ``rule`` names its budget, so that one task and seed keeps a row per budget."""
    directory = RunDir(run)
    summary, (config, _) = directory.read_summary(), directory.read_config()
    wall, _ = measured_search(run, report_only=True)
    budget = summary["plan"]["budget"]
    return {"task": config["task"], "seed": config.get("seed", 0), "rule": f"budget {budget}", "budget": budget,
            "recommended": 100 * summary["recommendation"]["target_acc"], "wall_s": wall}


def budget_check_section(path: str = BUDGET_CHECK, later: str = LATER_SEARCHES) -> str:
    """The larger budget on fresh default searches, paired with the same tasks and seeds at the default budget (a
    row of ``path`` at that budget, else the search of ``later``), chosen leave one group out between the two ('' before
    any such search ran)."""
    from benchmarks.ensemble_settings import SHIPPED  # it imports this module

    if not os.path.exists(path):
        return ""
    rows = read_jsonl(path)
    at_default = {(r["task"], r["seed"]): r["accuracy"][SHIPPED] for r in read_jsonl(later)}
    at_default.update({(r["task"], r["seed"]): r["recommended"] for r in rows if r["budget"] == DEFAULT_BUDGET})
    checks = [r for r in rows if r["budget"] > DEFAULT_BUDGET and (r["task"], r["seed"]) in at_default]
    budget = max(r["budget"] for r in checks)
    larger = f"{budget:,} steps"
    frame = pd.DataFrame([{"task": r["task"], "seed": r["seed"], "group": group_of(r["task"]),
                           "default": at_default[r["task"], r["seed"]], larger: r["recommended"],
                           "wall_s": r["wall_s"]} for r in checks if r["budget"] == budget])
    per_group = -frame.groupby("group")[["default", larger]].mean()  # losses, for the chooser
    chosen = held_out_choices(per_group, "default")
    held_gain = per_group["default"].mean() - held_out_score(per_group, chosen)
    gains = frame.groupby("group")[larger].mean() - frame.groupby("group")["default"].mean()
    seeds = ", ".join(map(str, sorted(frame["seed"].unique())))
    text = (f"\n\nChecked on {len(frame)} fresh default searches at {larger} (`python -m benchmarks.skeleton --tasks "
            f"... --seed S --budget {budget}`, seeds {seeds}; rows in `benchmarks/results/raw/budget-check.jsonl`), "
            "on tasks and seeds these runs do not hold, against the same task and seed at the default budget "
            "(ensemble_settings_later.md's searches as shipped, or the same command without `--budget` where those "
            "lack the seed). Recommended target accuracy (%):\n\n")
    text += md_table([[r["task"], r["seed"], r["default"], r[larger], r[larger] - r["default"], f"{r['wall_s']:.0f}"]
                      for r in frame.to_dict("records")],
                     ["task", "seed", f"{DEFAULT_BUDGET:,} steps", larger, "difference", f"wall s at {larger}"])
    verdict = ("a candidate to ship" if held_gain >= MIN_GAIN else
               f"less than the {MIN_GAIN:g} points a default change asks, so the default budget stays")
    return text + ("\n\nDifference per group: " + ", ".join(f"{g} {v:+.2f}" for g, v in gains.items())
                   + f". Chosen leave one group out between the two budgets, the held-out groups gain {held_gain:+.2f} "
                   f"points: {verdict}. The slowest of these searches took {frame['wall_s'].max():.0f} s.")


def findings(table: pd.DataFrame, records: list[dict]) -> str:
    strategies = ("tpe+asha", "random+asha", "random")
    means = {s: regret_at(table, s, 1.0).mean() for s in strategies}
    defaults = table[table["strategy"] == "defaults"][ENSEMBLE].mean()
    met, early, comparisons = targets_met(table, "tpe+asha")
    lines = [
        "## What follows\n",
        "- At the default budget the recommended ensemble loses, on average over the tasks: "
        + ", ".join(f"`{s}` {v:.1f}" for s, v in means.items())
        + f" points; each method once at its defaults (more compute than the default budget) {defaults:.1f}.",
        f"- The target (TPE + ASHA reaches random search's final regret in at most a third of its compute, and stays "
        f"there) is met in {met} of {comparisons} comparisons. It gets there early in {early} of them"
        + (f", and in {early - met} of those it drifts away again as the search goes on." if early > met else "."),
    ]
    on_means = mean_to_match(table)
    suite = [row for row in on_means if row[0] == "suite"]
    misses = [row for row in on_means if row[0] != "suite" and not stays_within_third(row)]
    lines.append(
        "- On mean regrets (the suite and group rows after the per-run comparisons) the suite's runs stay at random "
        "search's mean final regret from " + " and ".join(f"{row[-1]} of `{row[2]}`'s compute" for row in suite)
        + f"; per benchmark group in {len(on_means) - len(suite) - len(misses)} of {len(on_means) - len(suite)} "
        "comparisons" + (", not on " + ", ".join(f"{row[0]} against `{row[2]}` ({row[-1]}; its mean final regret "
                                                  f"{row[3]:.1f} points)" for row in misses) if misses else "") + ".")
    tpe = [r for r in records if r["strategy"] == "tpe+asha"]
    ends = [defaults_phase_end(r) for r in tpe]
    if tpe and None not in ends:
        after = [sum(end < t["compute"] <= DEFAULT_BUDGET for t in r["trials"]) for end, r in zip(ends, tpe)]
        lines.append(
            f"- A default search runs each method's defaults first; in these searches they were done at "
            f"{min(ends) / DEFAULT_BUDGET:.2f}x to {max(ends) / DEFAULT_BUDGET:.2f}x of the default budget (mean "
            f"{sum(ends) / len(ends) / DEFAULT_BUDGET:.2f}x), leaving TPE {min(after)} to {max(after)} trials of its "
            "own within it. At the default budget `tpe+asha` is therefore close to each method's defaults under "
            "ASHA, and what TPE itself adds shows from 1x to 2x.")
    for record in tpe:
        method, share = concentration(record)
        lines.append(f"- {record['task']}, seed {record['seed']}: within the default budget TPE gave "
                     f"{100 * share:.0f}% of its trials to `{method}`.")
    lines.append(
        "- TPE optimises the proxy that keeps each trial's epoch (`im` on feature tables): it learns which method "
        "family that proxy scores highest and spends its trials there (the shares above), so where it over-rates a "
        "family the top 5 by it are all of it. A ranking proxy that reads no confidence (`neighbour_agreement`, "
        "which `auto` ranks feature tables by; checkpoint_proxy.md) and the source gap, which holds back trials "
        "whose held-out source accuracy has fallen (source_gap.md), keep that family from filling the "
        "recommendation; random search and the defaults keep the families mixed. More search buys a better proxy "
        "score, which is a better model only as far as the proxy is right.")
    if (table["strategy"] == DERIVED_ORDER).any():
        lines.append(order_finding(table))
    lines.append(
        f"- {seed_counts(table)} per task and {len({r['task'] for r in records})} tasks: "
        "differences of a few points between strategies are within the noise of a single search.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="office-surf:D->W,amazon:B->D,mnist-usps-jda:U->M")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--scale", type=float, default=2.0, help="budget of the searches, x the default")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "adaptune-search-efficiency"))
    parser.add_argument("--raw", default=RAW, help="the records file (default: the committed one)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--again", action="store_true", help="rerun runs that the raw file already holds")
    parser.add_argument("--budget-check", nargs="+", metavar="RUN_DIR",
                        help="default searches at a larger budget (benchmarks.skeleton --budget): add them to "
                             "raw/budget-check.jsonl, then the page")
    parser.add_argument("--remeasure", action="store_true",
                        help="rebuild the raw records from the run directories kept under --out, without searching")
    args = parser.parse_args()
    records = load_raw(args.raw)
    if args.budget_check:
        merge_searches(BUDGET_CHECK, [budget_check_row(run) for run in args.budget_check])
        args.report_only = True
    if args.remeasure:
        records = [measure(r["task"], r["strategy"], r["seed"], run_dir(args.out, r["task"], r["strategy"], r["seed"]),
                           r["wall_s"]) for r in records]
        save_raw(records, args.raw)
    if not args.report_only:
        for task in args.tasks.split(","):
            for seed in map(int, args.seeds.split(",")):
                for strategy in args.strategies.split(","):
                    key = (task, seed, strategy)
                    if not args.again and any((r["task"], r["seed"], r["strategy"]) == key for r in records):
                        continue  # measured already (the raw file keeps every finished run)
                    records = [r for r in records if (r["task"], r["seed"], r["strategy"]) != key]
                    records.append(run(task, strategy, seed, args.scale, args.out))
                    save_raw(records, args.raw)  # after every run: an interrupted benchmark keeps what finished
                    print(task, seed, strategy, f"{records[-1]['wall_s']:.0f} s", records[-1]["curve"][-1],
                          flush=True)
    print(write("search_efficiency.md", report(records)))


if __name__ == "__main__":
    main()
