"""The frozen-prefix cache: one computation per key across store instances and processes, atomic and disposable
files, a size bound, and keys that follow the weights' content."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import torch
from torch import nn

from adaptune.algorithms.domains import Domain
from adaptune.algorithms.features import DiskStore, prefix_key, weights_digest, weights_identity


def _entry(seed: int) -> torch.Tensor:
    return torch.randn(1024, generator=torch.Generator().manual_seed(seed))


class Counting:
    """A compute function that counts its calls."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self.value


def test_a_second_store_on_the_same_directory_reads_without_computing(tmp_path):
    compute = Counting(_entry(0))
    first = DiskStore(str(tmp_path))
    assert torch.equal(first.get_or_compute("k", compute), compute.value)
    assert torch.equal(first.get_or_compute("k", compute), compute.value)  # the memory layer
    other_process = DiskStore(str(tmp_path))
    assert torch.equal(other_process.get_or_compute("k", compute), compute.value)
    assert compute.calls == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock", "k.pt"]  # no temporary file left


def _race(directory: str, marker: str, barrier, out: str) -> None:
    """One of two processes asking for the same key at once; the compute is slow enough for the other to wait."""

    def compute() -> torch.Tensor:
        with open(marker, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return torch.randn(256)  # different in each process: the readers must get the writer's tensor

    barrier.wait()
    torch.save(DiskStore(directory).get_or_compute("shared", compute), out)


def test_two_processes_racing_on_a_key_compute_it_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    marker, outs = tmp_path / "computed", [tmp_path / f"out{i}.pt" for i in range(2)]
    workers = [context.Process(target=_race, args=(str(tmp_path / "cache"), str(marker), barrier, str(out)))
               for out in outs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(marker.read_text().splitlines()) == 1
    assert torch.equal(torch.load(outs[0]), torch.load(outs[1]))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not a tensor"])
def test_an_unreadable_cache_file_is_recomputed(tmp_path, damage):
    store, compute = DiskStore(str(tmp_path)), Counting(_entry(1))
    path = store.entry_path("k")
    if damage == "not a tensor":
        torch.save({"x": 1}, path)
    else:
        torch.save(_entry(2), path)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    assert torch.equal(store.get_or_compute("k", compute), compute.value) and compute.calls == 1
    assert torch.equal(torch.load(path, weights_only=True), compute.value)  # and replaced by a good one


def test_eviction_keeps_the_directory_under_its_bound_least_recently_used_first(tmp_path):
    unbounded = DiskStore(str(tmp_path))
    for key in ("a", "b"):
        unbounded.get_or_compute(key, lambda key=key: _entry(ord(key)))
    past = time.time() - 100
    os.utime(unbounded.entry_path("b"), (past, past))  # b was last used long ago, a before it
    os.utime(unbounded.entry_path("a"), (past - 1, past - 1))
    DiskStore(str(tmp_path)).get_or_compute("a", Counting(_entry(0)))  # a read from disk makes a recent again
    bound = int(2.5 * os.path.getsize(unbounded.entry_path("a")))  # two entries fit, three do not
    store = DiskStore(str(tmp_path), max_bytes=bound)
    store.get_or_compute("c", lambda: _entry(ord("c")))
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["a.pt", "c.pt"] and not (tmp_path / "b.lock").exists()
    assert sum(p.stat().st_size for p in tmp_path.glob("*.pt")) <= bound
    too_big = torch.zeros(bound)  # more than the whole bound: served from memory, never written
    assert store.get_or_compute("big", lambda: too_big) is too_big and not (tmp_path / "big.pt").exists()


def test_an_unwritable_directory_degrades_to_memory_with_a_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store, compute = DiskStore(str(blocker / "cache")), Counting(_entry(3))
    with pytest.warns(RuntimeWarning, match="cannot be written"):
        assert torch.equal(store.get_or_compute("k", compute), compute.value)
    assert torch.equal(store.get_or_compute("k", compute), compute.value) and compute.calls == 1


def test_the_key_follows_the_weights_file_content_not_its_path(tmp_path):
    weights, domain = tmp_path / "w.pt", Domain("d", torch.ones(4, 2))
    weights.write_bytes(b"first weights")
    before = weights_identity(str(weights), nn.Identity())
    assert before == weights_identity(str(weights), nn.Identity()) and weights_digest(str(weights)) in before
    weights.write_bytes(b"other weights!")  # the same path, new content (and size)
    after = weights_identity(str(weights), nn.Identity())
    assert after != before
    assert prefix_key("resnet18", before, 2, domain) != prefix_key("resnet18", after, 2, domain)
    assert prefix_key("resnet18", after, 2, domain) != prefix_key("resnet18", after, 3, domain)


def test_a_random_init_prefix_is_keyed_by_its_values():
    def prefix(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))

    assert weights_identity(None, prefix(0)) == weights_identity(None, prefix(0))  # seeded: shared
    assert weights_identity(None, prefix(0)) != weights_identity(None, prefix(1))


def test_a_timm_release_is_part_of_a_timm_models_key(monkeypatch):
    domain = Domain("d", torch.ones(4, 2))
    before = {name: prefix_key(name, "w", 2, domain) for name in ("timm:resnet18", "resnet18")}
    monkeypatch.setattr("importlib.metadata.version", lambda package: "99.0")  # another timm release installed
    assert prefix_key("timm:resnet18", "w", 2, domain) != before["timm:resnet18"]
    assert prefix_key("resnet18", "w", 2, domain) == before["resnet18"]
