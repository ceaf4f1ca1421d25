"""The ensemble's settings under the ranking that ships, checked leave one group out on whole default searches.

The source gap (source_gap.md), the cap per method and the neighbourhood smoothing (smoothing.md) were derived when
feature-table trials were ranked by `im`. `proxy: auto` now ranks them by `neighbour_agreement` at the epochs `im`
keeps (checkpoint_proxy.md), which puts other trials at the top. This script re-ranks whole default searches whose
trials kept their epochs by `im` by the shipped ranking, rebuilds their ensemble under each setting of
:data:`SETTINGS` (the shipped one, and one knob changed at a time, plus a majority vote of the members instead of
their averaged probabilities) and scores each with the oracle labels (reporting only; they choose nothing). The loss
is against each search's best trial; each benchmark group is scored with the setting of least loss on the other
groups.

  python -m benchmarks.ensemble_settings --runs RUN_DIR ...   # re-ranks into raw/ensemble-settings.jsonl, then the page
  python -m benchmarks.ensemble_settings                      # ensemble_settings.md from the committed rows
  ... --rows PATH --page NAME                                 # another set of searches, on its own page
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import pandas as pd
import torch

from adaptune.algorithms.ensemble import AUTO_SMOOTHING, average_predictions, mix_with_neighbours
from adaptune.algorithms.neighbours import nearest_neighbours
from adaptune.algorithms.proxies import (
    AUTO_RANKING_PROXY,
    AUTO_SOURCE_GAP,
    AUTO_SOURCE_GAP_STANDARD_ERRORS,
    oracle_accuracy,
    widened_source_gap,
)
from adaptune.search.config import DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD
from benchmarks._common import (
    MIN_GAIN,
    RESULTS,
    header,
    held_out_choices,
    held_out_score,
    md_table,
    merge_searches,
    read_jsonl,
    write,
)
from benchmarks.checkpoint_proxy import read_ranked_run
from benchmarks.smoothing import KIND

SHIPPED_SMOOTHING = AUTO_SMOOTHING[KIND]
RANKING = AUTO_RANKING_PROXY[KIND]
ROWS = os.path.join(RESULTS, "raw", "ensemble-settings.jsonl")
# What each committed set of re-ranked searches is, by its rows file.
SEARCH_SETS = {
    "ensemble-settings.jsonl": "the searches checkpoint_proxy.md re-ranks",
    "ensemble-settings-later.jsonl": (
        "searches run after these settings were chosen (the later searches of first_rung.md; their own ensemble rows "
        "held back trials stopped at ASHA's first rung, which no setting here does)"),
    "ensemble-settings-head-l2.jsonl": (
        "one search per task of the whole suite, run after the closed-form heads' penalty became `head_l2` = 0.3 "
        "(search_suite_seed0.md)"),
    "ensemble-settings-seeds.jsonl": (
        "one search per task of the suite outside Amazon-5000 at each of seeds 0, 1 and 2 "
        "(search_suite_seed0_30.md, search_suite_seed1.md; search_suite_seed2_16.md for SURF and the digits, "
        "search_suite_seed2_14.md for DeCAF and Amazon), and one per Amazon-5000 task at seeds 1 and 2 "
        "(search_suite_seed1_amazon5000.md, search_suite_seed2_amazon5000.md; its seed-0 searches, "
        "search_suite_seed0.md, were not kept), with the same training code (their commits differ in benchmarks, "
        "tests and pages)"),
}


@dataclass(frozen=True)
class Setting:
    """How an ensemble row is built from trials ranked by the shipped ranking proxy."""

    source_gap: float | None = AUTO_SOURCE_GAP[KIND]
    standard_errors: float = AUTO_SOURCE_GAP_STANDARD_ERRORS[KIND]  # the gap's widening on a small held-out source
    per_method: int | None = DEFAULT_ENSEMBLE_PER_METHOD
    k: int = DEFAULT_ENSEMBLE_K
    neighbours: int = SHIPPED_SMOOTHING.neighbours  # 0: no smoothing
    weight: float = SHIPPED_SMOOTHING.weight
    vote: bool = False  # each member's predicted class counts once, instead of its probabilities being averaged

    def combine(self, member_probs: list[torch.Tensor]) -> torch.Tensor:
        """The members' class scores ``[N, C]``: averaged probabilities, or vote shares with ties broken by them."""
        averaged = average_predictions(member_probs)
        if not self.vote:
            return averaged
        votes = torch.stack([torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).float() for p in member_probs])
        return votes.mean(0) + 1e-3 * averaged


