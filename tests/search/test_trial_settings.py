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


def test_a_checkpoint_proxy_keeps_its_best_epoch_and_trials_report_the_proxy_there(tmp_path):
    from adaptune.search.trial import RANKING_SCORE, RankingAtCheckpoint

    prepared = _prepared(tmp_path, proxy="neighbour_agreement", checkpoint_proxy="im")
    settings = trial_settings(prepared, storage=str(tmp_path / "ray"))
    assert prepared.ranks_at_checkpoint and settings.metric == RANKING_SCORE
    assert (settings.checkpoint_metric, settings.ranked_proxy_metric) == ("proxy_im", "proxy_neighbour_agreement")
    ranking = RankingAtCheckpoint("proxy_neighbour_agreement", "proxy_im")
    reported = [ranking({"proxy_im": im, "proxy_neighbour_agreement": agreement})
                for im, agreement in ((float("nan"), 0.7), (0.2, 0.9), (0.5, 0.4), (0.3, 0.8), (0.5, 0.1))]
    # NaN until im is finite; then neighbour_agreement at im's best epoch so far (a tie keeps the earlier epoch).
    assert reported[1:] == [0.9, 0.4, 0.4, 0.4] and reported[0] != reported[0]
    same = _prepared(tmp_path, proxy="im", checkpoint_proxy="im")
    assert not same.ranks_at_checkpoint and trial_settings(same, storage="s").ranked_proxy_metric is None
