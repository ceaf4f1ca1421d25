"""Which epoch of a trial to keep, and which trials to recommend: one proxy for both, or one for each.

A search ranks trials by its proxy at each trial's best epoch by the same proxy. This page measures, on the pools of
one trial per method that `benchmarks.smoothing` also reads, the selection a search ships (the top 5 within the
features' default source gap, averaged, smoothed by `smoothing: auto`) under three rules: trials ranked and epochs
chosen by `im`; both by `neighbour_agreement`; and trials ranked by `neighbour_agreement` at the epoch `im` chose.
Regret is against the best (trial, epoch) point of the pool by the oracle, the same reference for every rule; the
oracle labels report and choose nothing. The rule of least mean regret over the other groups is scored on each group
held out. The page then reads the committed whole default searches of each rule (benchmarks.skeleton pages, several
seeds), and re-ranks whole searches whose sampler, early stopping and epochs followed `im`: the split rule ranks the
trials of such a search by `neighbour_agreement` at their kept epochs, so each search yields both rules' recommendations
from the same trials. From both it derives the ranking rule that ``proxy: auto`` ships for feature tables
(proxy_auto.json's ``ranking_rule``).

  python -m benchmarks.checkpoint_proxy benchmarks/results/raw/smoothing-surf.jsonl.gz ...   # checkpoint_proxy.md
  python -m benchmarks.checkpoint_proxy POOLS... --runs RUN_DIR ...   # first re-ranks the run directories of
      `python -m benchmarks.skeleton --tasks ... --proxy im --seed S --out DIR` into raw/checkpoint-proxy-reranked.jsonl
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import pandas as pd
import torch

from adaptune.algorithms.data import load_task
from adaptune.algorithms.domains import with_fewshot
from adaptune.algorithms.ensemble import AUTO_SMOOTHING, smooth_by_neighbours
from adaptune.algorithms.proxies import AUTO_PROXY, AUTO_SOURCE_GAP, oracle_accuracy
from adaptune.reports.leaderboard import FINISHED, selection_order
from adaptune.reports.run_dir import RunDir
from adaptune.search.config import DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD
from adaptune.search.trial import resolve_task
from benchmarks._common import (
    MIN_GAIN,
    RESULTS,
    group_of,
    header,
    held_out_choices,
    held_out_score,
    kept_metric,
    kept_predictions,
    md_table,
    merge_searches,
    page_table,
    read_jsonl,
    rerun_command,
    update_auto_rule,
    write,
)
from benchmarks.baselines import saved_baseline
from benchmarks.search_efficiency import Smoother, capped, ensemble_accuracy, smoother
from benchmarks.smoothing import KIND, pool_entries

# name -> (the proxy that ranks trials, the proxy that chooses each trial's epoch)
RULES = {
    "im": ("im", "im"),
    "neighbour_agreement": ("neighbour_agreement", "neighbour_agreement"),
    "neighbour_agreement at im's epoch": ("neighbour_agreement", "im"),
}


def best_points(jsonl: str) -> dict[str, float]:
    """Per task, the oracle accuracy (%) of the pool's best (trial, epoch) point."""
    best: dict[str, float] = {}
    for row in read_jsonl(jsonl):
        if "epoch" in row and "target_acc" in row:
            best[row["task"]] = max(best.get(row["task"], 0.0), 100 * row["target_acc"])
    return best


