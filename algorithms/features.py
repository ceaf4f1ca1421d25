"""Run the frozen prefix of a backbone once per (backbone, weights, depth, data) and reuse its outputs.

The frozen blocks are a pure function of the input, so a trial trains only on their outputs. A
:class:`FeatureStore` decides how long those outputs live: :class:`MemoryStore` keeps them for the process;
:class:`DiskStore` keeps them as files in a directory, so every trial process of a run (and, with a directory
every node sees, every node) computes them once, and a directory shared across runs serves later runs too.

A cached tensor is keyed by :func:`prefix_key`: the backbone name, an identity of the prefix's weights (the
content digest of the weights file, or of the prefix's own parameters for a random init:
:func:`weights_identity`), the freeze depth, the domain's content fingerprint (taken after preprocessing and
image normalisation, so those are covered) and the torch (and, for a timm model, timm) version. Nothing here
imports Ray.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import torch
from torch import nn

from .atomic import replace_atomically
from .domains import Domain, Task
from .images import IN_PROCESS, ImageFiles, Loading, eval_batches

KEY_FORMAT = "2"  # bumped when what a key covers, or what a cached file holds, changes
ENTRY_SUFFIX, LOCK_SUFFIX, TEMP_SUFFIX = ".pt", ".lock", ".tmp"
# A temporary file this old belongs to a writer that died (a write takes seconds): eviction removes it.
STALE_TEMP_S = 6 * 3600


class FeatureStore(Protocol):
    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor: ...


class CountingStore:
    """Another store, counting the computations it had to run: the entries this trial encoded rather than read.

    A trial reports the count as ``features_computed``, so a search can show that each key was computed once
    across all its trial processes and nodes."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.computed = 0

    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        def counted() -> torch.Tensor:
            self.computed += 1
            return compute()

        return self.store.get_or_compute(key, counted)


class MemoryStore:
    """Keeps encoded domains in a dict for the life of the process."""

    def __init__(self) -> None:
        self._items: dict[str, torch.Tensor] = {}

    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key not in self._items:
            self._items[key] = compute()
        return self._items[key]


class DiskStore:
    """Encoded domains as ``<key>.pt`` files in ``directory``, behind a per-process :class:`MemoryStore`.

    * Once per key: a process that misses takes an exclusive ``flock`` on ``<key>.lock`` and checks for the file
      again before computing, so concurrent trials wait for the one computing instead of computing twice. This
      holds across processes on one node and across nodes on a shared POSIX filesystem with working locks (NFS).
    * Atomic: a file is written under a temporary name in the same directory and renamed over ``<key>.pt``, so
      a reader never sees half a file; one that does not load anyway (truncated, corrupt) is recomputed.
    * Bounded: after each write the least recently used files (by mtime, which a read from disk refreshes) are
      evicted until the files take at most ``max_bytes``; an entry larger than that stays in memory only.
    * Disposable: deleting the directory or any file at any time costs a recomputation, nothing else. A
      directory that cannot be written (read-only, another node's path) degrades to memory only, with a warning.
    """

    def __init__(self, directory: str, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._memory = MemoryStore()
        self._warned = False

    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return self._memory.get_or_compute(key, lambda: self._from_disk(key, compute))

    def entry_path(self, key: str) -> str:
        return os.path.join(self.directory, key + ENTRY_SUFFIX)

    def _from_disk(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        path = self.entry_path(key)
        cached = _load(path)
        if cached is not None:
            return cached
        try:
            os.makedirs(self.directory, exist_ok=True)
            lock = open(os.path.join(self.directory, key + LOCK_SUFFIX), "a")
        except OSError as error:
            self._warn(error)
            return compute()
        with lock:  # closing the file releases the lock, as does the death of the process
            # Without working locks (some network filesystems) two processes may both compute; the rename still
            # leaves one whole file.
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_EX)
            cached = _load(path)  # computed by whoever held the lock before us
            if cached is not None:
                return cached
            value = compute()
            if self.max_bytes is not None and value.element_size() * value.nelement() > self.max_bytes:
                return value
            try:
                replace_atomically(path, lambda tmp: torch.save(value, tmp), TEMP_SUFFIX)
            except OSError as error:  # e.g. a full disk: the trial goes on from memory
                self._warn(error)
                return value
        self.evict(keep=path)
        return value

    def evict(self, keep: str | None = None) -> None:
        """Remove the least recently used entries (never ``keep``) until the rest fit in ``max_bytes``, and
        temporary files that dead writers left behind. Best effort: a file another process removed or holds
        the only permission to (a cache shared between users) is skipped."""
        entries, total, now = [], 0, time.time()
        with contextlib.suppress(OSError), os.scandir(self.directory) as scan:
            for item in scan:
                with contextlib.suppress(OSError):
                    stat = item.stat()
                    if item.name.endswith(TEMP_SUFFIX) and now - stat.st_mtime > STALE_TEMP_S:
                        os.unlink(item.path)
                    elif item.name.endswith(ENTRY_SUFFIX):
                        entries.append((stat.st_mtime_ns, item.path, stat.st_size))
                        total += stat.st_size
        if self.max_bytes is None:
            return
        for _, path, size in sorted(entries):  # oldest first
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:  # another process evicted it first
                pass
            except OSError:
                continue
            total -= size
            with contextlib.suppress(OSError):
                os.unlink(path.removesuffix(ENTRY_SUFFIX) + LOCK_SUFFIX)

    def _warn(self, error: OSError) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"feature cache {self.directory} cannot be written ({error.strerror or error}); frozen "
                          "features stay in this process's memory", RuntimeWarning, stacklevel=2)


