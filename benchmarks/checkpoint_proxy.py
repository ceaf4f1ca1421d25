"""Which epoch of a trial to keep, and which trials to recommend: one proxy for both, or one for each.

A search ranks trials by its proxy at each trial's best epoch by the same proxy. This page measures, on the pools of
one trial per method that `benchmarks.smoothing` also reads, the selection a search ships (the top 5 within the
features' default source gap, averaged, smoothed by `smoothing: auto`) under three rules: trials ranked and epochs
chosen by `im`; both by `neighbour_agreement`; and trials ranked by `neighbour_agreement` at the epoch `im` chose.
Regret is against the best (trial, epoch) point of the pool by the oracle, the same reference for every rule; the
oracle labels report and choose nothing. The rule of least mean regret over the other groups is scored on each group
held out.

  python -m benchmarks.checkpoint_proxy benchmarks/results/raw/smoothing-surf.jsonl.gz ...   # checkpoint_proxy.md
"""

from __future__ import annotations

import argparse
import os

import pandas as pd

from adaptune.algorithms.data import load_task
from adaptune.algorithms.domains import with_fewshot
from adaptune.algorithms.ensemble import AUTO_SMOOTHING, smooth_by_neighbours
from adaptune.algorithms.proxies import AUTO_PROXY, AUTO_SOURCE_GAP, oracle_accuracy
from benchmarks._common import RESULTS, group_of, header, md_table, page_table, read_jsonl, rerun_command, write
from benchmarks.baselines import saved_baseline
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
# Whole default searches on the same tasks, one page per rule (benchmarks.skeleton --tasks ... plus search_flags).
SEARCH_PAGES = {"im": "search_suite.md", "neighbour_agreement": "search_suite_neighbour_agreement.md",
                "neighbour_agreement at im's epoch": "search_suite_neighbour_agreement_at_im.md"}


def search_flags(rule: str) -> str:
    """The flags of ``adaptune search`` that select by ``rule`` on a feature table (none for the default)."""
    proxy, checkpoint = RULES[rule]
    flags = ([] if proxy == AUTO_PROXY[KIND] else [f"--proxy {proxy}"]) + \
        ([] if checkpoint == proxy else [f"--checkpoint-proxy {checkpoint}"])
    return " ".join(flags)


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


def searches_section() -> tuple[str, dict[str, float]]:
    """The default searches of :data:`SEARCH_PAGES` that were run side by side: what each rule recommended, per task;
    and each rule's mean recommended accuracy (%)."""
    pages = {rule: {row["task"]: row for row in page_table(name)} for rule, name in SEARCH_PAGES.items()
             if os.path.exists(os.path.join(RESULTS, name))}
    tasks = [task for task in pages["im"] if all(task in rows for rows in pages.values())]
    if not tasks:
        return "", {}
    rows, totals = [], {proxy: [] for proxy in pages}
    for task in tasks:
        cells = []
        for proxy, by_task in pages.items():
            row = by_task[task]
            recommended, best = float(row["recommended"]), float(row["best trial (oracle)"])
            totals[proxy].append((recommended, best - recommended, row["beats both"] == "yes"))
            cells += [recommended, best]
        rows.append([task, *cells, max(float(pages["im"][task]["LR"]), float(pages["im"][task]["1-NN"]))])
    text = ("\n\n## Whole default searches\n\n`adaptune search --task T` with every default, and again with "
            "each rule's flags, on the same tasks: "
            + ", ".join(f"benchmarks/results/{SEARCH_PAGES[rule]} ({search_flags(rule) or 'the defaults'})"
                        for rule in pages)
            + ". Target accuracy (%) of the recommendation and of the search's best trial (oracle, reporting "
            "only); TPE spends each search differently, so the best trials differ too.\n\n")
    text += md_table(rows, ["task", *[f"{proxy}: {what}" for proxy in pages for what in ("recommended", "best trial")],
                            "max(LR, 1-NN)"])
    text += "\n\n" + "; ".join(
        f"`{proxy}`: mean recommended {sum(r for r, _, _ in t) / len(t):.1f}%, {sum(g for _, g, _ in t) / len(t):.2f} "
        f"points below the search's best trial, {sum(ok for _, _, ok in t)} of {len(t)} at or above both baselines"
        for proxy, t in totals.items()) + ".\n"
    return text, {proxy: sum(r for r, _, _ in t) / len(t) for proxy, t in totals.items()}


