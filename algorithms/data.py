"""Built-in benchmark tasks and user data, turned into :class:`Task` objects.

Built-in data lives as small ``.npz`` files in ``datasets/`` (see the PROVENANCE notes there). Every split
here is stratified with a fixed seed (:data:`SPLIT_SEED`) that is independent of any trial seed, so all trials
of a search see exactly the same source-train / source-val / target samples.
"""

from __future__ import annotations

import difflib
import functools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .domains import Domain, Task
from .errors import InputError, first_line
from .images import DEFAULT_IMAGE_SIZE, ImageFiles, is_storage_uri, list_image_folder
from .preprocess import (
    DEFAULT_PREPROCESS,
    PREPROCESS_NOTES,
    check_preprocess,
    effective_preprocess,
    preprocess_domains,
    resolve_preprocess,
    standardise,
)

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
SPLIT_SEED = 0
SOURCE_VAL_FRACTION = 0.1  # the default share of the source held out as source_val

DIGIT_CLASSES = tuple(str(d) for d in range(10))
DIGITS_SIDE = 28
# Office-Caltech10 class order of the GFK release: label k (1-based in the .mat files) is OFFICE_CLASSES[k-1].
OFFICE_CLASSES = (
    "back_pack",
    "bike",
    "calculator",
    "headphones",
    "keyboard",
    "laptop_computer",
    "monitor",
    "mouse",
    "mug",
    "projector",
)
OFFICE_DOMAINS = {"A": "amazon", "C": "Caltech10", "W": "webcam", "D": "dslr"}
# Office-Caltech10 DeCAF6: only the two small domains ship (labels, sample for sample, as in their SURF files).
OFFICE_DECAF_DOMAINS = {"D": "dslr", "W": "webcam"}
# The 2000 MNIST + 1800 USPS 16x16 digits of the JDA (shallow) protocol, as 256-d pixel features.
MNIST_USPS_DOMAINS = {"M": "mnist", "U": "usps"}
# Amazon reviews (400-d version of Gong et al. 2013): label 0 is a negative review, 1 a positive one.
AMAZON_CLASSES = ("negative", "positive")
AMAZON_DOMAINS = {"B": "books", "D": "dvd", "E": "elec", "K": "kitchen"}
# Amazon reviews, 5000-d counts of the DANN (JMLR 2016) protocol, same classes.
AMAZON_5000_DOMAINS = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}


def _pair_tasks(prefix: str, domains: dict[str, str]) -> tuple[str, ...]:
    return tuple(f"{prefix}:{s}->{t}" for s in domains for t in domains if s != t)


BUILTIN_TASKS: tuple[str, ...] = (
    "mnist->usps",
    "usps->mnist",
    *_pair_tasks("office-surf", OFFICE_DOMAINS),
    *_pair_tasks("amazon", AMAZON_DOMAINS),
    *_pair_tasks("office-decaf", OFFICE_DECAF_DOMAINS),
    *_pair_tasks("mnist-usps-jda", MNIST_USPS_DOMAINS),
    *_pair_tasks("amazon-5000", AMAZON_5000_DOMAINS),
    *_pair_tasks("digits-pixels", MNIST_USPS_DOMAINS),
)


_USER_FORMATS = "a .npz file, a .parquet or .csv table, or an image folder"


