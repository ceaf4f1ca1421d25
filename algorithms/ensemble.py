"""The ensemble row: average the target predictions of the top-k trials by the selecting proxy.

Prediction averaging over the best configurations a search found, the simplest member of the aggregation
family that IWA (Dinu et al., ICLR 2023) showed beats picking one model by a validation proxy. Members are
chosen by the proxy alone; the oracle accuracy of the average is reported when target labels exist.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .proxies import PROXIES, Evaluation, oracle_accuracy


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

