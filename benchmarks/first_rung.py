"""Should a trial that ASHA stopped at its first rung join the recommendation?

A trial stopped at the first rung keeps a checkpoint from its first few hundred steps: often a model still far from
what its method reaches, yet the ranking proxy (which reads the target predictions, not how long they trained) can
rate it as high as finished trials. This page re-measures every search of search_efficiency.md (from their run
directories, recorded when a search ranked every trial) with such trials kept out of the recommendation, all else as
shipped: closed-form trials, which train no steps, and searches without early stopping are unchanged, and where no
trial trained past the first rung every trial stays. Regret and the target against random search as on that page.
It also re-ranks the suite's whole default searches (the run directories checkpoint_proxy.md re-ranks) both ways, as
a search ranks them, and default searches run later with the rule in the search, which check it on searches it was
not chosen on. Target labels only score.

  python -m benchmarks.first_rung --out DIR --runs RUN_DIR ...  # DIR: the run directories of
      benchmarks.search_efficiency; RUN_DIR: whole default searches (benchmarks.skeleton --proxy im)
  python -m benchmarks.first_rung --check RUN_DIR ...  # later default searches, re-ranked both ways
  python -m benchmarks.first_rung --report-only  # rebuild first_rung.md from the raw files
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace

import pandas as pd

from adaptune.reports.leaderboard import selection_order
from adaptune.search.step_budget import spends_budget
from benchmarks._common import (
    MIN_GAIN,
    RESULTS,
    group_of,
    header,
    held_out_choices,
    held_out_score,
    md_table,
    merge_searches,
    read_jsonl,
    write,
)
from benchmarks.checkpoint_proxy import RULES, SPLIT, read_ranked_run
from benchmarks.search_efficiency import (
    DERIVED_ORDER,
    ENSEMBLE,
    FRACTIONS,
    Order,
    cell,
    load_raw,
    measure,
    regret_at,
    regrets,
    run_dir,
    save_raw,
    smoother,
    targets_met,
)

RAW = os.path.join(RESULTS, "raw", "first_rung.jsonl.gz")
SEARCHES = os.path.join(RESULTS, "raw", "first-rung-searches.jsonl")  # the whole default searches, both ways
CHECKS = os.path.join(RESULTS, "raw", "first-rung-check.jsonl")  # default searches run with the rule, both ways
RULE_NAMES = ("every trial", "past the first rung")  # what a search recommends from, and the candidate rule
SEARCHERS = ("tpe+asha", DERIVED_ORDER, "random+asha")  # the strategies with early stopping


def trained_past(rows: list[dict], first_rung: int | None) -> list[dict]:
    """The rows of trials that trained past ``first_rung`` steps (every row when ``first_rung`` is None or when none
    did); closed-form trials train no steps and always stay."""
    trained = [r for r in rows if first_rung is None or not spends_budget(r.get("method"))
               or (r.get("steps") or 0) > first_rung]
    return trained or rows


def past_first_rung(first_rung: int | None) -> Order:
    """The product's selection order over :func:`trained_past` rows."""
    def order(rows: list[dict], source_gap: float | None) -> tuple[list[dict], list[dict]]:
        return selection_order(trained_past(rows, first_rung), source_gap)
    return order


def first_rung_in(summary: dict) -> int | None:
    """A run's first rung in steps (its summary's plan), None when it stopped nothing early."""
    plan = summary["plan"]
    return plan["rungs"][0] if plan.get("early_stopping") and plan.get("rungs") else None


def first_rung_of(out: str) -> int | None:
    """:func:`first_rung_in` of the run directory ``out``."""
    with open(os.path.join(out, "summary.json")) as handle:
        return first_rung_in(json.load(handle))


def remeasure(records: list[dict], root: str) -> list[dict]:
    out = []
    for record in records:
        path = run_dir(root, record["task"], record["strategy"], record["seed"])
        out.append(measure(record["task"], record["strategy"], record["seed"], path, record["wall_s"],
                           past_first_rung(first_rung_of(path))))
        print(record["task"], record["strategy"], record["seed"], flush=True)
    return out


def remeasured_only(records: list[dict], remeasured: list[dict]) -> list[dict]:
    """The ``records`` of the runs that ``remeasured`` holds: search_efficiency.md may have gained runs since this
    page re-measured its own, and the two ways compare the same runs."""
    runs = {(r["task"], r["strategy"], r["seed"]) for r in remeasured}
    return [r for r in records if (r["task"], r["strategy"], r["seed"]) in runs]