# ---------------------------------------------------------------------------------------------------------
# Shared helpers


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into ``(kept, held_out)`` with about ``fraction`` of every class held out.

    The held-out total is ``round(fraction * N)`` (at least 1, and every class keeps at least one sample when
    it can), shared out over classes by largest remainder so class proportions are preserved. Both index
    arrays are sorted; the result depends only on ``y``, ``fraction`` and ``seed``.
    """
    y = np.asarray(y)
    n = len(y)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    capacity = np.maximum(counts - 1, 0)  # keep one sample of each class on the kept side
    total = min(max(int(round(fraction * n)), 1 if fraction > 0 else 0), int(capacity.sum()))
    quota = total * counts / max(n, 1)
    take = np.minimum(np.floor(quota).astype(int), capacity)
    # Largest remainder first; ties go to the earlier class so the result is deterministic.
    for c in sorted(range(len(classes)), key=lambda c: (-(quota[c] - take[c]), c)):
        if take.sum() >= total:
            break
        if take[c] < capacity[c]:
            take[c] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]] for c in range(len(classes))]
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=int)
    kept_idx = np.setdiff1d(np.arange(n), held_idx)
    return kept_idx, held_idx


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise InputError("source_val_fraction", f"a number strictly between 0 and 1, got {fraction!r}")


MIN_PER_CLASS = 2  # one labeled sample to train on and one to hold out, in every class of a source


def _check_source_labels(y: np.ndarray, classes: tuple[str, ...], origin: str) -> None:
    """A source must let every class train and validate: an empty source_val would crash every trial."""
    if len(classes) < 2:
        found = f"only class {classes[0]}" if classes else "no classes"
        raise InputError("source", f"{origin}: expected labeled samples of at least 2 classes, found {found}")
    counts = np.bincount(y, minlength=len(classes))
    smallest = int(np.argmin(counts))
    if counts[smallest] < MIN_PER_CLASS:
        raise InputError(
            "source",
            f"{origin}: expected at least {MIN_PER_CLASS} labeled samples per class to hold out a validation "
            f"split, class {classes[smallest]} has {counts[smallest]}",
        )


def _split_source(
    name: str, x: torch.Tensor, y: np.ndarray, fraction: float, classes: tuple[str, ...], origin: str | None = None
) -> tuple[Domain, Domain]:
    """Stratified source_train / source_val; ``origin`` names the data in errors (default ``name``)."""
    _check_source_labels(y, classes, origin or name)
    train_idx, val_idx = stratified_split(y, fraction, SPLIT_SEED)
    labels = torch.as_tensor(np.asarray(y, dtype=np.int64))
    return (
        Domain(f"{name}/train", x[train_idx], labels[train_idx]),
        Domain(f"{name}/val", x[val_idx], labels[val_idx]),
    )


def _transductive_target(name: str, x: torch.Tensor) -> tuple[Domain, Domain]:
    # The standard "full" protocol: adapt on all target samples and evaluate on the same samples.
    return Domain(f"{name}/train", x), Domain(f"{name}/val", x)


# ---------------------------------------------------------------------------------------------------------
# Built-in tasks


@functools.cache
def _builtin_arrays(filename: str) -> dict[str, np.ndarray]:
    with np.load(DATASETS_DIR / filename, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for array in arrays.values():
        array.flags.writeable = False  # shared by every caller of the cache
    return arrays


def _digit_images(x: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W]`` -> float32 ``[N, 1, 28, 28]`` in [-1, 1] (bilinear resize when H, W differ)."""
    images = torch.tensor(x, dtype=torch.float32).unsqueeze(1) / 127.5 - 1.0
    if images.shape[-2:] != (DIGITS_SIDE, DIGITS_SIDE):
        images = F.interpolate(images, size=(DIGITS_SIDE, DIGITS_SIDE), mode="bilinear", align_corners=False)
    return images


_DIGITS_NOTE = (
    "MNIST is its 10k test set (the 60k train set is not shipped), so results are close to, not the "
    "same as, the published deep protocol. USPS is upsampled from 16x16 to 28x28."
)


@dataclass(frozen=True)
class _DigitsDomains:
    """The digits of one direction as whole domains: the source with its labels, and the target stacked so that
    ``target_rows`` pick its train and val samples; ``oracle`` labels the val samples."""

    source: str
    target: str
    source_x: np.ndarray
    source_y: np.ndarray
    target_x: np.ndarray
    target_rows: tuple[np.ndarray, np.ndarray]
    oracle: np.ndarray
    protocol: str


def _digits_domains(source_key: str) -> _DigitsDomains:
    """M: MNIST -> USPS (target_train = USPS train, target_val = USPS test); U: USPS -> MNIST (the MNIST pool
    split 80/20 into target train / val)."""
    mnist, usps = _builtin_arrays("mnist_t10k.npz"), _builtin_arrays("usps.npz")
    if source_key == "M":
        usps_x = np.concatenate([usps["x_train"], usps["x_test"]])
        n_train = len(usps["x_train"])
        rows = (np.arange(n_train), np.arange(n_train, len(usps_x)))
        return _DigitsDomains("mnist", "usps", mnist["x"], mnist["y"], usps_x, rows, usps["y_test"],
                              "target_train = USPS train, target_val = USPS test")
    train_idx, val_idx = stratified_split(mnist["y"], 0.2, SPLIT_SEED)
    return _DigitsDomains("usps", "mnist", usps["x_train"], usps["y_train"], mnist["x"], (train_idx, val_idx),
                          mnist["y"][val_idx], "the MNIST pool is split 80/20 into target train / val")


