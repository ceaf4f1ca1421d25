"""One Tune trial: adapt the plain-torch loop (``algorithms.loop.run_trial``) to Ray.

Two runners, chosen by ``resources.runner``:

* ``tune``: the loop runs inside the Tune trial process. A trial starts in ~0.2 s with actor reuse, and a
  reused actor keeps the loaded task and the frozen-prefix outputs in memory for the next trial.
* ``train``: the Tune trial drives a Ray Train run (worker group, DDP across ``workers``, GPUs per worker,
  Train checkpoints): a ``TorchTrainer`` for several workers, and for one worker the plain data-parallel
  trainer, which skips the torch process group nobody would use. Starting a controller and a worker group
  costs a few seconds per trial (benchmarks/results/cluster.md), so it is the default only when there is
  more than one worker (``auto``).

Both give the loop the same ``report`` callback: metrics + a checkpoint of the state after every epoch. What
every trial of a search shares comes as one :class:`TrialSettings`; the sampled hyperparameters as Tune's
``config``. The frozen-prefix outputs go through a :class:`~adaptune.algorithms.features.DiskStore` in the
settings' ``feature_cache`` directory, so each is computed once per run: once per node when the directory is
not on storage every node shares.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from adaptune.algorithms.domains import Task
from adaptune.algorithms.features import DiskStore, FeatureStore, MemoryStore
from adaptune.algorithms.images import DEFAULT_IMAGE_SIZE
from adaptune.algorithms.loop import PREDICTIONS, Diverged, Runtime, StateFn, TrialSpec, run_trial
from adaptune.reports.run_dir import RunDir

from .space import PREPROCESS_KEY

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

# How often a Train run asks again for its worker group's resources (RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S, 60 s
# each) before its trial errors. Ray Train asks forever by default: a worker group that can never be placed (too few
# CPUs or GPUs left, a placement group not yet freed) would hold the whole search without a word.
TRAIN_START_ATTEMPTS = 5


def resolve_task(task: str | None, source: str | None, target: str | None, fewshot_k: int, seed: int,
                 preprocess: str, image_size: int = DEFAULT_IMAGE_SIZE) -> Task:
    """The task a trial trains on; the same call on the driver and in every trial gives the same samples."""
    # Positional, so a call with keywords finds the same cache entry.
    return _cached_task(task, source, target, fewshot_k, seed, preprocess, image_size)


@functools.lru_cache(maxsize=4)  # with actor reuse, a trial process loads the task once for all its trials
def _cached_task(task: str | None, source: str | None, target: str | None, fewshot_k: int, seed: int,
                 preprocess: str, image_size: int) -> Task:
    from adaptune.algorithms.data import load_task, load_user_task
    from adaptune.algorithms.domains import with_fewshot
    from adaptune.algorithms.synthetic import make_blobs_task

    if task is None:
        loaded = load_user_task(source, target, image_size=image_size, preprocess=preprocess)
    elif task.startswith("synthetic:"):
        loaded = make_blobs_task(task, preprocess=preprocess)
    else:
        loaded = load_task(task, preprocess=preprocess)
    return with_fewshot(loaded, fewshot_k, seed)


@functools.lru_cache(maxsize=4)
def _trial_task(*key: Any) -> Task:
    """:func:`_cached_task` as trials evaluate it: with its target neighbourhoods found once per trial process, and
    never on the driver, which does not score trials."""
    from adaptune.algorithms.domains import with_target_neighbours

    return with_target_neighbours(_cached_task(*key))


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one search shares, built once by the driver (search/run.py). Ray pickles it to every
    trial process (``tune.with_parameters``, and Ray Train's loop config), so it holds plain values only."""

    # The task, loaded the same way on the driver and in every trial (resolve_task).
    task: str | None  # a built-in task, or None for source/target paths
    source: str | None  # absolute paths: trials run in Ray's working directories
    target: str | None
    fewshot_k: int
    seed: int
    preprocess: str
    image_size: int
    # How each trial trains.
    backbone: str
    weights: str | None
    epochs: int
    batch_size: int
    steps_per_epoch: int
    amp: bool
    augment: str
    # Resources: per trial with the tune runner, per Ray Train worker with the train runner.
    cpus_per_trial: float
    gpus_per_trial: float
    workers: int
    # Where checkpoints go, and what ranks a trial's epochs.
    storage: str  # Tune's storage root; the train runner's Ray Train runs go there too
    metric: str  # what Tune's searcher and scheduler follow: proxy_<name> of the checkpoint proxy
    checkpoint_metric: str | None  # what the kept checkpoint maximises; None (keep the last) for a final-only proxy
    # Where the frozen-prefix outputs are shared between trial processes (absolute; None: each process keeps its
    # own in memory), and the most bytes of files kept there.
    feature_cache: str | None = None
    feature_cache_max_bytes: int | None = None

    def load_task(self, config: dict[str, Any] | None = None) -> Task:
        """The task, preprocessed as the trial's ``config`` draws it where the search draws it (search.space)."""
        preprocess = (config or {}).get(PREPROCESS_KEY, self.preprocess)
        return _trial_task(self.task, self.source, self.target, self.fewshot_k, self.seed, preprocess,
                           self.image_size)

    def feature_store(self) -> FeatureStore:
        return _feature_store(self.feature_cache, self.feature_cache_max_bytes)

    def trial_spec(self, config: dict[str, Any]) -> TrialSpec:
        """One trial's spec: these settings and the hyperparameters Tune sampled (``config``)."""
        return TrialSpec(
            method=config["method"],
            hparams={k: v for k, v in config.items() if k not in ("method", PREPROCESS_KEY)},
            backbone=self.backbone,
            weights=self.weights,
            epochs=self.epochs,
            batch_size=self.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            seed=self.seed,
            amp=self.amp,
            augment=self.augment,
            # Decoding images overlaps training in as many processes as the trial has CPUs.
            loader_workers=max(1, int(self.cpus_per_trial)),
        )


