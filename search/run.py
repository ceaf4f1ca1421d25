"""Run a search: config -> (Ray init) -> Tuner(OptunaSearch + ASHA) -> trials -> leaderboard.

:func:`prepare` does everything that can fail on bad input (it loads the task and checks the backbone)
before Ray starts, so a wrong config exits with code 2 and writes nothing. Then three steps, one function each:
:func:`build_search` (the trainable with its :class:`~.trial.TrialSettings`, the searcher, the scheduler and the
recorder, in a Tuner), :func:`fit_search` (Tune runs the trials) and :func:`summarise` (the ensemble row, the
final leaderboard and the summary). Every file of the run directory is written through
:class:`~adaptune.reports.run_dir.RunDir`.
"""

from __future__ import annotations

import glob
import itertools
import json
import math
import os
import platform
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from adaptune.algorithms.backbones import build_backbone
from adaptune.algorithms.budget import Plan, plan_search
from adaptune.algorithms.domains import Task
from adaptune.algorithms.ensemble import Smoothing, resolve_smoothing
from adaptune.algorithms.errors import InputError, first_line
from adaptune.algorithms.hparams import default_ranges
from adaptune.algorithms.images import gather
from adaptune.algorithms.methods import METHODS
from adaptune.algorithms.proxies import PROXIES, resolve_proxies, resolve_source_gap
from adaptune.reports.run_dir import RunDir

from .config import SearchConfig
from .precompute import precompute_features
from .space import all_param_names, closed_form_points, default_points, make_space
from .trial import CHECKPOINT_PATH_KEY, TrialSettings, resolve_task, train_trial, tune_trial

if TYPE_CHECKING:
    from .recorder import Recorder

HEAD_NODE_RESOURCE = "node:__internal_head__"  # every Ray head node has it
DRIVER_CPU = 0.25  # a Tune trial that only drives a Ray Train run needs CPU > 0
LOST_RETRY_ROUNDS = 3  # reruns of trials that Tune errored when their node died (a safety bound)
CLIENT_CONNECT_ATTEMPTS = 3  # connections to a ray:// address whose head failed to start its client server
CLIENT_REASON_CHARS = 240  # Ray's reasons name the head's log files near their end; whole words, one line
# A trial whose reports all got lost on the way (Ray Train forwards a Train run's reports to Tune through a queue)
# ends with a result that lacks the proxy, and Tune's strict metric check would then end the whole search with a
# traceback. Without it, the recorder records that one trial as an error (Recorder.on_trial_complete).
DRIVER_ENV_DEFAULTS = {"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1"}


@dataclass
class Prepared:
    config: SearchConfig
    task: Task
    backbone: str
    ranges: dict[str, tuple[float, float]]
    proxy: str  # the selecting proxy, with "auto" resolved
    plan: Plan  # trials, steps per epoch and ASHA's rungs, from the budget and the data's size
    source_gap: float | None  # the recommendation's source-accuracy gap, with "auto" resolved
    smoothing: Smoothing | None  # the ensemble row's neighbourhood smoothing, with "auto" resolved
    checkpoint_proxy: str  # the proxy whose best epoch each trial keeps: ``proxy`` unless the config names another

    @property
    def ranks_at_checkpoint(self) -> bool:
        """Whether trials are ranked by the selecting proxy at another proxy's best epoch."""
        return self.checkpoint_proxy != self.proxy

    @property
    def proxy_metric(self) -> str:
        """The selecting proxy's reported metric."""
        return f"proxy_{self.proxy}"

    @property
    def metric(self) -> str:
        """The reported metric Tune's searcher and scheduler follow: the checkpoint proxy's, the proxy whose best epoch
        each trial keeps. The selecting proxy, read at that epoch, ranks the finished trials for the recommendation
        only: a sampler that chased it would spend the search on the trials it over-rates, while the checkpoint proxy
        is the one whose values a trial improves epoch by epoch (benchmarks/results/checkpoint_proxy.md)."""
        return f"proxy_{self.checkpoint_proxy}"

    @property
    def checkpoint_metric(self) -> str | None:
        """The reported metric whose best epoch a trial keeps; None (its last epoch) for a final-only proxy."""
        return None if PROXIES[self.checkpoint_proxy].final_only else f"proxy_{self.checkpoint_proxy}"

    @property
    def searched_preprocess(self) -> tuple[str, ...]:
        """The feature preprocessings the sampler draws per trial; empty when every trial has the task's own (one
        kind given, or images, which carry their own normalisation)."""
        choices = self.config.preprocess_choices
        return choices if len(choices) > 1 and self.task.input_kind == "features" else ()

    @property
    def preprocess_label(self) -> str:
        """The preprocessing as leaderboards and summaries record it: a kind, or the searched kinds joined by |."""
        return "|".join(self.searched_preprocess) or self.task.extra.get("preprocess", "none")