def _digits_task(name: str, fraction: float, preprocess: str = "none") -> Task:
    """``mnist->usps`` / ``usps->mnist`` as images, or ``digits-pixels:M->U`` / ``:U->M``: the same images as 784-d
    pixel tables (a feature task, preprocessed like any user table over each whole domain)."""
    pixels = name.startswith("digits-pixels:")
    domains = _digits_domains(name.removeprefix("digits-pixels:")[0].upper())
    xs, xt = _digit_images(domains.source_x), _digit_images(domains.target_x)
    if pixels:
        xs, xt = xs.flatten(1), xt.flatten(1)
        preprocess = resolve_preprocess(preprocess, xs, xt)
        xs, xt = preprocess_domains(xs, xt, preprocess)
        form = f"as 784-d pixel tables (28x28 in [-1, 1], {PREPROCESS_NOTES[preprocess]}; the target statistics cover "
        form += "all its samples)"
    else:
        preprocess, form = "none", "as 1x28x28 images in [-1, 1]"
    source_train, source_val = _split_source(domains.source, xs, domains.source_y, fraction, DIGIT_CLASSES)
    train_rows, val_rows = domains.target_rows
    val_part = "test" if domains.target == "usps" else "val"
    return Task(
        name=name,
        source_train=source_train,
        source_val=source_val,
        target_train=Domain(f"{domains.target}/train", xt[train_rows]),
        target_val=Domain(f"{domains.target}/{val_part}", xt[val_rows]),
        classes=DIGIT_CLASSES,
        input_kind="features" if pixels else "images",
        default_backbone="mlp" if pixels else "lenet",
        target_oracle=torch.as_tensor(domains.oracle.astype(np.int64)),
        description=f"{domains.source.upper()} -> {domains.target.upper()} digits {form}; {domains.protocol}. "
                    f"{_DIGITS_NOTE}",
        extra={"protocol": "digits-pixels" if pixels else "digits-deep", "source_domain": domains.source,
               "target_domain": domains.target, "preprocess": preprocess},
    )


