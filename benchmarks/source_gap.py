"""The source gap on whole searches: each finished default search re-ranked with every gap, from its own files.

A pool of one trial per method (benchmarks/proxies_report.py) cannot show what TPE does to a selection rule: it
spends its trials on the family the proxy rates highest, so an over-confident family can fill the whole top 5.
This script reads the run directories of real default searches (`adaptune search --task T`, e.g. those that
`python -m benchmarks.skeleton --tasks ...` leaves under its --out), ranks their trials with
``reports.leaderboard.selection_order`` at each gap, averages the kept target predictions of the top 5 admitted
trials as the search's ensemble row does, and scores them with the oracle labels (reporting only). A gap is then
chosen leave one task out (each task here is from another benchmark group).

  python -m benchmarks.source_gap RUN_DIR [RUN_DIR ...]     # writes benchmarks/results/source_gap.md
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter

import pandas as pd

from adaptune.algorithms.data import load_task
from adaptune.algorithms.proxies import AUTO_SOURCE_GAP, auto_proxies, auto_rule_words
from adaptune.reports.leaderboard import FINISHED, selection_order
from adaptune.reports.run_dir import RunDir
from adaptune.search.config import DEFAULT_ENSEMBLE_K, DEFAULT_ENSEMBLE_PER_METHOD
from benchmarks._common import (
    INPUT_KIND,
    against_best,
    group_of,
    header,
    kept_metric,
    kept_predictions,
    kept_proxy,
    md_table,
    selection_label,
    update_auto_rule,
    write,
)
from benchmarks.baselines import saved_baseline
from benchmarks.methods_bench import SOURCE_GAPS
from benchmarks.search_efficiency import (
    ENSEMBLE,
    RULES,
    capped,
    ensemble_accuracy,
    held_out_means,
    held_out_rules,
    rule_name,
)

GAPS = (None, *SOURCE_GAPS)
CAPS = (None, 2, 1)  # candidate caps on the ensemble's trials of one method
GAP_MARGIN = 0.1  # points: a gap is adopted only where it lowers the mean regret this much (less is noise)
MIN_TASKS = 2  # tasks of an input kind needed to derive its gap


def rerank(run: str) -> dict:
    """Per gap: the oracle accuracy (%) of the ensemble of the top ``DEFAULT_ENSEMBLE_K`` admitted trials and of
    the first of them; and at the kind's default gap, of every ensemble rule (``search_efficiency.RULES``)."""
    run_dir = RunDir(run)
    (config, _), summary = run_dir.read_config(), run_dir.read_summary()
    board = run_dir.read_table(RunDir.LEADERBOARD)
    rows = [r for r in board.to_dict("records") if r["status"] in FINISHED]
    task = load_task(config["task"], preprocess=summary["preprocess"])
    labels = task.target_oracle
    probs = {r["trial_id"]: kept_predictions(run, r["trial_id"], kept_metric(summary)) for r in rows}

    def ensemble(gap: float | None, per_method: int | None, k: int = DEFAULT_ENSEMBLE_K) -> float:
        """The oracle accuracy (%) of the top ``k`` trials admitted at ``gap`` that kept predictions, at most
        ``per_method`` of one method."""
        admitted, _ = selection_order(rows, gap)
        kept = [r for r in admitted if probs[r["trial_id"]] is not None]
        return 100 * ensemble_accuracy([probs[r["trial_id"]] for r in capped(kept, per_method)[:k]], labels)

    preprocess = summary.get("preprocess_requested") or summary["preprocess"]

    outcome = {"task": config["task"], "kind": task.input_kind, "trials": len(rows), "proxy": summary["proxy"],
               "checkpoint_proxy": kept_proxy(summary),
               "best_trial": 100 * max(r["target_acc"] for r in rows),
               "recorded_ensemble": 100 * board.loc[board["status"] == "ensemble", "target_acc"].item(),
               # the run's own ensemble (no cap per method before the setting existed), to check the re-ranking
               "reranked_ensemble": ensemble(summary.get("source_gap"), config.get("ensemble_per_method")),
               "recorded_gap": summary.get("source_gap"),
               "budget_capped": bool(summary["plan"].get("capped")),  # no trial started once the budget was spent
               "label": f"{config['task']} ({selection_label(summary)}, seed {config.get('seed', 0)})",
               # the baselines under the preprocessing as configured (runs from before summaries recorded it: the
               # kind applied)
               "baseline": saved_baseline(config["task"], preprocess)["best"],
               "ensemble": {}, "single": {}, "held_back": {}}
    for gap in GAPS:
        admitted, held_back = selection_order(rows, gap)
        outcome["ensemble"][gap] = ensemble(gap, DEFAULT_ENSEMBLE_PER_METHOD)
        outcome["single"][gap] = 100 * admitted[0]["target_acc"]
        outcome["held_back"][gap] = sorted({r["method"] for r in held_back})
    default_gap = AUTO_SOURCE_GAP.get(task.input_kind)
    outcome["rules"] = {name: ensemble(default_gap, cap, k) for name, (k, cap) in RULES.items()}
    return outcome


