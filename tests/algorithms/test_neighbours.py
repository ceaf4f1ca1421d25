from dataclasses import replace

import pytest
import torch

from adaptune.algorithms.domains import with_fewshot, with_target_neighbours
from adaptune.algorithms.neighbours import nearest_neighbours, neighbourhoods


def test_neighbourhoods_list_each_sample_then_its_nearest():
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    rows = neighbourhoods(x, k=3)
    assert rows.shape == (30, 4)
    assert torch.equal(rows[:, 0], torch.arange(30))
    assert torch.equal(rows[:, 1:], nearest_neighbours(x, 3))


def test_neighbourhoods_of_a_large_target_are_found_among_evenly_spaced_samples():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    rows = neighbourhoods(x, k=3, max_samples=10)
    kept = torch.linspace(0, 49, 10).long()
    assert torch.equal(rows[:, 0], kept)
    assert set(rows[:, 1:].flatten().tolist()) <= set(kept.tolist())
    assert torch.equal(rows[:, 1:], kept[nearest_neighbours(x[kept], 3)])


def test_a_task_finds_target_neighbours_in_its_input_space_and_keeps_them_through_mappings(blobs_task):
    task = with_target_neighbours(blobs_task)
    assert task.target_neighbours.shape == (len(task.target_val), 11)
    assert with_target_neighbours(task) is task  # found once
    doubled = task.map_domains(lambda d: replace(d, x=2 * d.x), lambda d: replace(d, x=-d.x))
    assert doubled.target_neighbours is task.target_neighbours  # the same samples in the same order
    assert with_fewshot(task, 2).target_neighbours is None  # fewer target samples: found again when needed
    assert with_target_neighbours(replace(blobs_task, input_kind="images")).target_neighbours is None


@pytest.mark.parametrize("method", ["tca", "dann"])
def test_a_trial_scores_agreement_in_the_input_space_whatever_its_method_transforms(blobs_task, method):
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.loop import TrialSpec, build
    from adaptune.algorithms.methods import get_method

    spec = TrialSpec(method, {}, "mlp", epochs=1)
    method_cls = get_method(method)
    data, _, _ = build(blobs_task, spec, method_cls, method_cls.defaults(), MemoryStore(), torch.device("cpu"))
    assert torch.equal(data.target_neighbours, with_target_neighbours(blobs_task).target_neighbours)
