"""The same method pools under each feature preprocessing, under two at once, and under ``auto``: what the default
selection ships in each case, which preprocessing default follows leave one group out, and where ``auto`` cuts.

Reads, per group, one pool of ``benchmarks.methods_bench run`` per kind of ``KINDS`` (each method once at its
defaults on every task of the group, ``--preprocess KIND``, with ``--dump-predictions``): their records
``raw/preprocess-<group>-<kind>.jsonl.gz`` and each trial's target predictions at its best epoch by the ``auto``
proxy ``raw/preprocess-<group>-<kind>.pt.gz``. The recommended selection (the ensemble of the top 5 trials by the
proxy, every trial admitted and with the shipped source gap) is formed within each pool, over the union of two,
which is what a search given both kinds (``preprocess: [zscore, domain-scale]``) chooses among, each trial held to
the source gap of its own kind (``reports.leaderboard.selection_order``), and for ``auto`` from the pool of the
kind it picks per task. The no-adaptation baseline is the better of source-only LR and 1-NN under the pool's
preprocessing (the best over both for the union; baselines.md). Target labels only score.

  python -m benchmarks.preprocess_pools [GROUP ...]   (default: every group whose pools are committed)
  python -m benchmarks.methods_bench run --group G [--tasks ...] --configs 1 --epochs 12 --preprocess KIND \\
      --out benchmarks/results/raw/preprocess-G-KIND.jsonl --dump-predictions P --dump-predictions-proxies im_ts
      (then gzip both; the script reads the .gz files)
"""

from __future__ import annotations

import gzip
import io
import math
import os
import statistics
import sys
from collections import Counter

import torch

from adaptune.algorithms.data import load_task
from adaptune.algorithms.domains import with_fewshot
from adaptune.algorithms.preprocess import (
    AUTO,
    AUTO_CHOICES,
    AUTO_CLIP_SHARE,
    DEFAULT_PREPROCESS,
    SPREAD_RATIO,
    UNIT_INVARIANT,
    auto_choice,
    spread_mismatch,
)
from adaptune.reports.leaderboard import PREPROCESS_COLUMN, selection_order
from adaptune.search.config import DEFAULT_ENSEMBLE_K
from benchmarks._common import RESULTS, header, md_table, page_table, rerun_command, write
from benchmarks.baselines import leave_one_group_out, resolved_kind, saved_baseline, worst_regret
from benchmarks.methods_bench import GROUPS
from benchmarks.proxies_report import load
from benchmarks.search_efficiency import ensemble_accuracy

# The selecting proxy of these pools: they keep target predictions (--dump-predictions-proxies) and recorded
# ensembles for im_ts, the feature tables' auto proxy when they ran; comparing preprocessings needs one proxy.
PROXY = "im_ts"
GAP = 0.02  # the feature tables' source gap when the pools ran, with PROXY
KINDS = ("zscore", "domain-scale", "zscore-clip")
# Searches given two kinds, as their leaderboards name them: each ranks the union of the two pools.
UNIONS = {"|".join(kinds): kinds for kinds in (("zscore", "domain-scale"), ("zscore", "zscore-clip"))}
SCHEMES = {"every trial": None, f"gap {100 * GAP:g} points": GAP}
SHIPPED = list(SCHEMES)[-1]
FEWSHOT_K = 3  # methods_bench's default: the oracle set excludes these samples


def pool_path(group: str, kind: str, suffix: str) -> str:
    return os.path.join(RESULTS, "raw", f"preprocess-{group}-{kind}.{suffix}")


