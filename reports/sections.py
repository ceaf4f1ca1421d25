"""The report's sections: each builder turns one analysis of a run (:mod:`.analysis`) into blocks, drawing its
charts as inline SVG (:mod:`.svg`). :func:`build_document` orders them: a run's sections as :data:`SECTIONS`
lists them, several runs after a cross-task table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pandas as pd

from adaptune.algorithms.ensemble import Smoothing
from adaptune.algorithms.hparams import SEARCH_SPACE_KNOBS

from . import svg
from .analysis import (
    BASELINE,
    column_labels,
    configuration,
    cross_task_table,
    headline,
    history_points,
    importances,
    pareto_front,
    problem_trials,
    provenance,
    recommended_ensemble,
    reliability,
    selection_table,
    task_key,
    trial_order,
)
from .blocks import Block, Chart, Charts, Code, Heading, Para, Table
from .leaderboard import FINISHED, SHARED_KNOBS
from .run_data import Run
from .run_dir import RunDir
from .values import duration, finite, number, percent, percent_points, short_id, value_text

LOG_PARAMS = tuple(p.name for p in SEARCH_SPACE_KNOBS if p.log)


def _config_text(row: pd.Series, board: pd.DataFrame) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in configuration(row, board).items()) or "defaults"


def _method_colors(run: Run) -> dict[str, str]:
    return {m: svg.color(i) for i, m in enumerate(sorted(run.board["method"].dropna().unique()))}


def _series_by_method(
    frame: pd.DataFrame,
    colors: dict[str, str],
    x: str,
    y: str,
    label: Callable[[str, pd.Series], str],
    keep: Callable[[pd.Series], bool] = lambda row: True,
) -> list[svg.Series]:
    """One scatter series per method in ``frame``: a point (row[x], row[y], label) per kept row, in the method's
    colour. A method whose rows are all dropped keeps its (empty) series, so it stays in the legend."""
    return [
        svg.Series(m, [(r[x], r[y], label(m, r)) for _, r in g.iterrows() if keep(r)], colors.get(m, svg.color(0)))
        for m, g in frame.groupby("method")
    ]


def _section_headline(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Recommendation", f"{anchor}-headline")]
    head = headline(run)
    if "method" not in head:
        blocks.append(
            Para(f"No finished trial with a score ({run.proxy}) yet; {head['trials']} trial(s) on disk.", "warn")
        )
        return blocks
    params = ", ".join(f"`{k}={value_text(v)}`" for k, v in head["params"].items()) or "its defaults"
    oracle = (
        f"; oracle target accuracy **{percent(head['target_acc'])}**"
        if finite(head.get("target_acc"))
        else "; no target labels, so no oracle accuracy"
    )
    ensemble = recommended_ensemble(run)
    single = (
        f"**{head['method']}** ({head['family']}) with {params}, the checkpoint of epoch "
        f"{value_text(head['best_epoch'])} of trial `{head['trial_id']}`: "
        f"{run.proxy} = **{number(head['score'])}**{oracle}."
    )
    if ensemble is None:
        blocks.append(Para(f"Ship {single}", "good"))
    else:
        members = dict(zip(ensemble["members"], ensemble["methods"]))
        ensemble_oracle = (
            f"; oracle target accuracy **{percent(ensemble['target_acc'])}**"
            if finite(ensemble.get("target_acc"))
            else ""
        )
        smoothed = f", {Smoothing(**ensemble['smoothing']).describe()}" if ensemble.get("smoothing") else ""
        blocks.append(
            Para(
                f"Ship the ensemble **{ensemble['trial_id']}**: average the target predictions of the top "
                f"{len(members)} trials by {run.proxy} ("
                + ", ".join(f"`{t}` {m}" for t, m in members.items())
                + f"), each at its best checkpoint{smoothed}: {run.proxy} = **{number(ensemble.get('score'))}**"
                + f"{ensemble_oracle}. "
                "In our proxy benchmark this loses less against the oracle than any single pick "
                "(benchmarks/results/proxies.md)"
                + ("; the smoothing lowered that loss further, leave one benchmark group out "
                   "(benchmarks/results/smoothing.md)." if smoothed else "."),
                "good",
            )
        )
        blocks.append(Para(f"The best single trial, to ship one model: {single}"))
    rows = [
        ["method", f"{head['method']} ({head['family']})"],
        *[[k, value_text(v)] for k, v in head["params"].items()],
        ["trial", str(head["trial_id"])],
        [
            "checkpoint",
            f"epoch {value_text(head['best_epoch'])} of {value_text(head['epochs'])} (best by {run.proxy})"
            + (f": {head['checkpoint']}" if head.get("checkpoint") else ""),
        ],
        [f"proxy score ({run.proxy})", number(head["score"])],
        ["oracle target accuracy", percent(head.get("target_acc")) if run.has_labels else "— (no target labels)"],
        ["source validation accuracy", percent(head.get("source_acc"))],
    ]
    baseline = head.get("baseline")
    if baseline:
        rows.append(
            [
                f"source-only baseline ({BASELINE}, best by {run.proxy})",
                f"{run.proxy} {number(baseline['score'])}, oracle {percent(baseline.get('target_acc'))}, trial "
                f"{baseline['trial_id']} epoch {value_text(baseline.get('best_epoch'))}",
            ]
        )
        if finite(head.get("target_acc")) and finite(baseline.get("target_acc")):
            rows.append(["gain over source-only (oracle)", percent_points(head["target_acc"] - baseline["target_acc"])])
    else:
        rows.append(["source-only baseline", f"not in this run (add {BASELINE} to --methods)"])
    for _, extra in run.extra.iterrows():
        members = extra.get("members")
        rows.append(
            [
                f"{extra['status']} {extra['trial_id']} (not ranked)",
                f"{run.proxy} {number(extra.get('score'))}, oracle {percent(extra.get('target_acc'))}"
                + (f", members {members}" if members else ""),
            ]
        )
    blocks.append(Table(["", "value"], rows, numeric=False))
    return blocks


def _section_selection(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Per-method best under each selection rule", f"{anchor}-selection")]
    table = selection_table(run)
    if table.empty:
        blocks.append(Para(f"No history yet: {RunDir.HISTORY} is written once a trial finishes.", "warn"))
        return blocks
    blocks.append(
        Para(
            f"Every (trial, epoch) point of a method is a candidate model. Each column picks one by a rule "
            f"and shows its oracle target accuracy: the run's selecting proxy `{run.proxy}` and "
            "`source_acc` (source validation accuracy) use no target labels; `oracle` picks with them "
            "(an upper bound). The last column is the price of not having target labels."
        )
    )
    if not run.has_labels:
        blocks.append(
            Para("This run has no target labels, so the accuracy columns are empty; the picks are shown.", "note")
        )
    header = [
        "method",
        "trials",
        "points",
        f"by {run.proxy}",
        "by source_acc",
        "by oracle",
        "price (oracle − proxy)",
        f"{run.proxy} pick (trial@epoch)",
    ]
    rows = [
        [
            r["method"],
            str(r["trials"]),
            str(r["points"]),
            percent(r["proxy_acc"]),
            percent(r["source_acc_acc"]),
            percent(r["oracle_acc"]),
            percent_points(r["price"]),
            r["proxy_pick"],
        ]
        for _, r in table.iterrows()
    ]
    blocks.append(
        Table(header, rows, caption="oracle target accuracy of the point each rule selects", emphasis={len(rows) - 1})
    )
    return blocks


def _section_reliability(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Proxy reliability", f"{anchor}-reliability")]
    data = reliability(run)
    if not data and history_points(run).empty:
        blocks.append(Para(f"No history yet: {RunDir.HISTORY} is written once a trial finishes.", "warn"))
        return blocks
    if not data:
        blocks.append(
            Para(
                "No target labels in this run (target_acc is empty), so the proxy cannot be checked "
                "against an oracle here. Run a labeled task with the same methods to measure it.",
                "note",
            )
        )
        return blocks
    pick, best = data["pick"], data["oracle_best"]
    blocks.append(
        Para(
            f"Regret of the pick: the best point by the oracle is {best['method']} trial "
            f"`{best['trial_id']}` epoch {value_text(best['epoch'])} at **{percent(best['target_acc'])}**; "
            f"the {run.proxy} pick ({pick['method']} `{pick['trial_id']}` epoch {value_text(pick['epoch'])}) "
            f"reaches **{percent(pick['target_acc'])}**, a regret of **{percent_points(data['regret'])}**."
        )
    )
    families = data["families"]
    blocks.append(
        Table(
            ["family", "methods", "points", "Spearman", "weighted Spearman"],
            [
                [
                    r["family"],
                    r["methods"],
                    str(r["points"]),
                    number(r["spearman"], 3),
                    number(r["weighted_spearman"], 3),
                ]
                for _, r in families.iterrows()
            ],
            caption=f"{run.proxy} vs oracle target accuracy over (trial, epoch) points; weighted Spearman "
            "weights the top of the ranking most (Musgrave et al. 2022)",
            emphasis={len(families) - 1},
        )
    )
    colors = _method_colors(run)
    points = data["points"]
    charts = []
    for name, group in sorted(points.groupby("family")):
        series = _series_by_method(
            group, colors, run.proxy_column, "target_acc",
            lambda m, r: f"{m} {r['trial_id']}@{value_text(r['epoch'])}: "
            f"{run.proxy} {number(r[run.proxy_column])}, oracle {percent(r['target_acc'])}",
        )
        if pick["family"] == name:
            series.append(
                svg.Series(
                    "the pick", [(pick[run.proxy_column], pick["target_acc"], "the pick")], "#222", marker="diamond"
                )
            )
        stats = families[families["family"] == name].iloc[0]
        note = f"ρ={number(stats['spearman'], 2)}, wρ={number(stats['weighted_spearman'], 2)}"
        charts.append(
            Chart(
                svg.xy_chart(
                    series,
                    title=f"{name}: {run.proxy} vs oracle",
                    x_label=run.proxy,
                    y_label="target_acc (oracle)",
                    width=380,
                    height=280,
                    note=note,
                ),
                f"{name}: {len(group)} points, Spearman {note}",
            )
        )
    blocks.append(Charts(charts))
    quality = data["quality"]
    if not quality.empty:
        rows = [
            [
                r["proxy"],
                number(r["spearman"], 3),
                number(r["weighted_spearman"], 3),
                percent_points(r["top1_regret"]),
                percent(r["topk_oracle_mean"]),
                str(r["points"]),
            ]
            for _, r in quality.iterrows()
        ]
        emphasis = {i for i, r in enumerate(rows) if r[0] == run.proxy}
        blocks.append(
            Table(
                ["proxy", "Spearman", "weighted Spearman", "top-1 regret", "top-5 oracle mean", "points"],
                rows,
                caption="every proxy against the oracle, all methods (the selecting one is highlighted)",
                emphasis=emphasis,
            )
        )
    return blocks


def _section_search(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Search behaviour", f"{anchor}-search")]
    order = trial_order(run)
    if order.empty:
        blocks.append(Para("No finished trial yet.", "warn"))
        return blocks
    colors = _method_colors(run)
    scored = order[order["score"].map(finite) & order["status"].isin(FINISHED)]
    series = _series_by_method(
        scored, colors, "number", "score",
        lambda m, r: f"#{r['number']} {r['trial_id']} {m}: {run.proxy} "
        f"{number(r['score'])}, oracle {percent(r.get('target_acc'))}, {r['status']}",
    )
    best = scored[["number", "best_so_far"]].dropna()
    series.append(
        svg.Series(
            "best so far",
            [(r["number"], r["best_so_far"], "") for _, r in best.iterrows()],
            "#222",
            style="step",
            marker="none",
        )
    )
    failed = order[~order["status"].isin(FINISHED)]
    charts = [
        Chart(
            svg.xy_chart(
                series,
                title="Optimization history",
                x_label="trial (start order)",
                y_label=f"{run.proxy} (best epoch)",
                width=460,
                height=300,
                integer_x=True,
            ),
            f"best {run.proxy} {number(scored['score'].max())} first reached at trial "
            f"#{int(scored.loc[scored['score'].idxmax(), 'number']) if not scored.empty else '—'} of "
            f"{len(order)}",
        )
    ]
    timed = scored[scored["finished_s"].map(finite)].sort_values("finished_s", kind="stable")
    if not timed.empty:
        running_best = timed["score"].cummax()
        time_series = _series_by_method(
            timed, colors, "finished_s", "score",
            lambda m, r: f"{r['trial_id']} {m} finished at {duration(r['finished_s'])}",
        )
        time_series.append(
            svg.Series(
                "best so far",
                list(zip(timed["finished_s"], running_best, [""] * len(timed))),
                "#222",
                style="step",
                marker="none",
            )
        )
        charts.append(
            Chart(
                svg.xy_chart(
                    time_series,
                    title="Best so far over time",
                    x_label="seconds since start",
                    y_label=run.proxy,
                    width=460,
                    height=300,
                ),
                f"last improvement at {duration(timed.loc[running_best.idxmax(), 'finished_s'])} after the start",
            )
        )
    blocks.append(Charts(charts))
    lanes: dict[str, list[svg.Bar]] = {}
    for _, r in order.iterrows():
        start, end = r.get("started_s"), r.get("finished_s")
        if not (finite(start) and finite(end)):
            continue
        node = f"{r.get('node_ip') or '?'} {short_id(r.get('node_id'))}"
        lanes.setdefault(node, []).append(
            svg.Bar(
                float(start),
                float(end),
                svg.STATUS_COLORS.get(str(r["status"]), "#999"),
                f"{r['trial_id']} {r['method']} ({r['status']}): {duration(start)} → {duration(end)}, "
                f"{value_text(r.get('epochs'))} epoch(s), {run.proxy} {number(r['score'])}",
                str(r["method"]),
            )
        )
    if lanes:
        statuses = sorted({str(s) for s in order["status"]})
        blocks.append(
            Chart(
                svg.timeline(
                    sorted(lanes.items()),
                    title="Trials over time per node",
                    legend=[(s, svg.STATUS_COLORS.get(s, "#999")) for s in statuses],
                ),
                f"{len(order)} trials on {len(lanes)} node(s)",
            )
        )
    counts = order["status"].value_counts()
    blocks.append(
        Table(
            ["status", "trials"],
            [[str(s), str(n)] for s, n in counts.items()],
            caption="trial outcomes" + ("" if run.finished else " so far (run in progress)"),
        )
    )
    problems = problem_trials(run)
    if problems.empty:
        blocks.append(Para("No trial was stopped, failed, diverged or retried."))
    else:
        blocks.append(
            Table(
                ["trial", "method", "status", "epochs", "why"],
                [
                    [r["trial_id"], r["method"], r["status"], value_text(r["epochs"]), r["reason"]]
                    for _, r in problems.iterrows()
                ],
                caption="stopped, failed, diverged and retried trials",
            )
        )
    if not failed.empty and failed["status"].isin(("error", "diverged")).any():
        blocks.append(
            Para(
                f"{int(failed['status'].isin(('error', 'diverged')).sum())} trial(s) failed or diverged and "
                "have no score; they are left out of the charts above.",
                "note",
            )
        )
    return blocks


def _section_hyperparameters(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Hyperparameters", f"{anchor}-hyperparameters")]
    result = importances(run)
    if not result:
        blocks.append(Para("No trials yet.", "warn"))
        return blocks
    evaluator = next(iter(result.values()))["evaluator"]
    blocks.append(
        Para(
            f"Importance of each hyperparameter for the {run.proxy} score, per method on its own "
            f"conditional subspace (Optuna `get_param_importances(params=...)`, {evaluator} evaluator). "
            "With few trials per method these are rough."
        )
    )
    rows, charts = [], []
    for method, entry in result.items():
        text = ", ".join(f"{k} {v:.2f}" for k, v in entry["importances"].items()) or entry.get("reason", "—")
        rows.append([method, str(entry["trials"]), text])
        if entry["importances"]:
            charts.append(
                Chart(
                    svg.hbar_chart(
                        list(entry["importances"].items()), title=f"{method}: importance", width=360, max_value=1.0
                    ),
                    f"{method}: {text}",
                )
            )
    blocks.append(Table(["method", "scored trials", "importance"], rows))
    if charts:
        blocks.append(Charts(charts))
    colors = _method_colors(run)
    scored = run.scored
    slices = []
    for param in SHARED_KNOBS:
        if param not in scored or scored[param].notna().sum() == 0:
            slices.append(
                Chart(
                    svg.xy_chart(
                        [],
                        title=f"slice: {param}",
                        x_label=param,
                        y_label=run.proxy,
                        width=300,
                        height=240,
                        note=f"{param} is not used by these methods",
                    ),
                    f"{param}: not used by these methods",
                )
            )
            continue
        values = scored[param].dropna()
        log = param in LOG_PARAMS and (values > 0).all()
        series = _series_by_method(
            scored, colors, param, "score",
            lambda m, r, param=param: f"{r['trial_id']} {m}: {param}={value_text(r[param])}, "
            f"{run.proxy} {number(r['score'])}",
            keep=lambda r, param=param: finite(r[param]),
        )
        constant = values.nunique() == 1
        summary = (
            f"{param} constant at {value_text(values.iloc[0])} in this run"
            if constant
            else f"{param}: best {run.proxy} at {param}={value_text(scored.loc[scored[param].notna()].iloc[0][param])}"
        )
        slices.append(
            Chart(
                svg.xy_chart(
                    series,
                    title=f"slice: {param}",
                    x_label=param,
                    y_label=run.proxy,
                    x_log=log,
                    width=300,
                    height=240,
                    note="constant" if constant else "",
                    integer_x=param == "freeze_depth",
                ),
                summary,
            )
        )
    blocks.append(Heading(level + 1, "Slices"))
    blocks.append(Charts(slices))
    axes_names = [p for p in SHARED_KNOBS if p in run.board]
    if len(scored) >= 2:
        axes = [
            svg.Axis(
                p,
                [float(v) if finite(v) else None for v in scored[p]],
                log=p in LOG_PARAMS and bool((scored[p].dropna() > 0).all()),
            )
            for p in axes_names
        ]
        axes.append(svg.Axis(run.proxy, list(scored["score"].astype(float))))
        if run.has_labels:
            axes.append(svg.Axis("target_acc", [float(v) if finite(v) else None for v in scored["target_acc"]]))
        line_colors = [colors.get(m, svg.color(0)) for m in scored["method"]]
        tips = [
            f"{r['trial_id']} {r['method']}: {_config_text(r, run.board)}; {run.proxy} {number(r['score'])}"
            for _, r in scored.iterrows()
        ]
        blocks.append(Heading(level + 1, "Parallel coordinates"))
        blocks.append(
            Chart(
                svg.parallel_coordinates(
                    axes, line_colors, tips, title="lr, freeze_depth, adv_weight → score", legend=sorted(colors.items())
                ),
                f"{len(scored)} scored trials over {', '.join(a.name for a in axes)}",
            )
        )
    return blocks


def _section_cost(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Cost", f"{anchor}-cost")]
    scored = run.scored
    if scored.empty or "wall_s" not in scored or not scored["wall_s"].map(finite).any():
        blocks.append(Para("No timed trial yet.", "warn"))
        return blocks
    colors = _method_colors(run)
    charts, fronts = [], {}
    targets = [("score", run.proxy)] + ([("target_acc", "target_acc (oracle)")] if run.has_labels else [])
    for column, label in targets:
        front = pareto_front(scored["wall_s"], scored[column])
        fronts[column] = front
        series = _series_by_method(
            scored, colors, "wall_s", column,
            lambda m, r, label=label, column=column: f"{r['trial_id']} {m}: {duration(r['wall_s'])}, "
            f"{label} {number(r[column])}",
        )
        on_front = scored[front].sort_values("wall_s")
        series.append(
            svg.Series(
                "Pareto front",
                [(r["wall_s"], r[column], f"Pareto: {r['trial_id']} {r['method']}") for _, r in on_front.iterrows()],
                "#222",
                style="step",
                marker="ring",
            )
        )
        charts.append(
            Chart(
                svg.xy_chart(
                    series,
                    title=f"{label} vs trial compute",
                    x_label="wall_s per trial",
                    y_label=label,
                    x_log=bool((scored["wall_s"] > 0).all()),
                    width=460,
                    height=300,
                ),
                f"{label}: Pareto front of {int(front.sum())} trial(s): "
                + ", ".join(
                    f"{r['method']} {duration(r['wall_s'])} → {number(r[column])}" for _, r in on_front.iterrows()
                ),
            )
        )
    blocks.append(Charts(charts))
    on_any = fronts["score"] | fronts.get("target_acc", False)
    rows = [
        [
            r["trial_id"],
            r["method"],
            duration(r["wall_s"]),
            number(r["score"]),
            percent(r.get("target_acc")),
            "yes" if fronts["score"][i] else "",
            "yes" if "target_acc" in fronts and fronts["target_acc"][i] else "",
        ]
        for i, r in scored[on_any].sort_values("wall_s").iterrows()
    ]
    blocks.append(
        Table(
            ["trial", "method", "wall_s", run.proxy, "oracle", f"front ({run.proxy})", "front (oracle)"],
            rows,
            caption="trials on a Pareto front (no other trial is both cheaper and better)",
        )
    )
    per_method = scored.groupby("method")["wall_s"].agg(["count", "sum", "median"]).sort_values("sum", ascending=False)
    blocks.append(
        Table(
            ["method", "trials", "total compute", "median per trial"],
            [[m, str(int(r["count"])), duration(r["sum"]), duration(r["median"])] for m, r in per_method.iterrows()],
            caption="compute per method (scored trials)",
        )
    )
    return blocks


def _section_provenance(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Provenance", f"{anchor}-provenance")]
    blocks.append(Table(["", "value"], [[k, v] for k, v in provenance(run)], numeric=False))
    if run.config_text:
        blocks.append(Code(run.config_text.rstrip(), f"{RunDir.CONFIG} (resolved configuration)"))
    return blocks


SECTIONS = (
    _section_headline,
    _section_selection,
    _section_reliability,
    _section_search,
    _section_hyperparameters,
    _section_cost,
    _section_provenance,
)


def _progress_note(run: Run) -> Para | None:
    if run.finished:
        return None
    planned = run.planned_trials
    finished = len(run.board)
    of = f" of {planned} planned" if planned else ""
    return Para(
        f"**Run in progress** (or interrupted): `{RunDir.SUMMARY}` has not been written yet. This report covers the "
        f"{finished}{of} trial(s) finished so far; trials still running are not on disk yet. Re-run "
        "`adaptune report` when the search ends.",
        "warn",
    )


def run_blocks(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = []
    note = _progress_note(run)
    if note:
        blocks.append(note)
    for section in SECTIONS:
        blocks += section(run, level, anchor)
    return blocks


def _cross_task_blocks(runs: Sequence[Run], published: pd.DataFrame | None) -> list[Block]:
    labels, table = cross_task_table(runs, published)
    prefix = os.path.commonprefix([label for label in labels])
    prefix = prefix[: prefix.rfind(":") + 1] if ":" in prefix else ""
    shown = [label[len(prefix) :] + ("*" if not run.finished else "") for label, run in zip(labels, runs)]
    header = ["method", *shown, "avg"]
    rows, emphasis = [], set()
    for i, (_, r) in enumerate(table.iterrows()):
        name = str(r["method"])
        complete = int(r["tasks"]) == len(labels)
        avg = (
            (f"{r['avg']:.1f}" if complete else f"{r['avg']:.1f} ({int(r['tasks'])}/{len(labels)})")
            if finite(r["avg"])
            else "—"
        )
        rows.append([name, *[f"{r[label]:.1f}" if finite(r[label]) else "—" for label in labels], avg])
        if name in ("adaptune pick",):
            emphasis.add(i)
    proxies = sorted({run.proxy for run in runs})
    caption = (
        f"oracle target accuracy (%) of each method's best trial by the proxy ({', '.join(proxies)})"
        + (f"; tasks {prefix}…" if prefix else "")
        + "; avg over the tasks with a value"
    )
    blocks: list[Block] = [
        Heading(2, "Across tasks", "cross-task"),
        Para(
            "Methods as rows, tasks as columns, average last (TLlib / DomainBed style). "
            "`adaptune pick` is the recommendation of each run (best trial over all methods by the "
            "proxy); `oracle best` is the best (trial, epoch) by target labels, an upper bound."
        ),
        Table(header, rows, caption=caption, emphasis=emphasis),
    ]
    if any(not run.finished for run in runs):
        blocks.append(Para("* run still in progress: its column holds the trials finished so far.", "warn"))
    if not any(run.has_labels for run in runs):
        blocks.append(Para("None of these runs has target labels, so the table has no accuracies.", "note"))
    if published is not None:
        known = {task_key(x) for run in runs for x in (run.label, run.label.split(":", 1)[-1])}
        unmatched = sorted(
            {
                t
                for t in published["task"]
                if task_key(t) not in known and task_key(str(t).split(":", 1)[-1]) not in known
            }
        )
        blocks.append(
            Para(
                "Rows marked `(published)` come from the --published CSV, as given."
                + (f" Tasks in the CSV without a run here: {', '.join(unmatched)}." if unmatched else ""),
                "note",
            )
        )
    return blocks


def build_document(runs: Sequence[Run], published: pd.DataFrame | None = None) -> tuple[str, list[Block]]:
    if len(runs) == 1:
        run = runs[0]
        title = f"adaptune report: {run.label}"
        return title, run_blocks(run, 2, "run1")
    title = f"adaptune report: {len(runs)} runs"
    blocks = _cross_task_blocks(runs, published)
    for i, (run, label) in enumerate(zip(runs, column_labels(runs)), start=1):
        blocks.append(Heading(2, f"Run {i}: {label}", f"run{i}"))
        blocks += run_blocks(run, 3, f"run{i}")
    return title, blocks
