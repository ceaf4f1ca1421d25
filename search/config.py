"""The search configuration: YAML file + CLI flags, validated before Ray starts.

Every problem is an :class:`InputError` naming the field and what was expected; the CLI turns it into one
line and exit code 2. The resolved config is also what ``config_hash`` identifies a search by.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import reprlib
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from adaptune.algorithms.backbones import is_weights_file
from adaptune.algorithms.budget import DEFAULT_BUDGET, DEFAULT_GRACE_EPOCHS
from adaptune.algorithms.ensemble import AUTO_SMOOTH, DEFAULT_SMOOTHING_WEIGHT, SMOOTHING_WORDS
from adaptune.algorithms.errors import InputError, first_line
from adaptune.algorithms.hparams import SEARCH_SPACE_KNOBS
from adaptune.algorithms.images import DEFAULT_AUGMENT, DEFAULT_IMAGE_SIZE, check_augment, is_storage_uri
from adaptune.algorithms.methods import METHODS
from adaptune.algorithms.preprocess import DEFAULT_PREPROCESS, check_preprocess_choices
from adaptune.algorithms.proxies import AUTO_GAP, PROXIES, SOURCE_GAP_WORDS
from adaptune.reports.run_dir import RunDir

RUNNERS = ("auto", "tune", "train")
FEATURE_ENGINES = ("auto", "ray_data", "trial")
SEARCHERS = ("tpe", "random")
SCHEDULERS = ("asha", "none")
DEFAULT_FEATURE_CACHE_GB = 20.0  # GB = 10**9 bytes
DEFAULT_ENSEMBLE_K = 5  # trials in the recommended ensemble (benchmarks/results/search_efficiency.md)
# At most this many of the ensemble's trials share a method: derived leave one group out on whole default searches
# (benchmarks/results/source_gap.md; benchmarks/results/proxy_auto.json holds it, and a test keeps the two equal).
DEFAULT_ENSEMBLE_PER_METHOD = 2


@dataclass
class Resources:
    """What one trial gets. ``runner`` decides whether Ray Train wraps the loop (see search.trial)."""

    runner: str = "auto"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers: int = 1
    max_concurrent: int | None = None

    @property
    def resolved_runner(self) -> str:
        # Ray Train's worker group costs ~20 s per trial on this class of machine; it buys data parallelism,
        # so by default it is used only when there is more than one worker to coordinate.
        if self.runner != "auto":
            return self.runner
        return "train" if self.workers > 1 else "tune"


@dataclass
class SchedulerConfig:
    kind: str = "asha"  # asha (early stopping in optimizer steps) or none (every trial runs all its epochs)
    grace_period: int = DEFAULT_GRACE_EPOCHS
    reduction_factor: int = 2


@dataclass
class SearchConfig:
    task: str | None = "mnist->usps"
    source: str | None = None
    target: str | None = None
    methods: list[str] = field(default_factory=lambda: sorted(METHODS))
    searcher: str = "tpe"  # tpe: each method's defaults first, then Optuna's TPE; random: Optuna's random sampler
    # tpe: this many seeded random draws of each closed-form method's space run after the defaults, before TPE; they
    # spend no optimizer steps, so they come on top of the budget's trials (not of its time).
    closed_form_draws: int = 0
    trials: int | None = None  # default: as many as ``budget`` affords (algorithms.budget.plan_search)
    budget: int = DEFAULT_BUDGET  # optimizer steps summed over trials
    epochs: int = 12
    # Feature tables: one of algorithms.preprocess.PREPROCESSING, or a list of them for the search to draw per trial.
    preprocess: str | list[str] = DEFAULT_PREPROCESS
    image_size: int = DEFAULT_IMAGE_SIZE  # image folders: decoded at this many pixels square
    augment: str = DEFAULT_AUGMENT  # image folders: training augmentation (algorithms.images.AUGMENTATIONS)
    proxy: str = "auto"  # a proxy name, or "auto": by input kind (see algorithms.proxies.resolve_proxies)
    # The proxy whose best epoch each trial keeps (its checkpoint, the epoch its leaderboard row reports); trials are
    # then ranked, stopped and sampled by ``proxy`` at that epoch. None: ``proxy`` itself (for ``auto``, its own rule).
    checkpoint_proxy: str | None = None
    fewshot_k: int = 0  # opt-in: k labeled target samples per class for the fewshot proxy (0 = none)
    # The leaderboard's ensemble row averages the top-k trials by the proxy (0 = no row).
    ensemble_k: int = DEFAULT_ENSEMBLE_K
    ensemble_per_method: int | None = DEFAULT_ENSEMBLE_PER_METHOD  # at most this many members of one method (None: any)
    # What the run recommends shipping: the ensemble row, or the single best trial (default: ensemble when
    # there is an ensemble row, i.e. ensemble_k > 0).
    recommend: str | None = None
    # Trials whose held-out source accuracy lies further than this (a fraction of accuracy) below the best trial's on
    # the same preprocessing rank after the others and are never recommended; auto: derived with the proxy
    # (AUTO_SOURCE_GAP, widened on a small held-out source by AUTO_SOURCE_GAP_STANDARD_ERRORS); none: off.
    source_gap: float | str | None = AUTO_GAP
    # The ensemble row's predictions mixed with those of each target sample's nearest target neighbours (feature
    # tables): auto (AUTO_SMOOTHING, by input kind), none, or a number of neighbours, mixed in at smoothing_weight.
    smoothing: int | str | None = AUTO_SMOOTH
    smoothing_weight: float = DEFAULT_SMOOTHING_WEIGHT
    out: str | None = None
    address: str | None = None
    connect_timeout_s: float = 30.0  # how long a cluster address may take to accept a connection
    seed: int = 0
    backbone: str | None = None
    weights: str | None = None
    batch_size: int = 64
    steps_per_epoch: int | str | None = "auto"  # auto: max(one pass over the source, a floor of steps)
    amp: bool = False  # bf16 autocast on CUDA
    search_space: dict[str, list[float]] = field(default_factory=dict)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources: Resources = field(default_factory=Resources)
    time_budget_s: float | None = None
    quiet: bool = False
    storage: str | None = None  # trial checkpoints + experiment state: a path or s3://, gs://, file:// URI
    max_failures: int = 3  # retries of a trial whose worker or node fails, from its last checkpoint
    # Frozen-prefix outputs: a directory shared across runs (every node must see it for a cluster to compute them
    # once); default: the run's own features/. Either is bounded by feature_cache_max_gb (least recently used
    # files evicted).
    feature_cache: str | None = None
    feature_cache_max_gb: float = DEFAULT_FEATURE_CACHE_GB
    # Who computes the frozen-backbone features of an image folder: Ray Data across the cluster before the trials
    # start, or the first trial that needs them; auto: Ray Data from RAY_DATA_MIN_IMAGES images on.
    feature_engine: str = "auto"

    def identity(self) -> dict[str, Any]:
        """The fields that define what is searched (not where it runs or is written)."""
        data = asdict(self)
        for key in ("out", "address", "connect_timeout_s", "quiet", "storage", "max_failures", "recommend",
                    "source_gap", "smoothing", "smoothing_weight", "feature_cache", "feature_cache_max_gb",
                    "feature_engine"):
            data.pop(key)
        # Keys added after runs were saved count only when set away from their default, so a run saved before
        # keeps its hash and still resumes.
        for key, default in (("searcher", "tpe"), ("image_size", DEFAULT_IMAGE_SIZE), ("augment", DEFAULT_AUGMENT),
                             ("checkpoint_proxy", None)):
            if data[key] == default:
                data.pop(key)
        if data["scheduler"]["kind"] == "asha":
            data["scheduler"].pop("kind")
        return data

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def feature_cache_max_bytes(self) -> int:
        return int(min(self.feature_cache_max_gb * 1e9, INT_LIMIT))

    @property
    def preprocess_choices(self) -> tuple[str, ...]:
        """The preprocessings the search draws from (one when ``preprocess`` names a single kind)."""
        return check_preprocess_choices(self.preprocess)

    def task_label(self) -> str:
        return self.task if self.task else f"{os.path.basename(self.source)}->{os.path.basename(self.target)}"


SHARED_RANGES = {p.name: p for p in SEARCH_SPACE_KNOBS}  # the knobs ``search_space:`` may re-range, by key
# ensemble: the leaderboard's ensemble row (the top ensemble_k trials by the proxy, predictions averaged), which
# loses less against the oracle than one trial in our proxy benchmark; single: the best trial by the proxy.
RECOMMENDATIONS = ("ensemble", "single")
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "abfs", "abfss")


SEED_LIMIT = 2**32  # numpy's and Optuna's samplers take seeds in [0, 2**32)
# Linux's limits: checked here because a too-long path otherwise fails in os/pathlib calls after Ray started.
NAME_MAX, PATH_MAX = 255, 4096
INT_LIMIT = 2**63 - 1
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 80


def _validate_storage(storage: str) -> str:
    """A local or shared-filesystem path (made absolute), or a URI of a filesystem pyarrow knows (no network
    call here)."""
    if "://" in storage:
        scheme = storage.split("://", 1)[0]
        if scheme not in STORAGE_SCHEMES:
            raise InputError("storage", f"unknown URI scheme {_shown(scheme)}; expected a path or one of: "
                             f"{', '.join(s + '://' for s in STORAGE_SCHEMES)}")
        return storage
    storage = os.path.abspath(storage)
    parent = os.path.dirname(storage)
    if not os.path.isdir(parent):
        raise InputError("storage", f"expected a path whose parent directory exists, {parent!r} does not")
    _expect_creatable("storage", storage)
    return storage


def _shown(value: Any) -> str:
    """A bounded repr for a message: YAML aliases can nest a small file into a value whose full repr is huge."""
    return _REPR.repr(value)


def _expect_type(name: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is a ``kind``: a bool only where ``kind`` names bool, a float only when finite, an int
    only within int64 (what numpy, torch and Ray hold; Python's own ints have no bound)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kind):
        raise InputError(name, f"expected {what}, got {_shown(value)}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_LIMIT:
        raise InputError(name, f"expected {what} of magnitude below 2**63, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(name, f"expected {what} (a finite number), got {_shown(value)}")
    return value


def _expect_path(name: str, value: Any, what: str) -> str:
    """A non-empty path string the operating system can take (no NUL, encodable, within Linux's limits)."""
    _expect_type(name, value, str, what)
    if not value:
        raise InputError(name, f"expected {what}, got an empty string")
    try:
        encoded = os.fsencode(value)
    except UnicodeError:
        raise InputError(name, f"expected {what} the filesystem can encode, got {_shown(value)}") from None
    if b"\0" in encoded:
        raise InputError(name, f"expected {what} without NUL characters, got {_shown(value)}")
    if len(encoded) >= PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise InputError(name, f"expected {what} of at most {NAME_MAX} bytes per name and {PATH_MAX - 1} in all")
    return value


def _writable_dir(path: str) -> bool:
    # root passes access() for every directory of a writable mount, /proc included; a directory without any
    # write permission bit is one nobody is meant to create files in.
    return os.access(path, os.W_OK | os.X_OK) and bool(os.stat(path).st_mode & 0o222)


def _expect_creatable(name: str, path: str) -> None:
    """``path`` is a writable directory, or its nearest existing ancestor is one; nothing is created here."""
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise InputError(name, f"expected a directory that can be created, but {probe} is not a directory")
    if not _writable_dir(probe):
        raise InputError(name, f"expected a writable location, {probe} cannot be written")


def check_task_or_paths(layer: dict[str, Any]) -> None:
    """One layer of settings (the YAML file, or the flags) names a built-in task or source/target paths.

    A lower layer's choice is overridden by a higher one (see ``cli._raw_config``); within one layer both
    would leave it to us to guess which was meant.
    """
    if layer.get("task") is not None and (layer.get("source") is not None or layer.get("target") is not None):
        raise InputError("task", "expected either a built-in task or --source/--target, not both")


def _key(key: Any) -> str:
    """A YAML key as a field name; quoted unless it could be one (an empty, spaced or non-text key)."""
    return key if isinstance(key, str) and key.isidentifier() else _shown(key)


def _build_section(cls: type, name: str, raw: Any) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise InputError(name, f"expected a mapping of {', '.join(f.name for f in fields(cls))}")
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise InputError(f"{name}.{_key(key)}", f"unknown key; expected one of: {', '.join(sorted(known))}")
    return cls(**raw)


def load_yaml(path: str) -> dict[str, Any]:
    if os.path.isdir(path):
        raise InputError("config", f"expected a YAML file, {path!r} is a directory")
    if not os.path.isfile(path):
        raise InputError("config", f"expected a readable YAML file, {path!r} does not exist")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
    except OSError as error:
        raise InputError("config", f"expected a readable YAML file, {path!r} is not ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InputError("config", f"expected a UTF-8 YAML text file, {path!r} is binary or another encoding") from None
    try:
        data = yaml.safe_load(text)  # safe loader: a config never constructs Python objects
    except yaml.YAMLError as error:
        raise InputError("config", f"{path} is not valid YAML ({first_line(error)})") from None
    except RecursionError:  # the YAML parser recurses once per nesting level
        raise InputError("config", f"expected settings nested a few levels deep, {path} nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("config", f"expected a YAML mapping of settings in {path}")
    return data


def build_config(raw: dict[str, Any]) -> SearchConfig:
    """Validate a mapping (YAML merged with CLI flags) into a :class:`SearchConfig`."""
    known = {f.name for f in fields(SearchConfig)}
    for key in raw:
        if key not in known:
            raise InputError(_key(key), f"unknown config key; expected one of: {', '.join(sorted(known))}")
    check_task_or_paths(raw)
    raw = dict(raw)
    raw["scheduler"] = _build_section(SchedulerConfig, "scheduler", raw.get("scheduler"))
    raw["resources"] = _build_section(Resources, "resources", raw.get("resources"))
    if isinstance(raw.get("methods"), str):
        raw["methods"] = sorted(METHODS) if raw["methods"] == "all" else raw["methods"].split(",")
    if isinstance(raw.get("preprocess"), str) and "," in raw["preprocess"]:  # --preprocess zscore,domain-scale
        raw["preprocess"] = raw["preprocess"].split(",")
    if raw.get("search_space", {}) is None:  # an empty YAML section, like scheduler: and resources:
        raw["search_space"] = {}
    config = SearchConfig(**raw)
    validate(config)
    return config


# What each text field takes; checked before any of them is used (looked up, split, hashed).
TEXT_FIELDS = {
    "task": "a built-in task name (see `adaptune tasks`)",
    "proxy": "a proxy name or auto",
    "checkpoint_proxy": "a proxy name, or null for the selecting proxy",
    "recommend": f"one of: {', '.join(RECOMMENDATIONS)}",
    "address": "a Ray address (auto, HOST:PORT, ray://HOST:PORT)",
    "backbone": "a backbone name",
    "augment": "an augmentation name",
    "searcher": f"one of: {', '.join(SEARCHERS)}",
    "feature_engine": f"one of: {', '.join(FEATURE_ENGINES)}",
}
PATH_FIELDS = {
    "source": "a path to the labeled source data",
    "target": "a path to the target data",
    "weights": "a weights file path or a torchvision weights name",
    "storage": "a path or URI",
    "feature_cache": "a directory path",
    "out": "a run directory path",
}


def _check_types(c: SearchConfig) -> None:
    for name, what in TEXT_FIELDS.items():
        if getattr(c, name) is not None:
            _expect_type(name, getattr(c, name), str, what)
    for name, what in PATH_FIELDS.items():
        if getattr(c, name) is not None:
            _expect_path(name, getattr(c, name), what)
    _expect_type("quiet", c.quiet, bool, "true or false")
    _expect_type("amp", c.amp, bool, "true or false")
    _expect_type("methods", c.methods, list, "a list of method names or 'all'")
    for name in c.methods:
        _expect_type("methods", name, str, "method names")
    _expect_type("scheduler.kind", c.scheduler.kind, str, f"one of: {', '.join(SCHEDULERS)}")
    _expect_type("resources.runner", c.resources.runner, str, f"one of: {', '.join(RUNNERS)}")


def _resolve_paths(c: SearchConfig) -> None:
    # Trials run in other working directories (Ray's), so a relative path would name another file there.
    c.source, c.target = (p if p is None or is_storage_uri(p) else os.path.abspath(p) for p in (c.source, c.target))
    if c.weights is not None and is_weights_file(c.weights):
        c.weights = os.path.abspath(c.weights)
    if c.storage is not None:
        c.storage = _validate_storage(c.storage)
    if c.feature_cache is not None:
        c.feature_cache = os.path.abspath(c.feature_cache)
        _expect_creatable("feature_cache", c.feature_cache)


def _check_out(c: SearchConfig) -> None:
    given = c.out is not None
    if not given:
        # Not checked for writing: resume and submit build a config without out and never write this default.
        slug = "".join(ch if ch.isalnum() else "-" for ch in c.task_label()).strip("-")
        c.out = os.path.join("adaptune-runs", f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}")
    else:
        c.out = os.path.abspath(c.out)
    run_dir = RunDir(c.out)
    if run_dir.exists(RunDir.LEADERBOARD):
        raise InputError("out", f"expected a new directory; {c.out} already holds a run (to continue it: "
                         f"adaptune resume {c.out})")
    if run_dir.exists(RunDir.CONFIG):
        raise InputError("out", f"expected a new directory; {c.out} already holds a {RunDir.CONFIG} (of a run started "
                         f"there, or a file the run would overwrite): to continue that run: adaptune resume "
                         f"{c.out}; or choose a new directory")
    if os.path.lexists(c.out) and not os.path.isdir(c.out):
        raise InputError("out", f"expected a directory path, {c.out} is a file")
    if given:
        _expect_creatable("out", c.out)


def _validate_checkpoint_proxy(c: SearchConfig) -> None:
    name = c.checkpoint_proxy
    if name not in PROXIES:
        raise InputError("checkpoint_proxy", f"unknown proxy {_shown(name)}; expected null or one of: "
                         f"{', '.join(PROXIES)}")
    if PROXIES[name].final_only:
        raise InputError("checkpoint_proxy", f"{name} scores the final epoch only; expected a proxy of every epoch")
    if c.proxy in PROXIES and PROXIES[c.proxy].final_only and name != c.proxy:
        raise InputError("checkpoint_proxy", f"expected null: {c.proxy} scores the final epoch only, so it cannot be "
                         "read at another proxy's best epoch")


def validate(c: SearchConfig) -> None:
    _check_types(c)
    if c.source is not None or c.target is not None:
        if c.source is None or c.target is None:
            raise InputError("source" if c.source is None else "target", "expected both --source and --target paths")
        c.task = None
    elif not c.task:
        raise InputError("task", "expected a built-in task name (see `adaptune tasks`) or --source/--target")
    else:
        from adaptune.algorithms.data import BUILTIN_TASKS

        if not (c.task in BUILTIN_TASKS or c.task.startswith("synthetic:")):
            from adaptune.algorithms.data import load_task

            load_task(c.task)  # raises the InputError that lists the known tasks
    _resolve_paths(c)
    if not c.methods:
        raise InputError("methods", f"expected at least one of: {', '.join(sorted(METHODS))}")
    for name in c.methods:
        if name not in METHODS:
            raise InputError("methods", f"unknown method {_shown(name)}; expected one of: {', '.join(sorted(METHODS))}")
    if len(set(c.methods)) != len(c.methods):
        raise InputError("methods", "expected each method at most once")
    if c.proxy not in PROXIES and c.proxy != "auto":
        raise InputError("proxy", f"unknown proxy {_shown(c.proxy)}; expected auto or one of: {', '.join(PROXIES)}")
    if _expect_type("closed_form_draws", c.closed_form_draws, int, "a number of draws per method") < 0:
        raise InputError("closed_form_draws", f"expected 0 (defaults only) or a positive count per closed-form "
                         f"method, got {c.closed_form_draws}")
    if _expect_type("fewshot_k", c.fewshot_k, int, "a number of labeled target samples per class") < 0:
        raise InputError("fewshot_k", f"expected 0 (off) or a positive number per class, got {c.fewshot_k}")
    if _expect_type("ensemble_k", c.ensemble_k, int, "a number of trials") < 0:
        raise InputError("ensemble_k", f"expected 0 (no ensemble row) or a positive count, got {c.ensemble_k}")
    if c.ensemble_per_method is not None and _expect_type(
            "ensemble_per_method", c.ensemble_per_method, int, "a number of trials of one method, or null") < 1:
        raise InputError("ensemble_per_method", f"expected a positive count, or null for no cap, got "
                         f"{c.ensemble_per_method}")
    if c.recommend is None:
        c.recommend = "ensemble" if c.ensemble_k else "single"
    if c.recommend not in RECOMMENDATIONS:
        raise InputError("recommend", f"expected one of: {', '.join(RECOMMENDATIONS)}, got {_shown(c.recommend)}")
    if c.recommend == "ensemble" and c.ensemble_k == 0:
        raise InputError("recommend", "expected single with ensemble_k: 0 (there is no ensemble row to recommend)")
    if c.source_gap not in (*SOURCE_GAP_WORDS, None):
        what = "auto, none or a fraction of accuracy in [0, 1]"
        if not 0 <= _expect_type("source_gap", c.source_gap, (int, float), what) <= 1:
            raise InputError("source_gap", f"expected {what}, got {c.source_gap}")
    if c.smoothing not in (*SMOOTHING_WORDS, None) and _expect_type(
            "smoothing", c.smoothing, int, "auto, none or a number of target neighbours") < 0:
        raise InputError("smoothing", f"expected auto, none or a positive number of target neighbours, got "
                         f"{c.smoothing}")
    if not 0 < _expect_type("smoothing_weight", c.smoothing_weight, (int, float), "a number in (0, 1]") <= 1:
        raise InputError("smoothing_weight", f"expected a number in (0, 1], got {c.smoothing_weight}")
    for name in ("proxy", "checkpoint_proxy"):
        if getattr(c, name) == "fewshot" and c.fewshot_k == 0:
            raise InputError(name, "fewshot selects on labeled target samples: opt in with fewshot_k: K (per class)")
    if c.checkpoint_proxy is not None:
        _validate_checkpoint_proxy(c)
    for name in ("epochs", "batch_size", "budget", *(("trials",) if c.trials is not None else ())):
        value = _expect_type(name, getattr(c, name), int, "a positive integer")
        if value < 1:
            raise InputError(name, f"expected a positive integer, got {value}")
    choices = check_preprocess_choices(c.preprocess)
    c.preprocess = choices[0] if len(choices) == 1 else list(choices)
    check_augment(c.augment)
    if _expect_type("image_size", c.image_size, int, "a number of pixels") < 1:
        raise InputError("image_size", f"expected a positive number of pixels, got {c.image_size}")
    if not 0 <= _expect_type("seed", c.seed, int, "an integer") < SEED_LIMIT:
        raise InputError("seed", f"expected an integer from 0 to 2**32 - 1 (numpy's and Optuna's range), got {c.seed}")
    if c.steps_per_epoch is None:
        c.steps_per_epoch = "auto"
    if c.steps_per_epoch != "auto" and (
            _expect_type("steps_per_epoch", c.steps_per_epoch, int, "auto or a positive integer") < 1):
        raise InputError("steps_per_epoch", f"expected auto or a positive integer, got {c.steps_per_epoch}")
    if c.time_budget_s is not None and _expect_type("time_budget_s", c.time_budget_s, (int, float), "seconds") <= 0:
        raise InputError("time_budget_s", "expected a positive number of seconds or null")
    if c.backbone is not None:
        from adaptune.algorithms.backbones import check_backbone_name

        check_backbone_name(c.backbone)  # built-in, torchvision:NAME or timm:NAME, without building it
    _expect_type("search_space", c.search_space, dict, f"a mapping of {'/'.join(SHARED_RANGES)} to [low, high]")
    for key, bounds in c.search_space.items():
        name = f"search_space.{_key(key)}"
        if key not in SHARED_RANGES:
            raise InputError(name, f"unknown key; expected one of: {', '.join(SHARED_RANGES)}")
        if not (isinstance(bounds, list | tuple) and len(bounds) == 2):
            raise InputError(name, f"expected [low, high] with low <= high, got {_shown(bounds)}")
        low, high = (_expect_type(name, b, (int, float), "[low, high] numbers") for b in bounds)
        if low > high:
            raise InputError(name, f"expected [low, high] with low <= high, got {_shown(bounds)}")
        if SHARED_RANGES[key].log and low <= 0:
            raise InputError(name, "expected a positive lower bound (log scale)")
    if _expect_type("connect_timeout_s", c.connect_timeout_s, (int, float), "seconds") <= 0:
        raise InputError("connect_timeout_s", "expected a positive number of seconds")
    if _expect_type("feature_cache_max_gb", c.feature_cache_max_gb, (int, float), "a size in GB") <= 0:
        raise InputError("feature_cache_max_gb", f"expected a positive size in GB, got {c.feature_cache_max_gb}")
    if _expect_type("max_failures", c.max_failures, int, "a number of retries") < 0:
        raise InputError("max_failures", "expected 0 or more retries per trial")
    if c.feature_engine not in FEATURE_ENGINES:
        raise InputError("feature_engine", f"expected one of: {', '.join(FEATURE_ENGINES)}, got "
                         f"{_shown(c.feature_engine)}")
    if c.searcher not in SEARCHERS:
        raise InputError("searcher", f"expected one of: {', '.join(SEARCHERS)}, got {_shown(c.searcher)}")
    s, r = c.scheduler, c.resources
    if s.kind not in SCHEDULERS:
        raise InputError("scheduler.kind", f"expected one of: {', '.join(SCHEDULERS)}, got {_shown(s.kind)}")
    if _expect_type("scheduler.grace_period", s.grace_period, int, "a positive integer") < 1:
        raise InputError("scheduler.grace_period", "expected a positive integer")
    if _expect_type("scheduler.reduction_factor", s.reduction_factor, int, "an integer >= 2") < 2:
        raise InputError("scheduler.reduction_factor", "expected an integer >= 2")
    if r.runner not in RUNNERS:
        raise InputError("resources.runner", f"expected one of: {', '.join(RUNNERS)}, got {_shown(r.runner)}")
    if _expect_type("resources.cpus_per_trial", r.cpus_per_trial, (int, float), "a number of CPUs") <= 0:
        raise InputError("resources.cpus_per_trial", "expected a positive number of CPUs")
    if _expect_type("resources.gpus_per_trial", r.gpus_per_trial, (int, float), "a number of GPUs") < 0:
        raise InputError("resources.gpus_per_trial", "expected zero or a positive (fractional) number of GPUs")
    if _expect_type("resources.workers", r.workers, int, "a positive integer") < 1:
        raise InputError("resources.workers", "expected a positive integer")
    if r.max_concurrent is not None and _expect_type("resources.max_concurrent", r.max_concurrent, int, "int") < 1:
        raise InputError("resources.max_concurrent", "expected a positive integer or null")
    if r.runner == "tune" and r.workers > 1:
        raise InputError("resources.runner", "expected 'train' or 'auto' with workers > 1 (tune runs one process)")
    _check_out(c)