def pool_trials(group: str, kind: str) -> tuple[dict[str, list[dict]], dict[str, float], dict]:
    """Per task, each trial at its best epoch by the proxy (method, score, held-out source accuracy, target
    predictions); per task the oracle's best (trial, epoch) accuracy; and the pool's run metadata."""
    points, _, metas = load([pool_path(group, kind, "jsonl.gz")])
    with gzip.open(pool_path(group, kind, "pt.gz"), "rb") as handle:
        predictions = torch.load(io.BytesIO(handle.read()), weights_only=True)
    trials, oracle = {}, {}
    for task, history in points.groupby("task"):
        best = history.loc[history.groupby("method")[f"proxy_{PROXY}"].idxmax()].set_index("method")
        trials[task] = [{"method": method, PREPROCESS_COLUMN: kind, "score": saved[f"proxy_{PROXY}"][0],
                         "source_acc": float(best.loc[method, "source_acc"]),
                         "probs": saved[f"proxy_{PROXY}"][1].float()}
                        for method, saved in predictions[task]]
        oracle[task] = 100 * history["target_acc"].max()
    return trials, oracle, metas[0] if metas else {}


def recommended(trials: list[dict], gap: float | None) -> list[dict]:
    """The search's recommendation among ``trials``: the top-k of them in selection order."""
    return selection_order(trials, gap)[0][:DEFAULT_ENSEMBLE_K]


def rows_of(group: str) -> tuple[list[dict], list[dict]]:
    """Per task of the group and per selection pool (each kind, and the union): the oracle's best, the recommended
    selections and the baseline, in percent; and the pools' run metadata."""
    pools = {kind: pool_trials(group, kind) for kind in KINDS}
    rows = []
    for task in pools[KINDS[0]][0]:
        labels = with_fewshot(load_task(task), FEWSHOT_K).target_oracle
        baselines = {kind: saved_baseline(task, kind)["best"] for kind in KINDS}
        candidates = {**{kind: pools[kind][0][task] for kind in KINDS},
                      **{label: [t for kind in kinds for t in pools[kind][0][task]] for label, kinds in UNIONS.items()}}
        for label, trials in candidates.items():
            kinds = label.split("|")
            row = {"group": group, "task": task, "preprocess": label,
                   "oracle": max(pools[kind][1][task] for kind in kinds),
                   "baseline": max(baselines[kind] for kind in kinds)}
            for name, gap in SCHEMES.items():
                members = recommended(trials, gap)
                row[name] = 100 * ensemble_accuracy([t["probs"] for t in members], labels)
            if label in UNIONS:  # members: the shipped scheme's, the last computed
                row["members"] = ", ".join(f"{t['method']} ({t[PREPROCESS_COLUMN]})" for t in members)
            rows.append(row)
    return rows, [pools[kind][2] for kind in KINDS]


def summary_table(rows: list[dict], variant: str = "preprocess") -> tuple[str, dict[str, dict[str, float]]]:
    """Per group and pool (rows' ``variant`` column): mean regret and recommended accuracy (shipped gap), tasks at or
    above the baseline; and the mean recommended accuracy per group and pool."""
    table, means = [], {}
    for group, label in dict.fromkeys((r["group"], r[variant]) for r in rows):
        mine = [r for r in rows if (r["group"], r[variant]) == (group, label)]
        means.setdefault(group, {})[label] = statistics.fmean(r[SHIPPED] for r in mine)
        table.append([group, f"`{label}`", len(mine), statistics.fmean(r["oracle"] - r[SHIPPED] for r in mine),
                      means[group][label], f"{sum(r[SHIPPED] >= r['baseline'] for r in mine)} of {len(mine)}"])
    return md_table(table, ["group", variant.replace("_", " "), "tasks", f"mean regret, {SHIPPED}",
                            f"mean recommended ({SHIPPED})", "at or above the baseline"]), means


def task_table(rows: list[dict], variant: str = "preprocess") -> str:
    """Per task and pool (rows' ``variant`` column): the oracle's best, the recommended selections, the baseline."""
    return md_table([[r["group"], r["task"], f"`{r[variant]}`", r["oracle"], *[r[s] for s in SCHEMES],
                      r["baseline"], "yes" if r[SHIPPED] >= r["baseline"] else "no"] for r in rows],
                    ["group", "task", variant.replace("_", " "), "oracle best",
                     *[f"recommended, {s}" for s in SCHEMES], "baseline", "recommended >= baseline"])


