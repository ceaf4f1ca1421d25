"""A multinomial logistic-regression head fitted to convergence by L-BFGS (full batch).

Feature-extraction trials (a frozen backbone or raw features, and the shallow methods' transformed features)
are convex in the head, so they are fitted once instead of by a few SGD steps: a trial is then judged on its
features, never on an unconverged head. The objective is scikit-learn's ``LogisticRegression`` (L2 penalty,
``C``): ``C * sum_i w_i CE_i + ||W||^2 / 2`` with the bias unpenalised, divided here by ``C * sum_i w_i`` so that
the tolerance means the same at every sample count. The penalty is set per unit of that mean loss (``l2`` =
1 / (C N)): a fixed ``l2`` regularises a head as strongly on 150 rows as on 9,000, where a fixed C would not.

The fit runs in float32 first, at half the cost of float64 per iteration, then goes on in float64 from there
until the float64 gradient meets the tolerance: the head is as converged as a float64 fit, not as float32
rounding allows, and a float32 fit that already meets it costs one float64 evaluation more.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MAX_ITERATIONS = 500
GRADIENT_TOLERANCE = 1e-6


@dataclass
class LinearFit:
    weight: torch.Tensor  # [num_classes, D] float32
    bias: torch.Tensor  # [num_classes] float32
    iterations: int  # L-BFGS iterations used
    loss: float  # final value of the normalised objective


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, l2: float | None = None,
                            sample_weight: torch.Tensor | None = None,
                            max_iterations: int = MAX_ITERATIONS) -> LinearFit:
    """L2-regularised multinomial logistic regression on the rows of ``x`` ``[N, D]`` with labels ``y``.

    ``l2`` is the penalty per unit of the (weighted) mean loss: mean CE + l2 ||W||^2 / 2. None is scikit-learn's
    default C = 1, whose penalty shrinks with the sample count (l2 = 1 / (C N)).
    """
    x = x.flatten(1)
    n, dim = x.shape
    w = torch.ones(n, dtype=torch.float64) if sample_weight is None else sample_weight.to(torch.float64)
    w = w / w.sum().clamp_min(1e-12)
    l2 = 1.0 / n if l2 is None else l2
    weight = torch.zeros(num_classes, dim, dtype=torch.float64)
    bias = torch.zeros(num_classes, dtype=torch.float64)
    iterations, loss = 0, float("nan")
    for dtype in (torch.float32, torch.float64):
        if iterations >= max_iterations:
            break
        weight, bias, used, loss = _lbfgs(x.to(dtype), y, w.to(dtype), l2, weight.to(dtype), bias.to(dtype),
                                          max_iterations - iterations)
        iterations += used
    return LinearFit(weight.float(), bias.float(), iterations, loss)


def _lbfgs(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, l2: float, weight: torch.Tensor, bias: torch.Tensor,
           max_iterations: int) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """L-BFGS from ``weight``, ``bias`` in their dtype: the fitted pair, the iterations used, the final loss."""
    weight, bias = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iterations, history_size=20,
                                  tolerance_grad=GRADIENT_TOLERANCE, tolerance_change=1e-12,
                                  line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        per_sample = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (w * per_sample).sum() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    final = objective().item()  # LBFGS.step returns the loss it started from
    return weight.detach(), bias.detach(), int(optimizer.state[weight].get("n_iter", 0)), final