SHIPPED, BARE = "as shipped", "before the gap and the smoothing"
IM, ALONE, SPLIT = RULES
# The split rule as it first ran: Tune's sampler and ASHA followed the ranking proxy read at the checkpoint proxy's best
# epoch so far. They now follow the checkpoint proxy, and the ranking proxy orders the finished trials only.
SAMPLED = f"{SPLIT}, sampled by it"
# Whole default searches, per rule: (seed, page) of benchmarks.skeleton --tasks ... --seed S plus the rule's flags.
# search_suite.md and search_suite_seed1/2.md ran without flags when `auto` ranked by im and kept its epochs;
# search_suite_digits.md and search_suite_digits_seed1.md ran without flags once `auto` ranked by the split rule,
# sampled by it; search_suite_ranked_by_na.md and search_suite_digits_ranked_by_na.md without flags at today's rule.
SEARCH_PAGES = {
    IM: [(0, "search_suite.md"), (1, "search_suite_seed1.md"), (2, "search_suite_seed2.md"),
         (0, "search_suite_digits_im.md"), (1, "search_suite_digits_im_seed1.md")],
    ALONE: [(0, "search_suite_neighbour_agreement.md")],
    SAMPLED: [(0, "search_suite_neighbour_agreement_at_im.md"), (1, "search_suite_neighbour_agreement_at_im_seed1.md"),
            (2, "search_suite_neighbour_agreement_at_im_seed2.md"), (0, "search_suite_digits.md"),
            (1, "search_suite_digits_seed1.md")],
    SPLIT: [(0, "search_suite_ranked_by_na.md"), (0, "search_suite_digits_ranked_by_na.md")],
}
# Whole default searches by im (run directories of benchmarks.skeleton), each re-ranked by every rule that keeps im's
# epochs: one row per (run, rule), collected by --runs.
RERANKED = os.path.join(RESULTS, "raw", "checkpoint-proxy-reranked.jsonl")


def search_flags(rule: str) -> str:
    """The flags of ``adaptune search`` that select by ``rule``."""
    proxy, checkpoint = RULES[SPLIT if rule == SAMPLED else rule]
    return f"--proxy {proxy}" + ("" if checkpoint == proxy else f" --checkpoint-proxy {checkpoint}")


def flags_words(rule: str) -> str:
    """``rule``'s flags in Markdown, and for :data:`SAMPLED` what the sampler followed then."""
    return f"`{search_flags(rule)}`" + (" while the sampler and ASHA followed the ranking" if rule == SAMPLED else "")


def measure(pools: list[str]) -> pd.DataFrame:
    """One row per (task, rule, selection): the target accuracy (%) of the selection as a search ships it
    (:data:`SHIPPED`) and of the plain top-5 average of every trial (:data:`BARE`), the pool's best point and the
    no-adaptation baseline."""
    rows = []
    for jsonl in pools:
        best = best_points(jsonl)
        for name, (proxy, checkpoint) in RULES.items():
            for selection, gap in ((SHIPPED, AUTO_SOURCE_GAP[KIND]), (BARE, None)):
                for entry in pool_entries(jsonl, proxy, checkpoint, gap):
                    task = with_fewshot(load_task(entry["task"], preprocess=entry["preprocess"]), entry["fewshot_k"])
                    probs = entry["probs"] if selection == BARE else smooth_by_neighbours(
                        entry["probs"], task.target_val.x, AUTO_SMOOTHING[KIND])
                    accuracy = 100 * oracle_accuracy(probs, task.target_oracle)
                    top = best[entry["task"]]
                    rows.append({"task": entry["task"], "group": group_of(entry["task"]), "rule": name,
                                 "selection": selection, "accuracy": accuracy, "best": top, "regret": top - accuracy,
                                 "baseline": saved_baseline(entry["task"], entry["preprocess"])["best"]})
    return pd.DataFrame(rows)


def searches(pages: dict[str, list[tuple[int, str]]] = SEARCH_PAGES) -> pd.DataFrame:
    """One row per committed whole search of ``pages``: rule, seed, task, group, the target accuracy (%) of its
    recommendation and of its best trial (oracle, reporting only), and the better source-only baseline."""
    rows = []
    for rule, seeded in pages.items():
        for seed, name in seeded:
            if os.path.exists(os.path.join(RESULTS, name)):
                rows += [{"rule": rule, "seed": seed, "task": row["task"], "group": group_of(row["task"]),
                          "recommended": float(row["recommended"]), "best": float(row["best trial (oracle)"]),
                          "baseline": max(float(row["LR"]), float(row["1-NN"]))} for row in page_table(name)]
    return pd.DataFrame(rows, columns=["rule", "seed", "task", "group", "recommended", "best", "baseline"])