CHOICES = (*KINDS, *UNIONS, AUTO)


def task_mismatch(task: str) -> float:
    """The statistic ``auto`` reads (algorithms.preprocess.spread_mismatch) on the task's whole domains."""
    raw = load_task(task, preprocess="none")
    return spread_mismatch(torch.cat([raw.source_train.x, raw.source_val.x]),
                           torch.cat([raw.target_train.x, raw.target_val.x]))  # duplicated rows leave a std as is


# A task whose two kinds score within this many points of each other says nothing about where auto should cut:
# one pool is one seed, and the recommended accuracy moves by more than that from seed to seed.
TIE_POINTS = 1.0


def auto_score(tasks: dict[str, tuple[str, float, dict[str, float]]], share: float, ties: bool = True) -> float:
    """The mean over groups of each group's mean accuracy when ``auto`` cuts at ``share``; ``tasks`` maps a task to
    (group, mismatch, accuracy per kind). With ``ties``, a task within :data:`TIE_POINTS` scores the mean of both
    kinds wherever the cut lies (for choosing the cut; without, the accuracies as they are)."""
    per_group: dict[str, list[float]] = {}
    for group, mismatch, accuracy in tasks.values():
        tied = ties and abs(accuracy[AUTO_CHOICES[0]] - accuracy[AUTO_CHOICES[1]]) < TIE_POINTS
        per_group.setdefault(group, []).append(
            statistics.fmean(accuracy.values()) if tied else accuracy[auto_choice(mismatch, share)])
    return statistics.fmean(statistics.fmean(values) for values in per_group.values())


def chosen_share(tasks: dict[str, tuple[str, float, dict[str, float]]]) -> float:
    """The share ``auto`` should cut at on ``tasks`` (see :func:`auto_score`): every share between two neighbouring
    mismatches decides alike, so the best of these intervals is found, neighbouring intervals that score as well
    are merged, and the cut is the middle of the widest such run (as far from the tasks on either side as they
    allow)."""
    bounds = sorted({0.0, 1.0, *(mismatch for _, mismatch, _ in tasks.values())})
    scores = [auto_score(tasks, low) for low in bounds[:-1]]
    best = max(scores)
    runs, start = [], None
    for index, score in enumerate([*scores, -math.inf]):
        if score >= best - 1e-9 and start is None:
            start = index
        elif score < best - 1e-9 and start is not None:
            runs.append((bounds[start], bounds[index]))
            start = None
    low, high = max(runs, key=lambda run: run[1] - run[0])
    return (low + high) / 2


def auto_derivation(rows: list[dict], mismatches: dict[str, float], scheme: str = SHIPPED) -> tuple[list[list], float]:
    """Per held-out group: the share chosen on the other groups, how many of the held-out tasks it clips, and the
    held-out group's mean accuracy under auto, zscore and zscore-clip; and the share chosen on every group."""
    accuracy = {(r["task"], r["preprocess"]): r[scheme] for r in rows}
    tasks = {r["task"]: (r["group"], mismatches[r["task"]], {k: accuracy[r["task"], k] for k in AUTO_CHOICES})
             for r in rows}
    table = []
    for held in dict.fromkeys(group for group, _, _ in tasks.values()):
        share = chosen_share({t: v for t, v in tasks.items() if v[0] != held})
        mine = {t: v for t, v in tasks.items() if v[0] == held}
        clipped = sum(auto_choice(mismatch, share) != AUTO_CHOICES[0] for _, mismatch, _ in mine.values())
        fixed = [statistics.fmean(v[2][k] for v in mine.values()) for k in AUTO_CHOICES]
        mismatch_list = ", ".join(f"{v[1]:.2f}" for v in mine.values())
        table.append([held, mismatch_list, f"{share:.3f}", f"{clipped} of {len(mine)}",
                      auto_score(mine, share, ties=False), *fixed])
    return table, chosen_share(tasks)


