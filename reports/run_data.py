"""A run directory read back for ``adaptune report``: the leaderboard, history, summary and config of one
search, read through :class:`~.run_dir.RunDir`, checked and typed (:func:`load_run`), and the published results
a cross-task table compares against (:func:`load_published`). Anything that is not a readable run is one
:class:`~.run_dir.RunError` line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .leaderboard import FINISHED, SHARED_KNOBS
from .run_dir import RunDir
from .values import finite, one_line

REQUIRED_BOARD = ("trial_id", "status", "method", "score")
REQUIRED_HISTORY = ("trial_id", "epoch")
NOT_TRIALS = ("ensemble",)  # leaderboard rows that summarise trials (e.g. the top-k ensemble), not trials


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
        """The selecting proxy: as the trials recorded it, else as the finished search did (``auto`` resolved),
        else the configured one, ``auto`` resolved by the product's rule."""
        from adaptune.algorithms.proxies import auto_proxy

        if "proxy" in self.board and self.board["proxy"].notna().any():
            return str(self.board["proxy"].dropna().iloc[0])
        if self.summary and self.summary.get("proxy"):
            return str(self.summary["proxy"])
        requested = self.config.get("proxy") or "auto"  # "auto": the search config's default
        # Neither the config nor the files say which input kind the task had: auto_proxy's rule without it.
        return str(requested) if requested != "auto" else auto_proxy()

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
        return has_values(self.history, "target_acc") or has_values(self.board, "target_acc")

    @property
    def scored(self) -> pd.DataFrame:
        """Finished trials with a finite score, best first: in rank order, the search's selection order (by score,
        trials held back by the source gap last)."""
        board = self.board
        keep = board["status"].isin(FINISHED) & board["score"].map(finite)
        return board[keep].sort_values(["rank", "score"], ascending=[True, False], na_position="last", kind="stable")

    @property
    def t0(self) -> float | None:
        if self.summary and finite(self.summary.get("started_at")):
            return float(self.summary["started_at"])
        starts = self.board.get("started_at")
        return float(starts.min()) if starts is not None and starts.notna().any() else None


def has_values(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` exists and holds at least one number."""
    return column in frame and pd.to_numeric(frame[column], errors="coerce").notna().any()


def load_run(directory: str) -> Run:
    """Read a run directory; a RunError (one line, field ``run``) for anything that is not a readable run."""
    run_dir = RunDir(directory)
    board = run_dir.read_table(RunDir.LEADERBOARD, REQUIRED_BOARD)
    versions = {RunDir.LEADERBOARD: run_dir.schema_version(RunDir.LEADERBOARD)}
    if run_dir.exists(RunDir.HISTORY):
        history = run_dir.read_table(RunDir.HISTORY, REQUIRED_HISTORY)
        versions[RunDir.HISTORY] = run_dir.schema_version(RunDir.HISTORY)
    else:
        history = pd.DataFrame(columns=["trial_id", "method", "epoch"])
    if "method" not in history and len(history):
        history = history.merge(board[["trial_id", "method"]], on="trial_id", how="left")
    summary = run_dir.read_summary(field="summary")
    config, config_text = run_dir.read_config()
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
        *SHARED_KNOBS,
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
            f"readable ({one_line(str(error))[:120]})",
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
