"""Consensus picks: a selection rule the proxy benchmark measured against the product's ensemble row.

The rule picks the one trial whose target predictions agree most with the average of all trials (or of each
method family's average). benchmarks/results/proxies.md compares it with the top-k ensemble; it was not
adopted, so it lives here rather than in ``adaptune.algorithms.ensemble``.
"""

from __future__ import annotations

from typing import Any

import torch

from adaptune.algorithms.ensemble import average_predictions


def consensus_agreement(member_probs: dict[Any, torch.Tensor], groups: dict[Any, str] | None = None
                        ) -> dict[Any, float]:
    """Each member's agreement with the consensus of all members: the share of target samples where its
    predicted class equals the class of the averaged predictions.

    With ``groups`` (e.g. each trial's method family) the consensus averages the group means, so that a group
    with many members, or one that a proxy over-rates, gets one vote like the others. Label-free: it reads
    target predictions only.
    """
    if not member_probs:
        return {}
    if groups is None:
        consensus = average_predictions(list(member_probs.values()))
    else:
        by_group: dict[str, list[torch.Tensor]] = {}
        for key, probs in member_probs.items():
            by_group.setdefault(groups[key], []).append(probs)
        consensus = average_predictions([average_predictions(members) for members in by_group.values()])
    labels = consensus.argmax(1)
    return {key: (probs.argmax(1) == labels).float().mean().item() for key, probs in member_probs.items()}