@functools.lru_cache(maxsize=4)  # one per process: with actor reuse, later trials read the features from memory
def _feature_store(directory: str | None, max_bytes: int | None) -> FeatureStore:
    return MemoryStore() if directory is None else DiskStore(directory, max_bytes)


def _node_metrics(started_at: float) -> dict[str, Any]:
    import ray

    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "started_at": started_at, "reported_at": time.time()}


def _load_state(checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(os.path.join(directory, RunDir.CHECKPOINT_STATE), map_location="cpu", weights_only=True)


def _report_with_checkpoint(report_fn: Any, checkpoint_cls: Any, metrics: dict[str, Any], state: StateFn | None):
    if state is None:
        report_fn(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        full = state()
        torch.save(full.pop(PREDICTIONS), os.path.join(directory, RunDir.CHECKPOINT_PREDICTIONS))
        torch.save(full, os.path.join(directory, RunDir.CHECKPOINT_STATE))
        report_fn(metrics, checkpoint=checkpoint_cls.from_directory(directory))


def _fault(epoch: int) -> None:
    """Fault injection for the fault-tolerance tests: ``ADAPTUNE_FAULT=raise@EPOCH`` fails a trial there."""
    fault = os.environ.get("ADAPTUNE_FAULT", "")
    if fault.startswith("raise@") and epoch == int(fault.removeprefix("raise@")):
        raise RuntimeError(f"injected fault at epoch {epoch} (ADAPTUNE_FAULT)")


def _run(config: dict[str, Any], settings: TrialSettings, report_fn: Any, runtime: Runtime,
         resume_state: dict[str, Any] | None, started_at: float) -> None:
    """The loop; a diverged trial reports its last result with the reason instead of failing.

    A failure is retried from the last checkpoint (FailureConfig), which cannot help a loss that is NaN by
    construction, so divergence ends the trial normally with a NaN score and ``diverged`` set.
    """
    last: dict[str, Any] = {}

    def report(metrics: dict[str, Any], state: StateFn | None) -> None:
        last.update(metrics)
        _fault(int(metrics["epoch"]))
        report_fn({**metrics, **_node_metrics(started_at)}, state)

    try:
        run_trial(settings.load_task(config), settings.trial_spec(config), report, runtime=runtime,
                  store=settings.feature_store(), resume_state=resume_state)
    except Diverged as error:
        report_fn({"epoch": int(last.get("epoch", 0)) + 1, settings.metric: float("nan"), "diverged": str(error),
                   **_node_metrics(started_at)}, None)


def tune_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable for the ``tune`` runner."""
    from ray import tune

    torch.set_num_threads(max(1, int(settings.cpus_per_trial)))

    def report(metrics: dict[str, Any], state: StateFn | None) -> None:
        _report_with_checkpoint(tune.report, tune.Checkpoint, metrics, state)

    _run(config, settings, report, Runtime.local(use_gpu=settings.gpus_per_trial > 0),
         _load_state(tune.get_checkpoint()), time.time())


def train_worker(loop_config: dict[str, Any]) -> None:
    """Per-worker loop of the ``train`` runner (runs in every Ray Train worker)."""
    import ray.train
    import ray.train.torch

    config, settings = loop_config["config"], loop_config["settings"]
    torch.set_num_threads(max(1, int(settings.cpus_per_trial)))
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


# The metric naming the Train checkpoint directory of a report (Ray's own Train -> Tune hand-over uses the same key).
CHECKPOINT_PATH_KEY = "checkpoint_path"
# How long the trial waits for the next Train report before it looks again whether the Train run has ended.
RELAY_POLL_S = 0.5


def _train_reports_callback(reports: Any) -> Any:
    """A Ray Train callback that puts every report (rank 0's metrics, the checkpoint's path) on ``reports``.

    Ray's own ``TuneReportCallback`` hands each report to Tune through a one-item queue that Tune's function session
    drains concurrently with the trial; a report put just before the Train run ends could miss that drain, and the
    trial's last epoch never reached Tune. Here the queue is unbounded and the trial itself relays it
    (:func:`relay_reports`), so every report arrives, in order.
    """
    from ray.train.v2.api.callback import UserCallback

    class ReportToTrial(UserCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            item = dict(metrics[0])
            if checkpoint:
                item[CHECKPOINT_PATH_KEY] = checkpoint.path
            reports.put(item)

    return ReportToTrial()


def relay_reports(fit: Callable[[], Any], reports: Any, report: Callable[[dict[str, Any]], None],
                  poll_s: float = RELAY_POLL_S) -> None:
    """Run ``fit`` in a thread and pass every item of ``reports`` (a ``ray.util.queue.Queue``) to ``report`` while it
    runs and after it returns, so that a report put just before the end is not lost; then raise what ``fit`` raised.
    When ``report`` raises (Tune stops the trial), wait for ``fit`` before raising it.
    """
    from ray.util.queue import Empty

    raised: list[BaseException] = []

    def run() -> None:
        try:
            fit()
        except BaseException as error:  # re-raised in the trial's thread below
            raised.append(error)

    thread = threading.Thread(target=run, name="train-fit", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            try:
                report(reports.get(timeout=poll_s))
            except Empty:
                pass
        while True:  # whatever the run reported after the last look
            try:
                report(reports.get_nowait())
            except Empty:
                break
    except BaseException:
        # Tune stopped the trial (its report raised) and ends its actor, and the Train run with it. Staying with the
        # run until then, as a trial blocked in fit() does, keeps the actor from looking free to reuse while the run
        # goes on inside it (search.run reuses actors for the tune runner only).
        thread.join()
        raise
    if raised:
        raise raised[0]


def train_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable for the ``train`` runner: one Ray Train run per trial."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    from ray.util.queue import Queue

    use_gpu = settings.gpus_per_trial > 0
    per_worker = {"CPU": settings.cpus_per_trial}
    if use_gpu:
        per_worker["GPU"] = settings.gpus_per_trial
    for name, value in TRAIN_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)  # Ray Train passes these on to its controller and workers
    trainer_cls = TorchTrainer if settings.workers > 1 else DataParallelTrainer
    reports = Queue(actor_options={"num_cpus": 0})
    trainer = trainer_cls(
        train_worker,
        train_loop_config={"config": config, "settings": settings},
        scaling_config=ray.train.ScalingConfig(num_workers=settings.workers, use_gpu=use_gpu,
                                               resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=f"train-{tune.get_context().get_trial_id()}",
            storage_path=settings.storage,
            callbacks=[_train_reports_callback(reports)],
            failure_config=ray.train.FailureConfig(controller_failure_limit=TRAIN_START_ATTEMPTS - 1),
            # Keep the best epoch by the proxy (Tune's rule too); the last, when the proxy is final-only.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1,
                                                         checkpoint_score_attribute=settings.checkpoint_metric,
                                                         checkpoint_score_order="max"),
        ),
    )
    try:
        relay_reports(trainer.fit, reports, tune.report)
    finally:
        reports.shutdown()
