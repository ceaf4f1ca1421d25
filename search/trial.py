"""One Tune trial: adapt the plain-torch loop (``algorithms.loop.run_trial``) to Ray.

Two runners, chosen by ``resources.runner``:

* ``tune``: the loop runs inside the Tune trial process. A trial starts in ~0.2 s with actor reuse, and a
  reused actor keeps the loaded task and the frozen-prefix outputs in memory for the next trial.
* ``train``: the Tune trial drives a Ray Train run (worker group, DDP across ``workers``, GPUs per worker,
  Train checkpoints): a ``TorchTrainer`` for several workers, and for one worker the plain data-parallel
  trainer, which skips the torch process group nobody would use. Starting a controller and a worker group
  costs a few seconds per trial (benchmarks/results/cluster.md), so it is the default only when there is
  more than one worker (``auto``).

Both give the loop the same ``report`` callback: metrics + a checkpoint of the state after every epoch.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from typing import Any

import torch

from adaptune.algorithms.domains import Task
from adaptune.algorithms.features import MemoryStore
from adaptune.algorithms.loop import PREDICTIONS, Diverged, Runtime, StateFn, TrialSpec, run_trial
from adaptune.algorithms.preprocess import DEFAULT_PREPROCESS

STATE_FILE = "state.pt"
# Ray Train V2's defaults are tuned for long jobs on big clusters; per trial here they cost seconds
# (benchmarks/results/cluster.md): the controller polls its workers every 2 s, and a worker's report waits for
# that poll, so every epoch's report took ~0.2 s even at a 0.2 s interval (~55 ms at 0.05 s); and a
# preemption-watcher actor plus structured log files start with every run.
# Tune's FailureConfig already restarts a trial whose spot node goes away. A value set in the environment
# (e.g. RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=1 in the job's runtime_env) wins.
TRAIN_ENV_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.05",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_ENABLE_STATE_ACTOR_RECONCILIATION": "0",
    "RAY_TRAIN_ENABLE_CONTROLLER_STRUCTURED_LOGGING": "0",
    "RAY_TRAIN_ENABLE_WORKER_STRUCTURED_LOGGING": "0",
}
PREDICTIONS_FILE = "target_probs.pt"  # kept apart from the state, so the ensemble reads it without the weights
# Lives as long as the trial process; with actor reuse it serves every trial that process runs.
_STORE = MemoryStore()


@functools.lru_cache(maxsize=4)
def _cached_task(task: str | None, source: str | None, target: str | None, fewshot_k: int, seed: int,
                 preprocess: str) -> Task:
    from adaptune.algorithms.data import load_task, load_user_task
    from adaptune.algorithms.domains import with_fewshot
    from adaptune.algorithms.synthetic import make_blobs_task

    if task is None:
        loaded = load_user_task(source, target, preprocess=preprocess)
    elif task.startswith("synthetic:"):
        loaded = make_blobs_task(task, preprocess=preprocess)
    else:
        loaded = load_task(task, preprocess=preprocess)
    return with_fewshot(loaded, fewshot_k, seed)


def resolve_task(settings: dict[str, Any]) -> Task:
    """The task a trial trains on; the same call on the driver and in every trial gives the same samples."""
    return _cached_task(settings.get("task"), settings.get("source"), settings.get("target"),
                        settings.get("fewshot_k", 0), settings.get("seed", 0),
                        settings.get("preprocess", DEFAULT_PREPROCESS))


def trial_spec(config: dict[str, Any], settings: dict[str, Any]) -> TrialSpec:
    hparams = {k: v for k, v in config.items() if k != "method"}
    return TrialSpec(
        method=config["method"],
        hparams=hparams,
        backbone=settings["backbone"],
        weights=settings.get("weights"),
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        steps_per_epoch=settings.get("steps_per_epoch"),
        seed=settings["seed"],
        amp=settings.get("amp", False),
    )


def _node_metrics(started_at: float) -> dict[str, Any]:
    import ray

    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "started_at": started_at, "reported_at": time.time()}


def _load_state(checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(os.path.join(directory, STATE_FILE), map_location="cpu", weights_only=True)


def _report_with_checkpoint(report_fn: Any, checkpoint_cls: Any, metrics: dict[str, Any], state: StateFn | None):
    if state is None:
        report_fn(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        full = state()
        torch.save(full.pop(PREDICTIONS), os.path.join(directory, PREDICTIONS_FILE))
        torch.save(full, os.path.join(directory, STATE_FILE))
        report_fn(metrics, checkpoint=checkpoint_cls.from_directory(directory))


def _fault(settings: dict[str, Any], epoch: int) -> None:
    """Fault injection for the fault-tolerance tests: ``ADAPTUNE_FAULT=raise@EPOCH`` fails a trial there."""
    fault = os.environ.get("ADAPTUNE_FAULT", "")
    if fault.startswith("raise@") and epoch == int(fault.removeprefix("raise@")):
        raise RuntimeError(f"injected fault at epoch {epoch} (ADAPTUNE_FAULT)")


def _run(config: dict[str, Any], settings: dict[str, Any], report_fn: Any, runtime: Runtime,
         resume_state: dict[str, Any] | None, started_at: float) -> None:
    """The loop; a diverged trial reports its last result with the reason instead of failing.

    A failure is retried from the last checkpoint (FailureConfig), which cannot help a loss that is NaN by
    construction, so divergence ends the trial normally with a NaN score and ``diverged`` set.
    """
    last: dict[str, Any] = {}

    def report(metrics: dict[str, Any], state: StateFn | None) -> None:
        last.update(metrics)
        _fault(settings, int(metrics["epoch"]))
        report_fn({**metrics, **_node_metrics(started_at)}, state)

    try:
        run_trial(resolve_task(settings), trial_spec(config, settings), report, runtime=runtime, store=_STORE,
                  resume_state=resume_state)
    except Diverged as error:
        report_fn({"epoch": int(last.get("epoch", 0)) + 1, settings["metric"]: float("nan"), "diverged": str(error),
                   **_node_metrics(started_at)}, None)


def tune_trial(config: dict[str, Any], settings: dict[str, Any]) -> None:
    """Tune function trainable for the ``tune`` runner."""
    from ray import tune

    torch.set_num_threads(max(1, int(settings["cpus_per_trial"])))

    def report(metrics: dict[str, Any], state: StateFn | None) -> None:
        _report_with_checkpoint(tune.report, tune.Checkpoint, metrics, state)

    _run(config, settings, report, Runtime.local(use_gpu=settings["gpus_per_trial"] > 0),
         _load_state(tune.get_checkpoint()), time.time())


def train_worker(loop_config: dict[str, Any]) -> None:
    """Per-worker loop of the ``train`` runner (runs in every Ray Train worker)."""
    import ray.train
    import ray.train.torch

    config, settings = loop_config["config"], loop_config["settings"]
    torch.set_num_threads(max(1, int(settings["cpus_per_trial"])))
    context = ray.train.get_context()
    world = context.get_world_size()
    runtime = Runtime(
        device=ray.train.torch.get_device(),
        rank=context.get_world_rank(),
        world_size=world,
        wrap=ray.train.torch.prepare_model if world > 1 else (lambda module: module),
    )

    def report(metrics: dict[str, Any], state: StateFn | None) -> None:
        # Every rank must call report; only rank 0 uploads a checkpoint.
        _report_with_checkpoint(ray.train.report, ray.train.Checkpoint, metrics, state if runtime.rank == 0 else None)

    _run(config, settings, report, runtime, _load_state(ray.train.get_checkpoint()), time.time())


def train_trial(config: dict[str, Any], settings: dict[str, Any]) -> None:
    """Tune function trainable for the ``train`` runner: one Ray Train run per trial."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    use_gpu = settings["gpus_per_trial"] > 0
    per_worker = {"CPU": settings["cpus_per_trial"]}
    if use_gpu:
        per_worker["GPU"] = settings["gpus_per_trial"]
    for name, value in TRAIN_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)  # Ray Train passes these on to its controller and workers
    trainer_cls = TorchTrainer if settings["workers"] > 1 else DataParallelTrainer
    trainer_cls(
        train_worker,
        train_loop_config={"config": config, "settings": settings},
        scaling_config=ray.train.ScalingConfig(num_workers=settings["workers"], use_gpu=use_gpu,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"train-{tune.get_context().get_trial_id()}",
            storage_path=settings["storage"],
            callbacks=[TuneReportCallback()],
            # Keep the best epoch by the proxy (Tune's rule too); the last, when the proxy is final-only.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1,
                                                         checkpoint_score_attribute=settings.get("checkpoint_metric"),
                                                         checkpoint_score_order="max"),
        ),
    ).fit()
