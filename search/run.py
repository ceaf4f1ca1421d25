"""Run a search: config -> (Ray init) -> Tuner(OptunaSearch + ASHA) -> trials -> leaderboard.

:func:`prepare` does everything that can fail on bad input (it loads the task and checks the backbone)
before Ray starts, so a wrong config exits with code 2 and writes nothing.
"""

from __future__ import annotations

import glob
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from adaptune.algorithms.backbones import build_backbone
from adaptune.algorithms.budget import Plan, plan_search
from adaptune.algorithms.domains import Task
from adaptune.algorithms.errors import InputError, first_line
from adaptune.algorithms.methods import METHODS
from adaptune.algorithms.proxies import PROXIES, resolve_proxy
from adaptune.reports.leaderboard import write_json_atomic

from .config import SearchConfig
from .space import all_param_names, default_points, make_space
from .trial import resolve_task, train_trial, tune_trial

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"  # written when a search finishes; its absence means running or interrupted
HEAD_NODE_RESOURCE = "node:__internal_head__"  # every Ray head node has it
DRIVER_CPU = 0.25  # a Tune trial that only drives a Ray Train run needs CPU > 0
LOST_RETRY_ROUNDS = 3  # reruns of trials that Tune errored when their node died (a safety bound)
CLIENT_CONNECT_ATTEMPTS = 3  # connections to a ray:// address whose head failed to start its client server


@dataclass
class Prepared:
    config: SearchConfig
    task: Task
    backbone: str
    ranges: dict[str, tuple[float, float]]
    proxy: str  # the selecting proxy, with "auto" resolved
    plan: Plan  # trials, steps per epoch and ASHA's rungs, from the budget and the data's size


def prepare(config: SearchConfig) -> Prepared:
    """Load the task, check the backbone and search ranges against it, and that a cluster address answers: all
    before Ray starts."""
    task = resolve_task({"task": config.task, "source": config.source, "target": config.target,
                         "fewshot_k": config.fewshot_k, "seed": config.seed, "preprocess": config.preprocess})
    backbone_name = config.backbone or task.default_backbone
    try:
        backbone = build_backbone(backbone_name, task.input_shape, weights=config.weights)
        import torch

        with torch.no_grad():
            backbone.blocks.eval()(task.source_train.x[:2])
    except InputError:
        raise
    except (RuntimeError, ValueError) as error:
        raise InputError("backbone", f"{backbone_name} does not fit inputs of shape {task.input_shape} "
                         f"({first_line(error)[:120]})") from None
    # Freezing random-init blocks only removes capacity, so by default only pretrained backbones search it.
    default_fd = (0, backbone.depth) if config.weights else (0, 0)
    ranges = {"lr": (1e-4, 1e-1), "freeze_depth": default_fd, "adv_weight": (1e-2, 3.0)}
    ranges.update({k: tuple(v) for k, v in config.search_space.items()})
    low, high = ranges["freeze_depth"]
    if not (float(low).is_integer() and float(high).is_integer() and 0 <= low <= high <= backbone.depth):
        raise InputError("search_space.freeze_depth", f"expected integers within 0..{backbone.depth} for "
                         f"{backbone_name}, got [{low}, {high}]")
    ranges["freeze_depth"] = (int(low), int(high))
    proxy = resolve_proxy(config.proxy, task)
    if config.address:
        check_reachable(config.address, config.connect_timeout_s)
    return Prepared(config, task, backbone_name, ranges, proxy, make_plan(config, task, proxy))


def make_plan(c: SearchConfig, task: Task, proxy: str) -> Plan:
    """The search's plan: the same config and data give the same plan on any machine."""
    r = c.resources
    return plan_search(
        budget=c.budget, n_source=len(task.source_train), batch_size=c.batch_size, epochs=c.epochs,
        grace_epochs=c.scheduler.grace_period, reduction_factor=c.scheduler.reduction_factor,
        n_methods=len(c.methods), n_closed_form=sum(METHODS[m].feature_extraction for m in c.methods),
        trials=c.trials, world_size=r.workers if r.resolved_runner == "train" else 1,
        steps_override=None if c.steps_per_epoch == "auto" else c.steps_per_epoch,
        early_stopping=c.scheduler.kind == "asha" and not PROXIES[proxy].final_only)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("adaptune", "ray", "torch", "optuna")}