def with_auto(rows: list[dict]) -> list[dict]:
    """``rows`` and, per task, a copy of the row of the kind ``auto`` picks there (as a search resolves it),
    labelled auto."""
    picks = {task: resolved_kind(task, AUTO) for task in dict.fromkeys(r["task"] for r in rows)}
    return rows + [{**r, "preprocess": AUTO} for r in rows if r["preprocess"] == picks[r["task"]]]


def derivation(rows: list[dict], scheme: str = SHIPPED) -> tuple[list[list], list[list], list[str]]:
    """The preprocessing default leave one group out (recommended accuracy under ``scheme``): per held-out group
    benchmarks.baselines.leave_one_group_out's row; each choice's loss as a fixed default (worst_regret's rows);
    and the groups, in order."""
    scores = {(r["task"], r["preprocess"]): r[scheme] for r in rows}
    groups = {group: list(dict.fromkeys(r["task"] for r in rows if r["group"] == group))
              for group in dict.fromkeys(r["group"] for r in rows)}
    return (leave_one_group_out(scores, groups, CHOICES), worst_regret(scores, groups, CHOICES), list(groups))


def derivation_tables(logo: list[list], fixed: list[list], groups: list[str]) -> tuple[str, str]:
    return (md_table(logo, ["held-out group", "chosen on the others", "its mean (%)", "best here", "best mean (%)"]),
            md_table(fixed, ["preprocess", *groups, "mean", "worst"]))


def findings(logo: list[list], fixed: list[list]) -> str:
    """What the derivation at the shipped gap (:func:`derivation`'s rows) says about the default."""
    worst = {row[0]: row[-1] for row in fixed}
    mean_loss = {row[0]: row[-2] for row in fixed}
    chosen = Counter(row[1] for row in logo)
    most, times = chosen.most_common(1)[0]
    others = [f"`{row[1]}` with {row[0]} held out" for row in logo if row[1] != most]
    misses = [f"{row[0]} (best `{row[3]}`, {row[4] - row[2]:.1f} points)" for row in logo if row[4] - row[2] > 1e-9]
    held_out_loss = statistics.fmean(row[4] - row[2] for row in logo)
    safest, leanest = min(worst, key=worst.get), min(mean_loss, key=mean_loss.get)
    invariant = [f"`{k}`" for k in KINDS if k in UNIT_INVARIANT]
    text = [
        f"- Leave one group out, `{most}` is chosen for {times} of {len(logo)} held-out groups"
        + (f" ({', '.join(others)})" if others else "") + ". The choice made on the other groups misses the "
        f"held-out group's best in {len(misses)} of {len(logo)} groups" + (f": {', '.join(misses)}" if misses else "")
        + f"; {held_out_loss:.1f} points lost there on average.",
        f"- As a fixed default, `{leanest}` loses the least"
        + (f", on average ({mean_loss[leanest]:.1f} points) and at worst ({worst[leanest]:.1f}); " if leanest == safest
           else f" on average ({mean_loss[leanest]:.1f} points) and `{safest}` the least at worst "
           f"({worst[safest]:.1f}); ")
        + ", ".join(f"`{c}` {mean_loss[c]:.1f} / {worst[c]:.1f}" for c in CHOICES if c not in (leanest, safest))
        + " (mean / worst).",
    ]
    default = DEFAULT_PREPROCESS
    if default in mean_loss:
        text.append(f"- A search uses `{default}` unless told otherwise "
                    f"(`algorithms.preprocess.DEFAULT_PREPROCESS`): {mean_loss[default]:.1f} points lost on "
                    f"average here and at most {worst[default]:.1f}. A pool holds one trial per method at its "
                    "defaults, while a whole search lets TPE crowd the top of the ranking with what the proxy rates "
                    "highest, so whole default searches (search_budget.md) are the test a default must pass too.")
    text.append(f"- {', '.join(invariant)} are invariant to each column's unit; under "
                + ", ".join(f"`{k}`" for k in KINDS if k not in UNIT_INVARIANT)
                + " a table mixing units would let its largest unit rule. Searching two kinds lets the proxy rank "
                "across them, with each trial held to the best held-out source accuracy of its own kind (a kind "
                "that fits the small source split better does not hold back the other kind's trials).")
    return "\n".join(text)


