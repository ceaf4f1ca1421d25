"""What every trial of a search shares: built from the prepared config, and pickled by Ray to every trial process."""

import dataclasses
import pickle

import pytest
from ray import cloudpickle

from adaptune.search.config import build_config
from adaptune.search.run import prepare, trial_settings


def _prepared(tmp_path, **overrides):
    raw = {"task": "synthetic:blobs", "methods": ["source_only", "dann"], "trials": 2, "epochs": 2,
           "out": str(tmp_path / "run"), "proxy": "im", "quiet": True, **overrides}
    return prepare(build_config(raw))


def test_trial_settings_pickle_and_make_each_trials_spec(tmp_path):
    prepared = _prepared(tmp_path)
    settings = trial_settings(prepared, storage=str(tmp_path / "run" / "ray"))
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        assert loads(dumps(settings)) == settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 3  # shared by every trial: no trial may change it for the others
    assert settings.metric == settings.checkpoint_metric == "proxy_im"
    spec = settings.trial_spec({"method": "dann", "lr": 0.01, "adv_weight": 1.0})
    assert spec.method == "dann" and spec.hparams == {"lr": 0.01, "adv_weight": 1.0}
    assert (spec.epochs, spec.steps_per_epoch, spec.backbone) == (2, prepared.plan.steps_per_epoch, prepared.backbone)
    assert settings.load_task().target_oracle is prepared.task.target_oracle  # the driver's task, cached
    # Target neighbourhoods are found once per trial process, and never on the driver, which scores no trial.
    assert prepared.task.target_neighbours is None
    assert settings.load_task().target_neighbours is not None and settings.load_task() is settings.load_task()


def test_trials_share_frozen_features_in_the_run_or_the_configured_cache(tmp_path):
    from adaptune.algorithms.features import DiskStore

    settings = trial_settings(_prepared(tmp_path), storage=str(tmp_path / "ray"))
    assert settings.feature_cache == str(tmp_path / "run" / "features") and settings.feature_cache_max_bytes == 20e9
    store = settings.feature_store()
    assert isinstance(store, DiskStore) and store is settings.feature_store()  # one per process: its memory layer
    shared = trial_settings(_prepared(tmp_path, feature_cache=str(tmp_path / "cache"), feature_cache_max_gb=0.5),
                            storage=str(tmp_path / "ray"))
    assert shared.feature_cache == str(tmp_path / "cache") and shared.feature_cache_max_bytes == 500_000_000


def test_a_final_only_proxy_keeps_the_last_checkpoint(tmp_path):
    settings = trial_settings(_prepared(tmp_path, proxy="circular"), storage=str(tmp_path / "ray"))
    assert settings.metric == "proxy_circular" and settings.checkpoint_metric is None


def test_with_a_checkpoint_proxy_the_searcher_and_scheduler_follow_it(tmp_path):
    prepared = _prepared(tmp_path, proxy="neighbour_agreement", checkpoint_proxy="im")
    settings = trial_settings(prepared, storage=str(tmp_path / "ray"))
    assert prepared.ranks_at_checkpoint and prepared.proxy_metric == "proxy_neighbour_agreement"
    assert (settings.metric, settings.checkpoint_metric) == ("proxy_im", "proxy_im")
    same = _prepared(tmp_path, proxy="im", checkpoint_proxy="im")
    assert not same.ranks_at_checkpoint and trial_settings(same, storage="s").metric == "proxy_im"
