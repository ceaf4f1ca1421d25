"""Preprocessing of feature tables, applied the same way to built-in and user data before any split.

``zscore`` standardises each domain with its own unlabeled statistics (mean and population std of all its
samples), the protocol of the Office-Caltech and Amazon benchmarks: a shift or rescaling of the features
between domains is removed before any method sees them. ``source-zscore`` standardises both domains with the
source statistics (the usual supervised recipe: the target keeps its offset). ``domain-scale`` centres each
domain on its own mean and divides it by one number, the root mean square of its features' std: the shift and
overall scale between domains go, and the features keep their relative scales (pixels near a blank border stay
small instead of being blown up to unit variance). ``zscore-clip`` is ``zscore`` with every value then clipped to
``±ZSCORE_CLIP``: still invariant to each column's unit, but a column that is nearly constant (a pixel blank in
almost every image, a rare word) can no longer turn its rare values into z-scores of 10 or 30 that outweigh the
rest of the row. ``none`` keeps the values. ``auto`` (the default) picks one of them per task from the unlabeled
features of both domains (:func:`resolve_preprocess`): ``zscore-clip`` where many columns differ in spread by an
order of magnitude between the domains (pixels blank in one domain and inked in the other: z-scoring each domain
would blow the blank side's noise up to unit variance), ``zscore`` otherwise.
Images carry their own normalisation (see :mod:`.data`), so for them every choice means ``none``.

A search may also be given several kinds (``preprocess: [zscore, domain-scale]``): each trial's kind is then
drawn by the sampler like any other knob and the proxy ranks the trials across kinds (see ``search.space``).
"""

from __future__ import annotations

import torch

from .errors import InputError

# Where zscore-clip cuts: the leave-one-group-out choice of benchmarks/baselines.py (its clip table).
ZSCORE_CLIP = 1.0
AUTO = "auto"
AUTO_CHOICES = ("zscore", "zscore-clip")  # what auto resolves to: at or below / above the share
# auto: a column's spread "differs" when one domain's std is under 1/SPREAD_RATIO of the other's, and the task
# gets zscore-clip when more than AUTO_CLIP_SHARE of its columns differ. The share is the leave-one-group-out
# choice of benchmarks/preprocess_pools.py (its auto table); the ratio is fixed at one order of magnitude.
SPREAD_RATIO = 10.0
AUTO_CLIP_SHARE = 0.14
# Each kind and what it does, as leaderboards and task descriptions say it (a task records the kind auto picked).
PREPROCESS_NOTES = {
    "zscore": "z-scored per domain with its own statistics",
    "source-zscore": "z-scored with the source statistics",
    "domain-scale": "centred per domain and divided by its features' RMS std",
    "zscore-clip": f"z-scored per domain with its own statistics and clipped to ±{ZSCORE_CLIP:g}",
    "none": "not rescaled",
    AUTO: f"z-scored per domain with its own statistics, and clipped to ±{ZSCORE_CLIP:g} where over "
          f"{AUTO_CLIP_SHARE:.0%} of the columns differ {SPREAD_RATIO:g}-fold in spread between the domains",
}
PREPROCESSING = tuple(PREPROCESS_NOTES)
# The kinds whose result does not depend on the unit of any column (a column in metres or in kilometres).
UNIT_INVARIANT = ("zscore", "source-zscore", "zscore-clip", AUTO)
DEFAULT_PREPROCESS = AUTO


def check_preprocess(kind: object) -> str:
    if kind not in PREPROCESSING:
        raise InputError("preprocess", f"expected one of: {', '.join(PREPROCESSING)}, got {kind!r}")
    return str(kind)


def check_preprocess_choices(value: object) -> tuple[str, ...]:
    """A kind, or a list of distinct kinds for the search to choose among per trial -> the kinds, in order."""
    if isinstance(value, str):
        return (check_preprocess(value),)
    expected = f"one of {', '.join(PREPROCESSING)}, or a list of them"
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError("preprocess", f"expected {expected}, got {value!r}")
    kinds = tuple(check_preprocess(kind) for kind in value)
    if AUTO in kinds:
        raise InputError("preprocess", f"expected {AUTO} alone (it picks one kind per task) or a list of other "
                         f"kinds, got {', '.join(kinds)}")
    if len(set(kinds)) != len(kinds):
        raise InputError("preprocess", f"expected distinct kinds, got {', '.join(kinds)}")
    return kinds


def effective_preprocess(kind: str, input_kind: str) -> str:
    """What is applied to a task of ``input_kind``: image tensors are never rescaled here (``auto`` is resolved
    later, from the data: :func:`resolve_preprocess`)."""
    return check_preprocess(kind) if input_kind == "features" else "none"


def spread_mismatch(xs: torch.Tensor, xt: torch.Tensor) -> float:
    """The share of columns whose population std in one domain is under 1/:data:`SPREAD_RATIO` of the other's
    (a column constant in both domains does not count)."""
    xs64, xt64 = xs.flatten(1).to(torch.float64), xt.flatten(1).to(torch.float64)
    std_s, std_t = xs64.std(dim=0, correction=0), xt64.std(dim=0, correction=0)
    low, high = torch.minimum(std_s, std_t), torch.maximum(std_s, std_t)
    return float(((high > 0) & (low * SPREAD_RATIO < high)).double().mean())


def auto_choice(mismatch: float, share: float = AUTO_CLIP_SHARE) -> str:
    """The kind ``auto`` applies to a task of :func:`spread_mismatch` ``mismatch`` when it cuts at ``share``."""
    return AUTO_CHOICES[mismatch > share]


def resolve_preprocess(kind: str, xs: torch.Tensor, xt: torch.Tensor) -> str:
    """The kind to apply to whole source and target feature matrices: ``kind`` itself, or for ``auto`` the kind
    its rule picks from their unlabeled features (labels are never read)."""
    if check_preprocess(kind) != AUTO:
        return kind
    return auto_choice(spread_mismatch(xs, xt))


def standardise(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` z-scored with the per-feature mean and std of ``reference`` (same dtype as ``x``)."""
    # Population std, as MATLAB's zscore(x, 1) in the benchmarks' code; a constant feature keeps std 1.
    mean, std = reference.mean(dim=0), reference.std(dim=0, correction=0)
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))


def domain_scale(x: torch.Tensor) -> torch.Tensor:
    """``x`` centred on its mean and divided by the root mean square of its features' population std (1 when
    every feature is constant)."""
    scale = x.std(dim=0, correction=0).pow(2).mean().sqrt()
    return (x - x.mean(dim=0)) / (scale if scale > 0 else 1.0)


def preprocess_domains(xs: torch.Tensor, xt: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole source and target feature matrices ``[N, D]`` -> preprocessed float32 copies (float64 inside).

    ``none`` returns float32 tensors of any shape unchanged (images included).
    """
    if check_preprocess(kind) == AUTO:
        kind = resolve_preprocess(kind, xs, xt)
    if kind == "none":
        return xs.float(), xt.float()
    xs64, xt64 = xs.to(torch.float64), xt.to(torch.float64)
    if kind == "domain-scale":
        return domain_scale(xs64).float(), domain_scale(xt64).float()
    target_reference = xs64 if kind == "source-zscore" else xt64
    xs64, xt64 = standardise(xs64, xs64), standardise(xt64, target_reference)
    if kind == "zscore-clip":
        xs64, xt64 = xs64.clamp(-ZSCORE_CLIP, ZSCORE_CLIP), xt64.clamp(-ZSCORE_CLIP, ZSCORE_CLIP)
    return xs64.float(), xt64.float()
