"""The default penalty of the closed-form methods' head, chosen leave one group out on a penalty-only grid.

Every feature-extraction method (subspace_alignment, coral, tca, jda, kmm, linear_probe) fits a logistic-regression
head on its transformed source features. Its penalty was scikit-learn's C = 1, never derived here: with C fixed
the L2 term per unit of mean loss is 1 / (C n), so it fades as the source grows. This benchmark fits each method's
transform once per task at its other defaults, then its head at every value of two grids, C (``head_c``) and a
fixed penalty per unit of mean loss (``head_l2``), and records held-out source and target (oracle) accuracy: the
head's penalty moves, nothing else. A rule replaces the default only if, chosen on the other groups, it gains at
least MIN_GAIN points on the mean over groups.

  python -m benchmarks.head_penalty run --out DIR/head-penalty.jsonl   (every feature-table task, plain torch,
                                          ~25 min on 2 cores; --knobs head_c / head_l2 and --groups to split)
  python -m benchmarks.head_penalty --raw DIR/head-penalty.jsonl       (keeps the rows in the raw file, writes
                                                                        the page)
  python -m benchmarks.head_penalty                                    (the page again from the raw file)
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import shutil
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import torch

from benchmarks._common import MIN_GAIN, RESULTS, group_of, header, md_table, read_jsonl, rerun_command, write
from benchmarks.methods_bench import GROUPS

PAGE = "head_penalty.md"
RAW = os.path.join(RESULTS, "raw", "head-penalty.jsonl.gz")
SEARCHES_RAW = os.path.join(RESULTS, "raw", "head-penalty-searches.jsonl")
CLOSED_FORM = ("subspace_alignment", "coral", "tca", "jda", "kmm", "linear_probe")
# The head's penalty two ways: scikit-learn's C (l2 = 1 / (C n), weaker the more source rows) and l2 itself.
GRIDS = {"head_c": (3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
         "head_l2": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)}
FEATURE_GROUPS = ("surf", "decaf", "amazon", "amazon-5000", "jda-digits", "digits-pixels")


def run_task(task_name: str, threads: int, knobs: tuple[str, ...] = tuple(GRIDS)) -> list[dict]:
    """Each closed-form method's transform at its defaults, then its head at every penalty of the grids."""
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.loop import TrialSpec, build, evaluate, fit_head
    from adaptune.algorithms.methods import get_method
    from adaptune.algorithms.proxies import oracle_accuracy, source_accuracy

    torch.set_num_threads(threads)
    task = load_task(task_name)
    device = torch.device("cpu")
    rows = []
    for name in CLOSED_FORM:
        method_cls = get_method(name)
        spec = TrialSpec(name, {}, task.default_backbone, epochs=1)
        torch.manual_seed(spec.seed)
        started = time.perf_counter()
        data, classifier, method = build(task, spec, method_cls, method_cls.defaults(), MemoryStore(), device)
        transform_s = time.perf_counter() - started
        energy = data.source_train.x.flatten(1).double().pow(2).sum(1).mean().item()  # mean squared row norm
        n = len(data.source_train)
        for knob, value in [(k, v) for k in knobs for v in GRIDS[k]]:
            started = time.perf_counter()
            fit_head(classifier, method, data, l2=value if knob == "head_l2" else 1.0 / (value * n))
            evaluation = evaluate(classifier, data, spec.eval_batch_size, device)
            rows.append({"task": task_name, "method": name, "knob": knob, "value": value,
                         "source_acc": source_accuracy(evaluation),
                         "target_acc": oracle_accuracy(evaluation.target_logits, data.target_oracle),
                         "head_s": time.perf_counter() - started, "transform_s": transform_s,
                         "dim": data.source_train.x.flatten(1).shape[1], "energy": energy})
    return rows


