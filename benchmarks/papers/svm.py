"""An SVM as LIBSVM trains it (C-SVC, hinge loss, one-vs-one, unregularised bias), on a precomputed kernel, in torch.

The published SVM numbers on Office-Caltech SURF (CORAL paper, Table 3; SA) come from MATLAB code that calls
``svmtrain(y, [index K], '-t 4 -c C')`` on a precomputed kernel, with C picked by LIBSVM's 2-fold cross
validation (``-v 2``) over 1e-3 ... 1e4. This module reproduces that classifier for the benchmarks only (the
search's shallow methods use the trial's linear head), so that a shallow method can be compared with its paper
under the paper's classifier.

That code's training "kernel" is ``Xs A Xs'`` for a method's map ``A`` (CORAL: ``Cs^-1/2 Ct^1/2``; SA:
``Ps Ps' Pt Pt'``), which is not symmetric, so the solver follows LIBSVM's own reading of a precomputed matrix:
row ``i`` of the training matrix is support vector ``i``'s column of Q (``Q_i[k] = y_i y_k K[i, k]``), and a
test sample's row holds its kernel values against every training sample. On a symmetric positive semi-definite
kernel this is the ordinary SVM.

Each binary problem is LIBSVM's dual, ``min 1/2 a'Qa - 1'a`` with ``0 <= a <= C`` and ``y'a = 0``, solved by
LIBSVM's SMO: the second-order working-set selection of Fan, Chen and Lin (JMLR 2005), its two-variable update
with clipping, ``TAU`` where the curvature is not positive, and its stopping rule (maximal violating pair below
``eps``); shrinking is left out, which changes the path, not a converged solution. The bias follows LIBSVM's
``calculate_rho``. All class pairs are solved at once, padded to one batch. LIBSVM stops a problem that does not
converge after 10^7 iterations; here the cap is ``max_iter`` (``MAX_ITER`` by default; each iteration costs about
1.5 ms for 45 pairs of 300 samples), and :func:`fit_predict` reports how many pairs reached it. On SURF C->W
the linear kernel of CORAL's features converged in 858 iterations at every C (5 class pairs hit the cap over all
fits of surf_shallow.py's feature kernels), while SA's asymmetric matrix (its symmetric part is indefinite) did
not converge at C >= 0.1 in 20,000 iterations: there the result depends on where the solver stops, here as in
LIBSVM.
"""

from __future__ import annotations

import torch

from adaptune.algorithms.data import stratified_split

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)  # the grid of the SA/CORAL MATLAB code
TAU = 1e-12  # LIBSVM's stand-in for a non-positive curvature
MAX_ITER = 5_000  # SMO iterations per binary problem before it stops unconverged (LIBSVM: 10^7)


def _rho(a: torch.Tensor, grad: torch.Tensor, y: torch.Tensor, c: float, mask: torch.Tensor) -> torch.Tensor:
    """LIBSVM's calculate_rho: the mean of y G over free vectors, else the middle of the feasible interval."""
    yg = y * grad
    at_upper, at_lower = a >= c, a <= 0
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


def _clip_opposite(ai: torch.Tensor, aj: torch.Tensor, delta: torch.Tensor, c: float) -> tuple[torch.Tensor, ...]:
    """LIBSVM's two-variable step for y_i != y_j (a_i - a_j stays fixed), clipped into the box."""
    diff = ai - aj
    ni, nj = ai + delta, aj + delta
    pos = diff > 0
    fix = pos & (nj < 0)
    ni, nj = torch.where(fix, diff, ni), torch.where(fix, 0.0, nj)
    fix = ~pos & (ni < 0)
    ni, nj = torch.where(fix, 0.0, ni), torch.where(fix, -diff, nj)
    fix = pos & (ni > c)
    ni, nj = torch.where(fix, c, ni), torch.where(fix, c - diff, nj)
    fix = ~pos & (nj > c)
    return torch.where(fix, c + diff, ni), torch.where(fix, c, nj)


def _clip_same(ai: torch.Tensor, aj: torch.Tensor, delta: torch.Tensor, c: float) -> tuple[torch.Tensor, ...]:
    """LIBSVM's two-variable step for y_i == y_j (a_i + a_j stays fixed), clipped into the box."""
    total = ai + aj
    ni, nj = ai - delta, aj + delta
    big = total > c
    fix = big & (ni > c)
    ni, nj = torch.where(fix, c, ni), torch.where(fix, total - c, nj)
    fix = ~big & (nj < 0)
    ni, nj = torch.where(fix, total, ni), torch.where(fix, 0.0, nj)
    fix = big & (nj > c)
    ni, nj = torch.where(fix, total - c, ni), torch.where(fix, c, nj)
    fix = ~big & (ni < 0)
    return torch.where(fix, 0.0, ni), torch.where(fix, total, nj)


