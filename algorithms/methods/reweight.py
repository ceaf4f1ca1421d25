"""Reweighting family: importance weights on source samples, features unchanged (KMM, domain-classifier IW).

KMM fits its weights once in :meth:`adapt` on fixed features, keeps them as a buffer indexed by position in
``source_train``, and :meth:`source_weights` hands them to the head's weighted logistic regression. Deep importance
weighting re-estimates the weights every step from a domain classifier on the features being trained, and hands
them to the base's source loss through ``Batch.source_weights``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ..domains import Task
from ..hparams import FREEZE_DEPTH, HEAD_L2, LR, Param
from .base import Batch, Logs, Method, ShallowMethod, register
from .linalg import MAX_FIT, evenly_spaced, fit_subset, kernel_matrix, median_gamma


def project_box_sum(v: torch.Tensor, upper: float, low_sum: float, high_sum: float,
                    steps: int = 60) -> torch.Tensor:
    """Euclidean projection of ``v`` onto {0 <= b_i <= upper, low_sum <= sum(b) <= high_sum}.

    By the KKT conditions the projection is clamp(v - tau, 0, upper) with tau = 0 when the clamped sum is
    already inside the slab, else the tau that puts the sum on the nearer bound; the clamped sum is monotone
    in tau, so bisection finds it (60 halvings reach float64 resolution).
    """
    clamped = v.clamp(0.0, upper)
    total = float(clamped.sum())
    if low_sum <= total <= high_sum:
        return clamped
    target = low_sum if total < low_sum else high_sum
    lo, hi = float(v.min()) - upper, float(v.max())  # sums n * upper and 0: they bracket any feasible target
    for _ in range(steps):
        mid = (lo + hi) / 2
        if float((v - mid).clamp(0.0, upper).sum()) > target:
            lo = mid
        else:
            hi = mid
    return (v - (lo + hi) / 2).clamp(0.0, upper)


def kernel_mean_discrepancy(xs: torch.Tensor, xt: torch.Tensor, weights: torch.Tensor | None,
                            gamma: float) -> float:
    """Squared RKHS distance between the (weighted) source mean and the target mean embeddings.

    ``weights`` are normalised to sum to one (``None`` = uniform), so the value is comparable across
    weightings: || sum_i w_i phi(xs_i) - mean_j phi(xt_j) ||^2.
    """
    xs, xt = xs.to(torch.float64), xt.to(torch.float64)
    w = torch.ones(len(xs), dtype=torch.float64) if weights is None else weights.to(torch.float64)
    w = w / w.sum()
    value = (w @ kernel_matrix("rbf", xs, xs, gamma) @ w
             - 2.0 * (w @ kernel_matrix("rbf", xs, xt, gamma)).mean()
             + kernel_matrix("rbf", xt, xt, gamma).mean())
    return float(value)


def kmm_weights(xs: torch.Tensor, xt: torch.Tensor, *, bound: float, eps: float, gamma: float | None = None,
                iterations: int = 1000, chunk: int = 2048) -> torch.Tensor:
    """Kernel mean matching weights of the rows of ``xs`` (Huang et al., NIPS 2006), float64.

    Solves min_b 1/2 b^T K b - kappa^T b, K_ij = k(xs_i, xs_j), kappa_i = ns/nt sum_j k(xs_i, xt_j), subject to
    0 <= b_i <= bound and |sum(b) - ns| <= ns * eps, by accelerated projected gradient (FISTA) with step 1/L
    and the exact projection :func:`project_box_sum`. L is K's largest row sum, an upper bound on its top
    eigenvalue (Gershgorin) that is tight for a positive kernel matrix. RBF kernel; ``gamma=None`` uses the
    median heuristic on the pooled samples.
    """
    xs, xt = xs.flatten(1).to(torch.float64), xt.flatten(1).to(torch.float64)
    ns, nt = len(xs), len(xt)
    if gamma is None:
        pooled = torch.cat([xs, xt])
        gamma = median_gamma(pooled[evenly_spaced(len(pooled), MAX_FIT)])
    k = kernel_matrix("rbf", xs, xs, gamma)
    kappa = sum(kernel_matrix("rbf", xs, xt[i : i + chunk], gamma).sum(1) for i in range(0, nt, chunk))
    kappa = kappa * (ns / nt)
    step = 1.0 / float(k.sum(1).max())
    low, high = ns * (1.0 - eps), ns * (1.0 + eps)
    beta = torch.ones(ns, dtype=torch.float64)  # uniform weights: feasible, and the unadapted starting point
    momentum_point, t = beta, 1.0
    for _ in range(iterations):
        grad = k @ momentum_point - kappa
        new_beta = project_box_sum(momentum_point - step * grad, bound, low, high)
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        momentum_point = new_beta + ((t - 1.0) / t_next) * (new_beta - beta)
        beta, t = new_beta, t_next
    return beta


@register
class KMM(ShallowMethod):
    """Kernel Mean Matching (Huang, Smola, Gretton, Borgwardt, Schoelkopf, NIPS 2006).

    Importance weights b for the source training samples make the weighted source mean embedding (RBF kernel,
    median-heuristic bandwidth) match the target one; the head then minimises the b-weighted cross-entropy.
    B = 1000 as in the paper's experiments. eps defaults to 0.01, not the paper's (sqrt(ns) - 1) / sqrt(ns)
    (about 0.97): with a near-constant high-dimensional RBF kernel, such a loose sum constraint lets the QP
    lower the discrepancy mostly by shrinking sum(b), i.e. the norm of the weighted mean embedding, and the
    weights rescaled to mean 1 then match the target *worse* than uniform ones (measured on Office SURF C->A:
    normalised discrepancy 1.19e-3 vs 0.82e-3 uniform; with eps = 0.01, 0.72e-3).

    The QP is solved on at most :data:`MAX_FIT` source samples (seeded sample) against all target training
    samples. Fitted weights are rescaled to mean 1, and samples left out of the fit get weight 1, the
    unadapted weight, so the loss keeps the scale of plain cross-entropy (the learning rate means the same).
    """

    name = "kmm"
    family = "reweight"
    summary = "kernel mean matching importance weights on source samples (KMM)"
    params = (
        HEAD_L2,
        Param("kmm_bound", 1000.0, 1.0, 1000.0, log=True, help="upper bound B of every weight (1000 in the paper)"),
        Param("kmm_eps", 0.01, 1e-3, 1.0, log=True, help="slack eps of the sum constraint |sum(b) - ns| <= ns eps"),
    )

    def build(self) -> None:
        self.register_buffer("sample_weights", torch.ones(0))

    def fit(self, xs: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Weights for every row of ``xs`` (the source training set), stored as the ``sample_weights`` buffer."""
        generator = torch.Generator().manual_seed(int(self.hparams.get("seed", 0)))
        fitted = fit_subset(len(xs), MAX_FIT, generator)
        beta = kmm_weights(xs[fitted], xt, bound=float(self.hparams["kmm_bound"]),
                           eps=float(self.hparams["kmm_eps"]))
        weights = torch.ones(len(xs), dtype=torch.float64)
        weights[fitted] = beta * (len(beta) / beta.sum().clamp_min(1e-12))
        self.sample_weights = weights.float()
        return self.sample_weights

    def adapt(self, task: Task) -> Task:
        self.fit(task.source_train.x, task.target_train.x)
        return task

    def source_weights(self) -> torch.Tensor | None:
        """The fitted weights (mean 1) for the head's weighted cross-entropy; None before :meth:`fit`."""
        return self.sample_weights if self.sample_weights.numel() else None