def prepare(config: SearchConfig) -> Prepared:
    """Load the task, check the backbone and search ranges against it, and that a cluster address answers: all
    before Ray starts."""
    # With several preprocessings the driver checks the task under the first; each trial loads its own.
    task = resolve_task(config.task, config.source, config.target, config.fewshot_k, config.seed,
                        config.preprocess_choices[0], config.image_size)
    backbone_name = config.backbone or task.default_backbone
    try:
        backbone = build_backbone(backbone_name, task.input_shape, weights=config.weights)
        import torch

        with torch.no_grad():
            backbone.blocks.eval()(gather(task.source_train.x, torch.arange(2)))
    except InputError:
        raise
    except (RuntimeError, ValueError, AssertionError) as error:  # timm asserts a fixed input size
        raise InputError("backbone", f"{backbone_name} does not fit inputs of shape {task.input_shape} "
                         f"({first_line(error)[:120]})") from None
    # Freezing random-init blocks only removes capacity, so by default only pretrained backbones search it.
    default_fd = (0, backbone.depth) if config.weights else (0, 0)
    ranges = {**default_ranges(), "freeze_depth": default_fd}
    ranges.update({k: tuple(v) for k, v in config.search_space.items()})
    low, high = ranges["freeze_depth"]
    if not (float(low).is_integer() and float(high).is_integer() and 0 <= low <= high <= backbone.depth):
        raise InputError("search_space.freeze_depth", f"expected integers within 0..{backbone.depth} for "
                         f"{backbone_name}, got [{low}, {high}]")
    ranges["freeze_depth"] = (int(low), int(high))
    proxy, checkpoint_proxy = resolve_proxies(config.proxy, config.checkpoint_proxy, task)
    if config.address:
        check_reachable(config.address, config.connect_timeout_s)
    return Prepared(config, task, backbone_name, ranges, proxy, make_plan(config, task, proxy),
                    resolve_source_gap(config.source_gap, task),
                    resolve_smoothing(config.smoothing, config.smoothing_weight, task), checkpoint_proxy)


