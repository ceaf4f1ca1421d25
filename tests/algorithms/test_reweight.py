"""Reweighting family (KMM): the QP's constraints and optimality, the weighted loss, and one end-to-end trial."""


import pytest
import torch
import torch.nn.functional as F

import adaptune.algorithms.methods.reweight as reweight
from adaptune.algorithms.data import load_task
from adaptune.algorithms.loop import TrialSpec, run_trial
from adaptune.algorithms.methods import get_method
from adaptune.algorithms.methods.linalg import kernel_matrix, median_gamma
from adaptune.algorithms.methods.reweight import KMM, kernel_mean_discrepancy, kmm_weights, project_box_sum


def _shifted(seed=0, ns=300, nt=200):
    """Broad source, narrow shifted target inside the source's support: reweighting can match it."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(ns, 2, generator=g, dtype=torch.float64) * 1.5
    xt = torch.randn(nt, 2, generator=g, dtype=torch.float64) * 0.5 + torch.tensor([1.0, 0.5], dtype=torch.float64)
    return xs, xt


def _objective(xs, xt, beta, gamma):
    k = kernel_matrix("rbf", xs, xs, gamma)
    kappa = kernel_matrix("rbf", xs, xt, gamma).sum(1) * len(xs) / len(xt)
    return (0.5 * beta @ k @ beta - kappa @ beta).item()


def test_kmm_is_registered():
    cls = get_method("kmm")
    assert cls is KMM and cls.family == "reweight" and cls.summary and cls.__doc__ and cls.feature_extraction
    assert [p.name for p in cls.params] == ["head_l2", "kmm_bound", "kmm_eps"]


def test_projection_respects_box_and_sum_and_is_a_projection():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(50, generator=g, dtype=torch.float64) * 3 + 1
    for low, high in ((40.0, 45.0), (10.0, 12.0), (0.0, 1000.0)):
        p = project_box_sum(v, 2.0, low, high)
        assert p.min() >= 0 and p.max() <= 2.0 and low - 1e-9 <= p.sum() <= high + 1e-9
        # no feasible point is closer to v (checked against random feasible points)
        for _ in range(20):
            q = project_box_sum(torch.rand(50, generator=g, dtype=torch.float64) * 2.0, 2.0, low, high)
            assert (p - v).norm() <= (q - v).norm() + 1e-9
    inside = torch.full((5,), 0.5, dtype=torch.float64)
    assert torch.equal(project_box_sum(inside, 1.0, 2.0, 3.0), inside)


def test_kmm_weights_respect_constraints_and_reduce_the_discrepancy():
    xs, xt = _shifted()
    gamma = median_gamma(torch.cat([xs, xt]))
    bound, eps = 8.0, 0.05
    beta = kmm_weights(xs, xt, bound=bound, eps=eps, gamma=gamma)
    assert beta.min() >= 0 and beta.max() <= bound + 1e-12
    assert abs(beta.sum().item() - len(xs)) <= len(xs) * eps + 1e-6
    uniform = kernel_mean_discrepancy(xs, xt, None, gamma)
    assert kernel_mean_discrepancy(xs, xt, beta, gamma) < 0.1 * uniform
    # the QP optimum beats every feasible point we try, uniform weights included
    best = _objective(xs, xt, beta, gamma)
    g = torch.Generator().manual_seed(2)
    for trial in range(10):
        start = torch.ones(len(xs), dtype=torch.float64) if trial == 0 else torch.rand(len(xs), generator=g) * 3
        other = project_box_sum(start.double(), bound, len(xs) * (1 - eps), len(xs) * (1 + eps))
        assert best <= _objective(xs, xt, other, gamma) + 1e-6
    # weights go to the source samples near the target: density-ratio-like
    near = (xs - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) < 0.7
    assert beta[near].mean() > 3 * beta[~near].mean()


def test_kmm_reduces_the_discrepancy_on_surf():
    task = load_task("office-surf:C->A")
    xs, xt = task.source_train.x.double(), task.target_train.x.double()
    method = KMM(KMM.defaults(), 800, 10)
    weights = method.fit(task.source_train.x, task.target_train.x)
    gamma = median_gamma(torch.cat([xs, xt]))
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert kernel_mean_discrepancy(xs, xt, weights, gamma) < 0.95 * kernel_mean_discrepancy(xs, xt, None, gamma)


def _train_threshold(x, y, weights, steps=300):
    """A 1-D logistic regression by full-batch gradient descent, weighted cross-entropy."""
    w, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([w, b], lr=0.1)
    for _ in range(steps):
        logits = torch.stack([torch.zeros_like(x), x * w + b], dim=1)
        loss = (weights * F.cross_entropy(logits, y, reduction="none")).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return lambda z: (z * w + b > 0).long()


def test_kmm_weighting_fixes_a_misspecified_model_under_covariate_shift():
    """Fails if the weights do nothing: labels are 1 inside |x| < 1, the model is one threshold; unweighted it
    fits the broad source, weighted it fits the target region around x = 1.5 (the classic KMM setting)."""
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(400, generator=g) * 2.0
    xt = torch.randn(300, generator=g) * 0.4 + 1.2
    ys, yt = (xs.abs() < 1).long(), (xt.abs() < 1).long()
    beta = kmm_weights(xs[:, None], xt[:, None], bound=1000.0, eps=0.01).float()
    plain = _train_threshold(xs, ys, torch.ones(len(xs)))
    weighted = _train_threshold(xs, ys, beta * len(beta) / beta.sum())
    plain_acc, weighted_acc = (plain(xt) == yt).float().mean(), (weighted(xt) == yt).float().mean()
    assert weighted_acc > plain_acc + 0.15 and weighted_acc > 0.8


def test_head_fit_uses_the_weights_by_source_position():
    """Weight 0 removes a sample from the head's fit: the trial's head equals a fit without those samples."""
    from adaptune.algorithms.linear_head import fit_logistic_regression

    method = KMM(KMM.defaults(), 4, 3)
    assert method.source_weights() is None  # before adapt: uniform
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 4, generator=g), torch.randint(0, 3, (60,), generator=g)
    weights = torch.ones(60)
    weights[:20] = 0.0
    method.sample_weights = weights
    weighted = fit_logistic_regression(x, y, 3, sample_weight=method.source_weights())
    # the same objective on the 40 kept samples: the penalty is per unit of mean loss
    kept = fit_logistic_regression(x[20:], y[20:], 3, l2=1 / 60)
    assert torch.allclose(weighted.weight, kept.weight, atol=1e-4)


def test_unfitted_samples_get_weight_one_and_the_fit_is_seeded(monkeypatch):
    monkeypatch.setattr(reweight, "MAX_FIT", 100)
    task = load_task("office-surf:W->D")
    method = KMM({**KMM.defaults(), "seed": 5}, 800, 10)
    adapted = method.adapt(task)
    assert adapted is task  # features unchanged
    weights = method.sample_weights
    assert weights.shape == (len(task.source_train),) and weights.dtype == torch.float32
    assert (weights == 1.0).sum() >= len(weights) - 100  # the unfitted ones (and maybe a few fitted)
    assert not torch.allclose(weights, torch.ones_like(weights))
    again = KMM({**KMM.defaults(), "seed": 5}, 800, 10)
    again.adapt(task)
    assert torch.equal(again.sample_weights, weights)
    assert "sample_weights" in method.state_dict()


def test_end_to_end_trial_reports_finite_proxies(check_final_metrics):
    task = load_task("office-surf:C->A")
    reports = []
    run_trial(task, TrialSpec("kmm", {}, "mlp", epochs=3), lambda metrics, state: reports.append(metrics))
    assert len(reports) == 1  # the weighted head is fitted once, to convergence
    last = reports[-1]
    check_final_metrics(last)
    assert last["target_acc"] > 0.3
