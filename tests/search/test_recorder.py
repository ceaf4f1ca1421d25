"""The recorder's progress line and status, without a search (the Tune hooks are covered by test_search_ray)."""

import json

import pytest

from adaptune.search.recorder import Recorder


def _recorder(tmp_path, **kwargs):
    return Recorder(str(tmp_path), proxy="im", epochs=3, total_trials=10, param_names=["lr"], proxy_names=["im"],
                    config_hash="abc", seed=0, versions="{}", quiet=True, **kwargs)


def test_progress_line_counts_best_eta_and_nodes(tmp_path):
    recorder = _recorder(tmp_path)
    recorder.started = 1000.0
    recorder.counts = {"done": 3, "running": 2, "pending": 4, "failed": 1}
    recorder.rows = {"a": {"trial_id": "a", "status": "completed", "method": "dann", "score": 0.5},
                     "b": {"trial_id": "b", "status": "completed", "method": "mcc", "score": 0.7}}
    recorder.running_by_node = {"node-one-id": 1, "node-two-id": 1}
    line = recorder.progress_line(now=1100.0)
    assert "3 done, 2 running, 4 pending, 1 failed of 10" in line
    assert "best im=0.7000 (mcc)" in line
    # 100 s for 4 finished trials, 4 pending + 2 running at half weight left: 25 s x 5 = 125 s
    assert "ETA ~2m05s" in line
    assert "nodes node-o:1 node-t:1" in line
    assert "ETA" not in recorder.progress_line(final=True, now=1100.0)


def test_a_step_budget_shortens_the_eta_and_ends_what_is_pending(tmp_path):
    recorder = _recorder(tmp_path, step_budget=1000)
    recorder.started = 1000.0
    recorder.rows = {"a": {"trial_id": "a", "status": "completed", "method": "dann", "score": 0.5, "steps": 300},
                     "b": {"trial_id": "b", "status": "completed", "method": "coral", "score": 0.4, "steps": 50},
                     "c": {"trial_id": "c", "status": "running", "method": "mcc", "score": 0.3, "steps": 100}}
    recorder._count([])
    assert recorder.counts["pending"] == 8 and recorder.steps_spent() == 400  # coral: closed form, no steps
    # 200 s for 400 of 1000 steps: 300 s more, sooner than 8 pending trials at 100 s each
    assert "ETA ~5m00s" in recorder.progress_line(now=1200.0)
    recorder.rows["c"]["steps"] = 700  # the budget is spent: no trial starts any more
    recorder._count([])
    assert recorder.counts["pending"] == 0
    assert recorder.status()["steps"] == 1000 and recorder.status()["step_budget"] == 1000


def test_status_file_is_written_with_the_leaderboard(tmp_path):
    recorder = _recorder(tmp_path)
    recorder.rows = {"a": {"trial_id": "a", "status": "completed", "method": "dann", "score": 0.5, "target_acc": 0.8}}
    recorder.write()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "running" and status["planned"] == 10
    assert status["best"] == {"trial_id": "a", "method": "dann", "score": 0.5, "target_acc": 0.8}
    assert (tmp_path / "leaderboard.parquet").exists()


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray: Tune's trial directories live under its session directory."""
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _failed_trial(tmp_path, name: str, error: Exception, max_failures: int, failures: int = 1):
    """A real Tune trial that failed ``failures`` times with ``error`` while requeued (PENDING)."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    storage = StorageContext(storage_path=str(tmp_path / "ray"), experiment_dir_name="exp", trial_dir_name=name)
    trial = Trial("trainable", config={"method": "dann"}, stub=True, storage=storage, max_failures=max_failures,
                  trial_id=name)
    trial.init_local_path()
    trial.set_status(Trial.PENDING)
    for _ in range(failures):
        trial.handle_error(error)
    trial.set_status(Trial.ERROR)
    return trial


@pytest.mark.ray
def test_a_trial_errored_by_its_lost_node_with_retries_left_is_marked_lost(local_ray, tmp_path):
    from ray.exceptions import ActorDiedError, RayTaskError

    raised = RayTaskError("train", "Traceback ...\nRuntimeError: boom", RuntimeError("boom")).as_instanceof_cause()
    recorder = _recorder(tmp_path)
    race = _failed_trial(tmp_path, "race", ActorDiedError(), max_failures=3, failures=2)  # Tune's race
    recorder.on_trial_error(0, [race], race)
    assert recorder.lost == {"race"} and recorder.errors_all_lost()
    assert recorder.rows["race"]["status"] == "error"

    used_up = _failed_trial(tmp_path, "used_up", ActorDiedError(), max_failures=1, failures=2)
    recorder.on_trial_error(0, [used_up], used_up)
    assert recorder.lost == {"race"} and not recorder.errors_all_lost()  # its retries were spent: stays an error

    recorder = _recorder(tmp_path / "other")
    code = _failed_trial(tmp_path, "code", raised, max_failures=3)
    recorder.on_trial_error(0, [code], code)
    assert recorder.lost == set() and not recorder.errors_all_lost()
    assert "RuntimeError" in recorder.rows["code"]["error"]

    recorder = _recorder(tmp_path / "third")
    recorder.on_trial_error(0, [race], race)
    recorder.reopen_errors()  # the rerun: the row is running again and nothing is lost any more
    assert recorder.rows["race"]["status"] == "running" and recorder.lost == set()
    assert not recorder.errors_all_lost()


@pytest.mark.ray
def test_a_trial_that_returned_without_any_result_is_an_error_not_a_stopped_trial(local_ray, tmp_path):
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    from adaptune.search.recorder import NO_RESULT

    def trial(name: str, last_result: dict) -> Trial:
        storage = StorageContext(storage_path=str(tmp_path / "ray"), experiment_dir_name="exp", trial_dir_name=name)
        made = Trial("trainable", config={"method": "dann"}, stub=True, storage=storage, trial_id=name)
        made.run_metadata.last_result = last_result
        return made

    recorder = _recorder(tmp_path)
    silent = trial("silent", {"done": True})  # what Tune completes when the function returned with no report
    cut = trial("cut", {})  # ended by the search (e.g. its time budget) before its first epoch
    for each in (silent, cut):
        recorder.on_trial_start(0, [each], each)
        recorder.on_trial_complete(0, [each], each)
    assert recorder.rows["silent"]["status"] == "error" and recorder.rows["silent"]["error"] == NO_RESULT
    assert recorder.rows["cut"]["status"] == "stopped"
    recorder.reopen_errors()  # resume --retry-errors reruns it
    assert recorder.rows["silent"]["status"] == "running"


def test_with_a_checkpoint_proxy_a_row_is_its_best_epoch_by_it_scored_by_the_selecting_proxy(tmp_path):
    recorder = Recorder(str(tmp_path), proxy="neighbour_agreement", checkpoint_proxy="im", epochs=3, total_trials=1,
                        param_names=["lr"], proxy_names=["im", "neighbour_agreement"], config_hash="abc", seed=0,
                        versions="{}", quiet=True)
    row = {"trial_id": "a", "status": "running"}
    for epoch, im, agreement in ((1, 0.2, 0.9), (2, 0.5, 0.4), (3, 0.3, 0.8)):
        recorder._update_row(row, {"epoch": epoch, "proxy_im": im, "proxy_neighbour_agreement": agreement,
                                   "target_acc": epoch / 10})
    # im is best at epoch 2: the row is that epoch, scored by neighbour_agreement there, not by its best (0.9).
    assert (row["best_epoch"], row["score"], row["target_acc"], row["epochs"]) == (2, 0.4, 0.2, 3)
    assert recorder.status()["checkpoint_proxy"] == "im"