SHIPPED = "as shipped"
SETTINGS: dict[str, Setting] = {
    SHIPPED: Setting(),
    "no source gap": Setting(source_gap=None),
    "source gap 2 points": Setting(source_gap=0.02),
    "source gap 10 points": Setting(source_gap=0.10),
    "gap widened to 1 standard error": Setting(standard_errors=1.0),
    "gap widened to 2 standard errors": Setting(standard_errors=2.0),
    # the gap in standard errors alone: it scales with every source's size, so every group tests it
    "gap of 1 standard error": Setting(source_gap=0.0, standard_errors=1.0),
    "gap of 2 standard errors": Setting(source_gap=0.0, standard_errors=2.0),
    "gap of 3 standard errors": Setting(source_gap=0.0, standard_errors=3.0),
    "single best trial": Setting(k=1),
    "top 3": Setting(k=3),
    "top 10": Setting(k=10),
    "1 per method": Setting(per_method=1),
    "no cap per method": Setting(per_method=None),
    "no smoothing": Setting(neighbours=0),
    "5 neighbours": Setting(neighbours=5),
    "20 neighbours": Setting(neighbours=20),
    "weight 0.3": Setting(weight=0.3),
    "weight 0.7": Setting(weight=0.7),
    "majority vote": Setting(vote=True),
}


def measure_run(run: str) -> dict:
    """The search in run directory ``run``, re-ranked by the shipped ranking: its facts and, per setting, the
    target accuracy (%) of its ensemble."""
    ranked = read_ranked_run(run)
    neighbours = nearest_neighbours(ranked.target_features, max(s.neighbours for s in SETTINGS.values()))
    accuracy = {}
    for name, setting in SETTINGS.items():
        gap = widened_source_gap(setting.source_gap, setting.standard_errors, ranked.facts["source_val"])
        members = ranked.members(RANKING, gap, setting.per_method, setting.k)
        scores = setting.combine([ranked.probs[m["trial_id"]] for m in members])
        if setting.neighbours:
            scores = mix_with_neighbours(scores, neighbours[:, :setting.neighbours], setting.weight)
        accuracy[name] = 100 * oracle_accuracy(scores, ranked.labels)
    return {**ranked.facts, "accuracy": accuracy}


def collect(runs: list[str], path: str = ROWS) -> None:
    """Measure the run directories ``runs`` into ``path``, replacing the rows of the same task and seed (of one
    search given twice, the later)."""
    merge_searches(path, [measure_run(run) for run in runs])


def measured_settings(rows: list[dict]) -> list[str]:
    """The settings of :data:`SETTINGS` that every row measured (rows re-ranked before a setting existed lack it)."""
    return [name for name in SETTINGS if all(name in row["accuracy"] for row in rows)]


def losses(rows: list[dict]) -> pd.DataFrame:
    """Mean loss (points below each search's best trial) per group (rows) and setting (columns)."""
    names = measured_settings(rows)
    frame = pd.DataFrame([{"group": row["group"], "setting": name, "loss": row["best"] - row["accuracy"][name]}
                          for row in rows for name in names])
    return frame.pivot_table(index="group", columns="setting", values="loss", aggfunc="mean")[names]


def differs(name: str) -> str:
    """What the setting ``name`` changes from the shipped one."""
    setting, shipped = SETTINGS[name], SETTINGS[SHIPPED]
    changed = ["majority vote" if field == "vote" else f"{field} {'none' if value is None else value}"
               for field in ("source_gap", "standard_errors", "per_method", "k", "neighbours", "weight", "vote")
               for value in [getattr(setting, field)] if value != getattr(shipped, field)]
    return ", ".join(changed) or "-"


def seeds_section(rows: list[dict], names: list[str]) -> str:
    """The loss per group of the settings ``names`` at each seed apart, where the rows hold several seeds: a default
    should hold on each, not on their mean only."""
    seeds = sorted({row["seed"] for row in rows})
    if len(seeds) < 2:
        return ""
    per_seed = {seed: losses([row for row in rows if row["seed"] == seed]) for seed in seeds}
    groups = sorted({group for frame in per_seed.values() for group in frame.index})
    # A group searched at some seeds only is shown where it was, and left out of every seed's mean, which then
    # compares the seeds on the same groups.
    shared = [group for group in groups if all(group in frame.index for frame in per_seed.values())]
    text = "\n\n## The source gap at each seed (loss per group, points)\n\n"
    return text + md_table([[name, seed, *[per_seed[seed].loc[g, name] if g in per_seed[seed].index else "-"
                                           for g in groups], per_seed[seed].loc[shared, name].mean()]
                            for name in names for seed in seeds],
                           ["setting", "seed", *groups,
                            "mean over groups" if shared == groups else "mean over groups at every seed"])


