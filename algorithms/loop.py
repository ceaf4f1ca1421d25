"""The one training loop every deep method shares, and the plain-torch trial built on it.

A trial = build the backbone, split it at ``freeze_depth``, encode the data through the frozen prefix
(once, via a :class:`FeatureStore`), then train the rest with the method's loss. Image folders stream: their
files are decoded (and augmented) batch by batch by DataLoader workers (:mod:`.images`). After every epoch one
evaluation pass over held-out source and unlabeled target data feeds every proxy, and the caller's
``report`` callback receives the metrics plus a function that returns the checkpointable state.
Ray is not imported here: ``search.trial`` adapts ``report`` and :class:`Runtime` to Tune or Train.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .backbones import Backbone, build_backbone
from .budget import DEFAULT_GRACE_EPOCHS, steps_per_epoch
from .domains import Domain, Task, with_target_neighbours
from .errors import InputError
from .features import CountingStore, FeatureStore, MemoryStore, encode_task, parameters_digest, weights_identity
from .images import DEFAULT_AUGMENT, IN_PROCESS, ImageFiles, Loading, eval_batches, input_batches, pair_batches
from .linear_head import LinearFit, fit_logistic_regression
from .methods import Batch, Method, ShallowMethod, get_method
from .proxies import Evaluation, compute_proxies, oracle_accuracy

StateFn = Callable[[], dict[str, Any]]
ReportFn = Callable[[dict[str, Any], StateFn], None]


PREDICTIONS = "target_probs"  # key of the target predictions in a checkpoint's state


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the trial cannot continue."""


# SGD's L2 penalty on every trainable weight of a deep trial (ImageNet fine-tuning's customary value).
DEFAULT_WEIGHT_DECAY = 5e-4


@dataclass
class TrialSpec:
    """Everything a trial needs besides the data: fixed settings plus the sampled hyperparameters."""

    method: str
    hparams: dict[str, Any]
    backbone: str
    epochs: int
    weights: str | None = None
    batch_size: int = 64
    seed: int = 0
    momentum: float = 0.9
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    amp: bool = False
    steps_per_epoch: int | None = None  # None: max(one pass over source_train, budget.MIN_STEPS_PER_EPOCH)
    eval_batch_size: int = 1024
    bottleneck_dim: int = 256  # 0 = features straight from the backbone
    augment: str = DEFAULT_AUGMENT  # training augmentation of image folders (images.AUGMENTATIONS)
    loader_workers: int = 0  # DataLoader processes decoding image files; 0: the trial's own process
    warm_start: str = "none"  # WARM_STARTS: "source" starts a deep trial from the shared source-only model
    extra: dict[str, Any] = field(default_factory=dict)


# A shared source warm start: every deep trial on the same data, backbone, freeze depth and seed starts from one
# source-only model, trained WARM_START_EPOCHS epochs at source_only's defaults by the first trial that needs it
# and read from the feature store by the others, so adaptation trials begin from a trained classifier.
WARM_STARTS = ("none", "source")
WARM_START_EPOCHS = DEFAULT_GRACE_EPOCHS


