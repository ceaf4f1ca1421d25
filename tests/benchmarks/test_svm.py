"""The paper reproductions' LIBSVM-style SVM (benchmarks/papers/svm.py) on problems with a known solution."""

from __future__ import annotations

import pytest
import torch

from benchmarks.papers import svm


def binary(x: list[list[float]], y: list[float], c: float) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    a, rho, converged = svm.solve_pairs((xs @ xs.T)[None], ys[None], torch.ones_like(ys)[None], c, eps=1e-9)
    assert bool(converged.all())
    return a, rho


def test_hard_margin_on_two_points_is_the_bisector():
    # x = +1 (class +1), x = -1 (class -1): w = 1, b = 0, both dual coefficients 1/2.
    a, rho = binary([[1.0], [-1.0]], [1.0, -1.0], c=100.0)
    assert a[0].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    assert rho.item() == pytest.approx(0.0, abs=1e-6)


def test_shifted_points_give_the_unregularised_bias():
    # x = 3 (class +1), x = 1 (class -1): the margin's middle is x = 2, so w = 1 and rho = 2 (f = x - 2);
    # a regularised bias (a constant feature) would give a different hyperplane.
    a, rho = binary([[3.0], [1.0]], [1.0, -1.0], c=100.0)
    w = (a[0] * torch.tensor([1.0, -1.0]) * torch.tensor([3.0, 1.0])).sum()
    assert w.item() == pytest.approx(1.0, abs=1e-6)
    assert rho.item() == pytest.approx(2.0, abs=1e-6)


def test_small_c_puts_every_coefficient_at_the_bound():
    a, _ = binary([[1.0], [2.0], [-1.0], [-3.0]], [1.0, 1.0, -1.0, -1.0], c=0.01)
    assert a[0].tolist() == pytest.approx([0.01] * 4, abs=1e-9)


def test_dual_of_an_overlapping_problem_meets_the_kkt_conditions():
    # Non-separable 2-d data: at the solution every free vector sits on the margin and bound ones violate it.
    generator = torch.Generator().manual_seed(1)
    y = torch.tensor([1.0, -1.0]).repeat(30)
    x = y[:, None] * torch.tensor([0.5, 0.0]) + torch.randn(60, 2, generator=generator, dtype=torch.float64)
    c = 1.0
    a, rho = binary(x.tolist(), y.tolist(), c)
    margin = y * (x @ torch.einsum("n,nd->d", a[0] * y, x) - rho)
    free = (a[0] > 1e-8) & (a[0] < c - 1e-8)
    assert bool(free.any()) and margin[free].tolist() == pytest.approx([1.0] * int(free.sum()), abs=1e-6)
    assert bool((margin[a[0] < 1e-8] >= 1 - 1e-6).all()) and bool((margin[a[0] > c - 1e-8] <= 1 + 1e-6).all())


def test_rows_of_an_asymmetric_kernel_are_the_support_vectors_columns():
    # LIBSVM reads row i of a precomputed training matrix as Q_i: K[i, k] enters G_k. With K = [[1, 2], [0, 1]]
    # and labels (+1, -1), the first step from a = 0 moves both coefficients by 2 / (1 + 1 - 2 * 2) -> TAU, so
    # they clip at C; G then is y_k * sum_i a_i y_i K[i, k] - 1 = (C*1 - C*0 - 1, -(C*2 - C*1) - 1).
    kernel = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]], dtype=torch.float64)
    y, mask = torch.tensor([[1.0, -1.0]], dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    a, rho, _ = svm.solve_pairs(kernel, y, mask, c=0.5, max_iter=1)
    assert a[0].tolist() == pytest.approx([0.5, 0.5])
    # both at the upper bound: rho = middle of [max over y=+1 of yG, min over y=-1 of yG] = (-0.5 + 1.5) / 2
    assert rho.item() == pytest.approx(0.5)


def test_one_vs_one_separates_three_clusters_and_cross_validation_picks_from_the_grid():
    generator = torch.Generator().manual_seed(0)
    centers = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(3).repeat_interleave(20)
    x = (centers[y] + 0.5 * torch.randn(60, 2, generator=generator)).double()
    predicted, capped = svm.fit_predict(x @ x.T, y, centers.double() @ x.T, c=1.0)
    assert torch.equal(predicted, torch.arange(3)) and capped == 0
    c, capped = svm.cross_validated_c(x @ x.T, y)
    assert c in svm.C_GRID and capped == 0
