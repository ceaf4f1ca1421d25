"""Run the frozen prefix of a backbone once per (backbone, weights, depth, data) and reuse its outputs.

The frozen blocks are a pure function of the input, so a trial trains only on their outputs. A
:class:`FeatureStore` decides how long those outputs live: :class:`MemoryStore` keeps them for the process;
a store shared across trials (e.g. on disk) plugs in here without changing the trial interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import torch
from torch import nn

from .domains import Domain, Task


class FeatureStore(Protocol):
    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor: ...


class MemoryStore:
    """Keeps encoded domains in a dict for the life of the process."""

    def __init__(self) -> None:
        self._items: dict[str, torch.Tensor] = {}

    def get_or_compute(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key not in self._items:
            self._items[key] = compute()
        return self._items[key]


@torch.no_grad()
def run_blocks(blocks: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Apply ``blocks`` in eval mode to ``x`` in batches; the result lives on the CPU."""
    blocks = blocks.to(device).eval()
    return torch.cat([blocks(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def prefix_key(backbone: str, weights: str | None, freeze_depth: int, domain: Domain) -> str:
    raw = f"{backbone}|{weights}|{freeze_depth}|{domain.name}|{domain.fingerprint()}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def encode_task(
    task: Task,
    frozen: nn.Module,
    *,
    backbone: str,
    weights: str | None,
    freeze_depth: int,
    store: FeatureStore,
    device: torch.device,
    batch_size: int = 256,
) -> Task:
    """The same task with every domain's inputs replaced by the frozen prefix's outputs."""
    if freeze_depth == 0:
        return task

    def encode(domain: Domain) -> Domain:
        key = prefix_key(backbone, weights, freeze_depth, domain)
        x = store.get_or_compute(key, lambda: run_blocks(frozen, domain.x, batch_size, device))
        return replace(domain, x=x)

    return task.map_domains(encode, encode)
