"""The report's analyses: pure functions of a :class:`~adaptune.reports.run_data.Run` (or several) that
return plain data (DataFrames, dicts, lists) and draw nothing. The section builders turn them into blocks.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .leaderboard import FINISHED, hyperparameter_columns, preprocess_searched
from .proxy_quality import proxy_quality, spearman, weighted_spearman
from .run_data import Run, has_values
from .run_dir import RunDir, RunError
from .values import duration, finite, one_line, short_id, utc_time, value_text

BASELINE = "source_only"


# -- methods and their hyperparameters ----------------------------------------------------------------------
def _method_class(method: str) -> Any:
    from adaptune.algorithms.methods import METHODS

    return METHODS.get(method)


def family(method: str) -> str:
    cls = _method_class(method)
    return cls.family if cls is not None else "other"


def params_in_board(method: str, board: pd.DataFrame) -> list[Any]:
    """The method's whole search space: the registry's Param objects present as columns of the board."""
    cls = _method_class(method)
    if cls is None:
        from adaptune.algorithms.hparams import Param

        rows = board[board["method"] == method]
        return [Param(c, None) for c in hyperparameter_columns(board) if rows[c].notna().any()]
    return [p for p in cls.params if p.name in board.columns]


def configuration(row: pd.Series, board: pd.DataFrame) -> dict[str, Any]:
    values = {"preprocess": row["preprocess"]} if preprocess_searched(board) else {}
    for param in params_in_board(str(row["method"]), board):
        value = row.get(param.name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA:
            values[param.name] = value
    return values


# -- analyses -----------------------------------------------------------------------------------------------
def headline(run: Run) -> dict[str, Any]:
    scored = run.scored
    result: dict[str, Any] = {
        "proxy": run.proxy,
        "finished_trials": int(run.board["status"].isin(FINISHED).sum()),
        "trials": len(run.board),
    }
    if scored.empty:
        return result
    best = scored.iloc[0]
    result.update(
        trial_id=best["trial_id"],
        method=best["method"],
        family=family(str(best["method"])),
        params=configuration(best, run.board),
        best_epoch=best.get("best_epoch"),
        epochs=best.get("epochs"),
        score=best["score"],
        target_acc=best.get("target_acc"),
        source_acc=best.get("source_acc"),
        checkpoint=_checkpoint(run, str(best["trial_id"])),
    )
    baseline = scored[scored["method"] == BASELINE]
    if not baseline.empty:
        base = baseline.iloc[0]
        result["baseline"] = {
            "trial_id": base["trial_id"],
            "score": base["score"],
            "target_acc": base.get("target_acc"),
            "best_epoch": base.get("best_epoch"),
            "params": configuration(base, run.board),
        }
    return result


def recommended_ensemble(run: Run) -> dict[str, Any] | None:
    """The ensemble the run recommends shipping (summary.json ``recommendation``, written by a finished search
    with ``recommend: ensemble``); None for a run that recommends its best trial, is still running, or predates
    the setting."""
    recommendation = (run.summary or {}).get("recommendation") or {}
    return recommendation if recommendation.get("kind") == "ensemble" else None


def _checkpoint(run: Run, trial_id: str) -> str | None:
    """The Tune checkpoint kept for the trial (its best epoch by the proxy), if the run's ray/ folder is there."""
    import glob

    pattern = os.path.join(run.directory, "ray", "*", f"*_{trial_id}_*", "checkpoint_*")
    found = sorted(glob.glob(pattern))
    if not found:
        found = sorted(glob.glob(os.path.join(run.directory, "ray", f"train-{trial_id}*", "*", "checkpoint_*")))
    return os.path.relpath(found[-1], run.directory) if found else None


def history_points(run: Run) -> pd.DataFrame:
    """Every (trial, epoch) point of the history with a method."""
    history = run.history
    if history.empty or "method" not in history:
        return history
    return history[history["method"].notna()]


def _pick(points: pd.DataFrame, column: str) -> pd.Series | None:
    if column not in points:
        return None
    values = points[column].replace([np.inf, -np.inf], np.nan)
    if values.notna().sum() == 0:
        return None
    return points.loc[values.idxmax()]


