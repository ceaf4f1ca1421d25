import math

import pytest
import torch

from adaptune.algorithms.errors import InputError
from adaptune.algorithms.proxies import (
    PROXIES,
    Evaluation,
    compute_proxies,
    get_proxy,
    information_maximization,
    negative_entropy,
    oracle_accuracy,
    source_accuracy,
)


def _evaluation(target_probs, source_logits=None, source_labels=None):
    target_logits = torch.log(torch.tensor(target_probs, dtype=torch.float32))
    source_logits = torch.tensor(source_logits or [[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    source_labels = torch.tensor(source_labels or [0, 1, 1])
    return Evaluation(source_logits, source_labels, torch.zeros(len(source_labels), 2), target_logits,
                      torch.zeros(len(target_probs), 2))


def test_source_accuracy_hand_computed():
    assert source_accuracy(_evaluation([[0.5, 0.5]])) == pytest.approx(2 / 3)


def test_entropy_hand_computed():
    # rows: uniform over 2 classes (entropy ln 2) and certain (entropy 0): mean ln2 / 2, negated
    ev = _evaluation([[0.5, 0.5], [1.0, 0.0]])
    assert negative_entropy(ev) == pytest.approx(-math.log(2) / 2, abs=1e-6)


def test_information_maximization_hand_computed():
    # two confident, opposite predictions: mean prediction uniform (H = ln 2), each entropy 0 -> IM = ln 2
    assert information_maximization(_evaluation([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(math.log(2), abs=1e-6)
    # confident but always the same class: no diversity -> IM = 0
    assert information_maximization(_evaluation([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.0, abs=1e-6)
    # p = (0.9, 0.1) on both rows: H(mean) = H(p) -> 0
    assert information_maximization(_evaluation([[0.9, 0.1], [0.9, 0.1]])) == pytest.approx(0.0, abs=1e-6)


def test_higher_is_better_orientation():
    confident = _evaluation([[0.99, 0.01], [0.01, 0.99]])
    unsure = _evaluation([[0.6, 0.4], [0.4, 0.6]])
    assert negative_entropy(confident) > negative_entropy(unsure)
    assert information_maximization(confident) > information_maximization(unsure)


def test_compute_proxies_names_every_proxy():
    values = compute_proxies(_evaluation([[0.7, 0.3], [0.2, 0.8]]))
    assert set(values) == {f"proxy_{name}" for name in PROXIES}


def test_oracle_accuracy_kept_apart():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert oracle_accuracy(logits, torch.tensor([0, 0])) == pytest.approx(0.5)
    assert oracle_accuracy(logits, None) is None


def test_unknown_proxy_names_field():
    with pytest.raises(InputError) as error:
        get_proxy("accuracy")
    assert error.value.field == "proxy"