# Whole default searches on one task per group (and the other pixel tasks), each given one choice
# (benchmarks.skeleton --preprocess ...), all selecting by im_ts like the pools.
WHOLE_SEARCH_PAGES = {"zscore": ("search_budget_zscore.md",), "zscore|domain-scale": ("search_budget_preprocess.md",),
                      "zscore|zscore-clip": ("search_budget_zscore_clip.md",),
                      "zscore-clip": ("search_budget_clip_only.md",),
                      AUTO: ("search_budget_im_ts.md", "search_budget_pixels_im_ts.md")}


def whole_searches() -> str:
    """The recommended accuracy of each committed whole-search page, per task, read from the pages' tables."""
    recommended: dict[str, dict[str, float]] = {}
    for choice, pages in WHOLE_SEARCH_PAGES.items():
        for page in pages:
            if os.path.exists(os.path.join(RESULTS, page)):
                recommended.setdefault(choice, {}).update({row["task"]: float(row["recommended"])
                                                           for row in page_table(page)})
    tasks = list(dict.fromkeys(t for values in recommended.values() for t in values))
    common = [t for t in tasks if all(t in values for values in recommended.values())]
    rows = [[task, *[values.get(task, "-") for values in recommended.values()]] for task in tasks]
    rows.append([f"mean of the {len(common)} tasks every page has",
                 *[statistics.fmean(values[t] for t in common) for values in recommended.values()]])
    return md_table(rows, ["task", *[f"`{c}` ({', '.join(WHOLE_SEARCH_PAGES[c])})" for c in recommended]])


def auto_findings(auto_logo: list[list]) -> str:
    """What :func:`auto_derivation`'s held-out rows say: the loss of auto against the better of its two kinds."""
    losses = {row[0]: max(row[5:]) - row[4] for row in auto_logo}
    clipped = [row[0] for row in auto_logo if not row[3].startswith("0 ")]
    worst = max(losses, key=losses.get)
    loss = (f"loses {statistics.fmean(losses.values()):.1f} points on average and at most {losses[worst]:.1f} "
            f"({worst})" if losses[worst] > 0.05 else "loses nothing in any held-out group")
    return (f"- With its share chosen on the other groups, `{AUTO}` clips tasks of {', '.join(clipped) or 'no group'} "
            f"and of no other group; against the better of `{AUTO_CHOICES[0]}` and `{AUTO_CHOICES[1]}` it {loss}.")


def run_line(group: str, meta: dict) -> str:
    return (f"- {group}: `{meta.get('command', '?')}` (then gzipped), {meta.get('date', '?')}, wall "
            f"{meta.get('wall_s', float('nan')):.0f} s")


