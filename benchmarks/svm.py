"""A linear SVM as LIBSVM trains it (C-SVC, hinge loss, one-vs-one, unregularised bias), in torch.

The published SVM numbers on Office-Caltech SURF (CORAL paper, Table 3; SA) come from MATLAB code that calls
``svmtrain(y, [index K], '-t 4 -c C')`` on a precomputed linear kernel, with C picked by LIBSVM's 2-fold cross
validation (``-v 2``) over 1e-3 ... 1e4. This module reproduces that classifier for the benchmarks only (the
search's shallow methods use the trial's linear head), so that a shallow method can be compared with its paper
under the paper's classifier.

Each binary problem is LIBSVM's dual, ``min 1/2 a'Qa - 1'a`` with ``0 <= a <= C`` and ``y'a = 0``, solved by
accelerated projected gradient (the projection onto the box and the hyperplane is a one-dimensional root find)
and stopped by LIBSVM's own criterion (maximal violating pair below ``eps``); the bias follows LIBSVM's
``calculate_rho``. All class pairs are solved at once, padded to one batch. Projected gradient is fast where
the SURF features are (800-d, separable per class pair: about 1.5 s per fit on 1,123 samples) and slow on
low-dimensional, non-separable inputs at large C (SA with d = 10 ... 40 did not finish a task in 4 minutes).
"""

from __future__ import annotations

import torch

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)  # the grid of the SA/CORAL MATLAB code


def _project(v: torch.Tensor, y: torch.Tensor, c: float, mask: torch.Tensor) -> torch.Tensor:
    """Rows of ``v`` projected onto {0 <= a <= c, y'a = 0} (padding kept at 0): a = clip(v - t y), root find t."""
    low = torch.full(v.shape[:1], -1.0, dtype=v.dtype) * (v.abs().amax(1) + c + 1.0)
    high = -low
    for _ in range(60):  # y'clip(v - t y) falls as t grows; bisection to float64 resolution
        mid = (low + high) / 2
        s = (y * (v - mid[:, None] * y).clamp(0, c) * mask).sum(1)
        low, high = torch.where(s > 0, mid, low), torch.where(s > 0, high, mid)
    t = (low + high) / 2
    return (v - t[:, None] * y).clamp(0, c) * mask


def _violation(a: torch.Tensor, grad: torch.Tensor, y: torch.Tensor, c: float, mask: torch.Tensor) -> torch.Tensor:
    """LIBSVM's stopping quantity m(a) - M(a) per problem (max over I_up minus min over I_low of -y G)."""
    tol = 1e-12 * max(c, 1.0)
    below, above = a < c - tol, a > tol
    up = mask.bool() & (((y > 0) & below) | ((y < 0) & above))
    low = mask.bool() & (((y > 0) & above) | ((y < 0) & below))
    score = -y * grad
    inf = torch.tensor(float("inf"), dtype=a.dtype)
    return torch.where(up, score, -inf).amax(1) - torch.where(low, score, inf).amin(1)


def _rho(a: torch.Tensor, grad: torch.Tensor, y: torch.Tensor, c: float, mask: torch.Tensor) -> torch.Tensor:
    """LIBSVM's calculate_rho: the mean of y G over free vectors, else the middle of the feasible interval."""
    tol = 1e-12 * max(c, 1.0)
    yg = y * grad
    at_upper, at_lower = a >= c - tol, a <= tol
    free = mask.bool() & ~at_upper & ~at_lower
    # bounds on rho from vectors at a bound: (upper & y=-1) or (lower & y=+1) bound it from above
    bounds_high = mask.bool() & ((at_upper & (y < 0)) | (at_lower & (y > 0)))
    bounds_low = mask.bool() & ((at_upper & (y > 0)) | (at_lower & (y < 0)))
    inf = torch.tensor(float("inf"), dtype=a.dtype)
    ub = torch.where(bounds_high, yg, inf).amin(1)
    lb = torch.where(bounds_low, yg, -inf).amax(1)
    n_free = free.sum(1)
    mean_free = torch.where(free, yg, 0).sum(1) / n_free.clamp(min=1)
    return torch.where(n_free > 0, mean_free, (ub + lb) / 2)