def make_plan(c: SearchConfig, task: Task, proxy: str) -> Plan:
    """The search's plan: the same config and data give the same plan on any machine."""
    r = c.resources
    return plan_search(
        budget=c.budget, n_source=len(task.source_train), batch_size=c.batch_size, epochs=c.epochs,
        grace_epochs=c.scheduler.grace_period, reduction_factor=c.scheduler.reduction_factor,
        n_methods=len(c.methods), n_closed_form=sum(METHODS[m].feature_extraction for m in c.methods),
        closed_form_draws=c.closed_form_draws if c.searcher == "tpe" else 0,
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
    # Over Ray Client the head starts a server process per client; on a loaded head that start can fail, or the
    # server may not answer within the head's channel timeout (30 s), and a new connection gets a new server.
    attempts = CLIENT_CONNECT_ATTEMPTS if address.startswith("ray://") else 1
    for attempt in range(attempts):
        try:
            ray.init(address=address, **kwargs)
            return
        except (ConnectionError, RuntimeError) as error:
            reason = client_failure_reason(error)
            if not client_server_failed(reason) or attempt == attempts - 1:
                raise InputError("address", f"could not join the Ray cluster at {address} ({reason})") from None
            print(f"adaptune: {address}: {reason}; connecting again", file=sys.stderr)
            time.sleep(5)


def client_failure_reason(error: BaseException) -> str:
    """The line that says why ``ray.init`` failed. A Ray Client head that could not serve the client answers
    "Initialization failure from server:" followed by its own traceback, whose last line holds the reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    from_head = len(lines) > 1 and lines[0].startswith("Initialization failure from server")
    reason = lines[-1] if from_head else first_line(error)
    return textwrap.shorten(reason, CLIENT_REASON_CHARS, placeholder=" ...")


def client_server_failed(reason: str) -> bool:
    """Whether the head failed to start or reach the server process of this one client (a new connection gets a
    new one), rather than refusing the client or not being there."""
    reason = reason.lower()
    return "client server" in reason or "failed to connect to backend" in reason


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


def _best_checkpoint(result: Any, metric: str | None) -> Any:
    """The checkpoint of a trial's best epoch by ``metric`` (its last with None), which Tune keeps; Ray Train reports
    its path."""
    from ray.train import Checkpoint

    if result.best_checkpoints:
        return max(result.best_checkpoints, key=lambda pair: _score(pair[1].get(metric)))[0]
    frame = result.metrics_dataframe
    if frame is None or CHECKPOINT_PATH_KEY not in frame or (metric is not None and metric not in frame):
        return None
    frame = frame[frame[CHECKPOINT_PATH_KEY].notna()]
    if frame.empty:
        return None
    best = frame.index[-1] if metric is None else frame[metric].fillna(-math.inf).idxmax()
    return Checkpoint(frame.loc[best, CHECKPOINT_PATH_KEY])


def _score(value: Any) -> float:
    return value if isinstance(value, float | int) and math.isfinite(value) else -math.inf


def ensemble_row(recorder: Any, results: Any, task: Task, metric: str, checkpoint_metric: str | None, k: int,
                 per_method: int | None = None,
                 smoothing: Smoothing | None = None) -> tuple[dict[str, Any], Any] | None:
    """Average the target predictions of the top-k finished trials by the proxy (admitted by the recorder's source
    gap, at most ``per_method`` of one method), each at its kept checkpoint (best by ``checkpoint_metric``; None:
    the last), smoothed over target neighbourhoods when ``smoothing`` is given: one leaderboard row scored by the
    proxy's ``metric``, and the predictions it scores."""
    from adaptune.algorithms.ensemble import average_predictions, ensemble_metrics, smooth_by_neighbours
    from adaptune.reports.leaderboard import FINISHED, at_most_per_method, selection_order

    admitted, _ = selection_order([r for r in recorder.finished_rows() if r["status"] in FINISHED],
                                  recorder.source_gap)
    by_trial = {r.metrics.get("trial_id"): r for r in results if r.metrics}

    def with_predictions() -> Iterator[dict[str, Any]]:
        """The admitted rows, in order, that kept target predictions, each with them as ``probs``."""
        for row in admitted:
            probs = _kept_predictions(by_trial.get(row["trial_id"]), checkpoint_metric)
            if probs is not None:
                yield {**row, "probs": probs}

    chosen = list(itertools.islice(at_most_per_method(with_predictions(), per_method), k))
    members, probs = [row["trial_id"] for row in chosen], [row["probs"] for row in chosen]
    if not members:
        return None
    averaged = average_predictions(probs)
    if smoothing is not None:
        averaged = smooth_by_neighbours(averaged, task.target_val.x, smoothing)
    values = ensemble_metrics(averaged, task.target_oracle)
    return {"trial_id": f"ensemble-top{len(members)}", "status": "ensemble", "method": "ensemble",
            "score": values[metric], "members": ",".join(members), "epochs": None, **values}, averaged


def trial_predictions(results: Any, trial_id: str, metric: str | None) -> Any:
    """The target probabilities ``[N, C]`` the trial ``trial_id`` kept at its best checkpoint by ``metric``."""
    return _kept_predictions(next((r for r in results if r.metrics and r.metrics.get("trial_id") == trial_id), None),
                             metric)


def _kept_predictions(result: Any, metric: str | None) -> Any:
    """The target probabilities a trial's Tune ``result`` kept at its best checkpoint by ``metric``; None
    without a result or kept predictions."""
    import torch

    checkpoint = _best_checkpoint(result, metric) if result is not None else None
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:  # a remote checkpoint's copy lives only inside
        path = os.path.join(directory, RunDir.CHECKPOINT_PREDICTIONS)
        return torch.load(path, map_location="cpu", weights_only=True) if os.path.exists(path) else None


def predictions_frame(probs: Any, task: Task) -> Any:
    """The recommended target predictions as a table: one row per target sample in the order given (its image file
    where the target is a folder), the predicted class's name, that class's probability, and every probability."""
    import pandas as pd

    confidence, predicted = probs.float().max(1)
    frame = pd.DataFrame({"target_index": range(len(probs)),
                          "predicted": [task.classes[i] for i in predicted.tolist()],
                          "confidence": confidence.numpy().astype("float32"),
                          "probs": list(probs.float().numpy())})
    files = getattr(task.target_val.x, "files", None)
    if files is not None:
        frame.insert(1, "file", list(files))
    return frame


def recommendation(recorder: Any, recommend: str, proxy: str, smoothing: Smoothing | None = None
                   ) -> dict[str, Any] | None:
    """What the run recommends shipping: the ensemble row (``recommend: ensemble``, when the run has one, with the
    ``smoothing`` its predictions had) or the best trial by the proxy; None before any trial has a score."""
    best = recorder.best_row()
    ensemble = next((r for r in recorder.rows.values() if r["status"] == "ensemble"), None)
    if recommend == "ensemble" and ensemble is not None:
        members = ensemble["members"].split(",")
        return {"kind": "ensemble", "trial_id": ensemble["trial_id"], "members": members, "proxy": proxy,
                "methods": [recorder.rows[m].get("method") for m in members], "score": ensemble.get("score"),
                "target_acc": ensemble.get("target_acc"),
                "smoothing": None if smoothing is None else asdict(smoothing)}
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
    for name, value in DRIVER_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)  # read by Tune's controller in this process
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        recorder.state = "interrupted"
    finally:
        if recorder.state == "running":
            recorder.state = "interrupted" if results is None else "finished"
        recorder.write()  # also on Ctrl-C or a crash: every finished trial stays in the leaderboard
    return results


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
        c.out = os.path.abspath(c.out)  # source and target are absolute already (or storage URIs)
        on_head = ray.remote(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001})(_run_search_here)
        return ray.get(on_head.remote(prepared, resume, retry_errors))
    return _run_search_here(prepared, resume, retry_errors)