def page(rows: list[dict], path: str = ROWS, name: str = "ensemble_settings.md") -> str:
    per_group = losses(rows)
    held = held_out_choices(per_group, SHIPPED)
    counts = pd.Series([row["group"] for row in rows]).value_counts()
    shipped = SETTINGS[SHIPPED]
    committed = os.path.abspath(path) == ROWS  # the searches checkpoint_proxy.md re-ranks, or another set
    own = [] if committed else ["--rows", os.path.relpath(path, os.path.dirname(os.path.dirname(RESULTS))),
                                "--page", name]
    text = header("The ensemble's settings under the shipped ranking",
                  " ".join(["python -m benchmarks.ensemble_settings", *own]))
    text += (f"- evidence: {len(rows)} whole default searches of {len({row['task'] for row in rows})} feature-table "
             f"tasks (seeds {', '.join(map(str, sorted({row['seed'] for row in rows})))}), rows in "
             f"`benchmarks/results/raw/{os.path.basename(path)}`, re-ranked from their run directories with "
             f"`{' '.join(['python -m benchmarks.ensemble_settings --runs DIR/*', *own])}`\n\n"
             "Each search is `adaptune search --task T --seed S` at its defaults (`python -m benchmarks.skeleton "
             "--tasks ... --seed S --out DIR`), "
             + SEARCH_SETS.get(os.path.basename(path), "searches given with --runs")
             + ": Tune's sampler, ASHA "
             "and each trial's kept epoch follow `im`, so the finished trials are the same whichever way they are "
             f"ranked. Here they are ranked by `{RANKING}` at their kept epochs, as `proxy: auto` ranks a feature "
             f"table, and the ensemble row is rebuilt under each setting. Shipped: the top {shipped.k} trials within "
             f"{100 * shipped.source_gap:g} points of the best held-out source accuracy"
             + (f" (widened to {shipped.standard_errors:g} standard errors of that accuracy, 1 / (2 sqrt(n)) each on "
                "n held-out source samples)" if shipped.standard_errors else "")
             + f", at most {shipped.per_method} "
             f"of one method, probabilities averaged, {SHIPPED_SMOOTHING.describe()}. Every other setting changes "
             "one of these. Loss: points of target accuracy below the search's best trial (oracle labels, "
             "reporting only), the mean over each group's searches.\n\n## Loss per group (points)\n\n")
    text += md_table([[name, differs(name), *per_group[name], per_group[name].mean(),
                       sum(row["accuracy"][name] >= row["baseline"] for row in rows)] for name in per_group.columns],
                     ["setting", "changes", *[f"{g} ({counts[g]})" for g in per_group.index], "mean over groups",
                      f"at or above max(LR, 1-NN) (of {len(rows)})"])
    text += seeds_section(rows, [name for name in per_group.columns if name == SHIPPED or "gap" in name])
    text += "\n\n## Leave one group out\n\n"
    text += md_table([[group, held[group], per_group.loc[group, held[group]], per_group.loc[group, SHIPPED]]
                      for group in per_group.index],
                     ["held-out group", "setting of least loss on the other groups", "its loss there",
                      "shipped's loss there"])
    held_mean = held_out_score(per_group, held)
    shipped_mean = per_group[SHIPPED].mean()
    below = [row for row in rows if row["accuracy"][SHIPPED] < row["baseline"]]
    text += (f"\n\nMean loss held out: **{held_mean:.2f}** points, against **{shipped_mean:.2f}** for the shipped "
             "setting on every group.\n\n## What follows\n\n")
    if held_mean <= shipped_mean - MIN_GAIN:  # the least gain a default change asks
        text += (f"Chosen on the other groups, the settings lose {shipped_mean - held_mean:.2f} points less than the "
                 "shipped one on the held-out groups: the ensemble's defaults should follow them.\n")
    else:
        text += (f"No setting chosen on the other groups beats the shipped one on the held-out groups by "
                 f"{MIN_GAIN:g} points, so the ensemble keeps its settings under the new ranking: the source gap, "
                 "the cap per method and the smoothing derived under `im` hold. ")
        if per_group["majority vote"].mean() > shipped_mean:
            text += (f"A majority vote of the members loses more than their averaged probabilities "
                     f"({per_group['majority vote'].mean():.2f} against {shipped_mean:.2f} points over the groups).")
        text = text.rstrip() + "\n"
    if below:
        text += ("\nBelow the better source-only baseline as shipped: " + "; ".join(
            f"{row['task']} (seed {row['seed']}) {row['accuracy'][SHIPPED]:.1f} < {row['baseline']:.1f}, the best "
            f"of these settings there {max(row['accuracy'].values()):.1f} (by the oracle, which no search reads)"
            for row in below) + ".\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", nargs="*", default=[], help="run directories of whole default searches whose "
                        f"trials kept their epochs by im, to re-rank into {os.path.relpath(ROWS)} first")
    parser.add_argument("--rows", default=ROWS, help="the JSON-lines file of re-ranked searches to use")
    parser.add_argument("--page", default="ensemble_settings.md", help="the result page to write")
    args = parser.parse_args()
    if args.runs:
        collect(args.runs, args.rows)
    print(write(args.page, page(read_jsonl(args.rows), args.rows, args.page)))


if __name__ == "__main__":
    main()
