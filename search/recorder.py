"""The Tune callback that turns trial results into the leaderboard and history, and prints progress.

Runs in the driver. Every finished trial (completed, early-stopped, failed) rewrites ``leaderboard.parquet``
atomically, so a crash or Ctrl-C at any moment leaves every finished trial on disk.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from ray import tune

from adaptune.reports.leaderboard import (
    FINISHED,
    HISTORY,
    LEADERBOARD,
    leaderboard_frame,
    rank_rows,
    write_atomic,
)

_RESULT_KEYS_TO_SKIP = ("config", "checkpoint_dir_name", "should_checkpoint", "done", "trial_id", "date",
                        "timestamp", "pid", "hostname", "time_since_restore", "iterations_since_restore",
                        "experiment_tag", "checkpoint_path")


class Recorder(tune.Callback):
    def __init__(self, out: str, *, proxy: str, epochs: int, total_trials: int, param_names: list[str],
                 proxy_names: list[str], config_hash: str, seed: int, versions: str, quiet: bool = False,
                 progress_every_s: float = 15.0):
        self.out = out
        self.metric = f"proxy_{proxy}"
        self.proxy = proxy
        self.epochs = epochs
        self.total_trials = total_trials
        self.param_names = param_names
        self.proxy_names = proxy_names
        self.common = {"proxy": proxy, "config_hash": config_hash, "seed": seed, "versions": versions}
        self.quiet = quiet
        self.progress_every_s = progress_every_s
        self.rows: dict[str, dict[str, Any]] = {}  # trial_id -> leaderboard row (finished or running)
        self.history: list[dict[str, Any]] = []
        self.started = time.time()
        self._last_progress = 0.0
        self.max_running = 0  # evidence that the searcher lets trials run side by side

    # -- Tune hooks ------------------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.rows.setdefault(trial.trial_id, self._base_row(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        row = self.rows.setdefault(trial.trial_id, self._base_row(trial))
        metrics = {k: v for k, v in result.items() if k not in _RESULT_KEYS_TO_SKIP}
        self.history.append({"trial_id": trial.trial_id, "method": trial.config.get("method"), **metrics})
        score = result.get(self.metric)
        # The trial's reported checkpoint is its best epoch by the selecting proxy, not its last.
        if _finite(score) and (not _finite(row.get("score")) or score > row["score"]):
            row.update(score=score, best_epoch=result.get("epoch"), target_acc=result.get("target_acc"),
                       source_acc=result.get("source_acc"),
                       **{f"proxy_{p}": result.get(f"proxy_{p}") for p in self.proxy_names})
        row.update(epochs=result.get("epoch"), wall_s=result.get("time_total_s"), node_ip=result.get("node_ip"),
                   node_id=result.get("node_id"), started_at=result.get("started_at"),
                   ended_at=result.get("reported_at"))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self.rows.setdefault(trial.trial_id, self._base_row(trial))
        row["status"] = "completed" if (row.get("epochs") or 0) >= self.epochs else "stopped"
        self._trial_finished(trials, row)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self.rows.setdefault(trial.trial_id, self._base_row(trial))
        message = _error_message(trial)
        row["status"] = "diverged" if "Diverged" in message else "error"
        row["error"] = message
        row["ended_at"] = time.time()
        self._trial_finished(trials, row)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.max_running = max(self.max_running, sum(t.status == "RUNNING" for t in trials))
        if time.time() - self._last_progress >= self.progress_every_s:
            self.print_progress(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.write()
        self.print_progress(trials, final=True)

    # -- output ----------------------------------------------------------------------------------------
    def _base_row(self, trial: Any) -> dict[str, Any]:
        return {"trial_id": trial.trial_id, "status": "running", **self.common, **dict(trial.config)}

    def _trial_finished(self, trials: list, row: dict[str, Any]) -> None:
        self.write()
        self.print_progress(trials)

    def add_ensemble(self, row: dict[str, Any] | None) -> None:
        """The ensemble of the top-k trials: an extra row, not ranked among the trials."""
        if row is not None:
            self.rows[row["trial_id"]] = {**self.common, **row}

    def finished_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows.values() if r["status"] != "running"]

    def write(self) -> None:
        """Rewrite leaderboard and history with everything finished so far (atomic)."""
        import pandas as pd

        rows = self.finished_rows()
        rank_rows(rows)
        write_atomic(leaderboard_frame(rows, self.param_names, self.proxy_names), os.path.join(self.out, LEADERBOARD))
        finished = {r["trial_id"] for r in rows}
        history = [h for h in self.history if h["trial_id"] in finished]
        if history:
            write_atomic(pd.DataFrame(history), os.path.join(self.out, HISTORY))

    def print_progress(self, trials: list, final: bool = False) -> None:
        self._last_progress = time.time()
        if self.quiet:
            return
        rows = list(self.rows.values())
        done = sum(r["status"] in FINISHED for r in rows)
        failed = sum(r["status"] in ("error", "diverged") for r in rows)
        finished = {r["trial_id"] for r in rows if r["status"] != "running"}
        running = sum(t.status == "RUNNING" and t.trial_id not in finished for t in trials)
        pending = max(0, self.total_trials - done - failed - running)
        best = max((r for r in rows if _finite(r.get("score"))), key=lambda r: r["score"], default=None)
        best_text = f"best {self.proxy}={best['score']:.4f} ({best['method']})" if best else "best: none yet"
        label = "finished" if final else "progress"
        print(f"[{time.time() - self.started:6.0f}s] {label}: {done} done, {running} running, {pending} pending, "
              f"{failed} failed of {self.total_trials} | {best_text}", file=sys.stderr, flush=True)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _error_message(trial: Any) -> str:
    try:
        error = trial.get_error()
    except Exception:  # noqa: BLE001 - the error file may be gone on a remote node; keep what we know
        error = None
    text = str(error) if error else "trial failed"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):  # the exception line is last in a traceback
        if "Error" in line or "Diverged" in line:
            return line[:500]
    return (lines[-1] if lines else text)[:500]