def _run_search_here(prepared: Prepared, resume: bool, retry_errors: bool) -> dict[str, Any]:
    search = build_search(prepared, resume, retry_errors)
    return summarise(search, fit_search(search))


@dataclass
class Search:
    """A search built from its prepared config and ready to fit: what fitting needs, and what the summary reports."""

    prepared: Prepared
    run_dir: RunDir
    recorder: Recorder
    trainable: Any  # the runner's trial function with its TrialSettings and resources bound, as Tune runs it
    runner: str  # resources.runner resolved: tune or train
    storage: str  # Tune's storage root: the config's storage, else the run's ray/
    experiment: str  # the Tune experiment in that storage, which a restore reads back
    max_concurrent: int
    tuner: Any  # a new Tuner, or for a resume the experiment restored


@dataclass
class Fitted:
    """How fitting a search went."""

    results: Any  # Tune's ResultGrid; None when Ctrl-C stopped the search
    started_at: float
    lost_retry_rounds: int  # reruns of trials lost with their node (fit_search)


def build_search(prepared: Prepared, resume: bool, retry_errors: bool) -> Search:
    """Config -> everything Tune runs: the run directory (with its config.yaml, for a new search), the trainable
    with its settings and resources, the recorder, and a Tuner with the searcher and the scheduler.

    A resume instead restores the experiment from its storage (searcher and scheduler state included) and the
    recorder from the run's files; ``retry_errors`` reopens the trials that ended in error, to be rerun.
    """
    _quiet_optuna()
    c = prepared.config
    run_dir = RunDir(os.path.abspath(c.out))
    if not resume:  # writing the config creates the run directory
        run_dir.write_config({**asdict(c), "config_hash": c.config_hash()})
    storage = run_dir.tune_storage(c.storage)
    done = precompute_features(prepared, trial_settings(prepared, storage))
    if done and not c.quiet:
        print(f"adaptune: {done}", file=sys.stderr)
    experiment_name = run_dir.experiment_name(c.storage, c.config_hash())
    trainable, per_trial_cpu = _trainable(prepared, storage)
    recorder = _recorder(prepared, run_dir)
    max_concurrent = _max_concurrent(c, prepared.plan.trials, per_trial_cpu)
    experiment = f"{storage}/{experiment_name}"  # storage may be a URI: joined with "/", not os.path
    if resume:
        recorder.load_existing()
        if retry_errors:
            recorder.reopen_errors()
        # The experiment state names the recorder by run directory (Recorder.__reduce__): this one continues.
        tuner = _restored_tuner(experiment, trainable, retry_errors)
    else:
        tuner = _new_tuner(prepared, trainable, recorder, storage, experiment_name, max_concurrent)
    return Search(prepared, run_dir, recorder, trainable, c.resources.resolved_runner, storage, experiment,
                  max_concurrent, tuner)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a diverged trial's NaN is recorded by us, not warned
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def trial_settings(prepared: Prepared, storage: str) -> TrialSettings:
    """What every trial of the search shares (the sampled hyperparameters come per trial)."""
    c, r = prepared.config, prepared.config.resources
    return TrialSettings(
        task=c.task, source=c.source, target=c.target,  # absolute paths or URIs (config._resolve_paths)
        fewshot_k=c.fewshot_k, seed=c.seed, preprocess=c.preprocess_choices[0], image_size=c.image_size,
        augment=c.augment,
        backbone=prepared.backbone, weights=c.weights, epochs=c.epochs, batch_size=c.batch_size,
        steps_per_epoch=prepared.plan.steps_per_epoch, amp=c.amp,
        cpus_per_trial=r.cpus_per_trial, gpus_per_trial=r.gpus_per_trial, workers=r.workers,
        storage=storage, metric=prepared.metric, checkpoint_metric=prepared.checkpoint_metric,
        feature_cache=RunDir(c.out).feature_cache(c.feature_cache), feature_cache_max_bytes=c.feature_cache_max_bytes,
    )


