"""The recorder's progress line and status, without a search (the Tune hooks are covered by test_search_ray)."""

import json

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


def test_status_file_is_written_with_the_leaderboard(tmp_path):
    recorder = _recorder(tmp_path)
    recorder.rows = {"a": {"trial_id": "a", "status": "completed", "method": "dann", "score": 0.5, "target_acc": 0.8}}
    recorder.write()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "running" and status["planned"] == 10
    assert status["best"] == {"trial_id": "a", "method": "dann", "score": 0.5, "target_acc": 0.8}
    assert (tmp_path / "leaderboard.parquet").exists()
