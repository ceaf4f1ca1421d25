"""Nearest target samples in the input feature space: the neighbourhoods that the ensemble's smoothing mixes over
and that the ``neighbour_agreement`` proxy scores predictions against."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .methods.linalg import evenly_spaced

# Neighbours per target sample that a task finds once (``Task.target_neighbours``), for the ``neighbour_agreement``
# proxy: small enough to stay inside a class on the smallest targets (about 15 samples per class), large enough
# that one odd neighbour does not decide a sample's agreement.
TARGET_NEIGHBOURS = 10
# Target samples whose neighbourhoods the proxy reads: the search costs O(samples^2 x features), once per trial
# process; above this many, evenly spaced samples and their neighbours among themselves stand for the target.
NEIGHBOURHOOD_MAX_SAMPLES = 8192
_ROWS_PER_BLOCK = 1024  # similarity rows computed at once: memory stays O(block x N), never O(N^2)


def nearest_neighbours(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[N, k]`` of each row's ``k`` most cosine-similar other rows of ``features`` ``[N, ...]`` (never
    itself), computed a block of rows at a time."""
    x = F.normalize(features.flatten(1).float(), dim=1)
    n = len(x)
    k = min(k, n - 1)
    out = torch.empty(n, k, dtype=torch.long)
    for start in range(0, n, _ROWS_PER_BLOCK):
        rows = torch.arange(start, min(start + _ROWS_PER_BLOCK, n))
        similarity = x[rows] @ x.T
        similarity[torch.arange(len(rows)), rows] = -math.inf  # a sample is not its own neighbour
        out[rows] = similarity.topk(k, dim=1).indices
    return out


def neighbourhoods(features: torch.Tensor, k: int = TARGET_NEIGHBOURS,
                   max_samples: int = NEIGHBOURHOOD_MAX_SAMPLES) -> torch.Tensor:
    """Rows ``[M, 1 + k]``: a sample's index into ``features`` then its ``k`` nearest samples' (cosine), for every
    sample, or for ``max_samples`` evenly spaced ones with their neighbours found among themselves."""
    rows = torch.arange(len(features))[evenly_spaced(len(features), max_samples)]
    return torch.cat([rows[:, None], rows[nearest_neighbours(features[rows], k)]], dim=1)
