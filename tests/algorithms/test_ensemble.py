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



def test_nearest_neighbours_exclude_the_sample_itself_and_do_not_depend_on_the_block(monkeypatch):
    import adaptune.algorithms.neighbours as neighbours

    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0], [0.1, 0.9]])
    whole = neighbours.nearest_neighbours(x, 2)
    assert whole[0].tolist() == [1, 2] and whole[3].tolist() == [4, 2]
    assert all(i not in row for i, row in enumerate(whole.tolist()))
    monkeypatch.setattr(neighbours, "_ROWS_PER_BLOCK", 2)
    assert torch.equal(neighbours.nearest_neighbours(x, 2), whole)
    assert neighbours.nearest_neighbours(x, 10).shape == (5, 4)  # never more neighbours than other samples


def test_smoothing_outvotes_an_error_inside_a_cluster():
    from adaptune.algorithms.ensemble import Smoothing, smooth_by_neighbours

    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    labels = torch.arange(2).repeat_interleave(20)
    x = centres[labels] + torch.randn(40, 3, generator=generator)
    probs = torch.nn.functional.one_hot(labels, 2).float() * 0.8 + 0.1
    probs[[3, 25]] = torch.tensor([[0.3, 0.7], [0.7, 0.3]])  # one mistake in each cluster
    smoothed = smooth_by_neighbours(probs, x, Smoothing(neighbours=5, weight=0.5))
    assert ensemble_metrics(probs, labels)["target_acc"] == pytest.approx(0.95)
    assert ensemble_metrics(smoothed, labels)["target_acc"] == pytest.approx(1.0)
    assert torch.allclose(smoothed.sum(1), torch.ones(40))  # still a distribution per sample
    # weight w: (1 - w) of the sample's own prediction, w of its neighbours' mean
    from adaptune.algorithms.neighbours import nearest_neighbours

    expected = 0.75 * probs + 0.25 * probs[nearest_neighbours(x, 5)].mean(1)
    assert torch.allclose(smooth_by_neighbours(probs, x, Smoothing(5, 0.25)), expected)
    with pytest.raises(ValueError):
        smooth_by_neighbours(probs, x[:10], Smoothing(5, 0.5))


def test_smoothing_resolves_by_input_kind():
    from adaptune.algorithms.domains import Domain, Task
    from adaptune.algorithms.ensemble import AUTO_SMOOTHING, Smoothing, resolve_smoothing
    from adaptune.algorithms.errors import InputError

    def task(kind: str) -> Task:
        x = torch.zeros(4, 3) if kind == "features" else torch.zeros(4, 1, 8, 8)
        domain = Domain("d", x, torch.zeros(4, dtype=torch.long))
        return Task("t", domain, domain, Domain("t", x), Domain("t", x), ("a", "b"), kind, "mlp")

    assert resolve_smoothing("auto", 0.5, task("features")) == AUTO_SMOOTHING["features"]
    assert resolve_smoothing("auto", 0.5, task("images")) is AUTO_SMOOTHING["images"] is None
    assert resolve_smoothing("none", 0.5, task("features")) is None
    assert resolve_smoothing(0, 0.5, task("features")) is None
    assert resolve_smoothing(20, 0.3, task("features")) == Smoothing(20, 0.3)
    with pytest.raises(InputError, match="smoothing"):
        resolve_smoothing(20, 0.3, task("images"))


def test_auto_smoothing_is_the_one_our_benchmark_derived():
    import json
    from dataclasses import asdict
    from pathlib import Path

    from adaptune.algorithms.ensemble import AUTO_SMOOTHING

    measured = json.loads((Path(__file__).resolve().parents[2] / "benchmarks/results/proxy_auto.json").read_text())
    assert {kind: None if rule is None else asdict(rule) for kind, rule in AUTO_SMOOTHING.items()} == \
        measured["smoothing"]