def rule_section(outcomes: list[dict]) -> str:
    """Which ensemble a search should recommend, on whole default searches: every rule's regret per benchmark
    group (each run at its kind's default gap), then each group scored with the rule the other groups chose."""
    regrets = pd.DataFrame([{"rule": rule, "group": group_of(o["task"]), "regret": o["best_trial"] - value}
                            for o in outcomes for rule, value in o["rules"].items()])
    per_group = regrets.groupby(["rule", "group"])["regret"].mean().unstack().loc[list(RULES)]
    groups = list(per_group.columns)
    text = ("\n## Which ensemble to recommend, leave one group out\n\nEach rule averages the predictions of the top "
            "k admitted trials by the proxy (`-maxN`: at most N trials of one method), each run at its input kind's "
            f"default gap; `{ENSEMBLE}` is what a search recommends. Regret against the run's best trial, mean per "
            "benchmark group (points):\n\n")
    text += md_table([[rule, *per_group.loc[rule], per_group.loc[rule].mean()] for rule in RULES],
                     ["rule", *groups, "mean"])
    held = held_out_rules(per_group)
    derived, shipped = held_out_means(held)
    text += ("\n\nLeave one group out (the rule with the least mean regret on the other groups, scored on the "
             "held-out group): " + "; ".join(f"{g}: `{rule}` {d:.1f} (`{ENSEMBLE}` {s:.1f})" for g, rule, d, s in held)
             + f". Mean {derived:.1f} points held out, against {shipped:.1f} for `{ENSEMBLE}`: ")
    text += (f"no derived rule does better, so the search keeps recommending `{ENSEMBLE}`.\n" if derived >= shipped
             else "the derived rules do better held out: a candidate to ship.\n")
    return text


def cap_regrets(outcomes: list[dict]) -> pd.DataFrame:
    """Per cap (rows) and benchmark group (columns): the mean regret (points) of the top-``DEFAULT_ENSEMBLE_K``
    ensemble with at most that many trials of one method, each run at its kind's default gap."""
    rows = [{"cap": shown_cap(cap), "group": group_of(o["task"]),
             "regret": o["best_trial"] - o["rules"][rule_name(DEFAULT_ENSEMBLE_K, cap)]} for o in outcomes
            for cap in CAPS]
    return pd.DataFrame(rows).groupby(["cap", "group"])["regret"].mean().unstack().loc[[shown_cap(c) for c in CAPS]]


def choose_cap(per_group: pd.DataFrame) -> int | None:
    """The cap with the least mean regret over the groups of ``per_group``; a cap must beat no cap by GAP_MARGIN."""
    mean = per_group.mean(axis=1)
    return min(CAPS, key=lambda cap: mean[shown_cap(cap)] + (0.0 if cap is None else GAP_MARGIN))


def shown_cap(cap: int | None) -> str:
    return "none" if cap is None else str(cap)


def cap_section(outcomes: list[dict]) -> tuple[str, int | None]:
    """How many of the ensemble's trials may share a method: each cap's regret per group, the cap chosen on every
    group, and each group scored with the cap the other groups chose; returns the page section and the cap."""
    per_group = cap_regrets(outcomes)
    groups = list(per_group.columns)
    chosen = choose_cap(per_group)
    held = [(group, choose_cap(per_group.drop(columns=group))) for group in groups]
    held_regret = sum(per_group.loc[shown_cap(cap), group] for group, cap in held) / len(held)
    uncapped = per_group.loc[shown_cap(None)].mean()
    text = ("\n## At most N trials of one method in the ensemble\n\nThe top-"
            f"{DEFAULT_ENSEMBLE_K} ensemble with at most N trials of one method (the next admitted trials of other "
            "methods take the places), each run at its input kind's default gap; regret against the run's best "
            "trial, mean per benchmark group (points):\n\n")
    text += md_table([[f"N = {cap}", *per_group.loc[cap], per_group.loc[cap].mean()] for cap in per_group.index],
                     ["cap", *groups, "mean"])
    text += (f"\n\nChosen on every group (a cap adopted only where it lowers the mean regret by {GAP_MARGIN:.1f} "
             f"point): N = {shown_cap(chosen)}. Leave one group out (the cap chosen on the other groups, scored on the "
             "held-out group): " + "; ".join(f"{g}: N = {shown_cap(c)}, {per_group.loc[shown_cap(c), g]:.1f}"
                                             for g, c in held)
             + f". Mean {held_regret:.1f} points held out, against {uncapped:.1f} without a cap. "
             "`ensemble_per_method` (default: the cap chosen here; `proxy_auto.json` holds it, and a test keeps "
             "`DEFAULT_ENSEMBLE_PER_METHOD` equal to it).\n")
    return text, chosen


