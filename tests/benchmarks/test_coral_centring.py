"""benchmarks.coral_centring compares the shipped CORAL with the paper's map of raw features from the same fit."""

from __future__ import annotations

import torch

from adaptune.algorithms.methods.subspace import CORAL
from benchmarks.coral_centring import PaperCORAL


def test_the_two_variants_share_the_fit_and_differ_only_by_the_domains_means():
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(200, 6, generator=g, dtype=torch.float64) + 2.0  # uncentred, like pixels or activations
    xt = torch.rand(150, 6, generator=g, dtype=torch.float64) * 3.0
    shipped, paper = (cls({**CORAL.defaults()}, 0, 3) for cls in (CORAL, PaperCORAL))
    shipped.fit(xs, xt)
    paper.fit(xs, xt)
    raw = paper.transform_source(xs)
    assert torch.allclose(raw, shipped.source_map(xs))
    assert torch.allclose(shipped.transform_source(xs), raw - shipped.source_map(xs.mean(0, keepdim=True)) + xt.mean(0))
    assert torch.allclose(shipped.transform_source(xs).mean(0), xt.mean(0))
    assert not torch.allclose(raw.mean(0), xt.mean(0), atol=0.1)