def _solve_pairs(q: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, c: float, eps: float = 1e-3,
                 max_iter: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual coefficients and rho of a batch of binary problems (``q`` = y_i y_j K_ij, padded)."""
    step = 1.0 / torch.linalg.eigvalsh(q).amax(1).clamp(min=1e-12)
    a = torch.zeros_like(y)
    momentum_point, t = a.clone(), 1.0
    for _ in range(max_iter):
        grad_m = torch.bmm(q, momentum_point[:, :, None])[:, :, 0] - mask
        new = _project(momentum_point - step[:, None] * grad_m, y, c, mask)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        restart = ((momentum_point - new) * (new - a)).sum(1) > 0  # O'Donoghue-Candes gradient restart
        momentum_point = torch.where(restart[:, None], new, new + ((t - 1) / t_next) * (new - a))
        t = 1.0 if bool(restart.all()) else t_next
        a = new
        grad = torch.bmm(q, a[:, :, None])[:, :, 0] - mask
        if bool((_violation(a, grad, y, c, mask) < eps).all()):
            break
    return a, _rho(a, grad, y, c, mask)


def fit_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, c: float) -> torch.Tensor:
    """Labels of ``test_x`` from a one-vs-one linear C-SVC trained on (``train_x``, ``train_y``)."""
    train_x, test_x = train_x.double(), test_x.double()
    classes = train_y.unique().tolist()  # sorted; LIBSVM breaks vote ties towards the earlier class
    pairs = [(i, j) for n, i in enumerate(classes) for j in classes[n + 1:]]
    members = [torch.cat([(train_y == i).nonzero()[:, 0], (train_y == j).nonzero()[:, 0]]) for i, j in pairs]
    width = max(len(m) for m in members)
    idx = torch.zeros(len(pairs), width, dtype=torch.long)
    y = torch.zeros(len(pairs), width, dtype=torch.float64)
    mask = torch.zeros(len(pairs), width, dtype=torch.float64)
    for p, ((i, _), m) in enumerate(zip(pairs, members)):
        idx[p, :len(m)], mask[p, :len(m)] = m, 1.0
        y[p, :len(m)] = torch.where(train_y[m] == i, 1.0, -1.0).double()
    x = train_x[idx] * mask[:, :, None]
    q = torch.bmm(x, x.transpose(1, 2)) * y[:, :, None] * y[:, None, :]
    a, rho = _solve_pairs(q, y, mask, c)
    w = torch.einsum("pn,pnd->pd", a * y, x)
    decision = test_x @ w.T - rho  # [n_test, pairs]
    votes = torch.zeros(len(test_x), len(classes), dtype=torch.long)
    position = {label: k for k, label in enumerate(classes)}
    for p, (i, j) in enumerate(pairs):
        winner = torch.where(decision[:, p] > 0, position[i], position[j])
        votes[torch.arange(len(test_x)), winner] += 1
    return torch.tensor(classes)[votes.argmax(1)]  # argmax returns the first maximum, as LIBSVM's vote


def cross_validated_c(x: torch.Tensor, y: torch.Tensor, folds: int = 2, seed: int = 0) -> float:
    """C from ``C_GRID`` with the best ``folds``-fold stratified cross-validation accuracy (first on ties)."""
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(y), dtype=torch.long)
    for label in y.unique():  # stratified like LIBSVM's svm_cross_validation: each class dealt over the folds
        where = (y == label).nonzero()[:, 0]
        where = where[torch.randperm(len(where), generator=generator)]
        fold_of[where] = torch.arange(len(where)) % folds
    best_c, best_acc = C_GRID[0], -1.0
    for c in C_GRID:
        correct = 0
        for fold in range(folds):
            held = fold_of == fold
            correct += int((fit_predict(x[~held], y[~held], x[held], c) == y[held]).sum())
        if correct / len(y) > best_acc:
            best_c, best_acc = c, correct / len(y)
    return best_c