@dataclass(frozen=True)
class _FeatureBenchmark:
    """A shallow benchmark shipped as one npz of per-domain features and labels.

    Each stored part ``<part>`` has a matrix ``x_<part>`` and uint8 labels ``y_<part>``. A part is a domain key
    (protocol ``transductive``) or ``<key>_train`` / ``<key>_test`` (protocol ``train-test``). A matrix is
    stored dense, or sparse as CSR arrays ``x_<part>_data``, ``_indices``, ``_indptr`` and ``_shape``; an
    optional scalar ``x_<part>_divisor`` maps integer storage back to the benchmark's values.
    """

    prefix: str  # task names are "<prefix>:<source key>-><target key>"
    collection: str  # for messages: "unknown <collection> domain ..."
    title: str  # for task descriptions
    features: str  # what a feature vector is, for task descriptions
    filename: str
    domains: dict[str, str]  # key -> domain name
    classes: tuple[str, ...]
    # The row normalisation that is part of how the benchmark defines its features: "l1", "l2" or "none".
    row_norm: str = "l1"
    # "transductive": target_train = target_val = all target samples. "train-test": the source is its labeled
    # train part; target_train is the target's train part (unlabeled), target_val its test part.
    protocol: str = "transductive"
    # The preprocess kind (see .preprocess) under which the benchmark's published baselines were computed.
    published_preprocess: str = "zscore"

    def splits(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The stored splits that make a source and a target domain (``()``: the one part ``<key>``).

        A train-test target keeps its test part after its train part, so the statistics of the preprocessing
        cover all its unlabeled samples; the source is only its labeled train part.
        """
        return (("train",), ("train", "test")) if self.protocol == "train-test" else ((), ())

    def target_rows(self, key: str) -> tuple[slice, slice]:
        """The rows of target domain ``key`` (as :meth:`splits` stacks it) that form target_train / target_val."""
        if self.protocol == "train-test":
            n_train = len(_builtin_arrays(self.filename)[f"y_{key}_train"])
            return slice(0, n_train), slice(n_train, None)
        return slice(None), slice(None)  # the standard "full" protocol: evaluate on the samples adapted on


_OFFICE_SURF = _FeatureBenchmark(
    prefix="office-surf",
    collection="Office-Caltech10",
    title="Office-Caltech10 SURF",
    features="800-d bag-of-visual-words",
    filename="office_caltech10_surf.npz",
    domains=OFFICE_DOMAINS,
    classes=OFFICE_CLASSES,
)
_AMAZON = _FeatureBenchmark(
    prefix="amazon",
    collection="Amazon reviews",
    title="Amazon reviews (400-d)",
    features="bag-of-words counts of the 400 most frequent words, negative / positive sentiment",
    filename="amazon_review_400.npz",
    domains=AMAZON_DOMAINS,
    classes=AMAZON_CLASSES,
)
_OFFICE_DECAF = _FeatureBenchmark(
    prefix="office-decaf",
    collection="Office-Caltech10 DeCAF6",
    title="Office-Caltech10 DeCAF6",
    features="4096-d DeCAF fc6 activations (after ReLU)",
    filename="office_caltech10_decaf6.npz",
    domains=OFFICE_DECAF_DOMAINS,
    classes=OFFICE_CLASSES,
)
# The JDA code scales every sample to unit L2 norm and does no z-scoring; its 1-NN baseline needs preprocess none.
_MNIST_USPS_JDA = _FeatureBenchmark(
    prefix="mnist-usps-jda",
    collection="MNIST-USPS (JDA)",
    title="MNIST-USPS digits, JDA protocol (2000 MNIST, 1800 USPS)",
    features="16x16 grey pixels as 256-d features",
    filename="mnist_usps_jda.npz",
    domains=MNIST_USPS_DOMAINS,
    classes=DIGIT_CLASSES,
    row_norm="l2",
    published_preprocess="none",
)
# The DANN code feeds the raw counts to its networks (no row normalisation).
_AMAZON_5000 = _FeatureBenchmark(
    prefix="amazon-5000",
    collection="Amazon reviews 5000-d",
    title="Amazon reviews (5000-d, DANN JMLR 2016 protocol)",
    features="counts of 5000 unigrams and bigrams, negative / positive sentiment",
    filename="amazon_review_dann_5000.npz",
    domains=AMAZON_5000_DOMAINS,
    classes=AMAZON_CLASSES,
    row_norm="none",
    protocol="train-test",
    published_preprocess="none",
)
_FEATURE_BENCHMARKS = {b.prefix: b for b in (_OFFICE_SURF, _AMAZON, _OFFICE_DECAF, _MNIST_USPS_JDA, _AMAZON_5000)}

_ROW_NORM_NOTE = {"l1": "rows L1-normalised", "l2": "rows scaled to unit L2 norm", "none": "rows not normalised"}


def _stored_rows(arrays: dict[str, np.ndarray], parts: list[str]) -> np.ndarray:
    """The stored matrices ``x_<part>`` of ``parts``, stacked in order into one float64 array."""
    names = [f"x_{part}" for part in parts]
    shapes = [arrays[n].shape if n in arrays else tuple(arrays[f"{n}_shape"]) for n in names]
    x = np.zeros((sum(rows for rows, _ in shapes), shapes[0][1]), dtype=np.float64)
    start = 0
    for name, (rows, _) in zip(names, shapes, strict=True):
        block = x[start : start + rows]
        start += rows
        if name in arrays:
            block[:] = arrays[name]
        else:  # CSR: scatter the non-zeros into the zero block
            indptr = arrays[f"{name}_indptr"]
            block[np.repeat(np.arange(rows), np.diff(indptr)), arrays[f"{name}_indices"]] = arrays[f"{name}_data"]
        if f"{name}_divisor" in arrays:
            block /= arrays[f"{name}_divisor"]
    return x


def _parts(benchmark: _FeatureBenchmark, key: str, splits: tuple[str, ...]) -> list[str]:
    if key not in benchmark.domains:
        expected = ", ".join(benchmark.domains)
        raise InputError("task", f"unknown {benchmark.collection} domain '{key}'; expected one of {expected}")
    return [f"{key}_{split}" for split in splits] or [key]


def _feature_labels(benchmark: _FeatureBenchmark, key: str, splits: tuple[str, ...] = ()) -> np.ndarray:
    """The int64 labels of :func:`_feature_domain`, without loading any feature."""
    arrays = _builtin_arrays(benchmark.filename)
    return np.concatenate([arrays[f"y_{part}"] for part in _parts(benchmark, key, splits)]).astype(np.int64)


def _feature_domain(
    benchmark: _FeatureBenchmark, key: str, splits: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Domain ``key`` as the benchmark defines its features (float64, rows normalised) and int64 labels.

    ``splits`` selects the stored parts ``<key>_<split>`` of a train-test benchmark, stacked in that order;
    without it the domain is its one stored part ``<key>``.
    """
    x = _stored_rows(_builtin_arrays(benchmark.filename), _parts(benchmark, key, splits))
    if benchmark.row_norm == "l1":
        x /= x.sum(axis=1, keepdims=True)
    elif benchmark.row_norm == "l2":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, _feature_labels(benchmark, key, splits)


def _standard_domain(benchmark: _FeatureBenchmark, key: str) -> tuple[np.ndarray, np.ndarray]:
    # The benchmarks' published protocol: L1 rows, then z-score each feature within the domain.
    x, y = _feature_domain(benchmark, key)
    return standardise(torch.from_numpy(x), torch.from_numpy(x)).numpy(), y


def load_office_surf_domain(key: str) -> tuple[np.ndarray, np.ndarray]:
    """One Office-Caltech10 SURF domain (``A``, ``C``, ``W`` or ``D``), with the standard preprocessing.

    Each row is divided by its sum, then each feature is z-scored with this domain's own mean and population
    std (MATLAB ``zscore(fts, 1)``; a constant feature keeps std 1). Returns float64 ``[n, 800]`` features
    and int64 0-based labels.
    """
    return _standard_domain(_OFFICE_SURF, key)


def load_amazon_domain(key: str) -> tuple[np.ndarray, np.ndarray]:
    """One Amazon reviews 400-d domain (``B``, ``D``, ``E`` or ``K``), with the standard preprocessing.

    The same as :func:`load_office_surf_domain`: each row of word counts is divided by its sum (which gives
    back the word frequencies of the original release bit for bit), then each feature is z-scored with this
    domain's own mean and population std (a constant feature keeps std 1). Returns float64 ``[n, 400]``
    features and int64 labels (0 = negative, 1 = positive).
    """
    return _standard_domain(_AMAZON, key)


def _feature_pair(benchmark: _FeatureBenchmark, name: str) -> tuple[str, str]:
    source_key, target_key = name.removeprefix(f"{benchmark.prefix}:").split("->")
    return source_key, target_key


def _feature_description(benchmark: _FeatureBenchmark, name: str, preprocess: str) -> str:
    source_key, target_key = _feature_pair(benchmark, name)
    source, target = benchmark.domains[source_key], benchmark.domains[target_key]
    published = (
        "" if preprocess == benchmark.published_preprocess
        else f" (its published baselines use preprocess '{benchmark.published_preprocess}')"
    )
    if benchmark.protocol == "train-test":
        protocol = (
            f"source = the labeled train part of {source}; target_train = the train part of {target} "
            "(unlabeled), target_val = its test part (labels kept as the oracle); the target statistics "
            "cover both parts."
        )
    else:
        protocol = "transductive protocol (target_val = all target samples)."
    return (
        f"{benchmark.title}, {source} -> {target}: {benchmark.features}, {_ROW_NORM_NOTE[benchmark.row_norm]} "
        f"and {PREPROCESS_NOTES[preprocess]}{published}; {protocol}"
    )


def _feature_task(benchmark: _FeatureBenchmark, name: str, fraction: float, preprocess: str) -> Task:
    source_key, target_key = _feature_pair(benchmark, name)
    source, target = benchmark.domains[source_key], benchmark.domains[target_key]
    source_splits, target_splits = benchmark.splits()
    xs, ys = _feature_domain(benchmark, source_key, source_splits)
    xt, yt = _feature_domain(benchmark, target_key, target_splits)
    xs_t, xt_t = torch.from_numpy(xs), torch.from_numpy(xt)
    preprocess = resolve_preprocess(preprocess, xs_t, xt_t)
    xs_t, xt_t = preprocess_domains(xs_t, xt_t, preprocess)
    source_train, source_val = _split_source(source, xs_t, ys, fraction, benchmark.classes)
    train_rows, val_rows = benchmark.target_rows(target_key)
    val_part = "test" if benchmark.protocol == "train-test" else "val"
    return Task(
        name=name,
        source_train=source_train,
        source_val=source_val,
        target_train=Domain(f"{target}/train", xt_t[train_rows]),
        target_val=Domain(f"{target}/{val_part}", xt_t[val_rows]),
        classes=benchmark.classes,
        input_kind="features",
        default_backbone="mlp",
        target_oracle=torch.as_tensor(yt[val_rows]),
        description=_feature_description(benchmark, name, preprocess),
        extra={"protocol": benchmark.protocol, "source_domain": source, "target_domain": target,
               "preprocess": preprocess},
    )


def _feature_summary(benchmark: _FeatureBenchmark, name: str) -> dict:
    """What :func:`list_tasks` shows of a default feature task, from its labels alone.

    Building the task would densify and z-score its features: seconds for each 5000-d Amazon task.
    """
    source_key, target_key = _feature_pair(benchmark, name)
    source_splits, target_splits = benchmark.splits()
    source_labels = _feature_labels(benchmark, source_key, source_splits)
    train_idx, val_idx = stratified_split(source_labels, SOURCE_VAL_FRACTION, SPLIT_SEED)
    n_target = len(_feature_labels(benchmark, target_key, target_splits))
    train_rows, val_rows = benchmark.target_rows(target_key)
    return {
        "name": name,
        "input_kind": "features",
        "default_backbone": "mlp",
        "num_classes": len(benchmark.classes),
        "source_train": len(train_idx),
        "source_val": len(val_idx),
        "target_train": len(range(n_target)[train_rows]),
        "target_val": len(range(n_target)[val_rows]),
        "description": _feature_description(benchmark, name, DEFAULT_PREPROCESS),
    }


def _unknown_task(name: str) -> InputError:
    close = difflib.get_close_matches(name, BUILTIN_TASKS, n=3, cutoff=0.6)
    ordered = close + [t for t in BUILTIN_TASKS if t not in close]
    expected = ", ".join(ordered) + ", or --source/--target paths"
    return InputError("task", f"unknown task '{name}'; expected one of: {expected}")


def load_task(
    name: str, source_val_fraction: float = SOURCE_VAL_FRACTION, preprocess: str = DEFAULT_PREPROCESS
) -> Task:
    """Build a built-in task by name (see :data:`BUILTIN_TASKS`); ``preprocess`` applies to feature tasks."""
    if name not in BUILTIN_TASKS:
        raise _unknown_task(name)
    _check_fraction(source_val_fraction)
    check_preprocess(preprocess)  # for every task, images included, so a typo never passes silently
    benchmark = _FEATURE_BENCHMARKS.get(name.split(":", 1)[0])
    if benchmark is not None:
        return _feature_task(benchmark, name, source_val_fraction, preprocess)
    return _digits_task(name, source_val_fraction, preprocess)


def list_tasks() -> list[dict]:
    """One dict per built-in task (with the default fraction and preprocessing): name, input_kind,
    default_backbone, num_classes, sizes, description."""
    summaries = []
    for name in BUILTIN_TASKS:
        benchmark = _FEATURE_BENCHMARKS.get(name.split(":", 1)[0])
        if benchmark is not None:
            summaries.append(_feature_summary(benchmark, name))
            continue
        task = load_task(name)
        summaries.append(
            {
                "name": name,
                "input_kind": task.input_kind,
                "default_backbone": task.default_backbone,
                "num_classes": task.num_classes,
                **task.sizes(),
                "description": task.description,
            }
        )
    return summaries


# ---------------------------------------------------------------------------------------------------------
# User data


@dataclass(frozen=True)
class _RawDomain:
    x: torch.Tensor | ImageFiles  # float32 [N, D] or [N, C, H, W], or an image folder's files
    labels: np.ndarray | None  # class names (str) per sample, or None when unlabeled
    columns: tuple[str, ...] | None = None  # feature names of a table, in the order of x's columns


def _few(names: list[str], limit: int = 5) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _label_names(values: np.ndarray, field: str, path: Path) -> np.ndarray:
    """Labels (ints, integral floats or strings) -> their class names as strings."""
    if values.dtype.kind in "iub":
        return values.astype(np.int64).astype(str)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.rint(values)):
        return values.astype(np.int64).astype(str)
    if values.dtype.kind == "U" or (values.dtype.kind == "O" and all(isinstance(v, str) for v in values)):
        return values.astype(str)
    raise InputError(field, f"{path}: labels must be integers or strings, got values of type {values.dtype}")