def _source_column(points: pd.DataFrame) -> str:
    return "source_acc" if "source_acc" in points else "proxy_source_acc"


def selection_table(run: Run) -> pd.DataFrame:
    """Per method (and over all methods): oracle accuracy of the point each selection rule picks (DomainBed)."""
    points = history_points(run)
    if points.empty:
        return pd.DataFrame()
    rows = []
    order = (
        points.groupby("method")[run.proxy_column].max().sort_values(ascending=False).index
        if run.proxy_column in points
        else sorted(points["method"].unique())
    )
    groups = [(m, points[points["method"] == m]) for m in order] + [("all methods", points)]
    for name, group in groups:
        row: dict[str, Any] = {"method": name, "trials": group["trial_id"].nunique(), "points": len(group)}
        for rule, column in (
            ("proxy", run.proxy_column),
            ("source_acc", _source_column(group)),
            ("oracle", "target_acc"),
        ):
            pick = _pick(group, column)
            row[f"{rule}_acc"] = pick.get("target_acc") if pick is not None else np.nan
            row[f"{rule}_pick"] = f"{pick['trial_id']}@{value_text(pick['epoch'])}" if pick is not None else "—"
            row[f"{rule}_value"] = pick.get(column) if pick is not None else np.nan
        row["price"] = row["oracle_acc"] - row["proxy_acc"] if finite(row["oracle_acc"]) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def reliability(run: Run) -> dict[str, Any]:
    """Selecting proxy vs oracle per method family, every proxy's quality, and the regret of the pick."""
    points = history_points(run)
    column = run.proxy_column
    if points.empty or not has_values(points, "target_acc") or column not in points:
        return {}
    valid = points[[column, "target_acc", "method", "trial_id", "epoch"]].replace([np.inf, -np.inf], np.nan).dropna()
    valid = valid.assign(family=valid["method"].map(family))
    families = []
    for name, group in [*sorted(valid.groupby("family")), ("all", valid)]:
        enough = len(group) >= 2 and group[column].nunique() > 1 and group["target_acc"].nunique() > 1
        families.append(
            {
                "family": name,
                "methods": ", ".join(sorted(group["method"].unique())),
                "points": len(group),
                "spearman": spearman(group[column], group["target_acc"]) if enough else np.nan,
                "weighted_spearman": weighted_spearman(group[column], group["target_acc"]) if enough else np.nan,
            }
        )
    oracle_best = valid.loc[valid["target_acc"].idxmax()] if not valid.empty else None
    pick = _pick(valid, column)
    regret = (float(oracle_best["target_acc"]) - float(pick["target_acc"])) if pick is not None else np.nan
    try:
        quality = proxy_quality(points)
    except RunError:
        quality = pd.DataFrame()
    return {
        "points": valid,
        "families": pd.DataFrame(families),
        "quality": quality,
        "pick": pick,
        "oracle_best": oracle_best,
        "regret": regret,
    }


def trial_order(run: Run) -> pd.DataFrame:
    """Trials in start order, with their number (1-based), finish time since the run start and best-so-far score."""
    board = run.board.copy()
    start = board["started_at"] if "started_at" in board else pd.Series(np.nan, index=board.index)
    board = board.assign(_start=start.fillna(board.get("ended_at", pd.Series(np.nan, index=board.index))))
    board = board.sort_values(["_start", "trial_id"], na_position="last", kind="stable").reset_index(drop=True)
    board["number"] = np.arange(1, len(board) + 1)
    scores = board["score"].where(board["status"].isin(FINISHED))
    board["best_so_far"] = scores.cummax()
    t0 = run.t0
    board["finished_s"] = board["ended_at"] - t0 if t0 is not None and "ended_at" in board else np.nan
    board["started_s"] = board["started_at"] - t0 if t0 is not None and "started_at" in board else np.nan
    return board.drop(columns="_start")


