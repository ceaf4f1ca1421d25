"""What a task is made of: labeled source data, unlabeled target data, and target labels kept apart."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from .errors import InputError
from .images import ImageFiles


@dataclass(frozen=True)
class Domain:
    """Samples of one domain: ``x`` is float32 ``[N, D]`` (features) or ``[N, C, H, W]`` (images), or the
    :class:`~.images.ImageFiles` of an image folder, decoded batch by batch.

    ``y`` holds int64 class indices ``[N]`` for a labeled domain and is ``None`` for an unlabeled one.
    """

    name: str
    x: torch.Tensor | ImageFiles
    y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"domain {self.name}: {len(self.x)} samples but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def labeled(self) -> bool:
        return self.y is not None

    def fingerprint(self) -> str:
        """A content hash, so cached frozen-backbone outputs can be keyed by the data they came from."""
        digest = hashlib.sha1()
        digest.update(str(tuple(self.x.shape)).encode())
        if isinstance(self.x, ImageFiles):
            digest.update(self.x.fingerprint().encode())
        else:
            digest.update(self.x.contiguous().numpy().tobytes())
        if self.y is not None:
            digest.update(self.y.numpy().tobytes())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """A source->target problem.

    Training sees ``source_train`` (labeled) and ``target_train`` (never labeled). Proxies are computed on
    ``source_val`` (labeled, held out from training) and ``target_val`` (unlabeled). ``target_oracle`` holds
    the labels of ``target_val`` when they exist; only the oracle column reads them, never training,
    selection or early stopping. ``target_fewshot`` is the one labeled target set a search may select on:
    k samples per class the user opted to supply (:func:`with_fewshot`), never part of ``target_val``.
    """

    name: str
    source_train: Domain
    source_val: Domain
    target_train: Domain
    target_val: Domain
    classes: tuple[str, ...]
    input_kind: str  # "features" or "images"
    default_backbone: str  # "lenet", "mlp", "resnet18", ...
    target_oracle: torch.Tensor | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)
    target_fewshot: Domain | None = None
    # target_val samples with their nearest target_val samples in the input space (:func:`with_target_neighbours`);
    # every mapping of the domains keeps them, as it keeps the samples' order.
    target_neighbours: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.target_train.labeled or self.target_val.labeled:
            raise ValueError("target domains must be unlabeled; pass target labels as target_oracle")
        if self.target_oracle is not None and len(self.target_oracle) != len(self.target_val):
            raise ValueError("target_oracle must label every sample of target_val")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.source_train.x.shape[1:])

    def map_domains(self, source: Callable[[Domain], Domain], target: Callable[[Domain], Domain]) -> Task:
        """The same task with every source domain mapped through ``source`` and every target one through ``target``."""
        return replace(
            self,
            source_train=source(self.source_train),
            source_val=source(self.source_val),
            target_train=target(self.target_train),
            target_val=target(self.target_val),
            target_fewshot=None if self.target_fewshot is None else target(self.target_fewshot),
        )

    def sizes(self) -> dict[str, int]:
        return {
            "source_train": len(self.source_train),
            "source_val": len(self.source_val),
            "target_train": len(self.target_train),
            "target_val": len(self.target_val),
        }


def with_fewshot(task: Task, per_class: int, seed: int = 0) -> Task:
    """Move ``per_class`` labeled target samples per class from ``target_val`` into ``target_fewshot``.

    This is the user's opt-in to select with a few target labels (the ``fewshot`` proxy). The samples leave
    ``target_val`` and the oracle, so the oracle column is still measured on samples nobody selected with;
    ``per_class`` must leave at least one sample of every class the target has there.
    """
    if per_class <= 0:
        return task
    if task.target_oracle is None:
        raise InputError("fewshot_k", f"task {task.name} has no target labels to take {per_class} per class from; "
                         "supply a labeled target file or set fewshot_k: 0")
    # Every class of the target keeps at least one sample in target_val: an emptied target_val would crash
    # every trial, and an emptied class would leave the oracle unmeasured on it. Classes the target lacks
    # (partial adaptation) have nothing to give.
    counts = torch.bincount(task.target_oracle, minlength=task.num_classes)
    present = torch.nonzero(counts).flatten().tolist()
    smallest = min(present, key=lambda label: int(counts[label]))
    limit = int(counts[smallest]) - 1
    if per_class > limit:
        allowed = f"at most {limit} per class" if limit > 0 else "0 (no fewshot samples)"
        raise InputError(
            "fewshot_k",
            f"expected {allowed} (the smallest target class, {task.classes[smallest]}, has {limit + 1} samples), "
            f"got {per_class}",
        )
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for label in present:
        members = torch.nonzero(task.target_oracle == label).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.zeros(len(task.target_val), dtype=torch.bool)
    chosen[torch.cat(picked)] = True
    val = task.target_val
    return replace(
        task,
        target_val=replace(val, x=val.x[~chosen]),
        target_oracle=task.target_oracle[~chosen],
        target_fewshot=Domain(f"{val.name}-fewshot", val.x[chosen], task.target_oracle[chosen]),
        target_neighbours=None,  # found again on the samples left
    )


def with_target_neighbours(task: Task) -> Task:
    """``task`` with its ``target_val`` samples' nearest ``target_val`` samples by cosine similarity of the input
    features (:func:`~.neighbours.neighbourhoods`), found before any backbone or transform sees them (a no-op when
    they are already found). Images get none: pixels are no space to measure closeness of content in."""
    if task.target_neighbours is not None or task.input_kind != "features" or len(task.target_val) < 2:
        return task
    from .neighbours import neighbourhoods  # not at the top: it needs the methods package, which needs this module

    return replace(task, target_neighbours=neighbourhoods(task.target_val.x))
