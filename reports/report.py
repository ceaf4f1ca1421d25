"""``adaptune report``: one self-contained HTML (or Markdown) report of one or several runs.

Sections per run: the recommendation (headline), per-method best under each selection rule, proxy reliability,
search behaviour, hyperparameters, cost, provenance. Several runs (e.g. the 12 Office-Caltech tasks) add a
cross-task table first: methods as rows, tasks as columns, the average last, optionally beside published numbers.

The report is built once as a list of blocks (headings, paragraphs, tables, charts, code) and rendered to HTML
(charts as inline SVG from :mod:`adaptune.reports.svg`, CSS inline, no scripts or external resources) or to
Markdown (the same tables; each chart replaced by a one-line summary). Target labels (``target_acc``) are only
ever *reported* here, as the oracle column; the recommendation is the run's proxy pick.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from . import svg
from .leaderboard import (
    FINISHED,
    HISTORY,
    LEADERBOARD,
    SHARED_KNOBS,
    RunError,
    hyperparameter_columns,
    read_json_object,
    read_run,
    schema_version,
)
from .proxy_quality import proxy_quality, spearman, weighted_spearman

FORMATS = ("html", "md")
SUMMARY = "summary.json"
CONFIG = "config.yaml"
LOG_PARAMS = ("lr", "adv_weight")
BASELINE = "source_only"
REQUIRED_BOARD = ("trial_id", "status", "method", "score")
REQUIRED_HISTORY = ("trial_id", "epoch")
NOT_TRIALS = ("ensemble",)  # leaderboard rows that summarise trials (e.g. the top-k ensemble), not trials


# -- loading ------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One run directory as read from disk; ``summary`` is None while the search is running (or was killed)."""

    directory: str
    board: pd.DataFrame
    history: pd.DataFrame
    summary: dict[str, Any] | None
    config: dict[str, Any]
    config_text: str | None
    schema_versions: dict[str, str | None]
    label: str = ""
    extra: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows that are not trials (status "ensemble")

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def proxy(self) -> str:
        if "proxy" in self.board and self.board["proxy"].notna().any():
            return str(self.board["proxy"].dropna().iloc[0])
        return str(self.config.get("proxy") or "im")

    @property
    def proxy_column(self) -> str:
        return f"proxy_{self.proxy}"

    @property
    def planned_trials(self) -> int | None:
        value = self.config.get("trials")
        return int(value) if isinstance(value, int) else None

    @property
    def planned_epochs(self) -> int | None:
        value = self.config.get("epochs")
        if isinstance(value, int):
            return value
        epochs = self.board.get("epochs")
        return int(epochs.max()) if epochs is not None and epochs.notna().any() else None

    @property
    def has_labels(self) -> bool:
        return _has(self.history, "target_acc") or _has(self.board, "target_acc")

    @property
    def scored(self) -> pd.DataFrame:
        """Finished trials with a finite score, best first."""
        board = self.board
        keep = board["status"].isin(FINISHED) & board["score"].map(svg.finite)
        return board[keep].sort_values("score", ascending=False, kind="stable")

    @property
    def t0(self) -> float | None:
        if self.summary and svg.finite(self.summary.get("started_at")):
            return float(self.summary["started_at"])
        starts = self.board.get("started_at")
        return float(starts.min()) if starts is not None and starts.notna().any() else None


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and pd.to_numeric(frame[column], errors="coerce").notna().any()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_parquet(directory: str, name: str, required: Sequence[str]) -> pd.DataFrame:
    import pyarrow as pa

    try:
        frame = read_run(directory, name)
    except RunError as error:
        raise RunError(_one_line(str(error))) from None
    except (pa.ArrowException, OSError, ValueError) as error:
        raise RunError(
            f"run: {os.path.join(directory, name)} is not a readable Parquet file ({_one_line(str(error))[:200]})"
        ) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RunError(
            f"run: {os.path.join(directory, name)} lacks column(s) {', '.join(missing)}; expected a file "
            "written by `adaptune search` (schema_version 1)"
        )
    return frame