def git_revision() -> str | None:
    """The commit of the adaptune source tree (``+dirty`` with uncommitted changes), None outside a git checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast when nothing listens at a Ray address: ``ray.init`` would retry the GCS without end."""
    if address == "auto":
        return  # Ray reads the address of a cluster started on this host, and fails at once without one
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not (host and port.isdigit()):
        raise InputError("address", f"expected auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError("address", f"nothing answers at {address} within {timeout_s:g} s ({reason}); expected a "
                         "running Ray cluster (`ray start --head` on its head node)") from None


def _init_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": True, "logging_level": "WARNING"}
    if not address:
        # "local": always a new single-node Ray, never a cluster that `ray start` left on this host.
        ray.init(address="local", dashboard_host="127.0.0.1", **kwargs)
        return
    # Over Ray Client the head starts a server process per client; on a loaded head that start can fail
    # ("Starting Ray client server failed"), and a new connection gets a new server.
    attempts = CLIENT_CONNECT_ATTEMPTS if address.startswith("ray://") else 1
    for attempt in range(attempts):
        try:
            ray.init(address=address, **kwargs)
            return
        except (ConnectionError, RuntimeError) as error:
            if "client server" not in str(error).lower() or attempt == attempts - 1:
                raise InputError("address", f"could not join the Ray cluster at {address} "
                                 f"({first_line(error)[:160]})") from None
            print(f"adaptune: {address}: {first_line(error)}; connecting again", file=sys.stderr)
            time.sleep(5)