def _finite_features(x: np.ndarray, field: str, path: Path) -> torch.Tensor:
    if x.dtype.kind not in "iubf":
        raise InputError(field, f"{path}: features must be numeric, got {x.dtype}")
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(field, f"{path}: features contain NaN or infinite values; expected finite numbers")
    return torch.from_numpy(np.ascontiguousarray(x))


def _read_npz(path: Path, field: str) -> _RawDomain:
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = list(npz.files)
            arrays = {key: npz[key] for key in ("x", "y") if key in found}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(field, f"cannot read {path} as .npz ({first_line(error)})") from None
    if "x" not in arrays:
        raise InputError(
            field,
            f"{path} has no array 'x' (found: {', '.join(found) or 'none'}); "
            "expected x ([N, D] features or [N, H, W] / [N, C, H, W] images) and optional y",
        )
    x, y = arrays["x"], arrays.get("y")
    if x.ndim not in (2, 3, 4):
        raise InputError(field, f"{path}: x has shape {x.shape}; expected [N, D], [N, H, W] or [N, C, H, W]")
    if x.ndim == 3:
        x = x[:, None]  # grey images get an explicit channel axis
    if x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        raise InputError(field, f"{path}: x has shape {x.shape}, which looks channels-last; expected [N, C, H, W]")
    if y is not None and y.shape != (len(x),):
        raise InputError(field, f"{path}: y has shape {y.shape}; expected one label per sample ({len(x)},)")
    labels = None if y is None else _label_names(y, field, path)
    return _RawDomain(_finite_features(x, field, path), labels)


