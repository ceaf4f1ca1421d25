"""The logistic-regression head of feature-extraction trials: it reaches the optimum of its objective."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from adaptune.algorithms.linear_head import GRADIENT_TOLERANCE, fit_logistic_regression


def _problem(n=120, dim=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 1.5
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + torch.randn(n, dim, generator=g), y


def _objective(params: np.ndarray, x: torch.Tensor, y: torch.Tensor, classes: int, c: float) -> float:
    x64 = x.double()
    weight = torch.tensor(params[: classes * x.shape[1]]).view(classes, -1)
    bias = torch.tensor(params[classes * x.shape[1] :])
    ce = F.cross_entropy(x64 @ weight.T + bias, y, reduction="sum")
    return float(c * ce + 0.5 * weight.pow(2).sum())  # scikit-learn's LogisticRegression objective


@pytest.mark.parametrize("c", [0.05, 1.0, 20.0])
def test_fit_reaches_the_optimum_of_the_l2_logistic_objective(c):
    """Fails if the head is unconverged or solves another objective: scipy's optimum of the same loss agrees."""
    x, y = _problem()
    fit = fit_logistic_regression(x, y, 3, l2=1.0 / (c * len(x)))  # the same objective per unit of mean loss
    ours = np.concatenate([fit.weight.double().flatten().numpy(), fit.bias.double().numpy()])
    reference = minimize(_objective, np.zeros_like(ours), args=(x, y, 3, c), method="L-BFGS-B",
                         options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-14})
    assert _objective(ours, x, y, 3, c) <= reference.fun * (1 + 1e-4) + 1e-6
    assert fit.iterations > 0


def test_stronger_regularisation_shrinks_the_weights():
    x, y = _problem()
    strong, weak = fit_logistic_regression(x, y, 3, l2=1.0), fit_logistic_regression(x, y, 3, l2=1e-3)
    assert strong.weight.norm() < weak.weight.norm()


def test_separable_classes_are_fitted_exactly():
    x, y = _problem(dim=20, seed=1)
    x = x * 5
    fit = fit_logistic_regression(x, y, 3)
    assert ((x @ fit.weight.T + fit.bias).argmax(1) == y).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fit_meets_the_gradient_tolerance_in_float64(seed):
    """Fails without the float64 stage: on these overlapping classes a float32 fit stops at a float64 gradient of
    4e-6 to 2e-5, above the tolerance."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (300,), generator=g)
    x = (torch.randn(3, 20, generator=g) * 0.5)[y] + torch.randn(300, 20, generator=g)
    fit = fit_logistic_regression(x, y, 3)
    weight, bias = fit.weight.double().requires_grad_(True), fit.bias.double().requires_grad_(True)
    loss = F.cross_entropy(x.double() @ weight.T + bias, y) + 0.5 / len(x) * weight.pow(2).sum()  # C = 1
    loss.backward()
    assert max(weight.grad.abs().max(), bias.grad.abs().max()) <= 1.5 * GRADIENT_TOLERANCE
