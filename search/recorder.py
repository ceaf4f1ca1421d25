"""The Tune callback that turns trial results into the leaderboard and history, and prints progress.

Runs in the driver. Every finished trial (completed, early-stopped, failed) rewrites ``leaderboard.parquet``
atomically, so a crash or Ctrl-C at any moment leaves every finished trial on disk. ``history.parquet``
also keeps the epochs of running trials, and ``status.json`` the counts that ``adaptune status`` shows.

On ``adaptune resume`` the recorder starts from those files: finished trials stay as they were (one row per
trial id, whatever Tune replays), a trial interrupted mid-way continues its best-so-far from its recorded
epochs, and an epoch reported twice (a trial retried from an earlier checkpoint) is kept once.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ray import tune

from adaptune.reports.leaderboard import FINISHED, leaderboard_frame, rank_rows, selection_order
from adaptune.reports.run_dir import RunDir
from adaptune.reports.values import duration, finite

from .step_budget import spent_steps
from .trial import CHECKPOINT_PATH_KEY

FAILED = ("error", "diverged")
NO_RESULT = "the trial ended without any of its results reaching the search"
# Recorders by run directory: Tune pickles its callbacks into the experiment state, and a restored
# experiment must report to the recorder the resuming driver built (see Recorder.__reduce__).
_ACTIVE: dict[str, Recorder] = {}


def _active_recorder(out: str) -> Recorder:
    if out not in _ACTIVE:
        raise RuntimeError(f"no recorder registered for {out}; restore the search through `adaptune resume`")
    return _ACTIVE[out]

_RESULT_KEYS_TO_SKIP = ("config", "checkpoint_dir_name", "should_checkpoint", "done", "trial_id", "date",
                        "timestamp", "pid", "hostname", "time_since_restore", "iterations_since_restore",
                        "experiment_tag", CHECKPOINT_PATH_KEY)


class Recorder(tune.Callback):
    def __init__(self, out: str, *, proxy: str, epochs: int, total_trials: int, param_names: list[str],
                 proxy_names: list[str], config_hash: str, seed: int, versions: str, quiet: bool = False,
                 preprocess: str = "none", source_gap: float | None = None, step_budget: int | None = None,
                 progress_every_s: float = 15.0, checkpoint_proxy: str | None = None):
        self.out = out
        self.run_dir = RunDir(out)
        self.metric = f"proxy_{proxy}"
        self.proxy = proxy
        # A trial's row is its best epoch by this proxy (the epoch its checkpoint keeps), scored by ``proxy`` there.
        self.checkpoint_proxy = checkpoint_proxy or proxy
        self.checkpoint_metric = f"proxy_{self.checkpoint_proxy}"
        self.source_gap = source_gap  # trials further below the best held-out source accuracy rank after the others
        self.epochs = epochs
        self.total_trials = total_trials
        self.step_budget = step_budget  # the steps after which no trial starts (None: the trial count decides)
        self.param_names = param_names
        self.proxy_names = proxy_names
        self.common = {"proxy": proxy, "config_hash": config_hash, "seed": seed, "versions": versions,
                       "preprocess": preprocess}
        self.quiet = quiet
        self.progress_every_s = progress_every_s
        self.rows: dict[str, dict[str, Any]] = {}  # trial_id -> leaderboard row (finished or running)
        self.history: dict[tuple[str, int], dict[str, Any]] = {}  # (trial_id, epoch) -> metrics
        self.started = time.time()
        self._last_progress = 0.0
        self._last_write = 0.0
        self.max_running = 0  # evidence that the searcher lets trials run side by side
        self.state = "running"
        self.counts = {"done": 0, "running": 0, "pending": total_trials, "failed": 0}
        self.nodes: set[str] = set()
        self.running_by_node: dict[str, int] = {}
        self.lost: set[str] = set()  # trials that ended in error when their node died, retries unused
        # On a terminal the progress line is redrawn in place; in logs and CI it is a new line every 15 s.
        self.live = not quiet and sys.stderr.isatty()
        _ACTIVE[out] = self

    def __reduce__(self) -> tuple:
        return _active_recorder, (self.out,)

    def load_existing(self) -> None:
        """Continue a run: finished rows from the leaderboard, every recorded epoch from the history."""
        import pandas as pd

        if self.run_dir.exists(RunDir.LEADERBOARD):
            for row in self.run_dir.read_table(RunDir.LEADERBOARD).to_dict("records"):
                if row.get("status") in (*FINISHED, *FAILED):
                    self.rows[row["trial_id"]] = {k: None if _missing(v) else v for k, v in row.items()}
        if self.run_dir.exists(RunDir.HISTORY):
            for record in self.run_dir.read_table(RunDir.HISTORY).to_dict("records"):
                record = {k: v for k, v in record.items() if not (isinstance(v, float) and pd.isna(v))
                          or k.startswith("proxy_") or k == "target_acc"}
                self.history[(record["trial_id"], int(record["epoch"]))] = record

    def reopen_errors(self) -> None:
        """Rows of trials that ended in error become running again, for a resume that retries them."""
        for row in self.rows.values():
            if row["status"] == "error":
                row.update(status="running", error=None, ended_at=None)
        self.lost.clear()

    def errors_all_lost(self) -> bool:
        """Some trials ended in error, every one of them when its actor or node died with retries left."""
        errors = {r["trial_id"] for r in self.rows.values() if r["status"] == "error"}
        return bool(errors) and errors <= self.lost

    # -- Tune hooks ------------------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._row(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        row = self._row(trial)
        if row["status"] != "running":
            return  # finished before a resume; Tune may replay it, the leaderboard keeps the first record
        if result.get("diverged"):  # the trial's last word: no epoch to record
            row.update(error=result["diverged"], diverged=True)
            return
        metrics = {k: v for k, v in result.items() if k not in _RESULT_KEYS_TO_SKIP}
        record = {"trial_id": trial.trial_id, "method": trial.config.get("method"), **metrics}
        self.history[(trial.trial_id, int(result.get("epoch") or 0))] = record
        self._update_row(row, result)

    def _update_row(self, row: dict[str, Any], result: dict[str, Any]) -> None:
        kept = result.get(self.checkpoint_metric)
        # The trial's reported checkpoint is its best epoch by the checkpoint proxy, not its last.
        if finite(kept) and (not finite(row.get(self.checkpoint_metric)) or kept > row[self.checkpoint_metric]):
            row.update(score=result.get(self.metric), best_epoch=result.get("epoch"),
                       target_acc=result.get("target_acc"), source_acc=result.get("source_acc"),
                       **{f"proxy_{p}": result.get(f"proxy_{p}") for p in self.proxy_names})
        row.update(epochs=result.get("epoch"), steps=result.get("steps"), wall_s=result.get("time_total_s"),
                   node_ip=result.get("node_ip"),
                   node_id=result.get("node_id"), started_at=row.get("started_at") or result.get("started_at"),
                   ended_at=result.get("reported_at"))
        if result.get("node_id"):
            self.nodes.add(result["node_id"])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self._row(trial)
        if row["status"] != "running":
            return
        if row.pop("diverged", False):
            row["status"] = "diverged"
        elif row.get("epochs") is None and trial.last_result.get("done"):
            # The trial's function returned, yet no result of it reached the search: nothing to rank, and
            # `resume --retry-errors` reruns it like any failed trial.
            row.update(status="error", error=NO_RESULT, ended_at=time.time())
        else:
            row["status"] = "completed" if (row.get("epochs") or 0) >= self.epochs else "stopped"
        self._trial_finished(trials, row)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self._row(trial)
        if row["status"] != "running":
            return
        row["status"] = "error"  # divergence ends a trial normally (search.trial._run), it never lands here
        row["error"] = _error_message(trial)
        if _lost_with_retries_left(trial):
            self.lost.add(trial.trial_id)
        row["ended_at"] = time.time()
        self._trial_finished(trials, row)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.max_running = max(self.max_running, sum(t.status == "RUNNING" for t in trials))
        now = time.time()
        if now - self._last_progress >= (1.0 if self.live else self.progress_every_s):
            self.print_progress(trials)
        if now - self._last_write >= self.progress_every_s:
            self._last_write = now
            self.write()  # also the history of running trials, and the status

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.print_progress(trials, final=True)  # counts first: status.json must not lag one event behind
        self.write()

    # -- output ----------------------------------------------------------------------------------------
    def _row(self, trial: Any) -> dict[str, Any]:
        """The trial's row; a trial first seen after a resume continues from its recorded epochs."""
        if trial.trial_id not in self.rows:
            row = {"trial_id": trial.trial_id, "status": "running", **self.common, **dict(trial.config)}
            for (trial_id, _), record in sorted(self.history.items(), key=lambda item: item[0][1]):
                if trial_id == trial.trial_id:
                    self._update_row(row, record)
            self.rows[trial.trial_id] = row
        return self.rows[trial.trial_id]

    def _trial_finished(self, trials: list, row: dict[str, Any]) -> None:
        self.print_progress(trials)  # updates the counts that write() puts in status.json
        self.write()

    def add_ensemble(self, row: dict[str, Any]) -> None:
        """The ensemble of the top-k trials: an extra row, not ranked among the trials."""
        self.rows[row["trial_id"]] = {**self.common, **row}

    def finished_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows.values() if r["status"] != "running"]

    def write(self) -> None:
        """Rewrite leaderboard (finished trials), history (every recorded epoch) and status, each atomically."""
        import pandas as pd

        rows = self.finished_rows()
        rank_rows([r for r in rows if r["status"] != "ensemble"], self.source_gap)
        self.run_dir.write_table(RunDir.LEADERBOARD, leaderboard_frame(rows, self.param_names, self.proxy_names))
        if self.history:
            history = [self.history[key] for key in sorted(self.history)]
            self.run_dir.write_table(RunDir.HISTORY, pd.DataFrame(history))
        self.run_dir.write_status(self.status())

    def best_row(self) -> dict[str, Any] | None:
        admitted, _ = selection_order([r for r in self.rows.values() if r["status"] != "ensemble"], self.source_gap)
        return admitted[0] if admitted else None

    def status(self) -> dict[str, Any]:
        best = self.best_row()
        return {"state": self.state, **self.counts, "planned": self.total_trials, "steps": self.steps_spent(),
                "step_budget": self.step_budget, "proxy": self.proxy, "checkpoint_proxy": self.checkpoint_proxy,
                "running_by_node": self.running_by_node,
                "best": None if best is None else {k: best.get(k) for k in ("trial_id", "method", "score",
                                                                             "target_acc")},
                "nodes": sorted(self.nodes), "started_at": self.started, "updated_at": time.time()}

    def steps_spent(self) -> int:
        """The optimizer steps the trials have reported so far, running ones included (what the budget counts)."""
        return spent_steps(r for r in self.rows.values() if r["status"] != "ensemble")

    def budget_spent(self) -> bool:
        """Whether the trials have spent the step budget, so that no trial starts any more."""
        return self.step_budget is not None and self.steps_spent() >= self.step_budget

    def _count(self, trials: list, final: bool = False) -> None:
        rows = [r for r in self.rows.values() if r["status"] != "ensemble"]
        done = sum(r["status"] in FINISHED for r in rows)
        failed = sum(r["status"] in FAILED for r in rows)
        finished = {r["trial_id"] for r in rows if r["status"] != "running"}
        running = sum(t.status == "RUNNING" and t.trial_id not in finished for t in trials)
        # Once the experiment ends, or its step budget is spent, no trial is pending: the budget may stop a search
        # short of its planned trials.
        pending = 0 if final or self.budget_spent() else max(0, self.total_trials - done - failed - running)
        self.counts = {"done": done, "running": running, "pending": pending, "failed": failed}

    def print_progress(self, trials: list, final: bool = False) -> None:
        self._last_progress = time.time()
        self._count(trials, final)
        self.running_by_node = _running_by_node(trials, self.rows)
        if self.quiet:
            return
        line = self.progress_line(final)
        if self.live and not final:  # a terminal: one line redrawn in place
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(f"\r\x1b[K{line}" if self.live else line, file=sys.stderr, flush=True)

    def progress_line(self, final: bool = False, now: float | None = None) -> str:
        """Trials done / running / pending / failed, the best proxy so far, ETA, and running trials per node."""
        now = time.time() if now is None else now
        c, best = self.counts, self.best_row()
        elapsed = now - self.started
        best_text = f"best {self.proxy}={best['score']:.4f} ({best['method']})" if best else "best: none yet"
        finished = c["done"] + c["failed"]
        eta = ""
        if not final and finished and c["pending"] + c["running"]:
            # Trials in flight count half: a crude but honest average over the trials that are left; with a step
            # budget, the steps left at the rate spent so far may end the search sooner.
            left = elapsed / finished * (c["pending"] + 0.5 * c["running"])
            spent = self.steps_spent()
            if self.step_budget and spent and c["pending"]:
                left = min(left, elapsed / spent * (self.step_budget - spent))
            eta = f" | ETA ~{duration(left, compact=True)}"
        nodes = ""
        if len(self.running_by_node) > 1:
            nodes = " | nodes " + " ".join(f"{node[:6]}:{n}" for node, n in sorted(self.running_by_node.items()))
        label = "finished" if final else "progress"
        return (f"[{duration(elapsed, compact=True):>6}] {label}: {c['done']} done, {c['running']} running, "
                f"{c['pending']} pending, {c['failed']} failed of {self.total_trials} | {best_text}{eta}{nodes}")