# A table's readers, by file suffix, with the name its errors give the format.
_TABLE_READERS = {
    ".parquet": ("a Parquet table", "read_parquet"),
    ".csv": ("a CSV table with a header row", "read_csv"),
}


def _read_table(path: Path, field: str) -> _RawDomain:
    import pandas as pd

    kind, reader = _TABLE_READERS[path.suffix.lower()]
    try:
        table = getattr(pd, reader)(path)
    except Exception as error:  # pyarrow and the CSV parser raise many types for a bad file
        raise InputError(field, f"cannot read {path} as {kind} ({first_line(error)})") from None
    columns = [c for c in table.columns if c != "label"]
    # pandas names a column whose header cell is empty "Unnamed: N": almost always a row index written with the
    # data, which as a feature would leak the rows' order into every model.
    unnamed = [str(c) for c in columns if re.fullmatch(r"Unnamed: \d+", str(c))]
    if unnamed:
        raise InputError(
            field,
            f"{path}: column '{unnamed[0]}' has no header name (a row index?); expected a named header for every "
            "column (pandas: to_csv(index=False))",
        )
    bad = [str(c) for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise InputError(
            field,
            f"{path}: non-numeric feature columns {', '.join(bad[:10])}{' ...' * (len(bad) > 10)}; "
            "expected numeric feature columns plus an optional 'label' column",
        )
    labels = None
    if "label" in table.columns:
        column = table["label"]
        if column.isna().any():
            raise InputError(field, f"{path}: the 'label' column has missing values; expected one per row")
        values = column.to_numpy() if pd.api.types.is_numeric_dtype(column) else column.astype(str).to_numpy()
        labels = _label_names(values, field, path)
    features = _finite_features(table[columns].to_numpy(), field, path)
    return _RawDomain(features, labels, tuple(str(c) for c in columns))


def _read_domain(path_like: str | Path, field: str, image_size: int) -> _RawDomain:
    if is_storage_uri(str(path_like)):  # only image folders come from storage URIs
        return _RawDomain(*list_image_folder(str(path_like), field, image_size))
    path = Path(path_like)
    if not path.exists():
        raise InputError(field, f"path does not exist: {path}; expected {_USER_FORMATS}")
    if path.is_dir():
        return _RawDomain(*list_image_folder(str(path.absolute()), field, image_size))
    if path.suffix.lower() == ".npz":
        raw = _read_npz(path, field)
    elif path.suffix.lower() in _TABLE_READERS:
        raw = _read_table(path, field)
    else:
        kind = path.suffix or "without extension"
        raise InputError(field, f"unsupported file type '{kind}' for {path}; expected {_USER_FORMATS}")
    if len(raw.x) == 0:
        raise InputError(field, f"{path} has 0 samples; expected a non-empty domain")
    if raw.x[0].numel() == 0:
        raise InputError(
            field, f"{path} has samples of shape {tuple(raw.x.shape[1:])}, which hold no values; expected at "
            "least one feature (for a table, a numeric column besides 'label')"
        )
    return raw


def _target_in_source_columns(src: _RawDomain, tgt: _RawDomain, target: str | Path) -> torch.Tensor:
    """The target features with its table columns matched to the source's by name, not by position."""
    if src.columns is None or tgt.columns is None or src.columns == tgt.columns:
        return tgt.x  # arrays and images have no column names: their features match by position
    source_names, target_names = set(src.columns), set(tgt.columns)
    missing = [c for c in src.columns if c not in target_names]
    extra = [c for c in tgt.columns if c not in source_names]
    if missing or extra:
        raise InputError(
            "target",
            f"feature columns of {target} do not match the source: missing {_few(missing)}; extra {_few(extra)}; "
            "expected the source's feature columns, in any order",
        )
    position = {name: i for i, name in enumerate(tgt.columns)}
    return tgt.x[:, [position[name] for name in src.columns]]


def _class_key(name: str) -> tuple:
    # Integer-like names in numeric order (so "10" follows "9"), then the others alphabetically.
    try:
        return (0, int(name), "")
    except ValueError:
        return (1, 0, name)


def _encode(names: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unique, inverse = np.unique(names, return_inverse=True)
    return np.array([index[u] for u in unique], dtype=np.int64)[inverse]


def _default_backbone(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return "mlp"
    channels, height, width = shape
    # Small single-channel square images (digits-like) suit the LeNet-style network; anything else a ResNet.
    return "lenet" if channels == 1 and height == width and 16 <= height <= 64 else "resnet18"


def load_user_task(
    source: str | Path, target: str | Path, source_val_fraction: float = SOURCE_VAL_FRACTION,
    image_size: int = DEFAULT_IMAGE_SIZE, preprocess: str = DEFAULT_PREPROCESS,
) -> Task:
    """Build a task from user data paths (``.npz``, ``.parquet``, ``.csv`` or an image folder).

    The source must be labeled; it is split stratified (seed :data:`SPLIT_SEED`) into train / val. All target
    samples form both target_train and target_val (transductive), unlabeled; target labels, when given, only
    become ``target_oracle`` and may cover only some of the source's classes. Classes are the sorted label
    names of the source, mapped the same way in both domains; every class needs at least
    :data:`MIN_PER_CLASS` source samples. Parquet and CSV feature columns are matched to the source's by name
    (``.npz`` features by position). Feature tables (``.npz``, ``.parquet`` or ``.csv`` rows) go through
    ``preprocess`` (see :mod:`.preprocess`) over all samples of each domain. An image folder (a local path or a
    storage URI) becomes an :class:`~.images.ImageFiles` index: its images are decoded, resized to
    ``image_size`` and normalised with the ImageNet mean / std only when a trial reads a batch.
    """
    _check_fraction(source_val_fraction)
    check_preprocess(preprocess)  # before any file is read
    if not isinstance(image_size, int) or image_size < 1:
        raise InputError("image_size", f"a positive integer number of pixels, got {image_size!r}")
    src = _read_domain(source, "source", image_size)
    if src.labels is None:
        raise InputError(
            "source",
            f"{source} is unlabeled; the source must be labeled (an .npz with 'y', a Parquet table "
            "with a 'label' column, or an image folder with one subfolder per class)",
        )
    tgt = _read_domain(target, "target", image_size)
    target_x = _target_in_source_columns(src, tgt, target)
    classes = tuple(sorted(set(src.labels.tolist()), key=_class_key))
    if tgt.labels is not None:
        # A target may lack some source classes (partial adaptation, or a small target sample); a class the
        # source never shows cannot be predicted, so its labels could only score as errors.
        only_target = sorted(set(tgt.labels.tolist()) - set(classes), key=_class_key)
        if only_target:
            raise InputError(
                "target",
                f"labels of {target} name classes the source lacks: {_few(only_target)}; "
                f"expected target labels among the source's classes ({_few(list(classes))})",
            )
    shape = tuple(src.x.shape[1:])
    if tuple(target_x.shape[1:]) != shape:
        raise InputError(
            "target",
            f"{target} samples have shape {tuple(target_x.shape[1:])} but source samples {shape}; "
            "expected the same feature dimension / image shape in both domains",
        )
    source_name, target_name = Path(source).stem, Path(target).stem
    input_kind = "features" if len(shape) == 1 else "images"
    preprocess = effective_preprocess(preprocess, input_kind)
    if isinstance(src.x, ImageFiles):  # decoded and normalised on the fly, never rescaled here
        xs, xt = src.x, target_x
    else:
        preprocess = resolve_preprocess(preprocess, src.x, target_x)
        xs, xt = preprocess_domains(src.x, target_x, preprocess)
    source_y = _encode(src.labels, classes)
    source_train, source_val = _split_source(source_name, xs, source_y, source_val_fraction, classes, str(source))
    target_train, target_val = _transductive_target(target_name, xt)
    oracle = None if tgt.labels is None else torch.as_tensor(_encode(tgt.labels, classes))
    return Task(
        name=f"{source_name}->{target_name}",
        source_train=source_train,
        source_val=source_val,
        target_train=target_train,
        target_val=target_val,
        classes=classes,
        input_kind=input_kind,
        default_backbone=_default_backbone(shape),
        target_oracle=oracle,
        description=(
            f"user data: source {source} ({len(src.x)} labeled), target {target} ({len(tgt.x)} "
            f"{'labeled, oracle only' if oracle is not None else 'unlabeled'}); {input_kind} {list(shape)}, "
            f"{len(classes)} classes; transductive protocol (target_val = all target samples)."
        ),
        extra={"protocol": "transductive", "source_path": str(source), "target_path": str(target),
               "preprocess": preprocess},
    )