def problem_trials(run: Run) -> pd.DataFrame:
    """Stopped, failed, diverged and retried trials, each with why."""
    rows = []
    epochs = run.planned_epochs
    scheduler = run.config.get("scheduler") or {}
    retried = set()
    history = run.history
    if not history.empty and "epoch" in history:
        counts = history.groupby(["trial_id", "epoch"]).size()
        retried = set(counts[counts > 1].index.get_level_values(0))
    for _, row in run.board.iterrows():
        status = str(row["status"])
        reason = None
        if status == "stopped":
            done = value_text(row.get("epochs"))
            rule = (
                f"grace period {scheduler.get('grace_period')}, reduction factor {scheduler.get('reduction_factor')}"
                if scheduler
                else "ASHA"
            )
            reason = (
                f"early-stopped by the scheduler after epoch {done} of {epochs or '?'} ({rule}), ranked on {run.proxy}"
            )
            budget = run.config.get("time_budget_s")
            if budget:
                reason += f", or cut by the search's time budget ({duration(budget)})"
        elif status in ("error", "diverged"):
            reason = str(row.get("error") or "no error message recorded")
        elif status not in FINISHED:
            reason = "not finished when the files were written"
        if row["trial_id"] in retried:
            note = "retried: some epochs were reported twice (restored from a checkpoint)"
            reason = f"{reason}; {note}" if reason else note
            status = f"{status}, retried"
        if reason:
            rows.append(
                {
                    "trial_id": row["trial_id"],
                    "method": row["method"],
                    "status": status,
                    "epochs": row.get("epochs"),
                    "reason": reason,
                }
            )
    return pd.DataFrame(rows, columns=["trial_id", "method", "status", "epochs", "reason"])


