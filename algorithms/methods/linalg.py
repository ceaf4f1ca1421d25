"""The linear algebra and kernels behind the closed-form methods (SA, CORAL, TCA, JDA, KMM), in float64.

Covariance and symmetric matrix powers (one symmetric eigendecomposition), PCA, kernels with the median-heuristic
bandwidth, a torch 1-NN, the TCA/JDA kernel embedding and its generalised eigenproblem, and the seeded subsample
that kernel methods fit on. Nothing here knows a method or its knobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# ---------------------------------------------------------------------------------------------------------
# Linear algebra: covariance, symmetric powers, PCA


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Sample covariance of the rows of ``x`` (normalised by n - 1, as MATLAB's ``cov`` in the CORAL code)."""
    centered = x - x.mean(dim=0)
    return centered.T @ centered / max(len(x) - 1, 1)


def symmetric_eig(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors of a symmetric matrix; symmetrised first against round-off."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return values.flip(0), vectors.flip(1)


def symmetric_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    """``matrix ** power`` of a symmetric positive (semi-)definite matrix through its eigendecomposition.

    Eigenvalues are floored at a tiny fraction of the largest one, so round-off negatives of a singular PSD
    matrix cannot turn into NaN or huge values under a negative power.
    """
    values, vectors = symmetric_eig(matrix)
    values = values.clamp_min(_eigenvalue_floor(values))
    return (vectors * values.pow(power)) @ vectors.T


def _eigenvalue_floor(values: torch.Tensor) -> torch.Tensor:
    """A tiny fraction of the largest eigenvalue: the least one a negative power may see (round-off of a singular
    PSD matrix would otherwise turn into NaN or huge values)."""
    return values.max().clamp_min(1e-300) * 1e-12


def principal_axes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and orthonormal eigenvectors ``[D, r]`` of the covariance of the rows of ``x``.

    With fewer rows than features the covariance has rank below the row count, so its nonzero part comes from a
    thin SVD of the centred rows, O(N^2 D) instead of the O(D^3) of an eigendecomposition (a second against 20 s
    for 300 rows of 4,096 features), and ``r`` is N - 1: the directions a centred sample spans. Otherwise
    ``r`` is D.
    """
    n, dim = x.shape
    if n >= dim:
        return symmetric_eig(covariance(x))
    _, singular, right = torch.linalg.svd(x - x.mean(dim=0), full_matrices=False)
    rank = max(n - 1, 1)  # also covariance()'s n - 1 normaliser
    return singular[:rank].square() / rank, right[:rank].T


def pca_basis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Orthonormal ``[D, d]`` basis of the top ``d = min(dim, r)`` principal directions of ``x`` (centred by its
    own mean; ``r`` as in :func:`principal_axes`)."""
    return principal_axes(x)[1][:, :dim]


def regularised_covariance_power(x: torch.Tensor, reg: float, power: float
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(cov(x) + reg I) ** power`` as ``(V, w, s)`` with the matrix ``V diag(w) V^T + s I``: every direction
    outside the covariance's span has eigenvalue ``reg``, so a wide table's ``D x D`` power never has to be
    formed (:func:`apply_low_rank_plus_scaled` applies it). Eigenvalues are floored at a tiny fraction of the
    largest, as in :func:`symmetric_power`."""
    values, vectors = principal_axes(x)
    values = values.clamp_min(0.0) + reg
    floor = _eigenvalue_floor(values)
    rest = torch.as_tensor(reg, dtype=x.dtype).clamp_min(floor).pow(power)
    return vectors, values.clamp_min(floor).pow(power) - rest, rest


def apply_low_rank_plus_scaled(x: torch.Tensor, vectors: torch.Tensor, weights: torch.Tensor,
                               scale: torch.Tensor) -> torch.Tensor:
    """``x @ (vectors diag(weights) vectors^T + scale I)`` without forming the ``D x D`` matrix."""
    return ((x @ vectors) * weights) @ vectors.T + scale * x


# ---------------------------------------------------------------------------------------------------------
# Kernels and nearest neighbours


def squared_distances(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    # The expanded form is one matmul (cdist's loop is slower for 800-d rows); clamp the round-off negatives.
    return ((x1 * x1).sum(1, keepdim=True) + (x2 * x2).sum(1) - 2.0 * x1 @ x2.T).clamp_min(0.0)


def median_gamma(x: torch.Tensor) -> float:
    """RBF ``gamma = 1 / median squared distance`` over distinct pairs of rows (the median heuristic).

    Chosen over ``1 / D`` because it adapts to the data's scale: for unit-norm rows (TCA/JDA) and for z-scored
    features (KMM) alike, typical kernel values stay near exp(-1) instead of vanishing or saturating.
    """
    d2 = squared_distances(x, x)
    off_diagonal = d2[~torch.eye(len(x), dtype=torch.bool, device=x.device)]
    median = off_diagonal.median().item() if off_diagonal.numel() else 1.0
    return 1.0 / median if median > 0 else 1.0


def kernel_matrix(kind: str, x1: torch.Tensor, x2: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``k(x1_i, x2_j)``: ``linear`` = dot product, ``rbf`` = exp(-gamma ||x1_i - x2_j||^2)."""
    if kind == "linear":
        return x1 @ x2.T
    if kind == "rbf":
        return torch.exp(-gamma * squared_distances(x1, x2))
    raise ValueError(f"unknown kernel {kind!r}; expected linear or rbf")


def nearest_neighbor(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                     chunk: int = 4096) -> torch.Tensor:
    """1-NN labels of ``test_x`` under the Euclidean distance (chunked so memory stays O(chunk * n_train))."""
    predictions = [train_y[torch.cdist(test_x[i : i + chunk], train_x).argmin(dim=1)]
                   for i in range(0, len(test_x), chunk)]
    return torch.cat(predictions) if predictions else train_y.new_zeros(0)


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


# ---------------------------------------------------------------------------------------------------------
# TCA / JDA: the MMD matrices and the generalised eigenproblem


def mmd_factor(ns: int, nt: int, num_classes: int, source_labels: torch.Tensor | None = None,
               target_labels: torch.Tensor | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``F`` with ``F F^T = M``, the (joint) MMD matrix of TCA/JDA, Frobenius-normalised.

    Column 0 is the marginal term e0 = [1/ns ...; -1/nt ...] scaled by sqrt(C), so that ``M0 = C e0 e0^T`` as in
    the JDA code; with labels (source) and pseudo-labels (target) one column per class adds the conditional
    term e_c = [1/ns_c on source class c; -1/nt_c on target pseudo-class c] (a class without target samples
    keeps its source part, as in the authors' code). ``M`` has rank <= C + 1, so ``K M K`` is cheap to form
    from ``K F``. Normalising ``M`` (as the JDA/TCA code does) makes mu comparable across tasks.
    """
    columns = [torch.cat([torch.full((ns,), 1.0 / ns, dtype=dtype), torch.full((nt,), -1.0 / nt, dtype=dtype)])]
    columns[0] = columns[0] * math.sqrt(num_classes)
    if source_labels is not None and target_labels is not None:
        for c in range(num_classes):
            source_c, target_c = source_labels == c, target_labels == c
            column = torch.zeros(ns + nt, dtype=dtype)
            if source_c.any():
                column[:ns][source_c] = 1.0 / int(source_c.sum())
            if target_c.any():
                column[ns:][target_c] = -1.0 / int(target_c.sum())
            columns.append(column)
    factor = torch.stack(columns, dim=1)
    frobenius = torch.linalg.matrix_norm(factor.T @ factor)  # ||F F^T||_F = ||F^T F||_F, a small matrix
    return factor / frobenius.sqrt()


def centered_gram(k: torch.Tensor) -> torch.Tensor:
    """``K H K`` with the centring matrix H = I - 11^T/n, without forming H."""
    column_sums = k.sum(dim=1, keepdim=True)
    return k @ k - column_sums @ column_sums.T / len(k)


def kernel_embedding_coefficients(k: torch.Tensor, factor: torch.Tensor, mu: float, dim: int,
                                  khk: torch.Tensor | None = None) -> torch.Tensor:
    """``A`` ``[n, dim]`` of TCA/JDA: min tr(A^T (K M K + mu I) A) s.t. A^T K H K A = I.

    The solution is the eigenvectors of (K M K + mu I)^{-1} K H K with the largest eigenvalues
    (:func:`_top_generalised_eigenvectors`). Each column is scaled to unit norm like scipy's ``eig`` output in the
    authors' Python code: the per-axis scale of the embedding changes 1-NN distances, so this keeps their
    published numbers reproducible.
    """
    n = len(k)
    khk = centered_gram(k) if khk is None else khk
    kf = k @ factor
    return _top_generalised_eigenvectors(kf @ kf.T + mu * torch.eye(n, dtype=k.dtype, device=k.device), khk,
                                         min(dim, n))


def low_rank_embedding_coefficients(basis: torch.Tensor, spectrum: torch.Tensor, factor: torch.Tensor, mu: float,
                                    dim: int) -> torch.Tensor:
    """The ``A`` of :func:`kernel_embedding_coefficients` for ``K = U diag(s) U^T`` (``basis`` U ``[n, r]`` with
    orthonormal columns, ``spectrum`` s ``[r]``), from an r x r eigenproblem instead of an n x n one.

    Write A = U B + A_perp with U^T A_perp = 0: then K A_perp = 0, so A_perp adds mu ||A_perp||^2 to the
    objective and nothing to the constraint, and every eigenvector with a non-zero eigenvalue has A_perp = 0.
    What is left is the same problem in B, with U^T K M K U = S U^T M U S and U^T K H K U = S (I - u u^T / n) S
    (u = U^T 1). Exact, not an approximation, for ``dim`` below r; the unit-norm columns of A are those of B.
    """
    n = len(basis)
    scaled_factor = spectrum[:, None] * (basis.T @ factor)  # S U^T F
    scaled_ones = spectrum * basis.sum(dim=0)  # S U^T 1
    centred = torch.diag(spectrum * spectrum) - torch.outer(scaled_ones, scaled_ones) / n
    eye = torch.eye(len(spectrum), dtype=basis.dtype, device=basis.device)
    return basis @ _top_generalised_eigenvectors(scaled_factor @ scaled_factor.T + mu * eye, centred, dim)


def _top_generalised_eigenvectors(positive: torch.Tensor, other: torch.Tensor, dim: int) -> torch.Tensor:
    """The ``dim`` eigenvectors of ``positive^{-1} other`` with the largest eigenvalues (``positive`` definite),
    each scaled to unit norm.

    With the Cholesky factor L of ``positive`` it is the symmetric problem L^{-1} other L^{-T} u = nu u,
    a = L^{-T} u, solved by one ``eigh`` (stable, and float64 throughout).
    """
    chol = torch.linalg.cholesky(positive)
    half = torch.linalg.solve_triangular(chol, other, upper=False)  # L^{-1} other
    sym = torch.linalg.solve_triangular(chol, half.T, upper=False)  # L^{-1} (L^{-1} other)^T = L^{-1} other L^{-T}
    _, vectors = symmetric_eig(sym)
    coef = torch.linalg.solve_triangular(chol.T, vectors[:, :dim], upper=True)
    return coef / coef.norm(dim=0, keepdim=True).clamp_min(1e-300)


def embed(x: torch.Tensor, x_fit: torch.Tensor, coef: torch.Tensor, kernel: str, gamma: float) -> torch.Tensor:
    """Out-of-sample TCA/JDA embedding ``A^T k(X_fit, x)`` of the rows of ``x``.

    Inputs are scaled to unit norm first and outputs to norm sqrt(dim), as the authors' code normalises both
    (x and z to unit norm); the extra sqrt(dim) gives each output coordinate an RMS near 1, so the linear head's
    learning rate means what it means on standardised features, while 1-NN is unchanged by a global scale.
    """
    z = kernel_matrix(kernel, unit_rows(x), x_fit, gamma) @ coef
    return unit_rows(z) * math.sqrt(coef.shape[1])


@dataclass
class KernelEmbedding:
    """A fitted TCA/JDA transform: unit-norm fit samples, coefficients, kernel and bandwidth."""

    x_fit: torch.Tensor
    coef: torch.Tensor
    kernel: str
    gamma: float
    target_pseudo_labels: torch.Tensor | None = None  # JDA's last 1-NN labels of the target fit samples

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return embed(x.to(self.coef.dtype), self.x_fit, self.coef, self.kernel, self.gamma)


def fit_kernel_embedding(xs: torch.Tensor, xt: torch.Tensor, *, kernel: str, dim: int, mu: float,
                         source_labels: torch.Tensor | None = None, num_classes: int = 0,
                         iterations: int = 1) -> KernelEmbedding:
    """TCA (no labels, one solve) or JDA (source labels, ``iterations`` solves) on all rows of ``xs``, ``xt``.

    JDA's first solve has no target labels and equals TCA; each later one adds the class-conditional MMD
    terms with the target pseudo-labels that 1-NN (trained on the embedded source) gave in the previous
    embedding, as in Long et al. The returned embedding is the one from the last solve.

    A linear kernel on rows narrower than their count has rank at most D: K = X X^T is then factored by the thin
    SVD of X and every solve is D x D (:func:`low_rank_embedding_coefficients`), the same embedding at a fraction
    of the cost (2,500 fit rows of 256 features: one solve of about a second becomes milliseconds).
    """
    xs, xt = xs.to(torch.float64), xt.to(torch.float64)
    x_fit = unit_rows(torch.cat([xs, xt]))
    ns, nt = len(xs), len(xt)
    gamma = median_gamma(x_fit) if kernel == "rbf" else 1.0
    factored = kernel == "linear" and dim < x_fit.shape[1] < len(x_fit)
    if factored:
        basis, singular, _ = torch.linalg.svd(x_fit, full_matrices=False)
        spectrum = singular * singular

        def solve(factor: torch.Tensor) -> torch.Tensor:
            return low_rank_embedding_coefficients(basis, spectrum, factor, mu, dim)

        def embedded(coef: torch.Tensor) -> torch.Tensor:
            return x_fit @ (x_fit.T @ coef)  # K A without K
    else:
        k = kernel_matrix(kernel, x_fit, x_fit, gamma)
        khk = centered_gram(k)  # fixed across JDA's iterations; only M changes

        def solve(factor: torch.Tensor) -> torch.Tensor:
            return kernel_embedding_coefficients(k, factor, mu, dim, khk)

        def embedded(coef: torch.Tensor) -> torch.Tensor:
            return k @ coef
    use_labels = source_labels is not None
    classes = num_classes or (int(source_labels.max()) + 1 if use_labels else 1)
    pseudo: torch.Tensor | None = None
    coef = x_fit.new_zeros(0, 0)
    for _ in range(max(1, iterations) if use_labels else 1):
        coef = solve(mmd_factor(ns, nt, classes, source_labels if pseudo is not None else None, pseudo))
        if use_labels:
            z = unit_rows(embedded(coef))  # the fit samples' embedding; K is symmetric, so this is A^T K
            pseudo = nearest_neighbor(z[:ns], source_labels, z[ns:])
    return KernelEmbedding(x_fit, coef, kernel, gamma, pseudo)


# ---------------------------------------------------------------------------------------------------------
# Fitting on a sample

# Kernel methods fit on at most this many source + target samples: their n x n float64 matrices stay near
# 50 MB and one n x n eigensolve near a second (a linear kernel on narrower rows solves D x D instead); every
# SURF task (at most 1123 + 958 samples) fits whole.
MAX_FIT = 2500


def evenly_spaced(n: int, limit: int) -> torch.Tensor | slice:
    """Indices of ``limit`` evenly spaced rows out of ``n`` (deterministic), or every row when ``n`` fits."""
    if n <= limit:
        return slice(None)
    return torch.linspace(0, n - 1, limit).long()


def fit_subset(n: int, limit: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices of at most ``limit`` of ``n`` samples, drawn without replacement by ``generator``."""
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:limit].sort().values


def split_fit_budget(ns: int, nt: int, limit: int) -> tuple[int, int]:
    """Source and target shares of ``limit`` fit samples, proportional to the domain sizes."""
    if ns + nt <= limit:
        return ns, nt
    take_s = min(ns, max(1, round(limit * ns / (ns + nt))))
    return take_s, min(nt, limit - take_s)