def _running_by_node(trials: list, rows: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        node = rows.get(trial.trial_id, {}).get("node_id")
        if trial.status == "RUNNING" and node:
            counts[node] = counts.get(node, 0) + 1
    return counts


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)  # NaN, pd.NA
    except TypeError:
        return False


def _lost_with_retries_left(trial: Any) -> bool:
    """Whether Tune ended the trial as error although it should have retried it: its last failure was its actor
    dying (its node lost), not its code raising, and ``FailureConfig.max_failures`` was not used up.

    That is Tune 2.60's race of a node lost while the trial has two calls in flight: the first failure
    requeues the trial, the second errors it. Tune pickles the exception beside the error text."""
    from ray import cloudpickle
    from ray.exceptions import RayActorError, RayTaskError

    try:
        with open(trial.pickled_error_file, "rb") as handle:
            error = cloudpickle.load(handle)
    except Exception:  # noqa: BLE001 - no pickled error (a TuneError) or one that cannot be read: not a loss
        return False
    return isinstance(error, RayActorError) and not isinstance(error, RayTaskError) and trial.should_recover()


def _error_message(trial: Any) -> str:
    try:
        # When on_trial_error runs, Tune has written the error only to the driver's staging copy of the trial
        # directory (trial.error_file); get_error() reads storage, which gets the file at a later sync.
        error = None
        if trial.error_file and os.path.isfile(trial.error_file):
            with open(trial.error_file) as handle:
                error = handle.read()
        error = error or trial.get_error()
    except Exception:  # noqa: BLE001 - the error file may be gone on a remote node; keep what we know
        error = None
    text = str(error) if error else "trial failed"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):  # the exception line is last in a traceback
        if "Error" in line or "Diverged" in line:
            return line[:500]
    return (lines[-1] if lines else text)[:500]