def load_run(directory: str) -> Run:
    """Read a run directory; a RunError (one line, field ``run``) for anything that is not a readable run."""
    if not os.path.isdir(directory):
        raise RunError(f"run: {directory} is not a directory; expected the --out directory of `adaptune search`")
    board = _read_parquet(directory, LEADERBOARD, REQUIRED_BOARD)
    versions = {LEADERBOARD: schema_version(os.path.join(directory, LEADERBOARD))}
    if versions[LEADERBOARD] not in (None, "1"):
        raise RunError(
            f"run: {os.path.join(directory, LEADERBOARD)} has schema_version {versions[LEADERBOARD]}; "
            "expected 1 (upgrade adaptune to read it)"
        )
    if os.path.exists(os.path.join(directory, HISTORY)):
        history = _read_parquet(directory, HISTORY, REQUIRED_HISTORY)
        versions[HISTORY] = schema_version(os.path.join(directory, HISTORY))
    else:
        history = pd.DataFrame(columns=["trial_id", "method", "epoch"])
    if "method" not in history and len(history):
        history = history.merge(board[["trial_id", "method"]], on="trial_id", how="left")
    summary = None
    summary_path = os.path.join(directory, SUMMARY)
    if os.path.exists(summary_path):
        summary = read_json_object(summary_path, "summary", "the JSON object `adaptune search` writes")
    config: dict[str, Any] = {}
    config_text = None
    config_path = os.path.join(directory, CONFIG)
    if os.path.exists(config_path):
        import yaml

        try:
            with open(config_path) as handle:
                config_text = handle.read()
            loaded = yaml.safe_load(config_text)
        except (OSError, yaml.YAMLError) as error:
            raise RunError(f"config: {config_path} is not readable YAML ({_one_line(str(error))[:160]})") from None
        config = loaded if isinstance(loaded, dict) else {}
    board = _typed(board)
    not_trials = board["status"].isin(NOT_TRIALS)
    run = Run(
        directory,
        board[~not_trials].reset_index(drop=True),
        _typed(history),
        summary,
        config,
        config_text,
        versions,
        extra=board[not_trials].reset_index(drop=True),
    )
    run.label = task_label(run)
    return run


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in (
        "score",
        "target_acc",
        "source_acc",
        "wall_s",
        "started_at",
        "ended_at",
        "reported_at",
        "epoch",
        "lr",
        "adv_weight",
        "freeze_depth",
        "best_epoch",
        "epochs",
    ):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in frame.columns:
        if column.startswith("proxy_"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("trial_id", "method", "status", "node_id", "node_ip", "error", "proxy"):
        if column in frame:
            frame[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return frame


def task_label(run: Run) -> str:
    task = run.config.get("task")
    if task:
        return str(task)
    source, target = run.config.get("source"), run.config.get("target")
    if source and target:
        return f"{os.path.basename(str(source).rstrip('/'))}->{os.path.basename(str(target).rstrip('/'))}"
    return os.path.basename(os.path.abspath(run.directory))


def load_published(path: str) -> pd.DataFrame:
    """A CSV with columns method,task,accuracy (percent or fraction) -> accuracy in percent."""
    from adaptune.algorithms.errors import InputError

    if not os.path.isfile(path):
        raise InputError("published", f"expected a CSV file with columns method,task,accuracy; {path} does not exist")
    try:
        table = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise InputError(
            "published",
            f"expected a CSV file with columns method,task,accuracy; {path} is not "
            f"readable ({_one_line(str(error))[:120]})",
        ) from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("method", "task", "accuracy") if c not in table.columns]
    if missing:
        raise InputError("published", f"expected columns method,task,accuracy in {path}; missing {', '.join(missing)}")
    accuracy = pd.to_numeric(table["accuracy"], errors="coerce")
    if accuracy.isna().any():
        bad = table.loc[accuracy.isna(), "accuracy"].iloc[0]
        raise InputError("published", f"expected a number in column accuracy of {path}, got {bad!r}")
    scale = 1.0 if accuracy.max() > 1.0 else 100.0
    return pd.DataFrame(
        {
            "method": table["method"].astype(str).str.strip(),
            "task": table["task"].astype(str).str.strip(),
            "accuracy": accuracy * scale,
        }
    )


# -- formatting ---------------------------------------------------------------------------------------------
def _num(value: Any, digits: int = 4) -> str:
    return f"{float(value):.{digits}g}" if svg.finite(value) else "—"


def _pct(value: Any) -> str:
    return f"{100 * float(value):.1f}%" if svg.finite(value) else "—"


def _pp(value: Any) -> str:
    return f"{100 * float(value):+.1f} pp" if svg.finite(value) else "—"


def _when(stamp: Any) -> str:
    if not svg.finite(stamp):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(stamp)))