@dataclass
class Runtime:
    """Where the loop runs. The default is one local process; Ray Train supplies a data-parallel one."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    wrap: Callable[[nn.Module], nn.Module] = lambda module: module  # e.g. DistributedDataParallel

    @classmethod
    def local(cls, use_gpu: bool | None = None) -> Runtime:
        cuda = torch.cuda.is_available() if use_gpu is None else use_gpu
        return cls(device=torch.device("cuda" if cuda else "cpu"))


class Classifier(nn.Module):
    """Trainable backbone blocks, an optional bottleneck, and a linear head; returns (features, logits).

    The bottleneck (Linear + BatchNorm + ReLU, as in TLlib's ImageClassifier) gives every deep method the same
    normalised feature space to align; without it, MMD and adversarial losses can collapse or blow up the
    raw backbone features. ``features`` is the bottleneck output, the representation methods adapt.
    """

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int, bottleneck_dim: int = 0):
        super().__init__()
        self.body = body
        self.bottleneck = nn.Identity()
        if bottleneck_dim:
            self.bottleneck = nn.Sequential(nn.Linear(feature_dim, bottleneck_dim), nn.BatchNorm1d(bottleneck_dim),
                                            nn.ReLU())
            feature_dim = bottleneck_dim
        self.out_features = feature_dim
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.bottleneck(self.body(x))
        return features, self.head(features)


class TrainStep(nn.Module):
    """Classifier + method as one module, so a data-parallel wrapper sees every trained parameter."""

    def __init__(self, classifier: Classifier, method: Method):
        super().__init__()
        self.classifier = classifier
        self.method = method

    def forward(self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor | None, source_index: torch.Tensor,
                progress: float):
        if xt is None:
            fs, ls = self.classifier(xs)
            ft = lt = None
        else:  # one forward over both domains keeps batch-norm statistics of the joint batch, as TLlib does
            f, logits = self.classifier(torch.cat([xs, xt]))
            fs, ft, ls, lt = f[: len(xs)], f[len(xs) :], logits[: len(xs)], logits[len(xs) :]
        batch = Batch(fs, ls, ys, ft, lt, progress, source_inputs=xs, target_inputs=xt, source_index=source_index,
                      classifier=self.classifier)
        return self.method.loss(batch)


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator, rank: int, world: int):
    """``steps`` index batches drawn from fresh permutations of ``range(n)``, this rank's shard only."""
    perm, pos = torch.randperm(n, generator=generator), 0
    for _ in range(steps):
        if pos + batch_size * world > len(perm):
            perm, pos = torch.randperm(n, generator=generator), 0
        chunk = perm[pos : pos + batch_size * world]
        pos += batch_size * world
        yield chunk[rank::world]


def evaluate(classifier: Classifier, task: Task, batch_size: int, device: torch.device,
             loading: Loading = IN_PROCESS) -> Evaluation:
    """One pass over held-out source and unlabeled target data, in eval mode, results on the CPU."""
    classifier.eval()

    def run(batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [classifier(x) for x in batches]
        return torch.cat([f.float().cpu() for f, _ in outputs]), torch.cat([lg.float().cpu() for _, lg in outputs])

    def run_domain(x: torch.Tensor | ImageFiles) -> tuple[torch.Tensor, torch.Tensor]:
        return run(eval_batches(x, batch_size, device, loading))

    with torch.no_grad():
        fs, ls = run_domain(task.source_val.x)
        ft, lt = run_domain(task.target_val.x)
        i, j = mixup_pairs(len(task.target_val))
        # Mixed a batch at a time: decoded images of all pairs at once would dominate a trial's memory.
        _, mix_logits = run(mix(xi, xj) for xi, xj in pair_batches(task.target_val.x, i, j, batch_size, device,
                                                                  loading))
        fewshot = task.target_fewshot
        fewshot_logits = None if fewshot is None else run_domain(fewshot.x)[1]
    classifier.train()
    return Evaluation(ls, task.source_val.y, fs, lt, ft, mix_logits=mix_logits, mix_labels=lt.argmax(1)[i],
                      fewshot_logits=fewshot_logits, fewshot_labels=None if fewshot is None else fewshot.y,
                      target_neighbours=task.target_neighbours)


MIX_PAIRS, MIX_WEIGHT = 512, 0.55


def mixup_pairs(n: int, pairs: int = MIX_PAIRS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MixVal's probes (Hu et al., NeurIPS 2023): random target pairs (i, j), mixed by :func:`mix`.

    A fixed seed and a bounded number of pairs keep the probe identical across epochs and trials and its cost
    small.
    """
    generator = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (min(pairs, n),), generator=generator)
    j = torch.randint(0, n, (len(i),), generator=generator)
    return i, j


def mix(xi: torch.Tensor, xj: torch.Tensor, weight: float = MIX_WEIGHT) -> torch.Tensor:
    """``weight * x_i + (1 - weight) * x_j``: the mix should keep x_i's pseudo-label, the dominant side."""
    return weight * xi + (1 - weight) * xj


def build(task: Task, spec: TrialSpec, method_cls: type[Method], hparams: dict[str, Any], store: FeatureStore,
          device: torch.device) -> tuple[Task, Classifier, Method]:
    """Backbone split at ``freeze_depth``, data through the frozen prefix, then classifier and method.

    Feature-extraction methods freeze the whole backbone; without pretrained weights they work on the raw
    (flattened) inputs instead, since a frozen random network extracts nothing worth aligning. Shallow
    methods then fit their transform on the extracted features and the head trains on the result.
    """
    backbone, task = backbone_for(with_target_neighbours(task), spec.backbone, spec.weights)
    streamed = isinstance(task.source_train.x, ImageFiles)
    if method_cls.feature_extraction:
        body: nn.Module = nn.Identity()
        # Raw pixels of an image folder are never held whole, so even a random-init backbone extracts there.
        if spec.weights or streamed:
            frozen, _ = backbone.split(backbone.depth)
            freeze_depth, feature_dim = backbone.depth, backbone.out_features
        else:
            frozen, freeze_depth = None, 0
            feature_dim = math.prod(task.input_shape)
    else:
        freeze_depth = int(hparams.get("freeze_depth", 0))
        frozen, body = backbone.split(freeze_depth)
        feature_dim = backbone.out_features
    if frozen is None:  # a view of the inputs: cheaper than any cache entry
        data = task.map_domains(_flattened, _flattened)
    elif freeze_depth == 0:
        data = task
    elif streamed and freeze_depth < backbone.depth:
        # Inside the network a stage's outputs are larger than the image (ResNet-50's first stage: 3 MB per
        # 224 px image) and would forgo augmentation: the frozen stages run on every batch instead.
        data, body = task, nn.Sequential(frozen, body)
    else:
        weights = weights_identity(backbone.weights_file, frozen)
        data = encode_task(task, frozen, backbone=spec.backbone, weights=weights, freeze_depth=freeze_depth,
                           store=store, device=device, batch_size=spec.eval_batch_size,
                           loading=_loading(spec, device))
    bottleneck = 0 if method_cls.feature_extraction else spec.bottleneck_dim
    classifier = Classifier(body, feature_dim, task.num_classes, bottleneck)
    method = method_cls(hparams, classifier.out_features, task.num_classes, tuple(data.source_train.x.shape[1:]))
    if isinstance(method, ShallowMethod):
        data = method.adapt(data)
        classifier = Classifier(body, data.source_train.x.shape[1], task.num_classes)
    return data, classifier, method


def backbone_for(task: Task, name: str, weights: str | None) -> tuple[Backbone, Task]:
    """The backbone, and the task with image files decoded the way it was trained (its normalisation)."""
    backbone = build_backbone(name, task.input_shape, weights=weights)
    if isinstance(task.source_train.x, ImageFiles):
        normalise = functools.partial(_normalised, mean=backbone.mean, std=backbone.std)
        task = task.map_domains(normalise, normalise)
    return backbone, task


def _flattened(domain: Domain) -> Domain:
    return replace(domain, x=domain.x.flatten(1))


def _loading(spec: TrialSpec, device: torch.device) -> Loading:
    return Loading(workers=spec.loader_workers, augment=spec.augment, pin_memory=device.type == "cuda",
                   image_batch=spec.batch_size)


def _normalised(domain: Domain, mean: tuple[float, ...], std: tuple[float, ...]) -> Domain:
    return replace(domain, x=domain.x.normalised(mean, std))


def _on_device(x: torch.Tensor | ImageFiles, device: torch.device) -> torch.Tensor | ImageFiles:
    return x if isinstance(x, ImageFiles) else x.to(device)


def parameter_groups(step_module: TrainStep, hparams: dict[str, Any]) -> list[dict[str, Any]]:
    """Trainable parameters; the backbone body gets ``lr * backbone_lr_mult`` (pretrained layers move less).

    The new layers (bottleneck, head, method modules) keep the base ``lr``.
    """
    body = [p for p in step_module.classifier.body.parameters() if p.requires_grad]
    body_ids = {id(p) for p in body}
    rest = [p for p in step_module.parameters() if p.requires_grad and id(p) not in body_ids]
    groups = [{"params": rest}]
    if body:
        groups.append({"params": body, "lr": hparams["lr"] * hparams.get("backbone_lr_mult", 1.0)})
    return groups


def uses_channels_last(input_shape: tuple[int, ...]) -> bool:
    """Whether a trial keeps image batches and convolutions channels last (NHWC): on a GPU (under bf16 autocast
    most) and on the CPU alike, convolutions run faster that way (benchmarks/results/channels_last_cpu.md)."""
    return len(input_shape) == 3


def bf16_autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """bf16 autocast on CUDA only: on the CPU a trial stays in float32 (``amp`` is a GPU option)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def _evaluation_metrics(classifier: Classifier, data: Task, spec: TrialSpec, device: torch.device, *, final: bool,
                        epoch: int, steps: int) -> tuple[dict[str, Any], Evaluation]:
    """One evaluation pass -> every proxy, the oracle accuracy (reporting only) and the progress counters."""
    eval_start = time.perf_counter()
    evaluation = evaluate(classifier, data, spec.eval_batch_size, device, _loading(spec, device))
    proxies = compute_proxies(evaluation, final=final)
    target_acc = oracle_accuracy(evaluation.target_logits, data.target_oracle)
    metrics = {
        "epoch": epoch,
        "steps": steps,
        **proxies,
        "source_acc": proxies["proxy_source_acc"],
        "target_acc": float("nan") if target_acc is None else target_acc,
        "eval_s": time.perf_counter() - eval_start,
    }
    return metrics, evaluation


def fit_head(classifier: Classifier, method: Method, data: Task, l2: float) -> LinearFit:
    """Fit ``classifier``'s head to the (transformed) source split as a logistic regression to convergence, with the
    method's source weights where it has them, and load it into the head; returns the fit."""
    weights = method.source_weights() if isinstance(method, ShallowMethod) else None
    fit = fit_logistic_regression(data.source_train.x, data.source_train.y, data.num_classes, l2=l2,
                                  sample_weight=weights)
    with torch.no_grad():
        classifier.head.weight.copy_(fit.weight)
        classifier.head.bias.copy_(fit.bias)
    return fit


def _closed_form_trial(data: Task, spec: TrialSpec, classifier: Classifier, method: Method, hparams: dict[str, Any],
                       report: ReportFn, device: torch.device) -> dict[str, Any]:
    """Feature extraction: the head is a logistic regression fitted to convergence, reported once as final.

    The trial counts as complete (``epoch = spec.epochs``); its ``steps`` are the L-BFGS iterations.
    """
    fit_start = time.perf_counter()
    fit = fit_head(classifier, method, data, float(hparams["head_l2"]))
    classifier.to(device)
    train_s = time.perf_counter() - fit_start
    metrics, evaluation = _evaluation_metrics(classifier, data, spec, device, final=True, epoch=spec.epochs,
                                              steps=fit.iterations)
    metrics.update(train_loss=fit.loss, train_s=train_s, samples_per_s=len(data.source_train) / max(train_s, 1e-9))

    def state() -> dict[str, Any]:
        return {"model": TrainStep(classifier, method).state_dict(), "epoch": spec.epochs,
                PREDICTIONS: evaluation.target_logits.softmax(1).half()}

    report(metrics, state)
    return metrics


def _warm_start(task: Task, spec: TrialSpec, freeze_depth: int, classifier: Classifier, source: Domain,
                store: FeatureStore, device: torch.device) -> None:
    """Load into ``classifier`` (freshly initialised from the trial's seed) the source-only model trained from that
    same initialisation on ``source``; computed once per key in ``store``, as frozen features are."""
    recipe = replace(spec, method="source_only", hparams={"freeze_depth": freeze_depth}, epochs=WARM_START_EPOCHS,
                     warm_start="none")
    settings = {**get_method("source_only").defaults(), **recipe.hparams, "epochs": recipe.epochs,
                "steps": steps_per_epoch(len(source), spec.batch_size, 1, spec.steps_per_epoch),
                **{name: getattr(recipe, name) for name in ("batch_size", "seed", "momentum", "weight_decay", "amp",
                                                             "augment", "bottleneck_dim")}}
    raw = "|".join(("source-warm-start-v1", torch.__version__, parameters_digest(classifier), source.fingerprint(),
                    repr(sorted(settings.items()))))
    key = hashlib.sha256(raw.encode()).hexdigest()[:32]
    flat = store.get_or_compute(key, lambda: _source_only_state(task, recipe, store, device))
    state, offset = classifier.state_dict(), 0
    for name, value in state.items():
        state[name] = flat[offset : offset + value.numel()].view_as(value).to(value.dtype)
        offset += value.numel()
    if offset != len(flat):
        raise RuntimeError(f"warm start entry {key} holds {len(flat)} values, the classifier {offset}")
    classifier.load_state_dict(state)


def _source_only_state(task: Task, recipe: TrialSpec, store: FeatureStore, device: torch.device) -> torch.Tensor:
    """The classifier of a source-only trial run by ``recipe``, its state flattened into one float32 tensor (the
    store's unit: exact for float32 weights and for batch counts below 2^24)."""
    last: list[StateFn] = []
    run_trial(task, recipe, lambda metrics, state: last.append(state), runtime=Runtime(device=device), store=store)
    model = last[-1]()["model"]
    return torch.cat([value.detach().reshape(-1).float().cpu() for name, value in model.items()
                      if name.startswith("classifier.")])


def run_trial(
    task: Task,
    spec: TrialSpec,
    report: ReportFn,
    *,
    runtime: Runtime | None = None,
    store: FeatureStore | None = None,
    resume_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one configuration and call ``report`` after every epoch; returns the last metrics."""
    if spec.warm_start not in WARM_STARTS:
        raise InputError("warm_start", f"expected one of {', '.join(WARM_STARTS)}, got {spec.warm_start!r}")
    runtime = runtime or Runtime.local()
    device = runtime.device
    torch.manual_seed(spec.seed)
    method_cls = get_method(spec.method)
    hparams = {**method_cls.defaults(), **spec.hparams}
    features = CountingStore(store or MemoryStore())
    data, classifier, method = build(task, spec, method_cls, hparams, features, device)
    trial_report = report

    def report(metrics: dict[str, Any], state: StateFn) -> None:
        metrics["features_computed"] = features.computed  # encoded here, not read from the store
        trial_report(metrics, state)

    if method_cls.feature_extraction:
        return _closed_form_trial(data, spec, classifier, method, hparams, report, device)
    if spec.warm_start == "source" and resume_state is None:
        _warm_start(task, spec, int(hparams.get("freeze_depth", 0)), classifier, data.source_train, features, device)
    step_module = TrainStep(classifier, method).to(device)
    channels_last = uses_channels_last(data.input_shape)
    if channels_last:
        step_module = step_module.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(parameter_groups(step_module, hparams), lr=hparams["lr"], momentum=spec.momentum,
                                weight_decay=spec.weight_decay, nesterov=True)
    # TLlib's inverse decay: lr_t = lr * (1 + 0.001 t)^-0.75, robust across a wide range of budgets.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 + 1e-3 * t) ** -0.75)
    wrapped = runtime.wrap(step_module)

    start_epoch = 0
    if resume_state is not None:
        step_module.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        start_epoch = int(resume_state["epoch"])

    n_source, n_target = len(data.source_train), len(data.target_train)
    steps = steps_per_epoch(n_source, spec.batch_size, runtime.world_size, spec.steps_per_epoch)
    total_steps = steps * spec.epochs
    amp = bf16_autocast(device, spec.amp)
    loading = _loading(spec, device)
    # Training tensors live on the device once, so a step costs one gather instead of a host-to-device copy.
    xs_all, ys_all = _on_device(data.source_train.x, device), data.source_train.y.to(device)
    xt_all = _on_device(data.target_train.x, device)
    metrics: dict[str, Any] = {}

    for epoch in range(start_epoch, spec.epochs):
        epoch_start = time.perf_counter()
        # Seeded per epoch (batches and dropout), so a trial resumed from a checkpoint continues exactly.
        epoch_seed = spec.seed * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        source_batches = list(_batches(n_source, spec.batch_size, steps, generator, runtime.rank, runtime.world_size))
        target_batches = list(_batches(n_target, spec.batch_size, steps, generator, runtime.rank, runtime.world_size))
        source_inputs = input_batches(xs_all, source_batches, device, loading, seed=2 * epoch_seed)
        target_inputs = (input_batches(xt_all, target_batches, device, loading, seed=2 * epoch_seed + 1)
                         if method.uses_target else (None for _ in target_batches))
        sums: dict[str, torch.Tensor] = {}
        for step, (si, xs, xt) in enumerate(zip(source_batches, source_inputs, target_inputs)):
            si = si.to(device)
            ys = ys_all[si]
            if channels_last:
                xs = xs.contiguous(memory_format=torch.channels_last)
                xt = None if xt is None else xt.contiguous(memory_format=torch.channels_last)
            with amp:
                loss, logs = wrapped(xs, ys, xt, si, (epoch * steps + step) / total_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            for key, value in {"loss": loss.detach(), **logs}.items():
                sums[key] = sums.get(key, 0.0) + value.float()
        for inputs in (source_inputs, target_inputs):  # their DataLoader workers end now, not next epoch
            inputs.close()
        train_logs = {k: (v / steps).item() for k, v in sums.items()}  # .item() waits for queued GPU work
        train_s = time.perf_counter() - epoch_start
        if not math.isfinite(train_logs["loss"]):
            raise Diverged(f"loss became {train_logs['loss']} in epoch {epoch + 1}")

        metrics, evaluation = _evaluation_metrics(classifier, data, spec, device, final=epoch + 1 == spec.epochs,
                                                  epoch=epoch + 1, steps=(epoch + 1) * steps)
        metrics.update({f"train_{k}": v for k, v in train_logs.items()})
        metrics.update(train_s=train_s, samples_per_s=steps * spec.batch_size * runtime.world_size / max(train_s, 1e-9))

        # Target predictions travel with the checkpoint: the search's ensemble row averages them.
        def state(epoch: int = epoch, logits: torch.Tensor = evaluation.target_logits) -> dict[str, Any]:
            return {"model": step_module.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch + 1, PREDICTIONS: logits.softmax(1).half()}

        report(metrics, state)
    return metrics
