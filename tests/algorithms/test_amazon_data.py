"""The Amazon reviews tasks: sizes and labels from the PROVENANCE notes, and reference baselines.

The 5000-d tasks (DANN protocol) have their own sizes and preprocessing tests in test_feature_benchmarks.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptune.algorithms import data
from adaptune.algorithms.errors import InputError

# (negative, positive) per domain, as in PROVENANCE_amazon_review_400.md.
CLASS_COUNTS = {"B": [1000, 1000], "D": [1000, 999], "E": [1000, 998], "K": [1000, 999]}
PAIRS = [f"{s}->{t}" for s in "BDEK" for t in "BDEK" if s != t]
# Source-only logistic regression (C=0.01 weight) per task, from the PROVENANCE note; average 77.5.
SOURCE_ONLY = {
    "B->D": 79.1, "B->E": 76.8, "B->K": 78.3, "D->B": 77.3, "D->E": 75.5, "D->K": 78.2,
    "E->B": 74.5, "E->D": 74.0, "E->K": 83.4, "K->B": 74.9, "K->D": 74.7, "K->E": 83.1,
}  # fmt: skip
# 5000-d version: source-only logistic regression on binarised counts (C = 0.1), source = the source's train
# reviews, tested on the target's test reviews; from the raw files' PROVENANCE.txt (average 77.1).
SOURCE_ONLY_5000 = {
    "B->D": 80.3, "B->E": 74.7, "B->K": 78.0, "D->B": 77.5, "D->E": 74.8, "D->K": 79.5,
    "E->B": 72.0, "E->D": 73.5, "E->K": 84.9, "K->B": 71.8, "K->D": 73.8, "K->E": 84.0,
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(CLASS_COUNTS))
def test_domain_sizes_balance_and_preprocessing(key: str) -> None:
    x, y = data.load_amazon_domain(key)
    assert x.shape == (sum(CLASS_COUNTS[key]), 400) and x.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == CLASS_COUNTS[key]
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)
    std = x.std(axis=0)
    assert np.all((np.abs(std - 1.0) < 1e-9) | (std == 0.0))  # all-zero words stay 0
    assert 1 <= (std == 0.0).sum() <= 10


def test_stored_counts_give_back_frequencies() -> None:
    raw = data._builtin_arrays("amazon_review_400.npz")
    assert sorted(raw) == [f"{a}_{k}" for a in "xy" for k in "BDEK"]
    for key in "BDEK":
        counts = raw[f"x_{key}"]
        assert counts.dtype == np.uint8 and raw[f"y_{key}"].dtype == np.uint8
        frequencies = counts / counts.sum(axis=1, keepdims=True, dtype=np.float64)
        np.testing.assert_allclose(frequencies.sum(axis=1), 1.0, atol=1e-12)


def test_twelve_tasks_listed() -> None:
    amazon = [t for t in data.list_tasks() if t["name"].startswith("amazon:")]
    assert [t["name"] for t in amazon] == [f"amazon:{pair}" for pair in PAIRS]
    assert all(t["num_classes"] == 2 and t["input_kind"] == "features" for t in amazon)
    assert all(t["default_backbone"] == "mlp" and "Amazon reviews" in t["description"] for t in amazon)


@pytest.mark.parametrize("pair", ["B->K", "E->D"])
def test_task_is_transductive_without_target_labels(pair: str) -> None:
    task = data.load_task(f"amazon:{pair}")
    source, target = pair.split("->")
    n_source, n_target = sum(CLASS_COUNTS[source]), sum(CLASS_COUNTS[target])
    assert task.classes == ("negative", "positive") and task.input_shape == (400,)
    assert task.input_kind == "features" and task.default_backbone == "mlp"
    assert task.sizes() == {
        "source_train": n_source - round(0.1 * n_source),
        "source_val": round(0.1 * n_source),
        "target_train": n_target,
        "target_val": n_target,
    }
    assert task.target_train.y is None and task.target_val.y is None
    assert torch.equal(task.target_train.x, task.target_val.x)
    assert torch.bincount(task.target_oracle).tolist() == CLASS_COUNTS[target]
    assert task.source_train.x.dtype == torch.float32
    # The source split is stratified and together covers the whole preprocessed source domain.
    val_counts = torch.bincount(task.source_val.y).tolist()
    assert all(abs(n - 0.1 * m) <= 1 for n, m in zip(val_counts, CLASS_COUNTS[source], strict=True))
    xs, ys = data.load_amazon_domain(source)
    train_idx, val_idx = data.stratified_split(ys, 0.1, data.SPLIT_SEED)
    assert torch.equal(task.source_train.x, torch.tensor(xs[train_idx], dtype=torch.float32))
    assert torch.equal(task.source_val.x, torch.tensor(xs[val_idx], dtype=torch.float32))
    assert task.source_val.y.tolist() == ys[val_idx].tolist()
    assert task.extra["source_domain"] == data.AMAZON_DOMAINS[source]


def test_unknown_amazon_domain() -> None:
    with pytest.raises(InputError) as error:
        data.load_task("amazon:B->X")
    assert error.value.field == "task" and "amazon:B->D" in str(error.value)
    with pytest.raises(InputError) as error:
        data.load_amazon_domain("A")
    assert "unknown Amazon reviews domain 'A'" in str(error.value)


def _logistic_regression(x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-batch L-BFGS on mean log-loss + weight_decay / 2 * ||w||^2 (the bias is not penalised)."""
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    b = torch.zeros((), dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w, b], max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + b, y.to(x.dtype)) + 0.5 * weight_decay * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach()


def test_source_only_logistic_regression_reproduces_provenance() -> None:
    domains = {k: tuple(torch.from_numpy(a) for a in data.load_amazon_domain(k)) for k in "BDEK"}
    accuracy = {}
    for source in "BDEK":
        xs, ys = domains[source]
        w, b = _logistic_regression(xs, ys, weight_decay=1.0 / (0.01 * len(xs)))  # sklearn C=0.01
        for target in "BDEK".replace(source, ""):
            xt, yt = domains[target]
            accuracy[f"{source}->{target}"] = 100.0 * ((xt @ w + b > 0).long() == yt).double().mean().item()
    average = sum(accuracy.values()) / len(accuracy)
    assert 74.0 <= average <= 81.0, accuracy
    assert abs(average - 77.5) < 0.5, accuracy
    assert all(abs(accuracy[pair] - SOURCE_ONLY[pair]) < 1.0 for pair in PAIRS), accuracy


def test_5000d_source_only_logistic_regression_reproduces_provenance() -> None:
    # One source keeps the test short; the other three domains' test splits are the targets.
    source = "B"
    counts, ys = data._feature_domain(data._AMAZON_5000, source, ("train",))
    w, b = _logistic_regression(torch.from_numpy(counts > 0).float(), torch.from_numpy(ys), 1.0 / (0.1 * len(ys)))
    for target in "BDEK".replace(source, ""):
        counts, yt = data._feature_domain(data._AMAZON_5000, target, ("test",))
        predicted = (torch.from_numpy(counts > 0).float() @ w + b > 0).long()
        accuracy = 100.0 * (predicted == torch.from_numpy(yt)).double().mean().item()
        assert abs(accuracy - SOURCE_ONLY_5000[f"{source}->{target}"]) < 0.3, (target, accuracy)
