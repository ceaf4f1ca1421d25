"""Run a search: config -> (Ray init) -> Tuner(OptunaSearch + ASHA) -> trials -> leaderboard.

:func:`prepare` does everything that can fail on bad input (it loads the task and checks the backbone)
before Ray starts, so a wrong config exits with code 2 and writes nothing.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from adaptune.algorithms.backbones import build_backbone
from adaptune.algorithms.domains import Task
from adaptune.algorithms.errors import InputError
from adaptune.algorithms.proxies import PROXIES

from .config import SearchConfig
from .space import all_param_names, default_points, make_space
from .trial import resolve_task, train_trial, tune_trial

DRIVER_CPU = 0.25  # a Tune trial that only drives a Ray Train run needs CPU > 0


@dataclass
class Prepared:
    config: SearchConfig
    task: Task
    backbone: str
    ranges: dict[str, tuple[float, float]]


def prepare(config: SearchConfig) -> Prepared:
    """Load the task and check the backbone and search ranges against it: all before Ray starts."""
    task = resolve_task({"task": config.task, "source": config.source, "target": config.target})
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
                         f"({str(error).splitlines()[0][:120]})") from None
    # Freezing random-init blocks only removes capacity, so by default only pretrained backbones search it.
    default_fd = (0, backbone.depth) if config.weights else (0, 0)
    ranges = {"lr": (1e-4, 1e-1), "freeze_depth": default_fd, "adv_weight": (1e-2, 3.0)}
    ranges.update({k: tuple(v) for k, v in config.search_space.items()})
    low, high = ranges["freeze_depth"]
    if not (float(low).is_integer() and float(high).is_integer() and 0 <= low <= high <= backbone.depth):
        raise InputError("search_space.freeze_depth", f"expected integers within 0..{backbone.depth} for "
                         f"{backbone_name}, got [{low}, {high}]")
    ranges["freeze_depth"] = (int(low), int(high))
    return Prepared(config, task, backbone_name, ranges)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("adaptune", "ray", "torch", "optuna")}


def _init_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": True, "logging_level": "WARNING"}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(dashboard_host="127.0.0.1", **kwargs)


def _max_concurrent(c: SearchConfig, per_trial_cpu: float) -> int:
    import ray

    if c.resources.max_concurrent:
        return c.resources.max_concurrent
    cpus = ray.cluster_resources().get("CPU", 1.0)
    by_gpu = None
    gpus = ray.cluster_resources().get("GPU", 0.0)
    if c.resources.gpus_per_trial > 0:
        by_gpu = int(gpus // (c.resources.gpus_per_trial * c.resources.workers))
    by_cpu = int(cpus // per_trial_cpu)
    return max(1, min(x for x in (by_cpu, by_gpu, c.trials) if x is not None))


def run_search(prepared: Prepared) -> dict[str, Any]:
    """Run the search and return a summary; leaderboard/history are in ``config.out``."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from .recorder import Recorder

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    c = prepared.config
    out = os.path.abspath(c.out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.yaml"), "w") as handle:
        yaml.safe_dump({**asdict(c), "config_hash": c.config_hash()}, handle, sort_keys=False)

    _init_ray(c.address)
    r = c.resources
    runner = r.resolved_runner
    settings = {
        "task": c.task, "source": c.source and os.path.abspath(c.source),
        "target": c.target and os.path.abspath(c.target), "backbone": prepared.backbone, "weights": c.weights,
        "epochs": c.epochs, "batch_size": c.batch_size, "steps_per_epoch": c.steps_per_epoch, "seed": c.seed,
        "amp": c.amp,
        "cpus_per_trial": r.cpus_per_trial, "gpus_per_trial": r.gpus_per_trial, "workers": r.workers,
        "storage": os.path.join(out, "ray"),
    }
    if runner == "tune":
        resources = {"CPU": r.cpus_per_trial, "GPU": r.gpus_per_trial}
        trainable, per_trial_cpu = tune_trial, r.cpus_per_trial
    else:
        # Tune does not count the Train worker group's resources, so concurrency is capped by hand below.
        resources = {"CPU": DRIVER_CPU}
        trainable, per_trial_cpu = train_trial, DRIVER_CPU + r.workers * r.cpus_per_trial
    metric = f"proxy_{c.proxy}"
    methods = list(c.methods)
    sampler = optuna.samplers.TPESampler(
        seed=c.seed, multivariate=True, group=True, constant_liar=True,
        n_startup_trials=min(10, max(len(methods), c.trials // 3)),
    )
    searcher = OptunaSearch(space=make_space(methods, prepared.ranges), metric=metric, mode="max",
                            sampler=sampler, points_to_evaluate=default_points(methods, prepared.ranges))
    scheduler = ASHAScheduler(metric=metric, mode="max", time_attr="training_iteration", max_t=c.epochs,
                              grace_period=min(c.scheduler.grace_period, c.epochs),
                              reduction_factor=c.scheduler.reduction_factor)
    recorder = Recorder(out, proxy=c.proxy, epochs=c.epochs, total_trials=c.trials,
                        param_names=all_param_names(), proxy_names=list(PROXIES), config_hash=c.config_hash(),
                        seed=c.seed, versions=json.dumps(versions(), sort_keys=True), quiet=c.quiet)
    max_concurrent = _max_concurrent(c, per_trial_cpu)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, settings=settings), resources),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=c.trials,
                                    max_concurrent_trials=max_concurrent, reuse_actors=runner == "tune",
                                    time_budget_s=c.time_budget_s),
        run_config=tune.RunConfig(
            name="tune", storage_path=os.path.join(out, "ray"), callbacks=[recorder], verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=metric,
                                                    checkpoint_score_order="max"),
        ),
    )
    started = time.time()
    try:
        tuner.fit()
    finally:
        recorder.write()  # also on Ctrl-C or a crash: every finished trial stays in the leaderboard
    rows = recorder.finished_rows()
    summary = {
        "out": out, "trials": len(rows), "wall_s": time.time() - started, "runner": runner,
        "max_concurrent": max_concurrent, "max_running": recorder.max_running, "machine": platform.node(),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}},
    }
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    return summary