def shipped_section(outcomes: list[dict]) -> str:
    """What the shipped selection (the kind's auto proxies, gap and cap) recommends on the runs that searched with the
    shipped proxies: mean accuracy, loss against each run's best trial, and the runs above both baselines."""
    mine = [o for o in outcomes
            if (o["proxy"], o.get("checkpoint_proxy", o["proxy"])) == auto_proxies(o["kind"])]
    if not mine:
        return ""
    searches = [(o["ensemble"][AUTO_SOURCE_GAP.get(o["kind"])], o["best_trial"], o["baseline"]) for o in mine]
    mean, loss, worst, above = against_best(searches)
    return (f"\n## The shipped selection on these searches\n\nThe {len(mine)} runs that searched with today's `auto` "
            f"proxy ({auto_rule_words('`')}), ranked with the default gap and cap: "
            f"recommended {mean:.1f}% on average, {loss:.1f} points below their best trials (at most "
            f"{searches[worst][1] - searches[worst][0]:.1f}, {mine[worst]['label']}), {above} of {len(mine)} above "
            "both no-adaptation baselines.\n")


def choose_gap(outcomes: list[dict], selection: str) -> float | None:
    """The gap with the least mean regret over ``outcomes``; a gap must beat no gap by GAP_MARGIN points."""
    def regret(gap: float | None) -> float:
        lost = sum(o["best_trial"] - o[selection][gap] for o in outcomes) / len(outcomes)
        return lost + (0.0 if gap is None else GAP_MARGIN)

    return min(GAPS, key=regret)


def derived_gap(outcomes: list[dict], kind: str, selection: str) -> float | None:
    """:func:`choose_gap` on the runs of one input kind; none with runs of fewer than MIN_TASKS tasks (no evidence)."""
    mine = [o for o in outcomes if o["kind"] == kind]
    return choose_gap(mine, selection) if len({o["task"] for o in mine}) >= MIN_TASKS else None


def shown(gap: float | None) -> str:
    return "none" if gap is None else f"{100 * gap:.0f}"


