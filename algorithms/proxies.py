"""Target-domain validation proxies: scores computed without target labels, oriented so higher is better.

All proxies read one :class:`Evaluation`, produced by a single forward pass over held-out source data and
unlabeled target data per epoch. The oracle (target accuracy from held-out target labels) is computed in
the same pass but kept apart: it is reported, never used to select.
"""

from __future__ import annotations

import functools
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
    mix_logits: torch.Tensor | None = None  # predictions on MixVal's mixed target pairs
    mix_labels: torch.Tensor | None = None  # pseudo-label of each pair's dominant sample

    @functools.cached_property
    def importance_weights(self) -> torch.Tensor:
        """Density ratio p_t(x) / p_s(x) at each held-out source sample, from a domain classifier on features.

        Shared by IWCV and DEV, so the classifier is fitted once per evaluation.
        """
        return domain_density_ratio(self.source_features, self.target_features)


def domain_density_ratio(source: torch.Tensor, target: torch.Tensor, l2: float = 1e-2) -> torch.Tensor:
    """Fit an L2-regularised logistic regression target-vs-source and return its odds on ``source``.

    Odds are rescaled by n_s / n_t so unequal sample counts do not bias the ratio, and clipped to [0, 20].
    """
    x = torch.cat([source, target]).double()
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    y = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).double()
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = x @ w[:-1] + w[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        odds = torch.exp((x[: len(source)] @ w[:-1] + w[-1]).clamp(-20, 20)) * len(source) / len(target)
    return odds.clamp(0.0, 20.0).float()


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


def batch_nuclear_norm(ev: Evaluation) -> float:
    """Nuclear norm of the target prediction matrix / N (BNM, Cui et al., CVPR 2020): confident and diverse."""
    return (torch.linalg.matrix_norm(ev.target_logits.softmax(1), ord="nuc") / len(ev.target_logits)).item()


def soft_neighborhood_density(ev: Evaluation, temperature: float = 0.05) -> float:
    """SND (Saito et al., ICCV 2021): mean entropy of each target sample's softmax over its neighbours' similarity.

    Similarity is the cosine of L2-normalised target predictions, scaled by 1/T, the sample itself excluded.
    Dense neighbourhoods (clusters) give high entropy; higher is better.
    """
    probs = torch.nn.functional.normalize(ev.target_logits.softmax(1), dim=1)
    similarity = probs @ probs.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    return _entropy(similarity.softmax(1)).mean().item()


def average_thresholded_confidence(ev: Evaluation) -> float:
    """ATC (Garg et al., ICLR 2022), max-confidence variant: the predicted target accuracy.

    The threshold t makes the share of held-out source samples with confidence above t equal the source
    accuracy; the score is the share of target samples above t.
    """
    source_conf = ev.source_logits.softmax(1).max(1).values
    accuracy = (ev.source_logits.argmax(1) == ev.source_labels).float().mean()
    threshold = torch.quantile(source_conf, (1 - accuracy).clamp(0.0, 1.0).item())
    return (ev.target_logits.softmax(1).max(1).values > threshold).float().mean().item()


def importance_weighted_accuracy(ev: Evaluation) -> float:
    """IWCV (Sugiyama et al., JMLR 2007): held-out source accuracy weighted by the density ratio p_t / p_s."""
    weights = ev.importance_weights
    correct = (ev.source_logits.argmax(1) == ev.source_labels).float()
    return ((weights * correct).sum() / weights.sum().clamp_min(1e-12)).item()


def deep_embedded_validation(ev: Evaluation) -> float:
    """DEV (You et al., ICML 2019): importance-weighted source loss with a control variate, negated.

    risk = mean(w l) + eta (mean(w) - 1), eta = -Cov(w l, w) / Var(w), which cuts the variance of the
    weighted estimate. Returned as -risk so higher is better.
    """
    weights = ev.importance_weights.double()
    losses = torch.nn.functional.cross_entropy(ev.source_logits, ev.source_labels, reduction="none").double()
    weighted = weights * losses
    variance = weights.var()
    eta = -torch.cov(torch.stack([weighted, weights]))[0, 1] / variance if variance > 0 else weights.new_zeros(())
    return -(weighted.mean() + eta * weights.mean() - eta).item()


def mixup_validation(ev: Evaluation) -> float:
    """MixVal (Hu et al., NeurIPS 2023): agreement of predictions on mixed target pairs with the pseudo-label
    of the dominant sample (mix weight 0.55). A model whose decisions are locally consistent between target
    clusters scores high. NaN when the evaluation carries no mixed pairs.
    """
    if ev.mix_logits is None or ev.mix_labels is None or len(ev.mix_labels) == 0:
        return float("nan")
    return (ev.mix_logits.argmax(1) == ev.mix_labels).float().mean().item()


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
        Proxy("bnm", batch_nuclear_norm, "batch nuclear norm of target predictions / N"),
        Proxy("snd", soft_neighborhood_density, "soft neighborhood density of target predictions"),
        Proxy("atc", average_thresholded_confidence, "average thresholded confidence (predicted target acc)"),
        Proxy("iwcv", importance_weighted_accuracy, "importance-weighted held-out source accuracy"),
        Proxy("dev", deep_embedded_validation, "deep embedded validation (weighted source loss, control variate)"),
        Proxy("mixval", mixup_validation, "mixup validation: predictions on mixed target pairs vs pseudo-labels"),
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