def _trainable(prepared: Prepared, storage: str) -> tuple[Any, float]:
    """The runner's trial function with its settings and resources bound, and the CPUs one trial holds in all."""
    from ray import tune

    r = prepared.config.resources
    if r.resolved_runner == "tune":
        trainable, resources = tune_trial, {"CPU": r.cpus_per_trial, "GPU": r.gpus_per_trial}
        per_trial_cpu = r.cpus_per_trial
    else:
        # Tune does not count the Train worker group's resources, so concurrency is capped by hand (_max_concurrent).
        trainable, resources = train_trial, {"CPU": DRIVER_CPU}
        per_trial_cpu = DRIVER_CPU + r.workers * r.cpus_per_trial
    bound = tune.with_parameters(trainable, settings=trial_settings(prepared, storage))
    return tune.with_resources(bound, resources), per_trial_cpu


def _recorder(prepared: Prepared, run_dir: RunDir) -> Recorder:
    from .recorder import Recorder

    c = prepared.config
    return Recorder(run_dir.path, proxy=prepared.proxy, epochs=c.epochs, total_trials=prepared.plan.trials,
                    param_names=all_param_names(), proxy_names=list(PROXIES), config_hash=c.config_hash(),
                    seed=c.seed, versions=json.dumps(versions(), sort_keys=True), quiet=c.quiet,
                    preprocess=prepared.preprocess_label, source_gap=prepared.source_gap,
                    checkpoint_proxy=prepared.checkpoint_proxy,
                    step_budget=prepared.plan.budget if prepared.plan.capped else None)