def _duration(seconds: Any) -> str:
    if not svg.finite(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes:.0f} min {rest:.0f} s"
    return f"{minutes / 60:.1f} h"


def _value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e6 else f"{float(value):.4g}"
    return str(value)


def _short(node: Any) -> str:
    return str(node)[:8] if node else "?"


# -- methods and their hyperparameters ----------------------------------------------------------------------
def _method_class(method: str) -> Any:
    from adaptune.algorithms.methods import METHODS

    return METHODS.get(method)


def family(method: str) -> str:
    cls = _method_class(method)
    return cls.family if cls is not None else "other"


def params_in_board(method: str, board: pd.DataFrame) -> list[Any]:
    """The method's own conditional subspace: the registry's Param objects present as columns of the board."""
    cls = _method_class(method)
    if cls is None:
        from adaptune.algorithms.hparams import Param

        rows = board[board["method"] == method]
        return [Param(c, None) for c in hyperparameter_columns(board) if rows[c].notna().any()]
    return [p for p in (*cls.shared_params(), *cls.params) if p.name in board.columns]


def configuration(row: pd.Series, board: pd.DataFrame) -> dict[str, Any]:
    values = {}
    for param in params_in_board(str(row["method"]), board):
        value = row.get(param.name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA:
            values[param.name] = value
    return values


def _config_text(row: pd.Series, board: pd.DataFrame) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in configuration(row, board).items()) or "defaults"


# -- analyses (pure functions of a Run; each returns plain data) --------------------------------------------
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


