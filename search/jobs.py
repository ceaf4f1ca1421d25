"""Runs beyond one foreground search: resume an interrupted run, show a run's status, submit a Ray Job.

* ``resume DIR [--retry-errors]``: the run's own ``config.yaml`` (refused if it was edited, or if a config given
  on the command line differs), then :func:`run.run_search` with ``resume=True``.
* ``status DIR``: the recorder's ``status.json`` (and ``summary.json`` once finished) as a few lines.
* ``submit CONFIG --address http://HEAD:8265``: the search as a Ray Job whose driver runs on the head; the
  config travels in the job's working directory. The client authenticates with the cluster's token exactly
  as the ``ray`` CLI does (``RAY_AUTH_MODE=token`` and ``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
from typing import Any

import yaml

from adaptune.algorithms.errors import InputError, first_line
from adaptune.reports.run_dir import RunDir, RunError

from .config import SearchConfig, build_config, load_yaml
from .run import prepare, run_search

STALE_AFTER_S = 120.0  # no status update for this long while "running": the driver is probably gone


def load_run_config(directory: str) -> SearchConfig:
    """The config a run was started with; refused when the file no longer matches the hash it was saved with.

    Read as any config file is (load_yaml, build_config), so a damaged one fails with the same messages."""
    path = RunDir(directory).require(RunDir.CONFIG)
    raw = load_yaml(path)
    saved_hash = raw.pop("config_hash", None)
    raw.pop("out", None)  # the run directory itself, which build_config would refuse as "already a run"
    config = build_config(raw)
    config.out = directory
    if saved_hash != config.config_hash():
        raise InputError("config", f"{path} changed since the search started (hash {config.config_hash()}, "
                         f"saved {saved_hash}); resume continues the same search: restore the file or start "
                         "a new search with another --out")
    return config


def resume(directory: str, config_path: str | None = None, address: str | None = None,
           retry_errors: bool = False) -> dict[str, Any]:
    """Continue the run in ``directory``; with ``retry_errors`` also rerun, from their last checkpoint, the
    trials that ended in error (a finished run included): e.g. a trial lost with its node in the window where
    Ray Tune 2.60 errors it instead of retrying it (docs/architecture.md, Faults)."""
    directory = os.path.abspath(directory)
    config = load_run_config(directory)
    if config_path is not None:
        other = build_config({k: v for k, v in load_yaml(config_path).items() if k != "out"})
        if other.config_hash() != config.config_hash():
            raise InputError("config", f"{config_path} differs from the run's config (hash {other.config_hash()} "
                             f"vs {config.config_hash()}); resume continues the same search: drop the file or "
                             "start a new search with another --out")
    run_dir = RunDir(directory)
    if run_dir.exists(RunDir.SUMMARY):
        if not retry_errors:
            raise RunError(f"run: {directory} already finished ({RunDir.SUMMARY} exists); nothing to resume "
                           "(--retry-errors reruns its failed trials)")
        run_dir.remove_summary()  # the run is not finished again until the retried trials are
    config.out, config.address = directory, address or config.address
    return run_search(prepare(config), resume=True, retry_errors=retry_errors)


def read_status(directory: str) -> dict[str, Any]:
    """The run's status, with its summary under ``summary`` once the search finished."""
    run_dir = RunDir(directory)
    status = run_dir.read_json(RunDir.STATUS)
    summary = run_dir.read_summary()
    if summary is not None:
        status["summary"] = summary
    return status


def format_status(status: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    state = status.get("state", "unknown")
    age = now - float(status.get("updated_at") or now)
    if state == "running" and age > STALE_AFTER_S:
        state = f"running? (no update for {age:.0f} s: if the driver is gone, `adaptune resume` continues it)"
    elif state == "interrupted":
        state = "interrupted (`adaptune resume DIR` continues it)"
    best = status.get("best")
    best_text = "none yet"
    if best:
        best_text = f"{status.get('proxy')}={best['score']:.4f} ({best['method']}, trial {best['trial_id']})"
        if best.get("target_acc") is not None:
            best_text += f", oracle target_acc {best['target_acc']:.4f}"
    elapsed = float(status.get("updated_at") or now) - float(status.get("started_at") or now)
    lines = [
        f"state:    {state}",
        f"trials:   {status.get('done', 0)} done, {status.get('running', 0)} running, {status.get('pending', 0)} "
        f"pending, {status.get('failed', 0)} failed of {status.get('planned', '?')}",
        *([f"steps:    {status.get('steps', 0):,} of the budget's {status['step_budget']:,}"]
          if status.get("step_budget") else []),
        f"best:     {best_text}",
        f"nodes:    {len(status.get('nodes') or [])}",
        f"elapsed:  {elapsed:.0f} s",
    ]
    return "\n".join(lines)


def submit(config_path: str, address: str, out: str | None = None, pip: list[str] | None = None,
           wait: bool = False, timeout_s: float = 3600.0) -> tuple[str, str]:
    """Submit the search as a Ray Job; returns (job id, final status or "SUBMITTED")."""
    raw = load_yaml(config_path)
    # Bad input fails here, before anything reaches the cluster; out is a path on the cluster, not checked here.
    build_config({k: v for k, v in raw.items() if k != "out"})
    out = out or raw.get("out")
    if not isinstance(out, str) or not os.path.isabs(out):
        raise InputError("out", "expected an absolute --out (or out: in the config) on the cluster's shared "
                         f"storage, where the leaderboard will be written; got {out!r}")
    raw["out"] = out
    if not address.startswith(("http://", "https://")):
        raise InputError("address", f"expected the dashboard URL, http://HEAD:8265, got {address!r}")
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    staging = tempfile.mkdtemp(prefix="adaptune-submit-")
    try:
        with open(os.path.join(staging, "search.yaml"), "w") as handle:
            yaml.safe_dump(raw, handle, sort_keys=False)
        runtime_env: dict[str, Any] = {"working_dir": staging}
        if pip:
            runtime_env["pip"] = list(pip)
        try:
            client = JobSubmissionClient(address)
            job_id = client.submit_job(entrypoint="adaptune search search.yaml --address auto --quiet",
                                       runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError, AuthenticationError) as error:
            raise InputError("address", f"could not submit to {address} ({first_line(error)[:200]})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not wait:
        return job_id, "SUBMITTED"
    deadline = time.time() + timeout_s
    terminal = {"SUCCEEDED", "FAILED", "STOPPED"}
    while (status := str(client.get_job_status(job_id)).split(".")[-1]) not in terminal and time.time() < deadline:
        time.sleep(2)
    return job_id, status


def follow_hint(job_id: str, address: str, out: str | None) -> str:
    hint = f"job {job_id} submitted; follow it with: ray job logs -f {shlex.quote(job_id)} --address {address}"
    if out:
        hint += f"; on the cluster: adaptune status {shlex.quote(out)}"
    return hint