def _searcher(prepared: Prepared) -> Any:
    """Optuna over the methods' space: TPE that first tries each method's defaults, or random (``searcher``)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from .step_budget import StepBudget

    c, methods, plan = prepared.config, list(prepared.config.methods), prepared.plan
    if c.searcher == "random":
        sampler, first_points = optuna.samplers.RandomSampler(seed=c.seed), None
    else:
        sampler = optuna.samplers.TPESampler(
            seed=c.seed, multivariate=True, group=True, constant_liar=True,
            n_startup_trials=min(10, max(len(methods), plan.trials // 3)),
        )
        first_points = default_points(methods, prepared.ranges, prepared.searched_preprocess) + closed_form_points(
            methods, prepared.ranges, c.closed_form_draws, c.seed, prepared.searched_preprocess)
    optuna_search = OptunaSearch(space=make_space(methods, prepared.ranges, prepared.searched_preprocess),
                                 metric=prepared.metric, mode="max",
                                 sampler=sampler, points_to_evaluate=first_points)
    if not plan.capped:
        return optuna_search
    return StepBudget(optuna_search, plan.budget, always_run=len(first_points or ()))


def _scheduler(prepared: Prepared) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    plan = prepared.plan
    if not plan.early_stopping:  # scheduler.kind none, or a final-only proxy: nothing for ASHA to stop on
        return FIFOScheduler()
    # Rungs in optimizer steps, so a trial is never compared before it trained plan.grace_steps.
    return ASHAScheduler(metric=prepared.metric, mode="max", time_attr="steps", max_t=plan.max_trial_steps,
                         grace_period=plan.grace_steps, reduction_factor=plan.reduction_factor)


def _reuses_actors(config: SearchConfig) -> bool:
    """Whether a trial's actor serves the next trial. The ``tune`` runner keeps the loaded task and frozen features in
    it. A ``train`` trial's actor holds nothing worth keeping, and one whose trial ASHA stopped is still inside its
    Train run, so Tune's reset fails; that failure errs the next trial and stalled the search for ten minutes."""
    return config.resources.resolved_runner == "tune"


def _new_tuner(prepared: Prepared, trainable: Any, recorder: Recorder, storage: str, experiment_name: str,
               max_concurrent: int) -> Any:
    from ray import tune

    c = prepared.config
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=_searcher(prepared), scheduler=_scheduler(prepared),
                                    num_samples=prepared.plan.trials, max_concurrent_trials=max_concurrent,
                                    reuse_actors=_reuses_actors(c), time_budget_s=c.time_budget_s),
        run_config=tune.RunConfig(
            name=experiment_name, storage_path=storage, callbacks=[recorder], verbose=0,
            # A trial whose node dies restarts from its last checkpoint, on any node, up to 3 times.
            failure_config=tune.FailureConfig(max_failures=c.max_failures),
            # The kept checkpoint is the trial's best epoch by the checkpoint proxy (its last, for a final-only one).
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=prepared.checkpoint_metric, checkpoint_score_order="max"),
        ),
    )


def _restored_tuner(experiment: str, trainable: Any, retry_errors: bool) -> Any:
    """The experiment as Tune saved it: unfinished trials continue, and with ``retry_errors`` the ones that ended in
    error rerun from their last checkpoint."""
    from ray import tune

    return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=retry_errors)


def fit_search(search: Search) -> Fitted:
    """Run the trials; the leaderboard is written however the fit ends (Ctrl-C included).

    Tune 2.60 can end a trial as error when its node dies while it starts, without using its retries
    (docs/architecture.md, Faults). When every error is such a loss, those trials rerun here from their last
    checkpoint, as `adaptune resume --retry-errors` would; errors raised by a trial's code are left alone.
    Tune keeps counting each trial's failures across the reruns, so max_failures still bounds them.
    """
    recorder, started_at = search.recorder, time.time()
    results = _fit(search.tuner, recorder)
    lost_retried = 0
    while results is not None and recorder.errors_all_lost() and lost_retried < LOST_RETRY_ROUNDS:
        lost_retried += 1
        print(f"adaptune: {len(recorder.lost)} trial(s) lost with their node; rerunning them from their last "
              f"checkpoint (round {lost_retried})", file=sys.stderr, flush=True)
        recorder.reopen_errors()
        recorder.state = "running"
        results = _fit(_restored_tuner(search.experiment, search.trainable, retry_errors=True), recorder)
    return Fitted(results, started_at, lost_retried)