def held_out_rules(per_group: pd.DataFrame) -> dict[str, str]:
    """For each group (row of ``per_group``, rules as columns), the rule of least mean regret over the others."""
    return {group: per_group.drop(group).mean().idxmin() for group in per_group.index}


def regret_per_group(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.pivot_table(index="group", columns="rule", values="regret", aggfunc="mean")[list(RULES)]


def page(everything: pd.DataFrame, pools: list[str]) -> str:
    frame, bare = everything[everything["selection"] == SHIPPED], everything[everything["selection"] == BARE]
    per_group = regret_per_group(frame)
    held = held_out_rules(per_group)
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
    held_mean = sum(per_group.loc[g, held[g]] for g in per_group.index) / len(per_group)
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
    searches, recommended = searches_section()
    text += searches
    by_mean = per_group.mean()
    text += ("\n\n## What follows\n\n"
             f"Mean regret over the groups, as shipped: {'; '.join(f'{rule} {by_mean[rule]:.2f}' for rule in RULES)}"
             f"; {BARE}: {'; '.join(f'{rule} {before[rule].mean():.2f}' for rule in RULES)}. ")
    split, alone = list(RULES)[2], list(RULES)[1]
    if before[alone].mean() < before["im"].mean() and per_group[alone].mean() > per_group["im"].mean():
        text += ("The order of `im` and `neighbour_agreement` turns over between the two: the selection before the "
                 "gap and the smoothing would prefer `neighbour_agreement`, while the selection a search ships "
                 "prefers `im`. The rule belongs to what ships, which is what proxies.md derives the default on. ")
    for rule in (alone, split):
        if rule in recommended:
            gain = recommended[rule] - recommended["im"]
            pools_agree = (gain > 0) == (by_mean[rule] < by_mean["im"])
            text += (f"On the whole default searches `{search_flags(rule)}` recommended {abs(gain):.1f} points "
                     f"{'more' if gain > 0 else 'less'} than the defaults on average over the tasks above (one seed "
                     "each)" + ("; the pools agree. " if pools_agree else "; the pools say the opposite. "))
    own = "worse" if by_mean[alone] > by_mean["im"] else "better"
    if by_mean[split] < by_mean["im"]:
        text += (f"Ranked at the epochs `im` keeps, `neighbour_agreement` selects better than `im` on the pools "
                 f"({by_mean[split]:.2f} against {by_mean['im']:.2f}); as its own checkpoint rule it does {own} "
                 f"({by_mean[alone]:.2f}). A search runs that rule with `{search_flags(split)}`. ")
    else:
        text += "Neither use of `neighbour_agreement` selects better than `im` alone on the pools. "
    agree = split in recommended and recommended[split] > recommended["im"] and by_mean[split] < by_mean["im"]
    if agree:
        text += ("The pools, leave one group out included, and one seed of whole searches per task agree. The "
                 "default moves to this rule once seeds 1 and 2 of the same searches confirm it and the pages measured "
                 "under the default (search_efficiency.md, smoothing.md, source_gap.md) are rerun with it; until "
                 "then `im` ranks and keeps epochs by default.\n")
    else:
        text += "The pools and the whole searches do not agree on a better rule, so `im` stays the default.\n"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pools", nargs="+", help="methods_bench --out files with --dump-predictions of im and "
                                                 "neighbour_agreement")
    args = parser.parse_args()
    print(write("checkpoint_proxy.md", page(measure(args.pools), args.pools)))


if __name__ == "__main__":
    main()