def _points(run: Run) -> pd.DataFrame:
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
    points = _points(run)
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
            row[f"{rule}_pick"] = f"{pick['trial_id']}@{_value(pick['epoch'])}" if pick is not None else "—"
            row[f"{rule}_value"] = pick.get(column) if pick is not None else np.nan
        row["price"] = row["oracle_acc"] - row["proxy_acc"] if svg.finite(row["oracle_acc"]) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def reliability(run: Run) -> dict[str, Any]:
    """Selecting proxy vs oracle per method family, every proxy's quality, and the regret of the pick."""
    points = _points(run)
    column = run.proxy_column
    if points.empty or not _has(points, "target_acc") or column not in points:
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
            done = _value(row.get("epochs"))
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
                reason += f", or cut by the search's time budget ({_duration(budget)})"
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
            entry["reason"] = f"the importance evaluator failed ({_one_line(str(error))[:120]})"
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
        items.append(("state", "finished (summary.json written)"))
    else:
        items.append(
            ("state", "in progress or interrupted: no summary.json yet; this report shows the trials finished so far")
        )
    items.append(("task", run.label))
    command = summary.get("command")
    items.append(
        (
            "command",
            shlex.join(str(c) for c in command)
            if isinstance(command, list) and command
            else "not recorded (summary.json from an older adaptune, or the run has not finished)",
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
        nodes = pd.Series([f"{_short(n)} ({ip or '?'})" for n, ip in zip(board["node_id"], ips) if n]).value_counts()
        items.append(("nodes", "; ".join(f"{node}: {n} trial(s)" for node, n in nodes.items())))
    started = (
        summary.get("started_at")
        if svg.finite(summary.get("started_at"))
        else (board["started_at"].min() if "started_at" in board else None)
    )
    ended = (
        summary.get("ended_at")
        if svg.finite(summary.get("ended_at"))
        else (board["ended_at"].max() if "ended_at" in board else None)
    )
    suffix = "" if svg.finite(summary.get("started_at")) else " (from the trials)"
    items.append(("started", _when(started) + (suffix if svg.finite(started) else "")))
    items.append(
        (
            "ended",
            _when(ended)
            + (
                ""
                if svg.finite(summary.get("ended_at"))
                else (" (last finished trial so far)" if svg.finite(ended) else "")
            ),
        )
    )
    if svg.finite(summary.get("wall_s")):
        items.append(("wall time", _duration(summary["wall_s"])))
    if "wall_s" in board and board["wall_s"].notna().any():
        items.append(
            ("trial compute", f"{_duration(board['wall_s'].sum())} over {int(board['wall_s'].notna().sum())} trials")
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
    labels = _column_labels(runs)
    records: dict[str, dict[str, float]] = {}
    methods: list[str] = []
    for run, label in zip(runs, labels):
        scored = run.scored
        for method, group in scored.groupby("method", sort=False):
            if method not in methods:
                methods.append(method)
            records.setdefault(method, {})[label] = (
                100 * float(group.iloc[0]["target_acc"]) if svg.finite(group.iloc[0].get("target_acc")) else np.nan
            )
        if not scored.empty:
            records.setdefault("adaptune pick", {})[label] = (
                100 * float(scored.iloc[0].get("target_acc"))
                if svg.finite(scored.iloc[0].get("target_acc"))
                else np.nan
            )
        best = (
            run.history["target_acc"].max()
            if _has(run.history, "target_acc")
            else (run.board["target_acc"].max() if _has(run.board, "target_acc") else np.nan)
        )
        records.setdefault("oracle best", {})[label] = 100 * float(best) if svg.finite(best) else np.nan
    methods = sorted(methods, key=lambda m: (family(m), m))
    published_rows: dict[str, dict[str, float]] = {}
    if published is not None:
        by_key = {_task_key(label): label for label in labels}
        for run, label in zip(runs, labels):
            by_key.setdefault(_task_key(run.label), label)
            by_key.setdefault(_task_key(run.label.split(":", 1)[-1]), label)
        for _, row in published.iterrows():
            label = by_key.get(_task_key(row["task"])) or by_key.get(_task_key(str(row["task"]).split(":", 1)[-1]))
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


def _task_key(task: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(task).lower().replace("→", "->"))


def _column_labels(runs: Sequence[Run]) -> list[str]:
    labels = [run.label for run in runs]
    duplicates = {label for label in labels if labels.count(label) > 1}
    return [
        f"{run.label} ({os.path.basename(os.path.abspath(run.directory))})" if run.label in duplicates else run.label
        for run in runs
    ]


# -- document model -----------------------------------------------------------------------------------------
@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str  # **bold** and `code` are the only markup
    kind: str = ""  # "" | note | warn | good


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    emphasis: set[int] = field(default_factory=set)  # row indices to highlight
    numeric: bool = True  # right-align cells that hold a number (not for key/value tables)


@dataclass
class Chart:
    svg: str
    summary: str  # what the Markdown report prints instead


@dataclass
class Charts:
    charts: list[Chart]


@dataclass
class Code:
    text: str
    summary: str


Block = Heading | Para | Table | Chart | Charts | Code


def _method_colors(run: Run) -> dict[str, str]:
    return {m: svg.color(i) for i, m in enumerate(sorted(run.board["method"].dropna().unique()))}


def _section_headline(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Recommendation", f"{anchor}-headline")]
    head = headline(run)
    if "method" not in head:
        blocks.append(
            Para(f"No finished trial with a score ({run.proxy}) yet; {head['trials']} trial(s) on disk.", "warn")
        )
        return blocks
    params = ", ".join(f"`{k}={_value(v)}`" for k, v in head["params"].items()) or "its defaults"
    oracle = (
        f"; oracle target accuracy **{_pct(head['target_acc'])}**"
        if svg.finite(head.get("target_acc"))
        else "; no target labels, so no oracle accuracy"
    )
    ensemble = recommended_ensemble(run)
    single = (
        f"**{head['method']}** ({head['family']}) with {params}, the checkpoint of epoch "
        f"{_value(head['best_epoch'])} of trial `{head['trial_id']}`: {run.proxy} = **{_num(head['score'])}**{oracle}."
    )
    if ensemble is None:
        blocks.append(Para(f"Ship {single}", "good"))
    else:
        members = dict(zip(ensemble["members"], ensemble["methods"]))
        ensemble_oracle = (
            f"; oracle target accuracy **{_pct(ensemble['target_acc'])}**" if svg.finite(ensemble.get("target_acc"))
            else ""
        )
        blocks.append(
            Para(
                f"Ship the ensemble **{ensemble['trial_id']}**: average the target predictions of the top "
                f"{len(members)} trials by {run.proxy} ("
                + ", ".join(f"`{t}` {m}" for t, m in members.items())
                + f"), each at its best checkpoint: {run.proxy} = **{_num(ensemble.get('score'))}**{ensemble_oracle}. "
                "In our proxy benchmark this loses less against the oracle than any single pick "
                "(benchmarks/results/proxies.md).",
                "good",
            )
        )
        blocks.append(Para(f"The best single trial, to ship one model: {single}"))
    rows = [
        ["method", f"{head['method']} ({head['family']})"],
        *[[k, _value(v)] for k, v in head["params"].items()],
        ["trial", str(head["trial_id"])],
        [
            "checkpoint",
            f"epoch {_value(head['best_epoch'])} of {_value(head['epochs'])} (best by {run.proxy})"
            + (f": {head['checkpoint']}" if head.get("checkpoint") else ""),
        ],
        [f"proxy score ({run.proxy})", _num(head["score"])],
        ["oracle target accuracy", _pct(head.get("target_acc")) if run.has_labels else "— (no target labels)"],
        ["source validation accuracy", _pct(head.get("source_acc"))],
    ]
    baseline = head.get("baseline")
    if baseline:
        rows.append(
            [
                f"source-only baseline ({BASELINE}, best by {run.proxy})",
                f"{run.proxy} {_num(baseline['score'])}, oracle {_pct(baseline.get('target_acc'))}, trial "
                f"{baseline['trial_id']} epoch {_value(baseline.get('best_epoch'))}",
            ]
        )
        if svg.finite(head.get("target_acc")) and svg.finite(baseline.get("target_acc")):
            rows.append(["gain over source-only (oracle)", _pp(head["target_acc"] - baseline["target_acc"])])
    else:
        rows.append(["source-only baseline", f"not in this run (add {BASELINE} to --methods)"])
    for _, extra in run.extra.iterrows():
        members = extra.get("members")
        rows.append(
            [
                f"{extra['status']} {extra['trial_id']} (not ranked)",
                f"{run.proxy} {_num(extra.get('score'))}, oracle {_pct(extra.get('target_acc'))}"
                + (f", members {members}" if members else ""),
            ]
        )
    blocks.append(Table(["", "value"], rows, numeric=False))
    return blocks


def _section_selection(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Per-method best under each selection rule", f"{anchor}-selection")]
    table = selection_table(run)
    if table.empty:
        blocks.append(Para("No history yet: history.parquet is written once a trial finishes.", "warn"))
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
            _pct(r["proxy_acc"]),
            _pct(r["source_acc_acc"]),
            _pct(r["oracle_acc"]),
            _pp(r["price"]),
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
    if not data and _points(run).empty:
        blocks.append(Para("No history yet: history.parquet is written once a trial finishes.", "warn"))
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
            f"`{best['trial_id']}` epoch {_value(best['epoch'])} at **{_pct(best['target_acc'])}**; "
            f"the {run.proxy} pick ({pick['method']} `{pick['trial_id']}` epoch {_value(pick['epoch'])}) "
            f"reaches **{_pct(pick['target_acc'])}**, a regret of **{_pp(data['regret'])}**."
        )
    )
    families = data["families"]
    blocks.append(
        Table(
            ["family", "methods", "points", "Spearman", "weighted Spearman"],
            [
                [r["family"], r["methods"], str(r["points"]), _num(r["spearman"], 3), _num(r["weighted_spearman"], 3)]
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
        series = [
            svg.Series(
                m,
                [
                    (
                        r[run.proxy_column],
                        r["target_acc"],
                        f"{m} {r['trial_id']}@{_value(r['epoch'])}: "
                        f"{run.proxy} {_num(r[run.proxy_column])}, oracle {_pct(r['target_acc'])}",
                    )
                    for _, r in g.iterrows()
                ],
                colors.get(m, svg.color(0)),
            )
            for m, g in group.groupby("method")
        ]
        if pick["family"] == name:
            series.append(
                svg.Series(
                    "the pick", [(pick[run.proxy_column], pick["target_acc"], "the pick")], "#222", marker="diamond"
                )
            )
        stats = families[families["family"] == name].iloc[0]
        note = f"ρ={_num(stats['spearman'], 2)}, wρ={_num(stats['weighted_spearman'], 2)}"
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
                _num(r["spearman"], 3),
                _num(r["weighted_spearman"], 3),
                _pp(r["top1_regret"]),
                _pct(r["topk_oracle_mean"]),
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
    scored = order[order["score"].map(svg.finite) & order["status"].isin(FINISHED)]
    series = [
        svg.Series(
            m,
            [
                (
                    r["number"],
                    r["score"],
                    f"#{r['number']} {r['trial_id']} {m}: {run.proxy} "
                    f"{_num(r['score'])}, oracle {_pct(r.get('target_acc'))}, {r['status']}",
                )
                for _, r in g.iterrows()
            ],
            colors.get(m, svg.color(0)),
        )
        for m, g in scored.groupby("method")
    ]
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
            f"best {run.proxy} {_num(scored['score'].max())} first reached at trial "
            f"#{int(scored.loc[scored['score'].idxmax(), 'number']) if not scored.empty else '—'} of "
            f"{len(order)}",
        )
    ]
    timed = scored[scored["finished_s"].map(svg.finite)].sort_values("finished_s", kind="stable")
    if not timed.empty:
        running_best = timed["score"].cummax()
        time_series = [
            svg.Series(
                m,
                [
                    (r["finished_s"], r["score"], f"{r['trial_id']} {m} finished at {_duration(r['finished_s'])}")
                    for _, r in g.iterrows()
                ],
                colors.get(m, svg.color(0)),
            )
            for m, g in timed.groupby("method")
        ]
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
                f"last improvement at {_duration(timed.loc[running_best.idxmax(), 'finished_s'])} after the start",
            )
        )
    blocks.append(Charts(charts))
    lanes: dict[str, list[svg.Bar]] = {}
    for _, r in order.iterrows():
        start, end = r.get("started_s"), r.get("finished_s")
        if not (svg.finite(start) and svg.finite(end)):
            continue
        node = f"{r.get('node_ip') or '?'} {_short(r.get('node_id'))}"
        lanes.setdefault(node, []).append(
            svg.Bar(
                float(start),
                float(end),
                svg.STATUS_COLORS.get(str(r["status"]), "#999"),
                f"{r['trial_id']} {r['method']} ({r['status']}): {_duration(start)} → {_duration(end)}, "
                f"{_value(r.get('epochs'))} epoch(s), {run.proxy} {_num(r['score'])}",
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
                    [r["trial_id"], r["method"], r["status"], _value(r["epochs"]), r["reason"]]
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
        series = [
            svg.Series(
                m,
                [
                    (
                        r[param],
                        r["score"],
                        f"{r['trial_id']} {m}: {param}={_value(r[param])}, {run.proxy} {_num(r['score'])}",
                    )
                    for _, r in g.iterrows()
                    if svg.finite(r[param])
                ],
                colors.get(m, svg.color(0)),
            )
            for m, g in scored.groupby("method")
        ]
        constant = values.nunique() == 1
        summary = (
            f"{param} constant at {_value(values.iloc[0])} in this run"
            if constant
            else f"{param}: best {run.proxy} at {param}={_value(scored.loc[scored[param].notna()].iloc[0][param])}"
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
                [float(v) if svg.finite(v) else None for v in scored[p]],
                log=p in LOG_PARAMS and bool((scored[p].dropna() > 0).all()),
            )
            for p in axes_names
        ]
        axes.append(svg.Axis(run.proxy, list(scored["score"].astype(float))))
        if run.has_labels:
            axes.append(svg.Axis("target_acc", [float(v) if svg.finite(v) else None for v in scored["target_acc"]]))
        line_colors = [colors.get(m, svg.color(0)) for m in scored["method"]]
        tips = [
            f"{r['trial_id']} {r['method']}: {_config_text(r, run.board)}; {run.proxy} {_num(r['score'])}"
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
    if scored.empty or "wall_s" not in scored or not scored["wall_s"].map(svg.finite).any():
        blocks.append(Para("No timed trial yet.", "warn"))
        return blocks
    colors = _method_colors(run)
    charts, fronts = [], {}
    targets = [("score", run.proxy)] + ([("target_acc", "target_acc (oracle)")] if run.has_labels else [])
    for column, label in targets:
        front = pareto_front(scored["wall_s"], scored[column])
        fronts[column] = front
        series = [
            svg.Series(
                m,
                [
                    (
                        r["wall_s"],
                        r[column],
                        f"{r['trial_id']} {m}: {_duration(r['wall_s'])}, {label} {_num(r[column])}",
                    )
                    for _, r in g.iterrows()
                ],
                colors.get(m, svg.color(0)),
            )
            for m, g in scored.groupby("method")
        ]
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
                    f"{r['method']} {_duration(r['wall_s'])} → {_num(r[column])}" for _, r in on_front.iterrows()
                ),
            )
        )
    blocks.append(Charts(charts))
    on_any = fronts["score"] | fronts.get("target_acc", False)
    rows = [
        [
            r["trial_id"],
            r["method"],
            _duration(r["wall_s"]),
            _num(r["score"]),
            _pct(r.get("target_acc")),
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
            [[m, str(int(r["count"])), _duration(r["sum"]), _duration(r["median"])] for m, r in per_method.iterrows()],
            caption="compute per method (scored trials)",
        )
    )
    return blocks


def _section_provenance(run: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, "Provenance", f"{anchor}-provenance")]
    blocks.append(Table(["", "value"], [[k, v] for k, v in provenance(run)], numeric=False))
    if run.config_text:
        blocks.append(Code(run.config_text.rstrip(), "config.yaml (resolved configuration)"))
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
        f"**Run in progress** (or interrupted): `{SUMMARY}` has not been written yet. This report covers the "
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
            if svg.finite(r["avg"])
            else "—"
        )
        rows.append([name, *[f"{r[label]:.1f}" if svg.finite(r[label]) else "—" for label in labels], avg])
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
        known = {_task_key(x) for run in runs for x in (run.label, run.label.split(":", 1)[-1])}
        unmatched = sorted(
            {
                t
                for t in published["task"]
                if _task_key(t) not in known and _task_key(str(t).split(":", 1)[-1]) not in known
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
    for i, (run, label) in enumerate(zip(runs, _column_labels(runs)), start=1):
        blocks.append(Heading(2, f"Run {i}: {label}", f"run{i}"))
        blocks += run_blocks(run, 3, f"run{i}")
    return title, blocks


# -- rendering ----------------------------------------------------------------------------------------------
CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f4f5f7; color: #1d1f23; font: 14px/1.5 system-ui, -apple-system, "Segoe UI",
  Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 2px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-top: 8px; border-top: 2px solid #e4e6ea; }
h3 { font-size: 16px; margin: 22px 0 6px; } h4 { font-size: 14px; margin: 16px 0 4px; }
.meta { color: #666; margin: 0 0 10px; }
nav { background: #f7f8fa; border: 1px solid #e4e6ea; padding: 6px 12px; border-radius: 6px; }
nav a { margin-right: 12px; color: #2a5db0; text-decoration: none; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
p.caption { color: #555; margin: 10px 0 0; font-style: italic; font-size: 13px; }
th, td { border: 1px solid #dde0e5; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } tr.em td { background: #fff6d6; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.good { background: #eaf6ec; border-left: 4px solid #59a14f; padding: 8px 12px; font-size: 15px; }
p.warn { background: #fff1e0; border-left: 4px solid #f28e2b; padding: 8px 12px; }
p.note { background: #eef3fa; border-left: 4px solid #4e79a7; padding: 6px 12px; }
code { background: #f0f1f4; padding: 0 3px; border-radius: 3px; font-size: 12.5px; }
pre { background: #f7f8fa; border: 1px solid #e4e6ea; padding: 8px 12px; overflow-x: auto; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
svg.chart { border: 1px solid #e4e6ea; border-radius: 4px; background: #fff; max-width: 100%; height: auto; }
footer { color: #888; font-size: 12px; margin-top: 40px; }
"""

_NUMERIC = re.compile(r"^[−+\-]?[\d.]+(e[+-]?\d+)?(%| pp| s| min \d+ s| h)?( \(\d+/\d+\))?\*?$|^—$")


def _inline_html(text: str) -> str:
    out = escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def render_html(title: str, blocks: Sequence[Block], generated: str) -> str:
    toc = [b for b in blocks if isinstance(b, Heading) and b.anchor and b.level == 2]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f'<h1>{escape(title)}</h1><p class="meta">{escape(generated)}</p>',
    ]
    if len(toc) > 1:
        parts.append("<nav>" + "".join(f'<a href="#{escape(h.anchor)}">{escape(h.text)}</a>' for h in toc) + "</nav>")
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{escape(block.anchor)}"' if block.anchor else ""
            parts.append(f"<h{block.level}{anchor}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            cls = f' class="{block.kind}"' if block.kind else ""
            parts.append(f"<p{cls}>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Chart):
            parts.append(f'<div class="charts"><figure style="margin:0">{block.svg}</figure></div>')
        elif isinstance(block, Charts):
            parts.append(
                '<div class="charts">'
                + "".join(f'<figure style="margin:0">{c.svg}</figure>' for c in block.charts)
                + "</div>"
            )
        elif isinstance(block, Code):
            parts.append(
                f"<details><summary>{escape(block.summary)}</summary><pre>{escape(block.text)}</pre></details>"
            )
    parts.append(f"<footer>{escape(generated)}. Self-contained: no scripts, no external resources.</footer>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _html_table(table: Table) -> str:
    caption = f'<p class="caption">{escape(table.caption)}</p>' if table.caption else ""
    rows = [
        f"{caption}<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr></thead><tbody>"
    ]
    for i, row in enumerate(table.rows):
        cls = ' class="em"' if i in table.emphasis else ""
        cells = "".join(
            f'<td class="n">{_inline_html(c)}</td>'
            if j and table.numeric and _NUMERIC.match(c)
            else f"<td>{_inline_html(c)}</td>"
            for j, c in enumerate(row)
        )
        rows.append(f"<tr{cls}>{cells}</tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def _md_text(text: object) -> str:
    """Names in a run (methods, paths, trial ids) are user data: Markdown viewers render raw HTML, so no ``<``
    may open a tag (``>`` is left alone: task names such as A->W read as they are)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;")


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, blocks: Sequence[Block], generated: str) -> str:
    lines = [f"# {_md_text(title)}", "", f"_{generated}_", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {_md_text(block.text)}", ""]
        elif isinstance(block, Para):
            prefix = {"warn": "> **Note:** ", "note": "> ", "good": "> "}.get(block.kind, "")
            lines += [prefix + _md_text(block.text), ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"_{_md_text(block.caption)}_", ""]
            lines.append("| " + " | ".join(_md_cell(h) or " " for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            for i, row in enumerate(block.rows):
                cells = [f"**{_md_cell(c)}**" if i in block.emphasis and c and c != "—" else _md_cell(c) for c in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(block, Chart):
            lines += [f"- chart: {_md_text(block.summary)}", ""]
        elif isinstance(block, Charts):
            lines += [f"- chart: {_md_text(c.summary)}" for c in block.charts] + [""]
        elif isinstance(block, Code):
            lines += [
                f"<details><summary>{_md_text(block.summary)}</summary>",
                "",
                "```yaml",
                block.text,
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def render(runs: Sequence[Run], fmt: str = "html", published: pd.DataFrame | None = None) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        adaptune_version = version("adaptune")
    except PackageNotFoundError:
        adaptune_version = "?"
    generated = f"generated by adaptune {adaptune_version} on {_when(time.time())}"
    title, blocks = build_document(runs, published)
    if fmt == "md":
        return render_markdown(title, blocks, generated)
    return render_html(title, blocks, generated)


def default_out(directories: Sequence[str], fmt: str) -> str:
    if len(directories) == 1:
        return os.path.join(directories[0], f"report.{fmt}")
    return f"adaptune-report.{fmt}"


def write_report(
    directories: Sequence[str], out: str | None = None, fmt: str | None = None, published: str | None = None
) -> str:
    """Read the runs, render the report and write it to ``out`` (``-`` = stdout); returns where it went."""
    from adaptune.algorithms.errors import InputError

    if fmt is None:
        fmt = "md" if out and out.lower().endswith((".md", ".markdown")) else "html"
    if fmt not in FORMATS:
        raise InputError("format", f"expected one of: {', '.join(FORMATS)}, got {fmt!r}")
    if out and out != "-" and os.path.isdir(out):
        raise InputError("out", f"expected a file path, {out} is a directory")
    table = load_published(published) if published else None
    runs = [load_run(directory) for directory in directories]
    text = render(runs, fmt, table)
    target = out or default_out(directories, fmt)
    if target == "-":
        import sys

        sys.stdout.write(text)
        return "-"
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".tmp-{os.path.basename(target)}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as error:
        raise InputError("out", f"expected a writable file path, {target} is not ({error.strerror})") from None
    return target