def cmd_run(args: argparse.Namespace) -> None:
    tasks = [t for g in args.groups.split(",") for t in GROUPS[g]]
    spawn = multiprocessing.get_context("spawn")
    started = time.time()
    with open(args.out, "w") as handle, ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        knobs = [tuple(args.knobs.split(","))] * len(tasks)
        for done, rows in enumerate(pool.map(run_task, tasks, [args.threads] * len(tasks), knobs), start=1):
            for row in rows:
                handle.write(json.dumps(row) + "\n")
            handle.flush()
            print(f"{done}/{len(tasks)} tasks, {time.time() - started:.0f}s", flush=True)
    with open(args.out + ".meta.json", "w") as handle:
        json.dump({"command": rerun_command(("--out",)), "wall_s": time.time() - started,
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, handle)


Setting = tuple[str, float]  # (knob, value): ("head_c", 1.0) is scikit-learn's default
BASELINE: Setting = ("head_c", 1.0)
Gains = dict[tuple[str, str], dict[Setting, float]]  # (group, method) -> setting -> points


def label(setting: Setting) -> str:
    return f"{'C' if setting[0] == 'head_c' else 'l2'}={setting[1]:g}"


def gains(rows: list[dict]) -> Gains:
    """Per (group, method), per setting: the mean over the group's tasks of target accuracy there minus at C = 1."""
    at = {(r["task"], r["method"], (r["knob"], r["value"])): 100 * r["target_acc"] for r in rows}
    collected: dict[tuple[str, str], dict[Setting, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (task, method, setting), acc in at.items():
        collected[(group_of(task), method)][setting].append(acc - at[(task, method, BASELINE)])
    return {key: {k: statistics.fmean(v) for k, v in by_setting.items()} for key, by_setting in collected.items()}


def best_setting(table: Gains, groups: list[str], methods: tuple[str, ...], knob: str) -> Setting:
    """The ``knob`` value with the best mean gain over ``groups`` (each weighs the same) and ``methods``."""
    return max(((knob, v) for v in GRIDS[knob]),
               key=lambda s: (statistics.fmean(table[(g, m)][s] for g in groups for m in methods), s == BASELINE))


# Each rule picks the head's penalty from the other groups: one C for every method, one l2 for every method, or
# one l2 per method.
RULES = {"one C": ("head_c", False), "one l2": ("head_l2", False), "l2 per method": ("head_l2", True)}


def choose(table: Gains, fit_on: list[str], rule: str) -> dict[str, Setting]:
    knob, per_method = RULES[rule]
    if per_method:
        return {m: best_setting(table, fit_on, (m,), knob) for m in CLOSED_FORM}
    return dict.fromkeys(CLOSED_FORM, best_setting(table, fit_on, CLOSED_FORM, knob))


def group_gain(table: Gains, group: str, choice: dict[str, Setting]) -> float:
    """The gain on ``group``, the mean over methods, with each method's head at ``choice[method]``."""
    return statistics.fmean(table[(group, m)][choice[m]] for m in CLOSED_FORM)


def report(rows: list[dict], command: str) -> str:
    table = gains(rows)
    groups = [g for g in FEATURE_GROUPS if (g, CLOSED_FORM[0]) in table]
    tasks = sorted({r["task"] for r in rows})
    lines = [header("The head's penalty of the closed-form methods, leave one group out", command),
             __doc__.split("\n\n")[1].replace("\n", " "), ""]
    lines += [f"{len(tasks)} tasks in {len(groups)} groups, {len(CLOSED_FORM)} methods; the tasks' default "
              "preprocessing. Target accuracy minus at scikit-learn's C = 1, in points, the mean over the group's "
              "tasks and the six methods:", ""]
    for knob in GRIDS:
        lines += [md_table([[g, *[f"{group_gain(table, g, dict.fromkeys(CLOSED_FORM, (knob, v))):+.1f}"
                                  for v in GRIDS[knob]]] for g in groups],
                           ["group", *[label((knob, v)) for v in GRIDS[knob]]]), ""]

    lines += ["## Chosen on the other groups", "",
              "Each rule is chosen with one group left out and scored on that group.", ""]
    summary, table_rows = {}, []
    for rule in RULES:
        held = {}
        for g in groups:
            choice = choose(table, [o for o in groups if o != g], rule)
            held[g] = group_gain(table, g, choice)
            picks = sorted(set(choice.values()))
            text = label(picks[0]) if len(picks) == 1 else ", ".join(f"{m} {label(choice[m])}" for m in CLOSED_FORM)
            table_rows.append([rule, g, text, f"{held[g]:+.2f}"])
        summary[rule] = (statistics.fmean(held.values()), min(held.values()))
    lines += [md_table(table_rows, ["rule", "held-out group", "chosen on the others", "gain on the held-out group"])]
    lines += ["", "Held out, the mean over groups: " + "; ".join(
        f"{rule} {mean:+.2f} points (worst group {worst:+.2f})" for rule, (mean, worst) in summary.items()) + ".", ""]
    # The per-method rule has six values to one: it is kept only if it gains MIN_GAIN more, held out.
    simple = max(("one C", "one l2"), key=lambda r: summary[r][0])
    rule = "l2 per method" if summary["l2 per method"][0] >= summary[simple][0] + MIN_GAIN else simple
    mean, worst = summary[rule]
    final = choose(table, groups, rule)
    adopt = mean >= MIN_GAIN
    picks = sorted(set(final.values()))
    shipped = label(picks[0]) if len(picks) == 1 else ", ".join(f"{m} {label(final[m])}" for m in CLOSED_FORM)
    lines += [f"Rule: {rule} (of one C and one l2 the better held out; l2 per method only if it gains {MIN_GAIN} "
              f"points more). Chosen on every group: {shipped}. "
              + (f"Held out it gains {mean:+.2f} points, which clears MIN_GAIN = {MIN_GAIN} (worst group "
                 f"{worst:+.2f}): the shipped default (algorithms/hparams.py)." if adopt else
                 f"That does not clear MIN_GAIN = {MIN_GAIN} held out: the default stays C = 1."), ""]

    at = {(r["task"], r["method"], (r["knob"], r["value"])): r for r in rows}
    lines += ["## Per method over every task", "",
              f"Target and held-out source accuracy (%) at C = 1 and at the chosen default (mean over the {len(tasks)} "
              "tasks), and the median squared norm of the head's input rows.", ""]
    method_rows = []
    for m in CLOSED_FORM:
        picked = [at[(t, m, final[m])] for t in tasks]
        base = [at[(t, m, BASELINE)] for t in tasks]
        method_rows.append([m, label(final[m]), 100 * statistics.fmean(r["target_acc"] for r in base),
                            100 * statistics.fmean(r["target_acc"] for r in picked),
                            100 * statistics.fmean(r["source_acc"] for r in base),
                            100 * statistics.fmean(r["source_acc"] for r in picked),
                            f"{statistics.median(r['energy'] for r in base):.0f}"])
    lines += [md_table(method_rows, ["method", "chosen", "target C=1", "target chosen", "source C=1",
                                     "source chosen", "median squared row norm"])]
    cost = defaultdict(list)
    for row in rows:
        if (row["knob"], row["value"]) == BASELINE:
            cost[group_of(row["task"])].append(row["transform_s"] + row["head_s"])
    lines += ["", "Cost of one trial (transform + head, one thread; mean per group): "
              + ", ".join(f"{g} {statistics.fmean(cost[g]):.1f} s" for g in groups) + ".", ""]

    lines += ["## Per task", "", "Target accuracy (%), the mean over the six methods and the best of them, at C = 1 "
              "and at the chosen default.", ""]
    task_rows = []
    for task in tasks:
        base = [100 * at[(task, m, BASELINE)]["target_acc"] for m in CLOSED_FORM]
        picked = [100 * at[(task, m, final[m])]["target_acc"] for m in CLOSED_FORM]
        task_rows.append([task, statistics.fmean(base), statistics.fmean(picked), max(base), max(picked)])
    lines += [md_table(task_rows, ["task", "mean C=1", "mean chosen", "best C=1", "best chosen"])]
    return "\n".join(lines) + "\n"


def search_rows(out_root: str, tasks: list[str]) -> list[dict]:
    """The default search on each task under ``out_root`` (benchmarks.skeleton's --out): its recommendation, best
    trial (oracle) and wall time."""
    from benchmarks.skeleton import finished_search, measured_search, run_folder

    rows = []
    for task in tasks:
        out = run_folder(out_root, task)
        summary, trials = finished_search(out)
        wall, _ = measured_search(out, report_only=True)
        rows.append({"task": task, "recommended": 100 * summary["recommendation"]["target_acc"],
                     "best_trial": 100 * float(trials["target_acc"].max()), "wall_s": wall})
    return rows


def searches_section(searched: list[dict]) -> str:
    """Whole default searches with the shipped penalty against the same tasks' seed-0 searches at C = 1."""
    from benchmarks.shallow_grid import searches

    before = searches()
    rows, by_group = [], defaultdict(list)
    for row in searched:
        old = before[row["task"]]
        rows.append([row["task"], old.recommended, row["recommended"], f"{row['recommended'] - old.recommended:+.1f}",
                     old.best_trial, row["best_trial"], old.baseline,
                     "yes" if row["recommended"] >= old.baseline else "no", f"{row['wall_s']:.0f}"])
        by_group[group_of(row["task"])].append(row["recommended"] - old.recommended)
    beats = sum(r[7] == "yes" for r in rows)
    per_group = ", ".join(f"{g} {statistics.fmean(v):+.2f} ({len(v)})" for g, v in by_group.items())
    overall = statistics.fmean(statistics.fmean(v) for v in by_group.values())
    return "\n".join([
        "## Whole default searches", "",
        "`adaptune search --task T` at every default (seed 0), with the shipped penalty, against the same task's "
        "seed-0 default search at C = 1 (benchmarks/shallow_grid.py's references); *baseline* is the better of "
        "source-only logistic regression and 1-NN on the same features. Rerun: `python -m benchmarks.skeleton --tasks "
        "T1,T2,... --seed 0 --page search_suite_seed0.md --out DIR && python -m benchmarks.head_penalty --searches "
        "DIR --tasks T1,T2,...` ([search_suite_seed0.md](search_suite_seed0.md) has each search's plan and "
        "times; [search_head_penalty.md](search_head_penalty.md) the first 24 of these searches, run before, which "
        "recommended the same up to 0.25 points).", "",
        md_table(rows, ["task", "recommended C=1", "recommended now", "change", "best trial C=1", "best trial now",
                        "baseline", "beats baseline", "wall s"]), "",
        f"Change of the recommendation per group (tasks): {per_group}; the mean over groups {overall:+.2f} points. "
        f"The recommendation beats the better baseline on {beats} of {len(rows)} tasks; the slowest search took "
        f"{max(r['wall_s'] for r in searched):.0f} s.", "",
        "## What follows", "",
        "The fixed penalty lifts the closed-form trials (the held-out gain above), but the whole searches move by "
        f"{overall:+.2f} points on the mean over groups, within one seed's noise: a recommendation is an ensemble "
        "of the trials the proxy ranks first, deep ones among them. Below MIN_GAIN at the search's level, so this is "
        "no evidence that searches recommend better; the default changes anyway because C = 1 was never derived and "
        "the penalty is: at an equal search-level result, the default chosen leave one group out on the knob's own "
        "effect is kept, and a user who runs one closed-form method (`methods: [coral]`) gets its gain.", "",
        "Part of the gain is held back on purpose: the stronger penalty also lowers a closed-form trial's held-out "
        "source accuracy, and the source gap (5 points below the best trial) then keeps it out of the ensemble. "
        "[ensemble_settings_head_l2.md](ensemble_settings_head_l2.md) rebuilds these searches' ensembles without the "
        "gap and under every other setting: without it SURF would lose less (its 16-30 held-out source samples of "
        "the D and W domains make the gap coarse), the JDA digits much more (there the gap keeps over-rated "
        "closed-form trials out), and no setting chosen on the other groups does better on the held-out group, so "
        "the ensemble keeps its settings. The searches also ran faster (TCA/JDA solve D x D on tables with more rows "
        "than columns): see each row's wall time against search_suite.md and ensemble_settings_later.md.", ""])


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    run.add_argument("--groups", default=",".join(FEATURE_GROUPS))
    run.add_argument("--out", required=True)
    run.add_argument("--knobs", default=",".join(GRIDS), help="which grids (comma-separated)")
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--threads", type=int, default=1)
    parser.add_argument("--raw", nargs="*", help="run outputs to keep in the raw file (default: read it)")
    parser.add_argument("--searches", help="benchmarks.skeleton's --out folder of whole default searches to keep "
                        "in the searches' raw file (default: read it)")
    parser.add_argument("--tasks", help="with --searches: the tasks searched (comma-separated)")
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args)
        return
    if args.raw:
        metas = [json.load(open(path + ".meta.json")) for path in args.raw]
        with gzip.open(RAW, "wt") as handle:
            handle.write(json.dumps({"commands": [m["command"] for m in metas],
                                     "wall_s": sum(m["wall_s"] for m in metas)}) + "\n")
            for path in args.raw:
                shutil.copyfileobj(open(path), handle)
    first, *rows = read_jsonl(RAW)
    runs = [f"{command} --out DIR/{index}.jsonl" for index, command in enumerate(first["commands"])]
    command = " && ".join([*runs, "python -m benchmarks.head_penalty --raw DIR/*.jsonl"])
    if args.searches:
        with open(SEARCHES_RAW, "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in search_rows(args.searches, args.tasks.split(",")))
    text = report(rows, command)
    if os.path.exists(SEARCHES_RAW):
        text += "\n" + searches_section(read_jsonl(SEARCHES_RAW))
    write(PAGE, text)


if __name__ == "__main__":
    main()
