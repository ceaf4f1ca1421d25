"""Frozen-backbone features of a large image folder, computed once with Ray Data before the trials start.

A search whose trials freeze the whole backbone (feature-extraction methods, or a ``freeze_depth`` range that
reaches it) trains them on the backbone's outputs. On a small folder the first trial computes those outputs and
every other reads them from the feature cache (``algorithms.features``). On a large one that first trial would
encode every image on its own few CPUs while the rest of the cluster waits, so the driver hands the work to Ray
Data instead: one dataset of the image positions of every domain, ``map_batches`` with the frozen backbone in
actors over the cluster's CPUs (or GPUs), results written to the same cache under the key the trials compute, so
they find it there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from adaptune.algorithms.features import DiskStore, distinct_domains, prefix_key, weights_identity
from adaptune.algorithms.images import ImageFiles
from adaptune.algorithms.loop import backbone_for
from adaptune.algorithms.methods import METHODS

if TYPE_CHECKING:
    from .run import Prepared
    from .trial import TrialSettings

RAY_DATA_MIN_IMAGES = 10_000  # below this, one trial encodes a folder in about the time Ray Data takes to start
BATCH_SIZE = 64


def needs_full_freeze(prepared: Prepared, depth: int) -> bool:
    """Whether some trial of the search may freeze every stage of the backbone."""
    return any(METHODS[m].feature_extraction for m in prepared.config.methods) or \
        prepared.ranges["freeze_depth"][1] == depth


def precompute_features(prepared: Prepared, settings: TrialSettings) -> str | None:
    """Encode the task's image folders through the whole frozen backbone with Ray Data into the trials' feature
    cache, when ``feature_engine`` asks for it (``auto``: from :data:`RAY_DATA_MIN_IMAGES` images on, when some
    trial freezes the whole backbone). Returns a line saying what was done, or None."""
    c, task = prepared.config, prepared.task
    if c.feature_engine == "trial" or settings.feature_cache is None or not isinstance(task.source_train.x,
                                                                                         ImageFiles):
        return None
    domains_before = distinct_domains(task)
    images = sum(len(d) for d in domains_before)
    if c.feature_engine == "auto" and images < RAY_DATA_MIN_IMAGES:
        return None
    # The trial's own construction (seeded the same way), so a random-init backbone and its key are the same too.
    torch.manual_seed(settings.seed)
    backbone, task = backbone_for(task, settings.backbone, settings.weights)
    if not needs_full_freeze(prepared, backbone.depth):
        return None
    frozen, _ = backbone.split(backbone.depth)
    weights = weights_identity(backbone.weights_file, frozen)
    # A store of its own, dropped on return: the driver writes the entries for the trials and keeps none of them
    # (the process's shared store would hold every image's features for the whole search).
    store = DiskStore(settings.feature_cache, settings.feature_cache_max_bytes)
    started = time.perf_counter()
    domains = distinct_domains(task)
    encoded: dict[int, torch.Tensor] = {}
    computed = 0

    def encode(index: int) -> torch.Tensor:
        # The first domain missing from the cache is encoded with every domain after it in one Ray Data pass: one
        # pool of encoder actors (each importing torch and building the backbone) rather than one per domain.
        nonlocal computed
        if index not in encoded:
            rest = range(index, len(domains))
            encoded.update(zip(rest, encode_with_ray_data(frozen, [domains[i].x for i in rest],
                                                          settings.cpus_per_trial, settings.gpus_per_trial)))
        computed += 1
        return encoded.pop(index)

    for index, domain in enumerate(domains):
        key = prefix_key(settings.backbone, weights, backbone.depth, domain)
        store.get_or_compute(key, lambda index=index: encode(index))
    if not computed:
        return f"frozen {settings.backbone} features of {images:,} images: already in the feature cache"
    return (f"frozen {settings.backbone} features of {images:,} images computed with Ray Data in "
            f"{time.perf_counter() - started:.0f} s ({computed} domains)")


class _Encoder:
    """A Ray Data actor: decodes a batch of image positions (numbered across the domains, one after the other) and
    runs the frozen backbone on them."""

    def __init__(self, frozen: nn.Module, domains: list[ImageFiles], threads: int, use_gpu: bool):
        torch.set_num_threads(threads)
        self.device = torch.device("cuda" if use_gpu else "cpu")
        self.frozen = frozen.to(self.device).eval()
        self.domains = domains
        self.starts = domain_starts(domains)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions = batch["id"]
        which = np.searchsorted(self.starts, positions, side="right") - 1
        present = np.unique(which)  # a batch may span two domains
        groups = [positions[which == d] for d in present]
        images = torch.cat([self.domains[d].load((group - self.starts[d]).tolist())
                            for d, group in zip(present, groups)])
        with torch.no_grad():
            features = self.frozen(images.to(self.device)).float().cpu().numpy()
        return {"id": np.concatenate(groups), "features": features}


def domain_starts(domains: list[ImageFiles]) -> np.ndarray:
    """Where each domain's images begin when the images of ``domains`` are numbered one after the other, and the
    total last."""
    return np.cumsum([0] + [len(images) for images in domains])


def encode_with_ray_data(frozen: nn.Module, domains: list[ImageFiles], cpus: float, gpus: float) -> list[torch.Tensor]:
    """``frozen`` over every image of ``domains`` in one Ray Data pass, in as many actors as the cluster has room for;
    each domain's features in position order."""
    import ray

    per_actor = {"num_gpus": gpus} if gpus > 0 else {}
    slots = max(1, int(ray.cluster_resources().get("GPU" if gpus > 0 else "CPU", 1) // (gpus if gpus > 0 else cpus)))
    starts = domain_starts(domains)
    dataset = ray.data.range(int(starts[-1])).map_batches(
        _Encoder, fn_constructor_kwargs={"frozen": frozen, "domains": domains, "threads": max(1, int(cpus)),
                                         "use_gpu": gpus > 0},
        batch_size=BATCH_SIZE, batch_format="numpy", num_cpus=cpus, concurrency=(1, slots), **per_actor)
    positions, features = [], []
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        positions.append(batch["id"])
        features.append(batch["features"])
    ordered = np.concatenate(features)[np.argsort(np.concatenate(positions), kind="stable")]
    return [torch.from_numpy(np.ascontiguousarray(ordered[start:end])) for start, end in zip(starts[:-1], starts[1:])]