def _load(path: str) -> torch.Tensor | None:
    """The tensor cached at ``path`` (its mtime refreshed, for eviction); None when missing or unreadable."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, or one of the many errors torch.load raises for a truncated or foreign file
        return None
    if not isinstance(value, torch.Tensor):
        return None
    with contextlib.suppress(OSError):  # a read-only cache still serves its files
        os.utime(path)
    return value


def weights_digest(path: str) -> str:
    """sha256 of the file at ``path``; hashed once per process for each (path, mtime, size)."""
    stat = os.stat(path)
    return _file_sha256(os.path.realpath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def parameters_digest(module: nn.Module) -> str:
    """sha256 of ``module``'s parameters and buffers (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_identity(weights_file: str | None, frozen: nn.Module) -> str:
    """What the frozen prefix's weights are, for :func:`prefix_key`: the weights file's content, or for a random
    init the prefix's own values, so two processes share outputs only when their prefixes are equal (the loop
    seeds the init with the trial seed, so every trial of a search shares them)."""
    if weights_file is not None:
        return f"file-sha256:{weights_digest(weights_file)}"
    return f"random-init-sha256:{parameters_digest(frozen)}"


@torch.no_grad()
def run_blocks(blocks: nn.Module, x: torch.Tensor | ImageFiles, batch_size: int, device: torch.device,
               loading: Loading = IN_PROCESS) -> torch.Tensor:
    """Apply ``blocks`` in eval mode to ``x`` in batches (files decoded by ``loading``); the result lives on the
    CPU."""
    blocks = blocks.to(device).eval()
    return torch.cat([blocks(batch).float().cpu() for batch in eval_batches(x, batch_size, device, loading)])


def _builder_version(backbone: str) -> str:
    """The version of the library that defines ``backbone``'s architecture: a timm release may change a model."""
    if backbone.startswith("timm:"):
        from importlib.metadata import version

        return f"timm {version('timm')}"
    return ""


def prefix_key(backbone: str, weights: str, freeze_depth: int, domain: Domain) -> str:
    """The cache key of ``domain`` through the first ``freeze_depth`` stages of ``backbone`` with ``weights`` (a
    :func:`weights_identity`, never a path: a file can change under the same name). The domain counts by its
    content alone, so the transductive target (the same samples as target_train and target_val) is encoded once."""
    raw = "|".join((KEY_FORMAT, torch.__version__, _builder_version(backbone), backbone, weights, str(freeze_depth),
                    domain.fingerprint()))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def distinct_domains(task: Task) -> list[Domain]:
    """The task's domains, one per distinct content: the transductive target is target_train and target_val."""
    seen: dict[str, Domain] = {}
    domains = [task.source_train, task.source_val, task.target_train, task.target_val, task.target_fewshot]
    for domain in domains:
        if domain is not None:
            seen.setdefault(domain.fingerprint(), domain)
    return list(seen.values())


def encode_task(
    task: Task,
    frozen: nn.Module,
    *,
    backbone: str,
    weights: str,
    freeze_depth: int,
    store: FeatureStore,
    device: torch.device,
    batch_size: int = 256,
    loading: Loading = IN_PROCESS,
) -> Task:
    """The same task with every domain's inputs replaced by the frozen prefix's outputs."""
    if freeze_depth == 0:
        return task

    def encode(domain: Domain) -> Domain:
        key = prefix_key(backbone, weights, freeze_depth, domain)
        x = store.get_or_compute(key, lambda: run_blocks(frozen, domain.x, batch_size, device, loading))
        return replace(domain, x=x)

    return task.map_domains(encode, encode)