IW_STRENGTH = Param("iw_strength", 1.0, 0.1, 1.0, help="exponent flattening the weights (0 = uniform)")


@register
class ImportanceWeighting(Method):
    """Deep importance weighting by a domain classifier (Bickel, Brückner & Scheffer, JMLR 2009).

    A small classifier learns to tell target from source features (on detached features, so it never shapes
    them); its odds estimate the density ratio w(x) = p_t(x) / p_s(x) for equal-sized batches. The source
    cross-entropy is weighted by ``clip(w, 0, iw_clip) ** iw_strength``, normalised to mean 1 per batch:
    covariate-shift correction at the sample level. ``iw_strength = 0`` is plain source training.
    """

    name = "importance_weighting"
    family = "reweight"
    summary = "density-ratio weights from a domain classifier, weighted source loss"
    params = (LR, FREEZE_DEPTH, IW_STRENGTH,
              Param("iw_clip", 5.0, 1.5, 20.0, log=True, help="largest importance weight"))
    adaptation_weight = IW_STRENGTH

    def build(self) -> None:
        hidden = 256
        self.domain_classifier = torch.nn.Sequential(torch.nn.Linear(self.feature_dim, hidden), torch.nn.ReLU(),
                                                     torch.nn.Linear(hidden, 1))

    def domain_logits(self, batch: Batch) -> torch.Tensor:
        """Logits of "target" for the detached [source; target] features."""
        fs, ft = batch.source_features.detach().float(), batch.target_features.detach().float()
        return self.domain_classifier(torch.cat([fs, ft])).squeeze(1)

    def prepare(self, batch: Batch) -> Batch:
        with torch.no_grad():
            odds = torch.exp(self.domain_logits(batch)[: len(batch.source_labels)].clamp(max=20.0))  # p(t|x)/p(s|x)
            weights = odds.clamp(max=self.hparams["iw_clip"]) ** self.hparams["iw_strength"]
            weights = weights / weights.mean().clamp_min(1e-12)  # mean 1, so max_weight reads as a ratio
        return replace(batch, source_weights=weights)

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The domain classifier's own loss; the adaptation itself is the weighting of the source loss."""
        logits = self.domain_logits(batch)
        n_source, n_target = len(batch.source_features), len(batch.target_features)
        labels = torch.cat([logits.new_zeros(n_source), logits.new_ones(n_target)]).float()  # 1 = target
        domain_loss = F.binary_cross_entropy_with_logits(logits, labels)
        return domain_loss, {"domain_loss": domain_loss.detach(), "max_weight": batch.source_weights.max()}

    def adaptation_scale(self, batch: Batch) -> float:
        # iw_strength acts inside the source weights; the domain classifier, which never touches the features,
        # always trains at full strength.
        return 1.0
