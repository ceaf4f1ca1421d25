"""Target-domain validation proxies: scores computed without target labels, oriented so higher is better.

All proxies read one :class:`Evaluation`, produced by a single forward pass over held-out source data and
unlabeled target data per epoch. The oracle (target accuracy from held-out target labels) is computed in
the same pass but kept apart: it is reported, never used to select.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import InputError


@dataclass
class Evaluation:
    """Outputs of the per-epoch evaluation pass (all on CPU, float32)."""

    source_logits: torch.Tensor
    source_labels: torch.Tensor
    source_features: torch.Tensor
    target_logits: torch.Tensor
    target_features: torch.Tensor


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)


def source_accuracy(ev: Evaluation) -> float:
    """Accuracy on held-out source data: the classic but often misleading proxy (no shift accounted for)."""
    return (ev.source_logits.argmax(1) == ev.source_labels).float().mean().item()


def negative_entropy(ev: Evaluation) -> float:
    """Minus the mean entropy of target predictions (Morerio et al., ICLR 2018): confident is better.

    Returned in nats, negated so that higher is better.
    """
    return -_entropy(ev.target_logits.softmax(1)).mean().item()


def information_maximization(ev: Evaluation) -> float:
    """Information maximization (Gomes et al. NeurIPS 2010; used as a proxy by Musgrave et al. 2022).

    H(mean prediction) - mean H(prediction): confident individual predictions that are diverse across
    classes. Higher is better; at most log(num_classes).
    """
    probs = ev.target_logits.softmax(1)
    return (_entropy(probs.mean(0)) - _entropy(probs).mean()).item()


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable[[Evaluation], float]
    summary: str


PROXIES: dict[str, Proxy] = {
    p.name: p
    for p in (
        Proxy("source_acc", source_accuracy, "held-out source accuracy"),
        Proxy("entropy", negative_entropy, "minus mean target prediction entropy"),
        Proxy("im", information_maximization, "information maximization: H(mean p) - mean H(p)"),
    )
}
DEFAULT_PROXY = "im"


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise InputError("proxy", f"unknown proxy {name!r}; expected one of: {', '.join(PROXIES)}")
    return PROXIES[name]


def compute_proxies(ev: Evaluation) -> dict[str, float]:
    """Every proxy, keyed ``proxy_<name>``. Non-finite values become NaN so one bad proxy does not crash."""
    out = {}
    for proxy in PROXIES.values():
        value = proxy.fn(ev)
        out[f"proxy_{proxy.name}"] = value if math.isfinite(value) else float("nan")
    return out


def oracle_accuracy(target_logits: torch.Tensor, target_labels: torch.Tensor | None) -> float | None:
    """Target accuracy for the oracle column; None when the task has no target labels."""
    if target_labels is None:
        return None
    return (target_logits.argmax(1) == target_labels).float().mean().item()
