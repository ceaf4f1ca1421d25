"""A small synthetic task generated in memory: for tests and quick smoke runs, not for benchmarks.

Two Gaussian class clusters per class in ``dim`` dimensions; the target domain is the source rotated and
shifted, so a source-only model loses accuracy that alignment can recover.
"""

from __future__ import annotations

import torch

from .domains import Domain, Task
from .preprocess import DEFAULT_PREPROCESS, preprocess_domains, resolve_preprocess


def make_blobs_task(
    name: str = "synthetic:blobs", n_per_class: int = 100, num_classes: int = 3, dim: int = 8, seed: int = 0,
    preprocess: str = DEFAULT_PREPROCESS,
) -> Task:
    generator = torch.Generator().manual_seed(seed)
    centers = 3.0 * torch.randn(num_classes, dim, generator=generator)
    rotation, _ = torch.linalg.qr(torch.eye(dim) + 0.4 * torch.randn(dim, dim, generator=generator))
    shift = torch.randn(dim, generator=generator)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(num_classes).repeat_interleave(n)
        return centers[y] + torch.randn(len(y), dim, generator=generator), y

    xs, ys = sample(n_per_class)
    xv, yv = sample(max(2, n_per_class // 5))
    xt, yt = sample(n_per_class)
    xt = xt @ rotation.T + shift
    source = torch.cat([xs, xv])  # like user tables: whole domains
    preprocess = resolve_preprocess(preprocess, source, xt)
    source, xt = preprocess_domains(source, xt, preprocess)
    xs, xv = source[: len(xs)], source[len(xs) :]
    return Task(
        name=name,
        source_train=Domain("source", xs, ys),
        source_val=Domain("source_val", xv, yv),
        target_train=Domain("target", xt),
        target_val=Domain("target", xt),
        classes=tuple(str(c) for c in range(num_classes)),
        input_kind="features",
        default_backbone="mlp",
        target_oracle=yt,
        description="synthetic Gaussian clusters; target rotated and shifted",
        extra={"preprocess": preprocess},
    )
