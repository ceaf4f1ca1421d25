import copy
import math

import pytest
import torch

from adaptune.algorithms.features import MemoryStore
from adaptune.algorithms.loop import Diverged, TrialSpec, run_trial


def _collect(task, spec, **kwargs):
    reports = []
    run_trial(task, spec, lambda metrics, state: reports.append((metrics, copy.deepcopy(state()))), **kwargs)
    return reports


def test_reports_every_epoch_with_proxies_and_oracle(blobs_task):
    reports = _collect(blobs_task, TrialSpec("dann", {"lr": 0.01}, "mlp", epochs=3, batch_size=16))
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3]
    metrics = reports[-1][0]
    for key in ("proxy_source_acc", "proxy_entropy", "proxy_im", "proxy_neighbour_agreement", "target_acc",
                "source_acc", "train_adv_loss"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["target_acc"] <= 1.0


def test_resume_from_state_continues_identically(blobs_task):
    spec = TrialSpec("source_only", {"lr": 0.05}, "mlp", epochs=3, batch_size=16, seed=3)
    straight = _collect(blobs_task, spec)
    first = straight[0][1]  # the state saved after epoch 1
    resumed = _collect(blobs_task, spec, resume_state=first)
    assert [m["epoch"] for m, _ in resumed] == [2, 3]
    assert resumed[-1][0]["proxy_im"] == pytest.approx(straight[-1][0]["proxy_im"], abs=1e-5)


def test_frozen_prefix_is_computed_once_per_store_and_each_trial_reports_its_computations(blobs_task):
    store = MemoryStore()
    computed = []
    for lr in (0.01, 0.02):
        spec = TrialSpec("source_only", {"lr": lr, "freeze_depth": 1}, "mlp", epochs=2)
        computed.append([metrics["features_computed"] for metrics, _ in _collect(blobs_task, spec, store=store)])
    assert len(store._items) == 3  # source_train, source_val, target (train and val are the same samples)
    assert computed == [[3, 3], [0, 0]]  # the second trial reads all three from the store


def test_nan_loss_raises_diverged(blobs_task):
    task = blobs_task
    poisoned = task.source_train.x.clone()
    poisoned[0, 0] = float("nan")
    from dataclasses import replace

    task = replace(task, source_train=replace(task.source_train, x=poisoned))
    with pytest.raises(Diverged):
        run_trial(task, TrialSpec("source_only", {"lr": 0.01}, "mlp", epochs=1, batch_size=500), lambda m, s: None)


def test_seed_makes_a_trial_reproducible(blobs_task):
    spec = TrialSpec("dann", {"lr": 0.01}, "mlp", epochs=2, batch_size=16, seed=7)
    a, b = _collect(blobs_task, spec), _collect(blobs_task, spec)
    assert a[-1][0]["proxy_im"] == b[-1][0]["proxy_im"]
    assert torch.equal(a[-1][1]["model"]["classifier.head.weight"], b[-1][1]["model"]["classifier.head.weight"])


def test_fewshot_and_circular_proxies_and_predictions_in_the_state(blobs_task):
    from adaptune.algorithms.domains import with_fewshot
    from adaptune.algorithms.loop import PREDICTIONS

    task = with_fewshot(blobs_task, 2)
    reports = _collect(task, TrialSpec("source_only", {"lr": 0.05}, "mlp", epochs=2, batch_size=16))
    (first, _), (last, state) = reports
    assert math.isfinite(first["proxy_fewshot"]) and math.isfinite(last["proxy_fewshot"])
    assert math.isnan(first["proxy_circular"]) and 0.0 <= last["proxy_circular"] <= 1.0  # final checkpoint only
    probs = state[PREDICTIONS]
    assert probs.shape == (len(task.target_val), task.num_classes) and probs.dtype == torch.float16
    assert torch.allclose(probs.float().sum(1), torch.ones(len(probs)), atol=1e-2)


def test_a_warm_start_begins_from_the_shared_source_only_model(blobs_task):
    from adaptune.algorithms.features import CountingStore
    from adaptune.algorithms.loop import WARM_START_EPOCHS

    settings = {"batch_size": 16, "steps_per_epoch": 5, "seed": 4}
    source_only = _collect(blobs_task, TrialSpec("source_only", {}, "mlp", epochs=WARM_START_EPOCHS, **settings))
    trained = {k: v for k, v in source_only[-1][1]["model"].items() if k.startswith("classifier.")}
    store = CountingStore(MemoryStore())
    # lr 0: the parameters stay where the trial started (batch-norm statistics still move, so they are not compared)
    dann = _collect(blobs_task, TrialSpec("dann", {"lr": 0.0}, "mlp", epochs=1, warm_start="source", **settings),
                    store=store)
    started = dann[-1][1]["model"]
    parameters = [name for name in trained if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(parameters) >= 6  # the mlp blocks, the bottleneck and the head
    for name in parameters:
        assert torch.equal(started[name], trained[name]), name
    assert dann[-1][0]["features_computed"] == 1 and store.computed == 1
    # Another method reads the same entry; another seed starts from its own initialisation, so computes another.
    mcc = _collect(blobs_task, TrialSpec("mcc", {}, "mlp", epochs=1, warm_start="source", **settings), store=store)
    assert mcc[-1][0]["features_computed"] == 0
    other_seed = {**settings, "seed": 5}
    _collect(blobs_task, TrialSpec("mcc", {}, "mlp", epochs=1, warm_start="source", **other_seed), store=store)
    assert store.computed == 2
    # A trial resumed from its checkpoint continues from there instead.
    resumed = _collect(blobs_task, TrialSpec("mcc", {}, "mlp", epochs=2, warm_start="source", **settings),
                       store=MemoryStore(), resume_state=mcc[-1][1])
    assert resumed[-1][0]["features_computed"] == 0


def test_an_unknown_warm_start_is_refused(blobs_task):
    from adaptune.algorithms.errors import InputError

    with pytest.raises(InputError, match="warm_start"):
        run_trial(blobs_task, TrialSpec("dann", {}, "mlp", epochs=1, warm_start="target"), lambda m, s: None)