def _max_concurrent(c: SearchConfig, trials: int, per_trial_cpu: float) -> int:
    import ray

    if c.resources.max_concurrent:
        return c.resources.max_concurrent
    cpus = ray.cluster_resources().get("CPU", 1.0)
    by_gpu = None
    gpus = ray.cluster_resources().get("GPU", 0.0)
    if c.resources.gpus_per_trial > 0:
        by_gpu = int(gpus // (c.resources.gpus_per_trial * c.resources.workers))
    by_cpu = int(cpus // per_trial_cpu)
    return max(1, min(x for x in (by_cpu, by_gpu, trials) if x is not None))


def _best_checkpoint(result: Any, metric: str) -> Any:
    """The checkpoint of a trial's best epoch by the proxy (Tune keeps it; Ray Train reports its path)."""
    from ray.train import Checkpoint

    if result.best_checkpoints:
        return max(result.best_checkpoints, key=lambda pair: _score(pair[1].get(metric)))[0]
    frame = result.metrics_dataframe
    if frame is None or "checkpoint_path" not in frame or metric not in frame:
        return None
    frame = frame[frame["checkpoint_path"].notna()]
    if frame.empty:
        return None
    return Checkpoint(frame.loc[frame[metric].fillna(-math.inf).idxmax(), "checkpoint_path"])


def _score(value: Any) -> float:
    return value if isinstance(value, float | int) and math.isfinite(value) else -math.inf


def ensemble_row(recorder: Any, results: Any, task: Task, metric: str, k: int) -> dict[str, Any] | None:
    """Average the target predictions of the top-k finished trials by the proxy into one leaderboard row."""
    import torch

    from adaptune.algorithms.ensemble import average_predictions, ensemble_metrics, top_k
    from adaptune.reports.leaderboard import FINISHED

    from .trial import PREDICTIONS_FILE

    finished = [r for r in recorder.finished_rows() if r["status"] in FINISHED]
    by_trial = {r.metrics.get("trial_id"): r for r in results if r.metrics}
    members, probs = [], []
    for trial_id in top_k([(r["trial_id"], r.get("score")) for r in finished], len(finished)):
        checkpoint = _best_checkpoint(by_trial[trial_id], metric) if trial_id in by_trial else None
        if checkpoint is None:
            continue
        with checkpoint.as_directory() as directory:
            path = os.path.join(directory, PREDICTIONS_FILE)
            if os.path.exists(path):
                probs.append(torch.load(path, map_location="cpu", weights_only=True))
                members.append(trial_id)
        if len(members) == k:
            break
    if not members:
        return None
    values = ensemble_metrics(average_predictions(probs), task.target_oracle)
    return {"trial_id": f"ensemble-top{len(members)}", "status": "ensemble", "method": "ensemble",
            "score": values[metric], "members": ",".join(members), "epochs": None, **values}


def recommendation(recorder: Any, recommend: str, proxy: str) -> dict[str, Any] | None:
    """What the run recommends shipping: the ensemble row (``recommend: ensemble``, when the run has one) or
    the best trial by the proxy; None before any trial has a score."""
    best = recorder.best_row()
    ensemble = next((r for r in recorder.rows.values() if r["status"] == "ensemble"), None)
    if recommend == "ensemble" and ensemble is not None:
        members = ensemble["members"].split(",")
        return {"kind": "ensemble", "trial_id": ensemble["trial_id"], "members": members, "proxy": proxy,
                "methods": [recorder.rows[m].get("method") for m in members], "score": ensemble.get("score"),
                "target_acc": ensemble.get("target_acc")}
    if best is None:
        return None
    return {"kind": "trial", "trial_id": best["trial_id"], "method": best.get("method"), "proxy": proxy,
            "score": best.get("score"), "target_acc": best.get("target_acc")}


def first_failure(trials: list[dict[str, Any]], experiment: str) -> dict[str, str] | None:
    """When every trial ended in error: the first one's one-line cause and where its full traceback is."""
    if not trials or any(r["status"] != "error" for r in trials):
        return None
    first = min(trials, key=lambda r: r.get("ended_at") or math.inf)
    found = glob.glob(os.path.join(experiment, f"*{first['trial_id']}*", "error.txt")) if "://" not in experiment \
        else []
    return {"trial_id": first["trial_id"], "message": first.get("error") or "trial failed",
            "traceback": found[0] if found else os.path.join(experiment, f"<trial {first['trial_id']}>", "error.txt")}


def _fit(tuner: Any, recorder: Any) -> Any:
    """``tuner.fit()``; the leaderboard is written however it ends. None when Ctrl-C stopped it."""
    results = None
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        recorder.state = "interrupted"
    finally:
        if recorder.state == "running":
            recorder.state = "interrupted" if results is None else "finished"
        recorder.write()  # also on Ctrl-C or a crash: every finished trial stays in the leaderboard
    return results


def storage_root(c: SearchConfig, out: str) -> str:
    """Where Ray keeps trial checkpoints and the experiment state: ``storage`` or ``OUT/ray``."""
    return c.storage.rstrip("/") if c.storage else os.path.join(out, "ray")


def experiment_name(c: SearchConfig, out: str) -> str:
    # Runs sharing one storage location get their own folder, named after the run directory.
    return f"{os.path.basename(out)}-{c.config_hash()[:8]}" if c.storage else "tune"


def run_search(prepared: Prepared, resume: bool = False, retry_errors: bool = False) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) the search; leaderboard, history and summary land in ``config.out``.

    Resuming restores the Tune experiment from its storage (searcher state, finished and unfinished trials)
    and the recorder from the run's Parquet files, so the search ends with the planned number of trials and
    every finished trial recorded once; ``retry_errors`` also reruns the trials that ended in error, from
    their last checkpoint, and their rows are replaced by the outcome of the rerun.

    Through Ray Client (``ray://``) the whole search runs as one task on the cluster's head node, and ``out``
    is a path there: Tune runs its driver loop on the cluster under Ray Client anyway, and the recorder
    (a Tune callback) has to live beside that loop.
    """
    import ray

    _init_ray(prepared.config.address)
    if ray.util.client.ray.is_connected():
        c = prepared.config
        c.out, c.source, c.target = (os.path.abspath(p) if p else p for p in (c.out, c.source, c.target))
        on_head = ray.remote(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001})(_run_search_here)
        return ray.get(on_head.remote(prepared, resume, retry_errors))
    return _run_search_here(prepared, resume, retry_errors)


def _run_search_here(prepared: Prepared, resume: bool, retry_errors: bool) -> dict[str, Any]:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from .recorder import Recorder

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a diverged trial's NaN is recorded by us, not warned
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    c, plan = prepared.config, prepared.plan
    out = os.path.abspath(c.out)
    os.makedirs(out, exist_ok=True)
    if not resume:
        with open(os.path.join(out, CONFIG_FILE), "w") as handle:
            yaml.safe_dump({**asdict(c), "config_hash": c.config_hash()}, handle, sort_keys=False)

    r = c.resources
    runner = r.resolved_runner
    storage = storage_root(c, out)
    settings = {
        "task": c.task, "source": c.source and os.path.abspath(c.source),
        "target": c.target and os.path.abspath(c.target), "backbone": prepared.backbone, "weights": c.weights,
        "epochs": c.epochs, "batch_size": c.batch_size, "steps_per_epoch": plan.steps_per_epoch, "seed": c.seed,
        "amp": c.amp, "fewshot_k": c.fewshot_k, "preprocess": c.preprocess,
        "cpus_per_trial": r.cpus_per_trial, "gpus_per_trial": r.gpus_per_trial, "workers": r.workers,
        "storage": storage,
    }
    if runner == "tune":
        resources = {"CPU": r.cpus_per_trial, "GPU": r.gpus_per_trial}
        trainable, per_trial_cpu = tune_trial, r.cpus_per_trial
    else:
        # Tune does not count the Train worker group's resources, so concurrency is capped by hand below.
        resources = {"CPU": DRIVER_CPU}
        trainable, per_trial_cpu = train_trial, DRIVER_CPU + r.workers * r.cpus_per_trial
    proxy = PROXIES[prepared.proxy]
    metric = f"proxy_{proxy.name}"
    settings["checkpoint_metric"] = None if proxy.final_only else metric
    settings["metric"] = metric
    wrapped = tune.with_resources(tune.with_parameters(trainable, settings=settings), resources)
    recorder = Recorder(out, proxy=proxy.name, epochs=c.epochs, total_trials=plan.trials,
                        param_names=all_param_names(), proxy_names=list(PROXIES), config_hash=c.config_hash(),
                        seed=c.seed, versions=json.dumps(versions(), sort_keys=True), quiet=c.quiet,
                        preprocess=prepared.task.extra.get("preprocess", "none"))
    max_concurrent = _max_concurrent(c, plan.trials, per_trial_cpu)
    experiment = f"{storage}/{experiment_name(c, out)}"
    if resume:
        recorder.load_existing()
        if retry_errors:
            recorder.reopen_errors()
        # The experiment state names the recorder by run directory (Recorder.__reduce__): this one continues.
        tuner = tune.Tuner.restore(experiment, trainable=wrapped, resume_unfinished=True,
                                   resume_errored=retry_errors)
    else:
        methods = list(c.methods)
        if c.searcher == "random":
            sampler, first_points = optuna.samplers.RandomSampler(seed=c.seed), None
        else:
            sampler = optuna.samplers.TPESampler(
                seed=c.seed, multivariate=True, group=True, constant_liar=True,
                n_startup_trials=min(10, max(len(methods), plan.trials // 3)),
            )
            first_points = default_points(methods, prepared.ranges)
        searcher = OptunaSearch(space=make_space(methods, prepared.ranges), metric=metric, mode="max",
                                sampler=sampler, points_to_evaluate=first_points)
        if not plan.early_stopping:  # scheduler.kind none, or a final-only proxy: nothing for ASHA to stop on
            scheduler = FIFOScheduler()
        else:
            # Rungs in optimizer steps, so a trial is never compared before it trained plan.grace_steps.
            scheduler = ASHAScheduler(metric=metric, mode="max", time_attr="steps", max_t=plan.max_trial_steps,
                                      grace_period=plan.grace_steps, reduction_factor=plan.reduction_factor)
        tuner = tune.Tuner(
            wrapped,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=plan.trials,
                                        max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        time_budget_s=c.time_budget_s),
            run_config=tune.RunConfig(
                name=experiment_name(c, out), storage_path=storage, callbacks=[recorder], verbose=0,
                # A trial whose node dies restarts from its last checkpoint, on any node, up to 3 times.
                failure_config=tune.FailureConfig(max_failures=c.max_failures),
                # The kept checkpoint is the trial's best epoch by the proxy (its last, for a final-only proxy).
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1, checkpoint_score_attribute=None if proxy.final_only else metric,
                    checkpoint_score_order="max"),
            ),
        )
    started = time.time()
    results = _fit(tuner, recorder)
    # Tune 2.60 can end a trial as error when its node dies while it starts, without using its retries
    # (docs/architecture.md, Faults). When every error is such a loss, rerun those trials here from their last
    # checkpoint, as `adaptune resume --retry-errors` would; errors raised by a trial's code are left alone.
    # Tune keeps counting each trial's failures across the reruns, so max_failures still bounds them.
    lost_retried = 0
    while results is not None and recorder.errors_all_lost() and lost_retried < LOST_RETRY_ROUNDS:
        lost_retried += 1
        print(f"adaptune: {len(recorder.lost)} trial(s) lost with their node; rerunning them from their last "
              f"checkpoint (round {lost_retried})", file=sys.stderr, flush=True)
        recorder.reopen_errors()
        recorder.state = "running"
        tuner = tune.Tuner.restore(experiment, trainable=wrapped, resume_unfinished=True, resume_errored=True)
        results = _fit(tuner, recorder)
    trials = [r for r in recorder.finished_rows() if r["status"] != "ensemble"]
    if len(trials) < plan.trials and c.time_budget_s is None:
        recorder.state = "interrupted"  # Tune stopped early (Ctrl-C): resumable
    if c.ensemble_k and results is not None:
        recorder.add_ensemble(ensemble_row(recorder, results, prepared.task, metric, c.ensemble_k))
    recorder.write()
    summary = {
        "out": out, "state": recorder.state, "trials": len(trials), "wall_s": time.time() - started,
        "plan": {**asdict(plan), "rungs": plan.rungs, "expected_trial_steps": plan.expected_trial_steps},
        "steps_used": int(sum(r.get("steps") or 0 for r in trials)),
        "preprocess": prepared.task.extra.get("preprocess", "none"),
        "recommendation": recommendation(recorder, c.recommend, prepared.proxy),
        "runner": runner, "storage": storage, "experiment": experiment,
        "max_concurrent": max_concurrent, "max_running": recorder.max_running, "machine": platform.node(),
        "lost_retry_rounds": lost_retried,
        "nodes": sorted(recorder.nodes),
        "statuses": {s: sum(r["status"] == s for r in trials) for s in {r["status"] for r in trials}},
        "proxy": prepared.proxy, "proxy_requested": c.proxy,
        "all_failed": first_failure(trials, experiment),
        # provenance, read by `adaptune report`
        "command": list(sys.argv), "git_revision": git_revision(), "config_hash": c.config_hash(),
        "versions": versions(), "python": platform.python_version(), "platform": platform.platform(),
        "started_at": started, "ended_at": time.time(),
    }
    if recorder.state == "finished":
        write_json_atomic(summary, os.path.join(out, SUMMARY_FILE))
    return summary