def main(runs: list[str]) -> None:
    outcomes = [rerank(run) for run in runs]
    for o in outcomes:  # the re-ranking at the run's own gap is the search's own ensemble row
        if not math.isclose(o["reranked_ensemble"], o["recorded_ensemble"], abs_tol=0.05):
            sys.exit(f"{o['task']}: re-ranked ensemble {o['reranked_ensemble']:.2f} != recorded "
                     f"{o['recorded_ensemble']:.2f}")
    text = header("The source gap on whole default searches", "python -m benchmarks.source_gap " + " ".join(
        os.path.join(*os.path.normpath(run).split(os.sep)[-2:]) for run in runs))
    text += ("\nEach run is a default search (`adaptune search --task T --out RUNS/...`, proxy `auto`, TPE + ASHA "
             "on this machine; " + ", ".join(f"{o['task']} {o['trials']} trials" for o in outcomes)
             + "). Its finished trials are ranked again at each source gap (points of held-out source "
             "accuracy below the best trial's; `reports.leaderboard.selection_order`), and the kept target "
             f"predictions of the top {DEFAULT_ENSEMBLE_K} admitted trials, at most "
             f"{shown_cap(DEFAULT_ENSEMBLE_PER_METHOD)} of one method (`ensemble_per_method`), are averaged, as the "
             "search's ensemble row does; with the gap and cap the run was searched with, that reproduces its row "
             "(checked). The gap and the cap change the ranking only, never the trials TPE runs. The runs select "
             "by the current `auto` proxies (`im`, `bnm`) and by the earlier ones (`im_ts`, `bnm_ts`; the label "
             "names each run's proxy): each over-rates a different family, and a selection default must hold under "
             f"either. {sum(o['budget_capped'] for o in outcomes)} of the {len(outcomes)} runs stopped starting "
             "trials once their step budget was spent; the others, from before the budget capped a search, ran "
             "every planned trial. Target accuracy (%), oracle labels for reporting only; *best trial* is the "
             "oracle-best trial of the run, *baseline* the better of source-only LR and 1-NN (baselines.md). The "
             "runs come from `python -m benchmarks.skeleton --tasks ... [--proxy P] [--seed S]` (pages "
             "search_budget*.md, search_seed*.md, search_images_*.md, skeleton.md).\n\n")
    for selection, label in (("ensemble", "top-5 ensemble (`recommend: ensemble`)"),
                             ("single", "single best trial (`recommend: single`)")):
        text += f"\n## {label}\n\n"
        rows = [[o["label"], *[o[selection][gap] for gap in GAPS], o["best_trial"],
                 o["baseline"]] for o in outcomes]
        rows.append(["mean regret (points)", *[sum(o["best_trial"] - o[selection][gap] for o in outcomes)
                                               / len(outcomes) for gap in GAPS], "", ""])
        text += md_table(rows, ["task", *[f"gap {shown(g)}" for g in GAPS], "best trial", "baseline"])
        held_out = []
        for o in outcomes:  # every run of the held-out task is left out
            gap = derived_gap([other for other in outcomes if other["task"] != o["task"]], o["kind"], selection)
            held_out.append((o["label"], gap, o["best_trial"] - o[selection][gap]))
        text += (f"\n\nLeave one task out (the gap chosen on the runs of the other tasks of its input kind, none "
                 f"without any; a gap adopted only where it lowers their mean regret by {GAP_MARGIN:.1f} point): "
                 + "; ".join(f"{t}: gap {shown(g)}, regret {r:.1f}" for t, g, r in held_out)
                 + f". Mean {sum(r for _, _, r in held_out) / len(held_out):.1f} points, against "
                 f"{sum(o['best_trial'] - o[selection][None] for o in outcomes) / len(outcomes):.1f} without a gap.\n")
    shipped = {kind: derived_gap(outcomes, kind, "ensemble") for kind in sorted(set(INPUT_KIND.values()))}
    update_auto_rule(source_gap=shipped, source_gap_criterion=(
        "per input kind, the gap whose top-5 ensemble lost least against the oracle-best trial over whole default "
        f"searches of that kind, adopted only where it gains {GAP_MARGIN:.1f} point; none for a kind with fewer "
        f"than {MIN_TASKS} tasks"), source_gap_source="benchmarks/results/source_gap.md")
    text += ("\n## The default\n\n`source_gap: auto` = " + ", ".join(f"{k}: {shown(g)}" for k, g in shipped.items())
             + f" (points; chosen on every run of the kind for the default recommendation, the ensemble; a kind "
             f"with fewer than {MIN_TASKS} tasks keeps none). `proxy_auto.json` holds it, and a test keeps "
             "`AUTO_SOURCE_GAP` equal to it.\n")
    text += shipped_section(outcomes)
    per_task = Counter(o["task"] for o in outcomes)
    text += ("\n## What follows\n\n- The gap and the cap guard against one failure: TPE spends a search on the "
             "family its proxy rates highest, and an over-rated family can fill the whole top 5 (subspace alignment "
             "under `im_ts` on Amazon, MCC under `im` on the JDA digits; the labels above name each run's proxy). "
             "A trial of such a family that has also lost held-out source accuracy is held back by the gap; the cap "
             "leaves the other places to other methods either way.\n- On a small source (SURF: about 16 held-out "
             "source samples, so one sample is 6 points) a small gap holds back good trials too.\n- "
             f"{min(per_task.values())} to {max(per_task.values())} searches per task: more seeds per group are the "
             "next check. In pools of one trial per method (proxies.md) neither guard has anything to do: there, no "
             "family fills the top 5.\n")
    capping, cap = cap_section(outcomes)
    update_auto_rule(ensemble_per_method=cap, ensemble_per_method_criterion=(
        f"the cap on the top-{DEFAULT_ENSEMBLE_K} ensemble's trials of one method with the least mean regret against "
        f"the oracle-best trial over the benchmark groups' whole default searches, adopted only where it gains "
        f"{GAP_MARGIN:.1f} point over no cap"))
    text += capping + rule_section(outcomes)
    text += "\n## Held back\n\n" + md_table(
        [[o["label"], *[", ".join(o["held_back"][gap]) or "-" for gap in GAPS[1:]]] for o in outcomes],
        ["task", *[f"gap {shown(g)}" for g in GAPS[1:]]])
    print(write("source_gap.md", text))


if __name__ == "__main__":
    main(sys.argv[1:])