def summarise(search: Search, fitted: Fitted) -> dict[str, Any]:
    """Close the run: its final state, the ensemble row and the last leaderboard write; then the summary, written
    to the run directory only when the search finished (an interrupted run has none, and stays resumable)."""
    c, recorder = search.prepared.config, search.recorder
    trials = [r for r in recorder.finished_rows() if r["status"] != "ensemble"]
    if len(trials) < search.prepared.plan.trials and c.time_budget_s is None and not recorder.budget_spent():
        recorder.state = "interrupted"  # Tune stopped early (Ctrl-C): resumable
    ensemble_probs = None
    if c.ensemble_k and fitted.results is not None:
        prepared = search.prepared
        made = ensemble_row(recorder, fitted.results, prepared.task, prepared.proxy_metric,
                            prepared.checkpoint_metric, c.ensemble_k, c.ensemble_per_method, prepared.smoothing)
        if made is not None:
            recorder.add_ensemble(made[0])
            ensemble_probs = made[1]
    recorder.write()
    summary = _summary(search, fitted, trials)
    if recorder.state == "finished":
        _write_predictions(search, fitted, summary["recommendation"], ensemble_probs)
        search.run_dir.write_summary(summary)
    return summary


def _write_predictions(search: Search, fitted: Fitted, recommended: dict[str, Any] | None,
                       ensemble_probs: Any) -> None:
    """predictions.parquet: the target predictions of what the run recommends (the ensemble row's, smoothed as it
    was, or the best trial's kept ones); nothing when there is none."""
    if recommended is None or fitted.results is None:
        return
    probs = ensemble_probs if recommended["kind"] == "ensemble" else \
        trial_predictions(fitted.results, recommended["trial_id"], search.prepared.checkpoint_metric)
    if probs is not None:
        search.run_dir.write_table(RunDir.PREDICTIONS, predictions_frame(probs, search.prepared.task))


def _summary(search: Search, fitted: Fitted, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json: the outcome, the plan and its cost, where the run ran, and its provenance."""
    from .step_budget import spent_steps

    prepared, recorder = search.prepared, search.recorder
    c, plan = prepared.config, prepared.plan
    return {
        "out": search.run_dir.path, "state": recorder.state, "trials": len(trials),
        "wall_s": time.time() - fitted.started_at,
        "plan": {**asdict(plan), "rungs": plan.rungs, "expected_trial_steps": plan.expected_trial_steps},
        "steps_used": spent_steps(trials),
        "preprocess": prepared.preprocess_label, "preprocess_requested": c.preprocess,
        "recommendation": recommendation(recorder, c.recommend, prepared.proxy, prepared.smoothing),
        "runner": search.runner, "storage": search.storage, "experiment": search.experiment,
        "max_concurrent": search.max_concurrent, "max_running": recorder.max_running, "machine": platform.node(),
        "lost_retry_rounds": fitted.lost_retry_rounds,
        "nodes": sorted(recorder.nodes),
        "statuses": {s: sum(r["status"] == s for r in trials) for s in {r["status"] for r in trials}},
        "proxy": prepared.proxy, "proxy_requested": c.proxy, "checkpoint_proxy": prepared.checkpoint_proxy,
        "source_gap": prepared.source_gap,
        "smoothing": None if prepared.smoothing is None else asdict(prepared.smoothing),
        "smoothing_requested": c.smoothing,
        "all_failed": first_failure(trials, search.experiment),
        # provenance, read by `adaptune report`
        "command": list(sys.argv), "git_revision": git_revision(), "config_hash": c.config_hash(),
        "versions": versions(), "python": platform.python_version(), "platform": platform.platform(),
        "started_at": fitted.started_at, "ended_at": time.time(),
    }