def rerank_search(run: str) -> dict:
    """A whole default search's recommendation (ranked by the rule proxy auto ships, at im's epochs) from every
    trial and without its trials stopped at the first rung, in %."""
    ranked = read_ranked_run(run)
    smooth = smoother(ranked.summary, ranked.target_features)
    row = dict(ranked.facts)
    for name, first_rung in zip(RULE_NAMES, (None, first_rung_in(ranked.summary))):
        trained = replace(ranked, trials=trained_past(ranked.trials, first_rung))
        row[name] = trained.recommendation(RULES[SPLIT][0], smooth)[0]
    print(run, flush=True)
    return row


def group_regrets(searches: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark group (rows), the whole default searches' mean regret (points) each way (columns)."""
    return pd.DataFrame({name: searches["best"] - searches[name] for name in RULE_NAMES}).groupby(
        searches["group"]).mean()


def searches_section(searches: pd.DataFrame, per: pd.DataFrame, which: str = "The suite's whole default searches"
                     ) -> str:
    """Regret per benchmark group of whole default searches (``which``), both ways (``per``:
    :func:`group_regrets`)."""
    text = (f"\n\n{which} ({len(searches)} searches of {searches['group'].nunique()} "
            "groups, each at the default budget), re-ranked as a search ranks them, regret against the search's best "
            "trial (points), mean per group:\n\n")
    text += md_table([[name, *[cell(per.loc[g, name]) for g in per.index], cell(per[name].mean())]
                      for name in RULE_NAMES], ["recommendation", *per.index, "mean over groups"])
    better = int((per[RULE_NAMES[1]] < per[RULE_NAMES[0]] - 0.05).sum())
    worse = int((per[RULE_NAMES[1]] > per[RULE_NAMES[0]] + 0.05).sum())
    return text + (f"\n\nKept out, the regret falls in {better} groups and rises in {worse} (by more than 0.05 "
                   "points).")


def held_out(per: pd.DataFrame) -> tuple[float, list[str]]:
    """Leave one group out (``per``: :func:`group_regrets`): the mean regret per group of the way chosen on the other
    groups, on the group, and the ways chosen."""
    chosen = held_out_choices(per)
    return held_out_score(per, chosen), sorted(set(chosen.values()))


def held_out_line(per: pd.DataFrame) -> str:
    """Leave one group out over the whole default searches (``per``: :func:`group_regrets`): the way chosen on the
    other groups, on the group."""
    held, picks = held_out(per)
    return (f"- Leave one group out on the whole default searches, the other groups choose {' or '.join(picks)}; "
            f"held out that scores {held:.2f} points per group against {per[RULE_NAMES[0]].mean():.2f} from every "
            "trial.\n")


def per_group(table: pd.DataFrame, strategy: str, fraction: float) -> dict[str, float]:
    values = regret_at(table, strategy, fraction).reset_index()
    return values.groupby(values["task"].map(group_of))[ENSEMBLE].mean().to_dict()


def check_section(checks: pd.DataFrame) -> str:
    """Default searches run after the rule was chosen, with it in the search: the rule against every trial on
    searches it was not chosen on, and whether the re-ranking gives back what each search recorded."""
    per = group_regrets(checks)
    text = searches_section(checks, per, "Default searches run later with the rule in the search, seed 0 on every "
                                         "task of the suite but four of Amazon-5000")
    same = int(((checks["recorded"] - checks[RULE_NAMES[1]]).abs() < 1e-6).sum())
    lower = int((checks[RULE_NAMES[1]] < checks[RULE_NAMES[0]] - 1e-6).sum())
    higher = int((checks[RULE_NAMES[1]] > checks[RULE_NAMES[0]] + 1e-6).sum())
    beats = {name: int((checks[name] >= checks["baseline"]).sum()) for name in RULE_NAMES}
    return text + (f" Per search the rule recommends more than every trial would in {higher} and less in {lower} of "
                   f"{len(checks)}; re-ranked with the rule, {same} of {len(checks)} give back the ensemble row the "
                   "search recorded. At or above the better of source-only LR and 1-NN: "
                   + ", ".join(f"{name} {count} of {len(checks)}" for name, count in beats.items()) + ".")


def pooled_line(searches: pd.DataFrame, checks: pd.DataFrame) -> str:
    """The verdict on both sets of whole default searches together, against the least gain a default change asks."""
    per = group_regrets(pd.concat([searches, checks]))
    held, _ = held_out(per)
    gain = per[RULE_NAMES[0]].mean() - held
    later = group_regrets(checks).mean()
    verdict = ("the rule replaces ranking every trial" if gain >= MIN_GAIN else
               f"below the {MIN_GAIN:g} points a default change asks (benchmarks/_common.py), so a search keeps "
               "recommending from every trial")
    return (f"- Both sets together ({len(searches) + len(checks)} searches), chosen leave one group out: "
            f"{held:.2f} points per group held out against {per[RULE_NAMES[0]].mean():.2f} from every trial, a gain "
            f"of {gain:.2f}: {verdict}."
            + (" The first set's gain does not hold on searches it was not chosen on." if later[RULE_NAMES[1]] >
               later[RULE_NAMES[0]] else "") + "\n")


def report(shipped: list[dict], trained: list[dict], searches: pd.DataFrame, checks: pd.DataFrame) -> str:
    tables = dict(zip(RULE_NAMES, (regrets(shipped), regrets(trained))))
    text = header("Trials stopped at the first rung in the recommendation",
                  "python -m benchmarks.first_rung --out DIR --runs RUN_DIR ... --check CHECK_DIR ...  (DIR: the run "
                  "directories of benchmarks.search_efficiency; RUN_DIR: the whole default searches "
                  "checkpoint_proxy.md re-ranks; CHECK_DIR: later default searches, benchmarks.skeleton --tasks ... "
                  "--seed 0, which ran with the rule in the search (the rule changes what a search recommends, not "
                  "which trials it runs); --report-only rebuilds this page from the raw files)")
    tasks = ", ".join(sorted({r["task"] for r in shipped}))
    text += (f"\nThe searches of search_efficiency.md ({len(shipped)} runs: {tasks}, every seed and strategy), "
             "their recommendation re-measured with the trials that ASHA stopped at the first "
             "rung kept out (`past the first rung`) against the recommendation from every trial, as they ran. "
             "Regret of the recommended ensemble in points at fractions of the default budget, mean over tasks and "
             "seeds; the target: TPE + ASHA at random search's final regret within a third of its compute, stays "
             "there / first reaches it, of the comparisons.\n\n")
    rows = []
    for strategy in SEARCHERS:
        for name, table in tables.items():
            met = targets_met(table, strategy) if strategy != "random+asha" else None
            rows.append([strategy, name, *[cell(regret_at(table, strategy, f).mean()) for f in FRACTIONS],
                         f"{met[0]} / {met[1]} of {met[2]}" if met else "-"])
    text += md_table(rows, ["strategy", "recommendation", *[f"{f:g}x" for f in FRACTIONS], "target"])
    groups = {name: per_group(table, "tpe+asha", 1.0) for name, table in tables.items()}
    names = sorted(next(iter(groups.values())))
    text += "\n\nThe default search (`tpe+asha`) at the default budget, per benchmark group:\n\n"
    text += md_table([[name, *[cell(values[g]) for g in names], cell(sum(values.values()) / len(values))]
                      for name, values in groups.items()], ["recommendation", *names, "mean"])
    per = group_regrets(searches) if len(searches) else None
    if per is not None:
        text += searches_section(searches, per)
    if len(checks):
        text += check_section(checks)
    means = {name: {s: [regret_at(t, s, f).mean() for f in FRACTIONS] for s in SEARCHERS}
             for name, t in tables.items()}
    before, after = (means[name] for name in RULE_NAMES)
    text += ("\n\n## What follows\n\n"
             f"- The default search on search_efficiency.md's runs: {after['tpe+asha'][2]:.1f} points at the default "
             f"budget against {before['tpe+asha'][2]:.1f} from every trial, {after['tpe+asha'][3]:.1f} against "
             f"{before['tpe+asha'][3]:.1f} at twice it.\n"
             f"- With the defaults in the derived order (defaults_order.md), which stops later trials sooner: "
             f"{after[DERIVED_ORDER][2]:.1f} against {before[DERIVED_ORDER][2]:.1f} at the default budget, "
             f"{after[DERIVED_ORDER][0]:.1f} against {before[DERIVED_ORDER][0]:.1f} at a quarter of it, where the "
             f"default search (name order) has {after['tpe+asha'][2]:.1f} and {after['tpe+asha'][0]:.1f}: the trials "
             "that order stops at the first rung are what it loses by at the default budget.\n"
             + (held_out_line(per) if per is not None else "")
             + (pooled_line(searches, checks) if len(searches) and len(checks) else ""))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="the run directories of benchmarks.search_efficiency")
    parser.add_argument("--runs", nargs="*", default=[], help="whole default searches to re-rank both ways")
    parser.add_argument("--check", nargs="*", default=[],
                        help="default searches run with the rule in place, to re-rank both ways")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    shipped, trained = load_raw(), load_raw(RAW)
    if args.out and not args.report_only:
        trained = remeasure(shipped, args.out)
        save_raw(trained, RAW)
    shipped = remeasured_only(shipped, trained)
    if args.runs and not args.report_only:
        merge_searches(SEARCHES, [rerank_search(run) for run in args.runs])
    if args.check and not args.report_only:
        merge_searches(CHECKS, [rerank_search(run) for run in args.check])
    searches, checks = (pd.DataFrame(read_jsonl(path) if os.path.exists(path) else []) for path in (SEARCHES, CHECKS))
    print(write("first_rung.md", report(shipped, trained, searches, checks)))


if __name__ == "__main__":
    main()
