"""The ensemble row: average the target predictions of the top-k trials by the selecting proxy.

Prediction averaging over the best configurations a search found, the simplest member of the aggregation
family that IWA (Dinu et al., ICLR 2023) showed beats picking one model by a validation proxy. Members are
chosen by the proxy alone; the oracle accuracy of the average is reported when target labels exist.

The average is then smoothed over the target's own neighbourhoods (:func:`smooth_by_neighbours`): each sample's
prediction is mixed with the mean prediction of its nearest target samples in the input feature space, the
neighbourhood-consistency refinement of AdaContrast (Chen et al., CVPR 2022) and NRC (Yang et al., NeurIPS 2021)
applied once, after the search. Samples that lie close together mostly share a class, so a member's error on one
sample is outvoted by its neighbours; the features are unlabeled target features, so no label is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .errors import InputError
from .neighbours import nearest_neighbours
from .proxies import PROXIES, Evaluation, oracle_accuracy

if TYPE_CHECKING:
    from .domains import Task


@dataclass(frozen=True)
class Smoothing:
    """Mix each target prediction with the mean prediction of its ``neighbours`` nearest target samples (cosine
    similarity of the input features), the neighbours' mean weighted ``weight``."""

    neighbours: int
    weight: float

    def describe(self) -> str:
        return f"smoothed over {self.neighbours} target neighbours (weight {self.weight:g})"


# ``smoothing: auto`` (the default): per input kind, the smoothing derived leave one benchmark group out on whole
# default searches and on pools of one trial per method (benchmarks/results/smoothing.md;
# benchmarks/results/proxy_auto.json holds it, and a test keeps the two equal). Image folders have no shared feature
# space before a backbone (pixels are no neighbourhood of content), so they keep the plain average.
_DERIVED_SMOOTHING = Smoothing(neighbours=10, weight=0.5)
AUTO_SMOOTHING: dict[str, Smoothing | None] = {"features": _DERIVED_SMOOTHING, "images": None}
DEFAULT_SMOOTHING_WEIGHT = _DERIVED_SMOOTHING.weight  # for a number of neighbours given without a weight
# The words ``smoothing`` takes besides a number of neighbours: the rule above, or the plain average.
AUTO_SMOOTH, NO_SMOOTH = "auto", "none"
SMOOTHING_WORDS = (AUTO_SMOOTH, NO_SMOOTH)


def average_predictions(member_probs: list[torch.Tensor]) -> torch.Tensor:
    """Mean class probabilities of the members (each ``[N, C]``, the same target samples in the same order)."""
    if not member_probs:
        raise ValueError("an ensemble needs at least one member")
    shapes = {tuple(p.shape) for p in member_probs}
    if len(shapes) != 1:
        raise ValueError(f"members predict different shapes: {sorted(shapes)}")
    return torch.stack([p.float() for p in member_probs]).mean(0)


def ensemble_metrics(probs: torch.Tensor, target_labels: torch.Tensor | None) -> dict[str, float]:
    """Target-only proxies of the averaged predictions (``proxy_<name>``; NaN for the others) and the oracle."""
    logits = probs.clamp_min(1e-12).log()
    empty = torch.zeros(0, probs.shape[1])
    evaluation = Evaluation(empty, torch.zeros(0, dtype=torch.long), empty, logits, logits)
    out = {f"proxy_{p.name}": p.fn(evaluation) if p.target_only else math.nan for p in PROXIES.values()}
    accuracy = oracle_accuracy(logits, target_labels)
    out["target_acc"] = math.nan if accuracy is None else accuracy
    return out


def top_k(scored: list[tuple[Any, float]], k: int) -> list[Any]:
    """Ids of the ``k`` best finite scores, best first (ties keep their order)."""
    finite = [(key, score) for key, score in scored if isinstance(score, float | int) and math.isfinite(score)]
    return [key for key, _ in sorted(finite, key=lambda item: -item[1])[:k]]



def smooth_by_neighbours(probs: torch.Tensor, features: torch.Tensor, smoothing: Smoothing) -> torch.Tensor:
    """``(1 - weight) * probs + weight * mean(probs of the k nearest target samples)`` for the target samples whose
    input ``features`` (``[N, ...]``, in the same order as ``probs`` ``[N, C]``) define the neighbourhoods."""
    if len(probs) != len(features):
        raise ValueError(f"{len(probs)} predictions but {len(features)} feature rows")
    if len(probs) < 2:
        return probs.float()
    return mix_with_neighbours(probs, nearest_neighbours(features, smoothing.neighbours), smoothing.weight)


def mix_with_neighbours(probs: torch.Tensor, neighbours: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 - weight) * probs + weight * mean(probs[neighbours])`` for neighbour indices ``[N, k]`` (the first k
    columns of :func:`nearest_neighbours` of a larger k are the neighbours of k)."""
    probs = probs.float()
    return (1 - weight) * probs + weight * probs[neighbours].mean(1)


def resolve_smoothing(setting: int | str | None, weight: float, task: Task) -> Smoothing | None:
    """The smoothing a search's ensemble gets: ``auto``: the :data:`AUTO_SMOOTHING` rule of the task's input kind;
    ``none`` (or 0): the plain average; a number: that many neighbours at ``weight`` (feature tables only)."""
    if setting == AUTO_SMOOTH:
        return AUTO_SMOOTHING.get(task.input_kind)
    if setting in (None, NO_SMOOTH, 0):
        return None
    if task.input_kind != "features":
        raise InputError("smoothing", f"expected auto or none for {task.input_kind} (neighbours are found in the "
                         f"features of a feature table), got {setting}")
    return Smoothing(neighbours=int(setting), weight=float(weight))