def solve_pairs(kernel: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, c: float, eps: float = 1e-3,
                max_iter: int = MAX_ITER) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dual coefficients, rho and a converged flag for a batch of padded binary problems.

    ``kernel[p, i, k]`` is K[i, k] as LIBSVM reads it (row i = training sample i), ``y`` is +-1 (0 where
    padded) and ``mask`` is 1 on real samples.
    """
    q = kernel * y[:, :, None] * y[:, None, :]
    qd = torch.diagonal(q, dim1=1, dim2=2)
    rows = torch.arange(len(y))
    a = torch.zeros_like(y)
    grad = -mask.clone()
    valid = mask.bool()
    inf = torch.tensor(float("inf"), dtype=y.dtype)
    active = torch.ones(len(y), dtype=torch.bool)
    for _ in range(max_iter):
        below, above = a < c, a > 0
        up = valid & (((y > 0) & below) | ((y < 0) & above))
        low = valid & (((y > 0) & above) | ((y < 0) & below))
        score = -y * grad
        g_max, i = torch.where(up, score, -inf).max(1)
        active = g_max + torch.where(low, -score, -inf).amax(1) >= eps
        if not bool(active.any()):
            break
        q_i = q[rows, i]
        # second-order choice of j among I_low with -y_j G_j < G_max (Fan et al. 2005, WSS 3)
        grad_diff = g_max[:, None] - score
        curvature = qd[rows, i][:, None] + qd - 2 * y[rows, i][:, None] * y * q_i
        curvature = torch.where(curvature > 0, curvature, TAU)
        candidate = low & (grad_diff > 0)
        j = torch.where(candidate, -(grad_diff * grad_diff) / curvature, inf).argmin(1)
        active &= candidate.any(1)
        ai, aj, gi, gj = a[rows, i], a[rows, j], grad[rows, i], grad[rows, j]
        qij, curv = q_i[rows, j], qd[rows, i] + qd[rows, j]
        opposite = _clip_opposite(ai, aj, (-gi - gj) / torch.where(curv + 2 * qij > 0, curv + 2 * qij, TAU), c)
        same = _clip_same(ai, aj, (gi - gj) / torch.where(curv - 2 * qij > 0, curv - 2 * qij, TAU), c)
        is_same = y[rows, i] == y[rows, j]
        new_i = torch.where(active, torch.where(is_same, same[0], opposite[0]), ai)
        new_j = torch.where(active, torch.where(is_same, same[1], opposite[1]), aj)
        a[rows, i], a[rows, j] = new_i, new_j
        grad += q_i * (new_i - ai)[:, None] + q[rows, j] * (new_j - aj)[:, None]
    return a, _rho(a, grad, y, c, mask), ~active


def fit_predict(train_kernel: torch.Tensor, train_y: torch.Tensor, test_kernel: torch.Tensor, c: float,
                max_iter: int = MAX_ITER) -> tuple[torch.Tensor, int]:
    """(labels of the test samples, number of class pairs that hit ``max_iter``) from a one-vs-one C-SVC.

    ``train_kernel`` is ``[n, n]`` over the training samples, ``test_kernel`` ``[m, n]`` (test sample x
    training sample); for a linear SVM they are ``xs @ xs.T`` and ``xt @ xs.T``.
    """
    train_kernel, test_kernel = train_kernel.double(), test_kernel.double()
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
    kernel = train_kernel[idx[:, :, None], idx[:, None, :]] * mask[:, :, None] * mask[:, None, :]
    a, rho, converged = solve_pairs(kernel, y, mask, c, max_iter=max_iter)
    decision = torch.einsum("pn,tpn->tp", a * y * mask, test_kernel[:, idx]) - rho  # [n_test, pairs]
    votes = torch.zeros(len(test_kernel), len(classes), dtype=torch.long)
    position = {label: k for k, label in enumerate(classes)}
    for p, (i, j) in enumerate(pairs):
        winner = torch.where(decision[:, p] > 0, position[i], position[j])
        votes[torch.arange(len(test_kernel)), winner] += 1
    # argmax returns the first maximum, as LIBSVM's vote
    return torch.tensor(classes)[votes.argmax(1)], int((~converged).sum())


def cross_validated_c(kernel: torch.Tensor, y: torch.Tensor, seed: int = 0,
                      max_iter: int = MAX_ITER) -> tuple[float, int]:
    """(C from ``C_GRID`` with the best 2-fold stratified cross-validation accuracy, first on ties; pairs that
    hit the iteration cap over all fits). ``kernel`` is the ``[n, n]`` training matrix, read as in
    :func:`fit_predict`: a held-out sample's row gives its values against the training fold."""
    kept, held_out = (torch.from_numpy(f) for f in stratified_split(y.numpy(), 0.5, seed))  # per class, as LIBSVM
    folds = [(kernel[train][:, train], y[train], kernel[held][:, train], y[held])
             for train, held in ((kept, held_out), (held_out, kept))]
    best_c, best_acc, capped = C_GRID[0], -1.0, 0
    for c in C_GRID:
        correct = 0
        for train_kernel, train_y, held_kernel, held_y in folds:
            predicted, hit_cap = fit_predict(train_kernel, train_y, held_kernel, c, max_iter)
            correct, capped = correct + int((predicted == held_y).sum()), capped + hit_cap
        if correct / len(y) > best_acc:
            best_c, best_acc = c, correct / len(y)
    return best_c, capped
