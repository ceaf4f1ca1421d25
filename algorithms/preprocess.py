"""Preprocessing of feature tables, applied the same way to built-in and user data before any split.

``zscore`` standardises each domain with its own unlabeled statistics (mean and population std of all its
samples), the protocol of the Office-Caltech and Amazon benchmarks: a shift or rescaling of the features
between domains is removed before any method sees them. ``source-zscore`` standardises both domains with the
source statistics (the usual supervised recipe: the target keeps its offset). ``none`` keeps the values.
Images carry their own normalisation (see :mod:`.data`), so for them every choice means ``none``.
"""

from __future__ import annotations

import torch

from .errors import InputError

PREPROCESSING = ("zscore", "source-zscore", "none")
DEFAULT_PREPROCESS = "zscore"


def check_preprocess(kind: object) -> str:
    if kind not in PREPROCESSING:
        raise InputError("preprocess", f"expected one of: {', '.join(PREPROCESSING)}, got {kind!r}")
    return str(kind)


def effective_preprocess(kind: str, input_kind: str) -> str:
    """What is applied to a task of ``input_kind``: image tensors are never rescaled here."""
    return check_preprocess(kind) if input_kind == "features" else "none"


def standardise(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` z-scored with the per-feature mean and std of ``reference`` (same dtype as ``x``)."""
    # Population std, as MATLAB's zscore(x, 1) in the benchmarks' code; a constant feature keeps std 1.
    mean, std = reference.mean(dim=0), reference.std(dim=0, correction=0)
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))


def preprocess_domains(xs: torch.Tensor, xt: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole source and target feature matrices ``[N, D]`` -> preprocessed float32 copies (float64 inside).

    ``none`` returns float32 tensors of any shape unchanged (images included).
    """
    check_preprocess(kind)
    if kind == "none":
        return xs.float(), xt.float()
    xs64, xt64 = xs.to(torch.float64), xt.to(torch.float64)
    target_reference = xt64 if kind == "zscore" else xs64
    return standardise(xs64, xs64).float(), standardise(xt64, target_reference).float()