def paired_gain(runs: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Per (task, seed) that both ``rule`` and im searched: the points ``rule`` recommended above im, with the
    task's group."""
    wide = runs.pivot_table(index=["task", "seed", "group"], columns="rule", values="recommended")
    if rule not in wide or IM not in wide:
        return pd.DataFrame(columns=["task", "seed", "group", "gain"])
    return (wide[rule] - wide[IM]).dropna().rename("gain").reset_index()


def search_verdict(runs: pd.DataFrame, rule: str) -> tuple[pd.Series, dict[str, float]]:
    """``rule``'s mean gain over im per group on the paired searches (empty without any; its mean weighs each group
    as one), and with each group left out, its mean gain on the other groups."""
    gain = paired_gain(runs, rule)
    per_group = gain.groupby("group")["gain"].mean().astype(float)
    return per_group, {group: float(per_group.drop(group).mean()) if len(per_group) > 1 else float("nan")
                       for group in per_group.index}


def comparison(runs: pd.DataFrame, rules: list[str]) -> str:
    """Per (task, seed) what each of ``rules`` recommended, each rule's mean over its searches, and each rule's gain
    over im on the searches both ran, per group and with each group left out."""
    wide = runs.pivot_table(index=["task", "seed"], columns="rule", values="recommended")
    firsts = runs.drop_duplicates(["task"]).set_index("task")
    text = md_table([[task, seed, *[wide.loc[(task, seed), rule] if rule in wide and wide.loc[(task, seed), rule]
                                    == wide.loc[(task, seed), rule] else "-" for rule in rules],
                      firsts.loc[task, "baseline"]] for task, seed in wide.index],
                    ["task", "seed", *rules, "max(LR, 1-NN)"])
    text += "\n\n" + md_table(
        [[rule, len(mine), mine["recommended"].mean(), (mine["best"] - mine["recommended"]).mean(),
          f"{(mine['recommended'] >= mine['baseline']).sum()} of {len(mine)}"]
         for rule in rules for mine in [runs[runs["rule"] == rule]]],
        ["rule", "searches", "mean recommended (%)", "mean loss against the search's best trial (points)",
         "at or above max(LR, 1-NN)"])
    for rule in rules:
        gain = paired_gain(runs, rule)
        if rule == IM or gain.empty:
            continue
        per_group, held = search_verdict(runs, rule)
        counts = gain["group"].value_counts()
        text += (f"\n\n`{rule}` against `im` on the {len(gain)} searches both ran (same task and seed): "
                 f"{(gain['gain'] > 0).sum()} higher, {(gain['gain'] < 0).sum()} lower; mean gain per group, each "
                 "group weighing as one, and the gain on the other groups with each one left out:\n\n")
        text += md_table([[group, int(counts[group]), per_group[group], held[group]] for group in per_group.index]
                         + [["mean", len(gain), per_group.mean(), "-"]],
                         ["group", "searches", "gain (points)", "gain on the other groups"])
    return text


def searches_section(runs: pd.DataFrame) -> str:
    """What each rule recommended on the committed whole searches, paired by task and seed."""
    if runs.empty:
        return ""
    rules = [rule for rule in SEARCH_PAGES if rule in set(runs["rule"])]
    return ("\n\n## Whole default searches\n\n`adaptune search --task T --seed S` with every other setting at its "
            "default, per rule: " + "; ".join(
                f"{flags_words(rule)} (" + ", ".join(f"seed {seed}: benchmarks/results/{name}" for seed, name in
                                                     SEARCH_PAGES[rule]) + ")" for rule in rules)
            + ". Each page's header holds its command and commit: search_suite.md and search_suite_seed1/2.md ran "
            "without flags when `auto` ranked by im, search_suite_digits*.md without flags when it ranked by "
            "`neighbour_agreement` at im's epochs and sampled by it, search_suite*_ranked_by_na.md without flags "
            "at today's rule (ranked by `neighbour_agreement` at im's epochs, sampled by im). Target accuracy (%) of "
            "the recommendation; TPE "
            "spends each search differently, so the best trials differ too.\n\n") + comparison(runs, rules)


@dataclass
class RankedRun:
    """A whole search whose trials kept their epochs by im, read back from its run directory: its finished trials
    that kept target predictions (leaderboard rows, each proxy read at the kept epoch), those predictions, and what
    a re-ranking needs to rebuild its ensemble row as the search did."""

    config: dict
    summary: dict
    labels: torch.Tensor
    target_features: torch.Tensor  # the unlabeled target rows a smoothing finds neighbours in
    trials: list[dict]
    probs: dict[str, torch.Tensor]
    facts: dict  # seed, task, group, ranked_by, best trial, baseline, recorded ensemble row (%)

    def members(self, ranking: str, source_gap: float | None, per_method: int | None, k: int) -> list[dict]:
        """The trials an ensemble ranked by the proxy ``ranking`` takes: admitted at ``source_gap``, at most
        ``per_method`` of one method, the first ``k``."""
        admitted, _ = selection_order([{**r, "score": r[f"proxy_{ranking}"]} for r in self.trials], source_gap)
        return capped(admitted, per_method)[:k]

    def recommendation(self, ranking: str, smooth: Smoother | None) -> tuple[float, list[dict]]:
        """Target accuracy (%) and members of the ensemble the run's own settings (source gap, cap per method,
        size) build from its trials ranked by ``ranking``, smoothed by ``smooth``."""
        members = self.members(ranking, self.summary.get("source_gap"),
                               self.config.get("ensemble_per_method", DEFAULT_ENSEMBLE_PER_METHOD),
                               self.config.get("ensemble_k", DEFAULT_ENSEMBLE_K))
        return 100 * ensemble_accuracy([self.probs[m["trial_id"]] for m in members], self.labels, smooth), members


def read_ranked_run(run: str) -> RankedRun:
    """:class:`RankedRun` of the run directory ``run``; a run whose trials kept their epochs by another proxy than
    im is refused, as no rule here can re-rank it."""
    run_dir = RunDir(run)
    (config, _), summary = run_dir.read_config(), run_dir.read_summary()
    metric = kept_metric(summary)
    if metric != "proxy_im":
        raise ValueError(f"{run}: its trials kept their epochs by {metric}, not by im")
    board = run_dir.read_table(RunDir.LEADERBOARD)
    task = resolve_task(config["task"], config.get("source"), config.get("target"), config.get("fewshot_k", 0),
                        config.get("seed", 0), summary["preprocess"])
    probs = {r["trial_id"]: kept_predictions(run, r["trial_id"], metric)
             for r in board.to_dict("records") if r["status"] in FINISHED}
    probs = {trial: p.float() for trial, p in probs.items() if p is not None}
    trials = [r for r in board.to_dict("records") if r["trial_id"] in probs]
    facts = {"seed": config.get("seed", 0), "task": config["task"], "group": group_of(config["task"]),
             "ranked_by": summary["proxy"],  # the proxy the run itself ranked by, whose row must match ``recorded``
             "best": 100 * max(r["target_acc"] for r in trials),
             "source_val": len(task.source_val),  # held-out source samples, which a source gap can be widened by
             "baseline": saved_baseline(config["task"], summary["preprocess"])["best"],
             "recorded": 100 * board.loc[board["status"] == "ensemble", "target_acc"].item()}
    return RankedRun(config, summary, task.target_oracle, task.target_val.x, trials, probs, facts)


def rerank_run(run: str) -> list[dict]:
    """The recommendation of the search in the run directory ``run`` under each rule that keeps im's epochs, one row
    per rule: its trials, sampled, stopped and kept by im, ranked by the rule's proxy at their kept epochs (the
    leaderboard's row), then admitted, capped per method, averaged and smoothed as the run's own ensemble row was."""
    ranked = read_ranked_run(run)
    smooth = smoother(ranked.summary, ranked.target_features)
    rows = []
    for rule in (IM, SPLIT):
        accuracy, members = ranked.recommendation(RULES[rule][0], smooth)
        rows.append({"rule": rule, **ranked.facts, "recommended": accuracy,
                     "members": ",".join(m["method"] for m in members)})
    return rows


def collect_reranked(runs: list[str], path: str = RERANKED) -> None:
    """Re-rank the run directories ``runs`` into ``path``, replacing the rows of the same task and seed."""
    merge_searches(path, [row for run in runs for row in rerank_run(run)])


def reranked(path: str = RERANKED) -> pd.DataFrame:
    """The re-ranked searches (:func:`collect_reranked`), as :func:`searches` rows."""
    columns = ["rule", "seed", "task", "group", "recommended", "best", "baseline"]
    return pd.DataFrame(read_jsonl(path) if os.path.exists(path) else [],
                        columns=[*columns, "ranked_by", "recorded", "members"])


def reranked_section(runs: pd.DataFrame) -> str:
    """What im and the split rule recommend from the same whole searches."""
    if runs.empty:
        return ""
    own = runs[runs["rule"].map(lambda rule: RULES[rule][0]) == runs["ranked_by"]]
    same = int(((own["recommended"] - own["recorded"]).abs() < 0.05).sum())
    return ("\n\n## Whole default searches, re-ranked\n\nWith `--proxy neighbour_agreement --checkpoint-proxy im` "
            "Tune's sampler and ASHA follow `im`, and each trial keeps its best epoch by `im`: the search runs the "
            "trials a search by `im` runs, and only the ranking of the finished trials differs. So each whole default "
            "search whose trials followed `im` (`python -m benchmarks.skeleton --tasks ... --seed S --out DIR`, one "
            "task at a time, ranked by `im` or by `neighbour_agreement` at its epochs) is re-ranked by both from its "
            f"run directory (`--runs DIR/*`; rows in `benchmarks/results/raw/{os.path.basename(RERANKED)}`): the "
            "same trials, epochs, source gap, cap per method, ensemble size and smoothing as its own ensemble row. "
            f"Re-ranked by the proxy it ranked by itself, {same} of {len(own)} reproduce the ensemble row "
            "the run recorded. Target accuracy (%) of the recommendation:\n\n") + comparison(runs, [IM, SPLIT])


def regret_per_group(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.pivot_table(index="group", columns="rule", values="regret", aggfunc="mean")[list(RULES)]


def page(everything: pd.DataFrame, pools: list[str], runs: pd.DataFrame | None = None,
         reranked_runs: pd.DataFrame | None = None) -> str:
    """The page, from :func:`measure`'s rows, the whole searches ``runs`` (default: the committed
    :data:`SEARCH_PAGES`) and the re-ranked ones ``reranked_runs`` (default: the committed :data:`RERANKED`)."""
    frame, bare = everything[everything["selection"] == SHIPPED], everything[everything["selection"] == BARE]
    per_group = regret_per_group(frame)
    held = held_out_choices(per_group)
    text = header("One proxy for the epoch, another for the ranking", rerun_command())
    text += (f"\n- pools: {', '.join(f'`{p}`' for p in pools)} (one trial per method at its defaults, every epoch "
             "a candidate checkpoint; commands in each file's .meta.json)\n\n"
             "The selection a search ships on a feature table: the top 5 trials by the ranking proxy among those "
             f"within {100 * AUTO_SOURCE_GAP[KIND]:g} points of the best held-out source accuracy, each at its "
             f"epoch chosen by the checkpoint proxy, predictions averaged and {AUTO_SMOOTHING[KIND].describe()}. "
             "Regret: points of target accuracy below the pool's best (trial, epoch) point by the oracle "
             "(reporting only).\n\n## Regret per benchmark group (points)\n\n")
    text += md_table([[rule, *per_group[rule], per_group[rule].mean()] for rule in RULES],
                     ["rule", *per_group.index, "mean over groups"])
    before = regret_per_group(bare)
    text += ("\n\n" + BARE.capitalize() + ": the plain average of the top 5 of every trial, the selection "
             "benchmarks/results/proxies.md derived the proxy rule on before it read the selection as shipped:\n\n")
    text += md_table([[rule, *before[rule], before[rule].mean()] for rule in RULES],
                     ["rule", *before.index, "mean over groups"])
    text += "\n\n## Leave one group out (as shipped)\n\n"
    text += md_table([[group, held[group], per_group.loc[group, held[group]]] for group in per_group.index],
                     ["held-out group", "rule of least regret on the other groups", "its regret there"])
    held_mean = held_out_score(per_group, held)
    text += f"\n\nMean regret held out: **{held_mean:.2f}** points.\n\n## Against no adaptation\n\n"
    above = frame.assign(ok=frame["accuracy"] >= frame["baseline"]).groupby("rule")["ok"].sum()
    tasks = frame["task"].nunique()
    text += md_table([[rule, f"{above[rule]} of {tasks}",
                       ", ".join(f"{r.task} {r.accuracy:.1f} < {r.baseline:.1f}" for r in
                                 frame[(frame.rule == rule) & (frame.accuracy < frame.baseline)].itertuples()) or "-"]
                      for rule in RULES], ["rule", "tasks at or above max(LR, 1-NN)", "below"])
    text += "\n\n## Per task (target accuracy, %)\n\n"
    wide = frame.pivot_table(index="task", columns="rule", values="accuracy")[list(RULES)]
    firsts = frame.drop_duplicates("task").set_index("task")
    text += md_table([[task, firsts.loc[task, "best"], *wide.loc[task], firsts.loc[task, "baseline"]]
                      for task in wide.index], ["task", "best point", *RULES, "max(LR, 1-NN)"])
    runs = searches() if runs is None else runs
    reranked_runs = reranked() if reranked_runs is None else reranked_runs
    text += searches_section(runs) + reranked_section(reranked_runs)
    by_mean = per_group.mean()
    text += ("\n\n## What follows\n\n"
             f"Mean regret over the groups, as shipped: {'; '.join(f'{rule} {by_mean[rule]:.2f}' for rule in RULES)}"
             f"; {BARE}: {'; '.join(f'{rule} {before[rule].mean():.2f}' for rule in RULES)}. ")
    if before[ALONE].mean() < before[IM].mean() and per_group[ALONE].mean() > per_group[IM].mean():
        text += ("The order of `im` and `neighbour_agreement` turns over between the two: the selection before the "
                 "gap and the smoothing would prefer `neighbour_agreement`, while the selection a search ships "
                 "prefers `im`. The rule belongs to what ships, which is what proxies.md derives the default on. ")
    own = "worse" if by_mean[ALONE] > by_mean[IM] else "better"
    if by_mean[SPLIT] < by_mean[IM]:
        text += (f"Ranked at the epochs `im` keeps, `neighbour_agreement` selects better than `im` on the pools "
                 f"({by_mean[SPLIT]:.2f} against {by_mean[IM]:.2f}); as its own checkpoint rule it does {own} "
                 f"({by_mean[ALONE]:.2f}). ")
    else:
        text += "Neither use of `neighbour_agreement` selects better than `im` alone on the pools. "
    for rule, searched in ((ALONE, runs), (SAMPLED, runs), (SPLIT, runs), (SPLIT, reranked_runs)):
        per_rule_group, _ = search_verdict(searched, rule)
        mean = per_rule_group.mean()
        if len(per_rule_group):
            seeds = searched[searched["rule"] == rule]["seed"].nunique()
            text += (f"On the {'re-ranked ' if searched is reranked_runs else ''}whole searches "
                     f"{flags_words(rule)} recommended {abs(mean):.2f} points "
                     f"{'more' if mean > 0 else 'less'} than `im` (the mean over groups of each group's mean, "
                     f"{seeds} seed{'s' if seeds > 1 else ''}). ")
    adopted = adopted_rule(per_group, reranked_runs)
    if adopted == SPLIT:
        text += (f"The pools with every group held out and the re-ranked whole searches over several seeds agree (a "
                 f"gain of at least {MIN_GAIN:g} points, and a gain with each group left out), so `proxy: auto` ranks "
                 "the finished trials of a feature table by `neighbour_agreement` at the epochs `im` keeps, while "
                 "Tune's sampler and ASHA follow `im` (`benchmarks/results/proxy_auto.json` "
                 "holds the rule as `ranking_rule`, and a test keeps `AUTO_RANKING_PROXY` equal to it); image "
                 "folders keep one proxy for both, as `neighbour_agreement` needs a feature table. A search that "
                 "wants the former rule says `--proxy im`.\n")
    else:
        per_split_group, _ = search_verdict(reranked_runs, SPLIT)
        losing = per_split_group[per_split_group < 0]
        text += ("The pools and the whole searches over several seeds do not agree on a better rule"
                 + (" (the searches of " + ", ".join(f"{group} ({value:.1f} points)" for group, value in
                                                     losing.items()) + " lose with the split rule)"
                    if len(losing) else "")
                 + f", so `im` ranks and keeps epochs by default; `{search_flags(SPLIT)}` runs the split rule.\n")
    return text


def adopted_rule(per_group: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The rule ``proxy: auto`` ranks feature tables by: :data:`SPLIT` where the pools prefer it with every group held
    out and the whole searches, over more than one seed, gain :data:`MIN_GAIN` points on it, and gain with each group
    left out; otherwise :data:`IM`."""
    held = held_out_choices(per_group)
    per_split_group, held_gain = search_verdict(runs, SPLIT)
    seeds = runs[runs["rule"] == SPLIT]["seed"].nunique() if not runs.empty else 0
    if (all(rule == SPLIT for rule in held.values()) and seeds > 1 and per_split_group.mean() >= MIN_GAIN
            and all(gain > 0 for gain in held_gain.values())):
        return SPLIT
    return IM


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pools", nargs="+", help="methods_bench --out files with --dump-predictions of im and "
                                                 "neighbour_agreement")
    parser.add_argument("--runs", nargs="*", default=[], help="run directories of whole default searches by im to "
                        f"re-rank into {os.path.relpath(RERANKED)} first")
    args = parser.parse_args()
    if args.runs:
        collect_reranked(args.runs)
    everything, reranked_runs = measure(args.pools), reranked()
    print(write("checkpoint_proxy.md", page(everything, args.pools, searches(), reranked_runs)))
    adopted = adopted_rule(regret_per_group(everything[everything["selection"] == SHIPPED]), reranked_runs)
    update_auto_rule(ranking_rule={KIND: None if adopted == IM else RULES[adopted][0],
                                   **{kind: None for kind in AUTO_PROXY if kind != KIND}},
                     ranking_rule_criterion=f"with proxy auto, the proxy that ranks trials at the epochs the rule's "
                                            f"proxy keeps (null: the rule's proxy): neighbour_agreement where the "
                                            f"pools prefer it with every group held out and whole default searches "
                                            f"over several seeds, re-ranked, gain at least {MIN_GAIN:g} points per "
                                            f"group with it, and gain with each group left out",
                     ranking_rule_source="benchmarks/results/checkpoint_proxy.md")


if __name__ == "__main__":
    main()