def importances(run: Run) -> dict[str, dict[str, Any]]:
    """Per method, Optuna's parameter importances on the method's own subspace (or why there are none)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator, evaluator_name = _importance_evaluator()
    scored = run.scored
    result: dict[str, dict[str, Any]] = {}
    for method in sorted(run.board["method"].dropna().unique()):
        trials = scored[scored["method"] == method]
        entry: dict[str, Any] = {"trials": len(trials), "evaluator": evaluator_name, "importances": {}}
        result[method] = entry
        if len(trials) < 2:
            entry["reason"] = f"{len(trials)} scored trial(s); importance needs at least 2"
            continue
        params, distributions = [], {}
        for param in params_in_board(method, run.board):
            values = trials[param.name]
            if values.isna().any() or values.nunique() < 2:
                continue
            distribution = _distribution(param, values)
            if distribution is not None:
                params.append(param.name)
                distributions[param.name] = distribution
        if not params:
            entry["reason"] = "no hyperparameter varied across its trials"
            continue
        if trials["score"].nunique() < 2:
            entry["reason"] = "every trial has the same score"
            continue
        study = optuna.create_study(direction="maximize")
        for _, row in trials.iterrows():
            values = {name: _param_value(distributions[name], row[name]) for name in params}
            study.add_trial(
                optuna.trial.create_trial(params=values, distributions=distributions, value=float(row["score"]))
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                entry["importances"] = dict(
                    optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
                )
        except (ValueError, RuntimeError, ZeroDivisionError, ImportError) as error:
            entry["reason"] = f"the importance evaluator failed ({one_line(str(error))[:120]})"
    return result


def _importance_evaluator() -> tuple[Any, str]:
    import importlib.util

    import optuna

    if importlib.util.find_spec("sklearn") is not None:  # Optuna's default needs scikit-learn
        return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"


def _distribution(param: Any, values: pd.Series) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    observed = list(values)
    if param.choices is not None:
        extra = [v for v in dict.fromkeys(observed) if not any(_same(v, c) for c in param.choices)]
        choices = list(param.choices) + [v.item() if isinstance(v, np.generic) else v for v in extra]
        return CategoricalDistribution(tuple(choices))
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return CategoricalDistribution(tuple(dict.fromkeys(str(v) for v in observed)))
    low = min(float(numbers.min()), float(param.low)) if param.low is not None else float(numbers.min())
    high = max(float(numbers.max()), float(param.high)) if param.high is not None else float(numbers.max())
    log = bool(param.log) and low > 0
    if param.kind == "int" and all(float(v).is_integer() for v in numbers):
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(low, high, log=log)


def _same(a: Any, b: Any) -> bool:
    """Equal as hyperparameter values: 512.0 matches 512, but True never matches 1."""
    if isinstance(a, bool | np.bool_) or isinstance(b, bool | np.bool_):
        return isinstance(a, bool | np.bool_) and isinstance(b, bool | np.bool_) and bool(a) == bool(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _param_value(distribution: Any, value: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if _same(value, choice):
                return choice
        return str(value)
    if isinstance(distribution, IntDistribution):
        return int(value)
    return float(value)


def pareto_front(cost: pd.Series, value: pd.Series) -> pd.Series:
    """True where no other point is at least as cheap and at least as good (and strictly better in one)."""
    mask = pd.Series(False, index=cost.index)
    valid = pd.DataFrame({"cost": cost, "value": value}).replace([np.inf, -np.inf], np.nan).dropna()
    best = -math.inf
    for index, row in valid.sort_values(["cost", "value"], ascending=[True, False], kind="stable").iterrows():
        if row["value"] > best:
            mask[index] = True
            best = row["value"]
    return mask


def provenance(run: Run) -> list[tuple[str, str]]:
    summary = run.summary or {}
    board = run.board
    items: list[tuple[str, str]] = [("run directory", run.directory)]
    if run.finished:
        items.append(("state", f"finished ({RunDir.SUMMARY} written)"))
    else:
        items.append(
            ("state", f"in progress or interrupted: no {RunDir.SUMMARY} yet; this report shows the trials finished "
             "so far")
        )
    items.append(("task", run.label))
    command = summary.get("command")
    items.append(
        (
            "command",
            shlex.join(str(c) for c in command)
            if isinstance(command, list) and command
            else f"not recorded ({RunDir.SUMMARY} from an older adaptune, or the run has not finished)",
        )
    )
    hashes = sorted({str(h) for h in board.get("config_hash", pd.Series(dtype=object)).dropna()})
    config_hash = summary.get("config_hash") or run.config.get("config_hash") or ", ".join(hashes) or "—"
    items.append(("config hash", str(config_hash)))
    items.append(("git revision", str(summary.get("git_revision") or "not recorded")))
    versions = summary.get("versions")
    if not versions and "versions" in board and board["versions"].notna().any():
        try:
            versions = json.loads(board["versions"].dropna().iloc[0])
        except ValueError:
            versions = None
    items.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted((versions or {}).items())) or "not recorded"))
    if summary.get("python") or summary.get("platform"):
        items.append(("python / platform", f"{summary.get('python', '?')} on {summary.get('platform', '?')}"))
    items.append(("machine (driver)", str(summary.get("machine") or "not recorded")))
    if "node_id" in board and board["node_id"].notna().any():
        ips = board["node_ip"] if "node_ip" in board else pd.Series(None, index=board.index, dtype=object)
        nodes = pd.Series([f"{short_id(n)} ({ip or '?'})" for n, ip in zip(board["node_id"], ips) if n]).value_counts()
        items.append(("nodes", "; ".join(f"{node}: {n} trial(s)" for node, n in nodes.items())))
    started = (
        summary.get("started_at")
        if finite(summary.get("started_at"))
        else (board["started_at"].min() if "started_at" in board else None)
    )
    ended = (
        summary.get("ended_at")
        if finite(summary.get("ended_at"))
        else (board["ended_at"].max() if "ended_at" in board else None)
    )
    suffix = "" if finite(summary.get("started_at")) else " (from the trials)"
    items.append(("started", utc_time(started) + (suffix if finite(started) else "")))
    items.append(
        (
            "ended",
            utc_time(ended)
            + ("" if finite(summary.get("ended_at")) else (" (last finished trial so far)" if finite(ended) else "")),
        )
    )
    if finite(summary.get("wall_s")):
        items.append(("wall time", duration(summary["wall_s"])))
    if "wall_s" in board and board["wall_s"].notna().any():
        items.append(
            ("trial compute", f"{duration(board['wall_s'].sum())} over {int(board['wall_s'].notna().sum())} trials")
        )
    if summary.get("runner"):
        items.append(
            (
                "runner / concurrency",
                f"{summary['runner']}; at most {summary.get('max_concurrent', '?')} "
                f"trials at once, {summary.get('max_running', '?')} seen running",
            )
        )
    planned = run.planned_trials
    items.append(("trials", f"{len(board)} finished" + (f" of {planned} planned" if planned else "")))
    items.append(("selecting proxy", run.proxy + (" (auto)" if run.config.get("proxy") == "auto" else "")))
    if "seed" in run.config:
        items.append(("seed", str(run.config["seed"])))
    items.append(("schema_version", ", ".join(f"{k} {v or 'missing'}" for k, v in run.schema_versions.items())))
    return items


def cross_task_table(runs: Sequence[Run], published: pd.DataFrame | None = None) -> tuple[list[str], pd.DataFrame]:
    """Rows: methods (oracle accuracy of each method's best trial by the proxy, in %), then the adaptune pick
    and the oracle upper bound; columns: tasks, then avg. Published rows (``method (published)``) follow ours."""
    labels = column_labels(runs)
    records: dict[str, dict[str, float]] = {}
    methods: list[str] = []
    for run, label in zip(runs, labels):
        scored = run.scored
        for method, group in scored.groupby("method", sort=False):
            if method not in methods:
                methods.append(method)
            records.setdefault(method, {})[label] = (
                100 * float(group.iloc[0]["target_acc"]) if finite(group.iloc[0].get("target_acc")) else np.nan
            )
        if not scored.empty:
            records.setdefault("adaptune pick", {})[label] = (
                100 * float(scored.iloc[0].get("target_acc")) if finite(scored.iloc[0].get("target_acc")) else np.nan
            )
        best = (
            run.history["target_acc"].max()
            if has_values(run.history, "target_acc")
            else (run.board["target_acc"].max() if has_values(run.board, "target_acc") else np.nan)
        )
        records.setdefault("oracle best", {})[label] = 100 * float(best) if finite(best) else np.nan
    methods = sorted(methods, key=lambda m: (family(m), m))
    published_rows: dict[str, dict[str, float]] = {}
    if published is not None:
        by_key = {task_key(label): label for label in labels}
        for run, label in zip(runs, labels):
            by_key.setdefault(task_key(run.label), label)
            by_key.setdefault(task_key(run.label.split(":", 1)[-1]), label)
        for _, row in published.iterrows():
            label = by_key.get(task_key(row["task"])) or by_key.get(task_key(str(row["task"]).split(":", 1)[-1]))
            if label is not None:  # method names match case-insensitively (DANN = dann)
                name = str(row["method"])
                key = next((k for k in published_rows if k.lower() == name.lower()), name)
                published_rows.setdefault(key, {})[label] = float(row["accuracy"])
    ordered: list[tuple[str, dict[str, float]]] = []
    ours_lower = {m.lower() for m in methods}
    for method in methods:
        ordered.append((method, records.get(method, {})))
        ordered += [
            (f"{method} (published)", values)
            for name, values in published_rows.items()
            if name.lower() == method.lower()
        ]
    ordered += [
        (f"{name} (published)", values) for name, values in published_rows.items() if name.lower() not in ours_lower
    ]
    ordered += [("adaptune pick", records.get("adaptune pick", {})), ("oracle best", records.get("oracle best", {}))]
    table = pd.DataFrame(
        [{"method": name, **{label: values.get(label, np.nan) for label in labels}} for name, values in ordered],
        columns=["method", *labels],
    )
    cells = table[labels]
    table["avg"] = cells.mean(axis=1, skipna=True)
    table["tasks"] = cells.notna().sum(axis=1)
    return labels, table


def task_key(task: str) -> str:
    """A task name to match on, ignoring case, arrows and punctuation: "A→W", "a->w" and "A-W" match."""
    return re.sub(r"[^a-z0-9]+", "", str(task).lower().replace("→", "->"))


def column_labels(runs: Sequence[Run]) -> list[str]:
    """One column label per run: its task, plus its directory's name where two runs have the same task."""
    labels = [run.label for run in runs]
    duplicates = {label for label in labels if labels.count(label) > 1}
    return [
        f"{run.label} ({os.path.basename(os.path.abspath(run.directory))})" if run.label in duplicates else run.label
        for run in runs
    ]
