"""The consensus picks of the proxy benchmark (benchmarks/consensus.py), on hand-computed predictions."""

from __future__ import annotations

import pytest
import torch

from benchmarks.consensus import consensus_agreement


def test_consensus_agreement_hand_computed_and_one_vote_per_group():
    a = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8]])  # predicts 0, 0, 1
    b = torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.3, 0.7]])  # 0, 1, 1
    c = torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])  # 1, 1, 0
    # consensus of all three: means (0.6, 0.4), (0.467, 0.533), (0.467, 0.533) -> 0, 1, 1
    agreement = consensus_agreement({"a": a, "b": b, "c": c})
    assert agreement == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 1 / 3})
    # b and c in one group: consensus = mean(a, mean(b, c)): (0.675, 0.325), (0.575, 0.425), (0.4, 0.6) -> 0, 0, 1
    grouped = consensus_agreement({"a": a, "b": b, "c": c}, {"a": "x", "b": "y", "c": "y"})
    assert grouped == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 0.0})
    assert consensus_agreement({}) == {}
