"""`adaptune submit` (a Ray Job on a real head), `adaptune status`, and where `storage:` puts the Tune experiment.

The head is the cluster tests' ``ray start`` node from conftest.py (token auth on, the venv's bin on its PATH so the
job's driver finds ``adaptune``). Searches are a few short trials on ``synthetic:blobs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cli_helpers  # tests/search/cli_helpers.py
import pyarrow.parquet as pq
import pytest
from cli_helpers import adaptune, one_line_error

from adaptune.algorithms.proxies import auto_proxies
from adaptune.search.cli import main
from adaptune.search.jobs import format_status, read_status

BASE = {"task": "synthetic:blobs", "methods": ["source_only", "dann"], "trials": 2, "epochs": 2,
        "steps_per_epoch": 30, "batch_size": 16, "seed": 0, "quiet": True}


def write_config(directory: Path, name: str = "search.yaml", **overrides: Any) -> str:
    return cli_helpers.write_config(directory, BASE, name, **overrides)


def trials(out: Path):
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    return board[board["status"] != "ensemble"]


def experiment_dir(storage: Path, out: Path) -> Path:
    """The one experiment folder a search with ``storage:`` creates there: ``<run dir name>-<config hash>``."""
    folders = [p for p in storage.iterdir() if p.is_dir() and p.name.startswith(f"{out.name}-")]
    assert len(folders) == 1, list(storage.iterdir())
    return folders[0]


def check_experiment(folder: Path, n_trials: int) -> None:
    assert list(folder.glob("experiment_state-*.json")), sorted(p.name for p in folder.iterdir())
    trial_dirs = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("tune_trial_")]
    assert len(trial_dirs) == n_trials
    assert all((p / "result.json").exists() and list(p.glob("checkpoint_*")) for p in trial_dirs)


@pytest.mark.ray
def test_submit_runs_the_search_as_a_ray_job(ray_head, ray_tools, tmp_path):
    # storage as a file:// URI: the Tune experiment goes there, the leaderboard to --out.
    storage, out = tmp_path / "storage", tmp_path / "run"
    config = write_config(tmp_path, storage=f"file://{storage}")
    result = adaptune("submit", config, "--address", ray_head.dashboard, "--out", out, "--wait", env=ray_tools.env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip().endswith(": SUCCEEDED"), result.stdout
    board = trials(out)
    assert len(board) == 2 and board["status"].isin(["completed", "stopped"]).all()
    assert (out / "summary.json").exists() and not (out / "ray").exists()
    check_experiment(experiment_dir(storage, out), 2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["storage"] == f"file://{storage}" and summary["nodes"] == [ray_head.node_id]
    assert {"leaderboard.parquet", "history.parquet", "status.json", "summary.json", "config.yaml"} <= {
        p.name for p in out.iterdir()}

    result = adaptune("status", out, env=ray_tools.env(), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "state:    finished"
    assert lines[1] == "trials:   2 done, 0 running, 0 pending, 0 failed of 2"
    auto, _ = auto_proxies("features")  # a feature table, ranked by auto's ranking proxy
    assert lines[2].startswith(f"best:     {auto}=") and "oracle target_acc" in lines[2]
    assert lines[3] == "nodes:    1" and lines[4].startswith("elapsed:  ") and lines[4].endswith(" s")


def test_submit_refuses_bad_input_with_one_line(ray_tools, tmp_path):
    config = write_config(tmp_path)
    env = ray_tools.env()
    result = adaptune("submit", config, "--address", "http://127.0.0.1:8265", "--out", "relative/run", env=env,
                      timeout=120)
    assert result.returncode == 2
    one_line_error(result.stderr, "out")
    result = adaptune("submit", config, "--address", "127.0.0.1:8265", "--out", tmp_path / "run", env=env, timeout=120)
    assert result.returncode == 2
    one_line_error(result.stderr, "address")
    nobody = f"http://127.0.0.1:{ray_tools.free_port()}"  # nothing listens there
    result = adaptune("submit", config, "--address", nobody, "--out", tmp_path / "run", env=env, timeout=300)
    assert result.returncode == 2
    one_line_error(result.stderr, "address")
    assert not (tmp_path / "run").exists()


@pytest.mark.ray
def test_submit_without_the_token_is_refused(ray_head, ray_tools, tmp_path):
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    no_token = {k: v for k, v in ray_tools.env(HOME=str(empty_home)).items()
                if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    config = write_config(tmp_path)
    for env in (no_token, {**no_token, "RAY_AUTH_TOKEN": "0" * 32}):  # none at all; a wrong one (HTTP 403)
        result = adaptune("submit", config, "--address", ray_head.dashboard, "--out", tmp_path / "run", env=env,
                          timeout=300)
        assert result.returncode == 2
        one_line_error(result.stderr, "address")
    assert not (tmp_path / "run").exists()


def _status(state: str, **extra: Any) -> dict[str, Any]:
    return {"state": state, "done": 3, "running": 1, "pending": 2, "failed": 1, "planned": 7, "proxy": "im",
            "best": {"trial_id": "abc123", "method": "dann", "score": 0.61234, "target_acc": 0.8},
            "nodes": ["n1", "n2"], "started_at": 1000.0, "updated_at": 1190.0, **extra}


def test_format_status_shows_state_trials_best_nodes_elapsed():
    text = format_status(_status("finished"), now=1200.0)
    assert text.splitlines() == [
        "state:    finished",
        "trials:   3 done, 1 running, 2 pending, 1 failed of 7",
        "best:     im=0.6123 (dann, trial abc123), oracle target_acc 0.8000",
        "nodes:    2",
        "elapsed:  190 s",
    ]
    assert format_status(_status("interrupted"), now=1200.0).splitlines()[0] == (
        "state:    interrupted (`adaptune resume DIR` continues it)")
    assert format_status(_status("running"), now=1200.0).splitlines()[0] == "state:    running"
    capped = format_status(_status("running", steps=5200, step_budget=10_000), now=1200.0).splitlines()
    assert capped[2] == "steps:    5,200 of the budget's 10,000"
    stale = format_status(_status("running"), now=1190.0 + 600).splitlines()[0]
    assert stale.startswith("state:    running? (no update for 600 s") and "adaptune resume" in stale
    empty = format_status(_status("running", best=None, nodes=[]), now=1200.0).splitlines()
    assert empty[2] == "best:     none yet" and empty[3] == "nodes:    0"


def test_status_command_reads_the_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "status.json").write_text(json.dumps(_status("interrupted")))
    assert main(["status", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "state:    interrupted (`adaptune resume DIR` continues it)"
    (run / "summary.json").write_text(json.dumps({"state": "finished", "trials": 7}))
    assert read_status(str(run))["summary"]["trials"] == 7
    for broken in (tmp_path / "missing", tmp_path):  # not a directory; a directory without status.json
        with pytest.raises(SystemExit) as exit_info:
            main(["status", str(broken)])
        assert exit_info.value.code == 2
        one_line_error(capsys.readouterr().err, "run")
    for content in (b"{not json", b"[]", b"\xff\xfe\x00binary"):  # truncated, not an object, not text
        (run / "status.json").write_bytes(content)
        with pytest.raises(SystemExit):
            main(["status", str(run)])
        one_line_error(capsys.readouterr().err, "run")
    (run / "status.json").write_text(json.dumps(_status("finished")))
    (run / "summary.json").write_text('{"state": "fini')
    with pytest.raises(SystemExit):
        main(["status", str(run)])
    one_line_error(capsys.readouterr().err, "run")
