import math

import pytest
import torch

from adaptune.algorithms.ensemble import average_predictions, ensemble_metrics, top_k


def test_average_of_two_members_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.2, 0.8]])
    b = torch.tensor([[0.6, 0.4], [0.8, 0.2]])
    assert torch.allclose(average_predictions([a, b.half()]), torch.tensor([[0.8, 0.2], [0.5, 0.5]]), atol=1e-3)
    with pytest.raises(ValueError):
        average_predictions([a, torch.zeros(3, 2)])
    with pytest.raises(ValueError):
        average_predictions([])


def test_ensemble_can_beat_its_members():
    # Each member is wrong on a different sample; the average is right on all three.
    labels = torch.tensor([0, 1, 0])
    m1 = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.9, 0.1]])
    m2 = torch.tensor([[0.4, 0.6], [0.1, 0.9], [0.9, 0.1]])
    m3 = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55]])
    members = [m1, m2, m3]
    single = [ensemble_metrics(m, labels)["target_acc"] for m in members]
    both = ensemble_metrics(average_predictions(members), labels)
    assert max(single) < 1.0 and both["target_acc"] == pytest.approx(1.0)


def test_only_target_proxies_score_the_ensemble():
    metrics = ensemble_metrics(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), None)
    assert metrics["proxy_im"] == pytest.approx(math.log(2), abs=1e-5)  # confident and diverse
    assert math.isnan(metrics["proxy_source_acc"]) and math.isnan(metrics["proxy_dev"])
    assert math.isnan(metrics["target_acc"])  # no labels, no oracle


def test_top_k_skips_non_finite_scores():
    assert top_k([("a", 0.1), ("b", float("nan")), ("c", 0.5), ("d", 0.3)], 2) == ["c", "d"]
    assert top_k([("a", None)], 3) == []