def main(groups: list[str]) -> None:
    rows, metas, mismatches = [], [], {}
    for group in groups:
        group_rows, group_metas = rows_of(group)
        mismatches.update({task: task_mismatch(task) for task in dict.fromkeys(r["task"] for r in group_rows)})
        rows += with_auto(group_rows)
        metas += [(group, meta) for meta in group_metas]
    auto_logo, share = auto_derivation([r for r in rows if r["preprocess"] in AUTO_CHOICES], mismatches)
    summary, means = summary_table(rows)
    shipped = derivation(rows)
    logo, fixed = derivation_tables(*shipped)
    every = list(SCHEMES)[0]
    logo_every, fixed_every = derivation_tables(*derivation(rows, every))
    table = task_table(rows)
    members = md_table([[r["task"], f"`{r['preprocess']}`", r["members"]] for r in rows if r["preprocess"] in UNIONS],
                       ["task", "search given", f"its recommended top {DEFAULT_ENSEMBLE_K} (method, preprocessing)"])
    text = "\n".join([
        header("Feature preprocessing under the default selection", rerun_command()),
        f"Each pool: every method once at its defaults on each task, under one of {', '.join(f'`{k}`' for k in KINDS)} "
        f"(`benchmarks.methods_bench run ... --configs 1 --epochs 12 --preprocess KIND`); `a|b` is the union of "
        "two pools, what a search given both kinds (`--preprocess a,b`) ranks, each trial held to the source gap "
        f"of its own kind; `{AUTO}` is, per task, the pool of the kind `{AUTO}` picks there (the default, "
        "section below). *recommended*: "
        f"the ensemble of the top {DEFAULT_ENSEMBLE_K} trials by `{PROXY}` (the `auto` proxy for feature tables when "
        "the pools ran), "
        "with every trial admitted and with the shipped source gap; *oracle best*: the best (trial, epoch) of the "
        "pool; *baseline*: the better of source-only LR and 1-NN under the pool's preprocessing (the best over both "
        "kinds for the union; baselines.md). Target accuracy (%); the oracle labels only score.\n",
        "Runs:\n",
        *[run_line(group, meta) for group, meta in metas],
        "",
        summary,
        "",
        "## The default, leave one group out\n",
        "For each held-out group: the choice with the best mean recommended accuracy (shipped gap) on the other "
        "groups, and its accuracy on the held-out group.\n",
        logo,
        "",
        "Each choice as a fixed default: its loss (points of recommended accuracy, group means) against the best "
        "choice of each group.\n",
        fixed,
        "",
        f"The same with {every} admitted (no source gap):\n",
        logo_every,
        "",
        fixed_every,
        "",
        f"## `{AUTO}`: one kind per task, from the unlabeled features\n",
        f"`{AUTO}` (algorithms.preprocess.resolve_preprocess) reads one statistic of a task's two domains, the share "
        f"of columns whose population std in one domain is under 1/{SPREAD_RATIO:g} of the other's (*mismatch*), "
        f"and applies `{AUTO_CHOICES[1]}` above a share, `{AUTO_CHOICES[0]}` below it. The share is derived like "
        "every default: per held-out group, the share that gives the best mean recommended accuracy (shipped gap) "
        "on the other groups, at the middle of the widest run of shares that do as well (as far from the tasks on "
        f"either side as they allow), scored on the held-out group. A task whose two kinds lie within "
        f"{TIE_POINTS:g} point of each other counts as a tie (one pool is one seed).\n",
        md_table(auto_logo, ["held-out group", "its tasks' mismatch", "share chosen on the others", "tasks clipped",
                             f"`{AUTO}` (%)", *[f"`{k}` (%)" for k in AUTO_CHOICES]]),
        "",
        f"Chosen on every group: {share:.3f}; shipped: `AUTO_CLIP_SHARE` = {AUTO_CLIP_SHARE:g}. The rows `{AUTO}` "
        "of the tables above apply the shipped share.\n",
        "## Whole default searches\n",
        "Target accuracy (%) that a whole default search recommends, one task per group (under `auto` also the other "
        "pixel tasks), given each choice (the "
        "pages' commands and dates are on the pages):\n",
        whole_searches(),
        "",
        "## Per task\n",
        table,
        "",
        members,
        "",
        "## What follows",
        "",
        *[f"- {group}: the recommended selection averages "
          + ", ".join(f"{mean:.1f}% with `{label}`" for label, mean in group_means.items()) + "."
          for group, group_means in means.items()],
        findings(*shipped[:2]),
        auto_findings(auto_logo),
        "",
    ])
    print(write("preprocess_pools.md", text))


if __name__ == "__main__":
    main(sys.argv[1:] or [g for g in GROUPS if os.path.exists(pool_path(g, KINDS[0], "jsonl.gz"))])
