"""Subspace family: closed-form feature transforms fitted once on extracted features (SA, CORAL, TCA, JDA).

Every method here is a :class:`ShallowMethod`. :meth:`adapt` fits on the source and target *training* features
in float64, keeps what it fitted as buffers (so a checkpoint holds the transform) and maps all four domains
through them; the results are float32. The shared loop then trains a linear head on the mapped features. The
linear algebra lives in :mod:`.linalg`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from ..domains import Domain, Task
from ..hparams import HEAD_L2, Param
from .base import ShallowMethod, register
from .linalg import (
    MAX_FIT,
    KernelEmbedding,
    apply_low_rank_plus_scaled,
    embed,
    fit_kernel_embedding,
    fit_subset,
    pca_basis,
    regularised_covariance_power,
    split_fit_budget,
)

SUBSPACE_DIM = Param("subspace_dim", 100, 10, 300, log=True,
                     help="dimension of the learned subspace (SA: PCA bases; TCA/JDA: embedding); JDA paper k=100")
TCA_KERNEL = Param("tca_kernel", "linear", choices=("linear", "rbf"),
                   help="kernel of TCA/JDA; RBF bandwidth by the median heuristic")
TCA_MU = Param("tca_mu", 1.0, 1e-3, 10.0, log=True,
               help="regulariser mu (JDA's lambda) on the projection, against the MMD; 1 on Office in the papers")


# ---------------------------------------------------------------------------------------------------------
# Shared plumbing of the shallow methods


Transform = Callable[[torch.Tensor], torch.Tensor]


def transform_task(task: Task, source: Transform, target: Transform) -> Task:
    """Map the source domains through ``source`` and the target domains through ``target`` (float64 inside)."""

    def apply(domain: Domain, fn: Transform) -> Domain:
        return replace(domain, x=fn(domain.x.flatten(1).to(torch.float64)).to(torch.float32).contiguous())

    return task.map_domains(lambda domain: apply(domain, source), lambda domain: apply(domain, target))


def _float64(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).to(torch.float64)


# ---------------------------------------------------------------------------------------------------------
# Methods


@register
class SubspaceAlignment(ShallowMethod):
    """Subspace Alignment (Fernando, Habrard, Sebban, Tuytelaars, ICCV 2013).

    Ps, Pt are the top-d PCA bases of source and target; M = Ps^T Pt aligns the source basis with the target
    one. Source samples map to (x - mean_s) Ps M, target samples to (x - mean_t) Pt. Each domain is centred
    with its own mean (the paper z-scores each domain before PCA), so a pure offset between domains is removed
    too. ``subspace_dim`` is clipped to the feature dimension.
    """

    name = "subspace_alignment"
    family = "subspace"
    summary = "align source PCA basis to the target one (SA)"
    params = (HEAD_L2, SUBSPACE_DIM)

    def build(self) -> None:
        for buffer in ("source_mean", "target_mean", "source_basis", "target_basis", "source_map"):
            self.register_buffer(buffer, torch.zeros(0))

    def fit(self, xs: torch.Tensor, xt: torch.Tensor) -> None:
        xs, xt = _float64(xs), _float64(xt)
        dim = min(int(self.hparams["subspace_dim"]), xs.shape[1])
        ps, pt = pca_basis(xs, dim), pca_basis(xt, dim)
        self.source_mean, self.target_mean = xs.mean(0).float(), xt.mean(0).float()
        self.source_basis, self.target_basis = ps.float(), pt.float()
        self.source_map = (ps @ (ps.T @ pt)).float()  # Ps M with M = Ps^T Pt

    def transform_source(self, x: torch.Tensor) -> torch.Tensor:
        return (_float64(x) - self.source_mean.double()) @ self.source_map.double()

    def transform_target(self, x: torch.Tensor) -> torch.Tensor:
        return (_float64(x) - self.target_mean.double()) @ self.target_basis.double()

    def adapt(self, task: Task) -> Task:
        self.fit(task.source_train.x, task.target_train.x)
        return transform_task(task, self.transform_source, self.transform_target)


@register
class CORAL(ShallowMethod):
    """CORrelation ALignment, closed form (Sun, Feng, Saenko, AAAI 2016, Algorithm 1).

    Cs = cov(Xs) + lambda I and Ct = cov(Xt) + lambda I; source samples map to (x - ms) Cs^{-1/2} Ct^{1/2} + mt,
    which gives the source the target's mean and (regularised) covariance; target samples are unchanged. The paper
    whitens and re-colours raw features that were z-scored per domain, so each domain's mean was 0; centring on
    each domain's own mean keeps that on features that are not (a frozen backbone's non-negative activations),
    where the raw map leaves a shift the head reads as a class (mnist->usps on its raw pixels: 13% target
    accuracy raw, 50% centred; the same on z-scored tables). Each power is kept as its covariance's span plus
    ``lambda`` everywhere else (linalg.regularised_covariance_power), so a table with more columns than rows never
    forms, stores or multiplies a ``D x D`` matrix.
    """

    name = "coral"
    family = "subspace"
    summary = "re-colour whitened source features with the target covariance (CORAL)"
    params = (HEAD_L2, Param("coral_reg", 1.0, 1e-3, 10.0, log=True,
                            help="lambda added to both covariances; 1 in the paper (features z-scored)"))

    _POWERS = {"whiten": -0.5, "recolor": 0.5}  # of the source's and of the target's regularised covariance
    _PARTS = ("vectors", "weights", "scale")  # float64 buffers: whitening at a small lambda scales by 1/sqrt(lambda)

    def build(self) -> None:
        for step in self._POWERS:
            for part in self._PARTS:
                self.register_buffer(f"{step}_{part}", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("source_mean", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("target_mean", torch.zeros(0, dtype=torch.float64))

    def fit(self, xs: torch.Tensor, xt: torch.Tensor) -> None:
        reg = float(self.hparams["coral_reg"])
        for (step, power), x in zip(self._POWERS.items(), (xs, xt)):
            for part, value in zip(self._PARTS, regularised_covariance_power(_float64(x), reg, power)):
                setattr(self, f"{step}_{part}", value)
        self.source_mean, self.target_mean = _float64(xs).mean(0), _float64(xt).mean(0)

    def source_map(self, x: torch.Tensor) -> torch.Tensor:
        """The linear part of the source transform: ``x Cs^{-1/2} Ct^{1/2}``."""
        x = _float64(x)
        for step in self._POWERS:
            x = apply_low_rank_plus_scaled(x, *(getattr(self, f"{step}_{part}") for part in self._PARTS))
        return x

    def transform_source(self, x: torch.Tensor) -> torch.Tensor:
        return self.source_map(_float64(x) - self.source_mean) + self.target_mean

    def transform_target(self, x: torch.Tensor) -> torch.Tensor:
        return _float64(x)

    def adapt(self, task: Task) -> Task:
        self.fit(task.source_train.x, task.target_train.x)
        return transform_task(task, self.transform_source, self.transform_target)


class _KernelEmbeddingMethod(ShallowMethod):
    """TCA and JDA: fit a :class:`KernelEmbedding` on (a sample of) source_train + target_train.

    At most :data:`MAX_FIT` samples, split between the domains by size and drawn by a torch Generator seeded
    with ``hparams["seed"]`` (0 by default), so a trial and its resumed copy fit the same transform. Every
    domain, fitted samples included, is then mapped by the out-of-sample formula A^T k(X_fit, x).
    """

    family = "subspace"
    jda = False

    def build(self) -> None:
        self.register_buffer("fit_x", torch.zeros(0))
        self.register_buffer("coef", torch.zeros(0))
        self.register_buffer("gamma", torch.ones(()))

    def fit(self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor) -> KernelEmbedding:
        generator = torch.Generator().manual_seed(int(self.hparams.get("seed", 0)))
        take_s, take_t = split_fit_budget(len(xs), len(xt), MAX_FIT)
        source_idx, target_idx = fit_subset(len(xs), take_s, generator), fit_subset(len(xt), take_t, generator)
        fitted = fit_kernel_embedding(
            _float64(xs[source_idx]), _float64(xt[target_idx]), kernel=str(self.hparams["tca_kernel"]),
            dim=int(self.hparams["subspace_dim"]), mu=float(self.hparams["tca_mu"]),
            source_labels=ys[source_idx] if self.jda else None, num_classes=self.num_classes,
            iterations=int(self.hparams.get("jda_iterations", 1)))
        self.fit_x, self.coef = fitted.x_fit.float(), fitted.coef.float()
        self.gamma = torch.tensor(fitted.gamma)
        return fitted

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return embed(_float64(x), self.fit_x.double(), self.coef.double(), str(self.hparams["tca_kernel"]),
                     float(self.gamma))

    def adapt(self, task: Task) -> Task:
        self.fit(task.source_train.x, task.source_train.y, task.target_train.x)
        return transform_task(task, self.transform, self.transform)


@register
class TCA(_KernelEmbeddingMethod):
    """Transfer Component Analysis (Pan, Tsang, Kwok, Yang, IEEE TNNLS 2011), unsupervised TCA.

    Finds the kernel embedding A^T K that minimises the marginal MMD between domains plus mu ||A||^2 while
    keeping the embedded variance (K H K), i.e. the top eigenvectors of (K M K + mu I)^{-1} K H K. Inputs and
    outputs are L2-normalised per sample as in the authors' (and JDA's) code.
    """

    name = "tca"
    summary = "kernel embedding minimising the marginal MMD (TCA)"
    params = (HEAD_L2, TCA_KERNEL, SUBSPACE_DIM, TCA_MU)


@register
class JDA(_KernelEmbeddingMethod):
    """Joint Distribution Adaptation (Long, Wang, Ding, Sun, Yu, ICCV 2013).

    TCA plus one class-conditional MMD term per class, using target pseudo-labels from 1-NN in the current
    embedding; repeated ``jda_iterations`` times (the first pass is TCA). The final embedding uses the
    pseudo-labels of the previous pass.
    """

    name = "jda"
    summary = "TCA plus class-conditional MMD with iterated 1-NN pseudo-labels (JDA)"
    params = (HEAD_L2, TCA_KERNEL, SUBSPACE_DIM, TCA_MU,
              Param("jda_iterations", 10, 1, 20, help="pseudo-label refinement passes T (10 in the paper)"))
    jda = True
