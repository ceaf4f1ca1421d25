"""The benchmarks' LIBSVM-style linear SVM (benchmarks/svm.py) on problems with a known solution."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import svm  # noqa: E402


def binary(x: list[list[float]], y: list[float], c: float) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    q = (xs @ xs.T * ys[:, None] * ys[None, :])[None]
    return svm._solve_pairs(q, ys[None], torch.ones_like(ys)[None], c, eps=1e-9)


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


def test_one_vs_one_separates_three_clusters_and_cross_validation_picks_from_the_grid():
    generator = torch.Generator().manual_seed(0)
    centers = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(3).repeat_interleave(20)
    x = centers[y] + 0.5 * torch.randn(60, 2, generator=generator)
    assert torch.equal(svm.fit_predict(x, y, centers, c=1.0), torch.arange(3))
    assert svm.cross_validated_c(x, y) in svm.C_GRID
