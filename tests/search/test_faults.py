"""Fault tolerance on real Ray (no mocks): failing trials, a lost node, a killed driver, Ctrl-C,
a writer killed mid-write, and token authentication.

The cluster is ``ray start`` nodes on 127.0.0.1 (see conftest.py): a head with 2 CPUs and token auth (shared
with the other cluster test files), plus worker nodes started per test. Searches run as ``adaptune`` subprocesses
on ``synthetic:blobs`` with a few short epochs (``steps_per_epoch``), so a trial takes seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cli_helpers  # tests/search/cli_helpers.py
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_helpers import BIN, adaptune, one_line_error

from adaptune.reports.leaderboard import FINISHED
from adaptune.reports.run_dir import RunDir, read_parquet_once
from adaptune.search.cli import main

BASE = {"task": "synthetic:blobs", "methods": ["source_only", "dann"], "trials": 4, "epochs": 3,
        "steps_per_epoch": 40, "batch_size": 16, "seed": 0, "quiet": True,
        "scheduler": {"grace_period": 3}}  # no early stopping: every trial that survives runs all its epochs


def write_config(directory: Path, name: str = "search.yaml", **overrides: Any) -> str:
    return cli_helpers.write_config(directory, BASE, name, **overrides)


_DRIVERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_driver_left_behind():
    yield
    while _DRIVERS:
        proc = _DRIVERS.pop()
        if proc.poll() is None:  # a test failed before its search ended
            proc.kill()
            proc.wait(timeout=60)


def start_adaptune(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    # Its own session: a driver that starts a local Ray must never signal the test's process group.
    with open(log, "w") as handle:
        _DRIVERS.append(subprocess.Popen([f"{BIN}/adaptune", *map(str, args)], env=env, stdout=handle,
                                         stderr=subprocess.STDOUT, start_new_session=True))
    return _DRIVERS[-1]


def finished(out: Path) -> pd.DataFrame:
    """The trials in the leaderboard now (empty before the first one finishes)."""
    if not (out / "leaderboard.parquet").exists():
        return pd.DataFrame(columns=["trial_id", "status", "score", "node_id"])
    board = read_parquet_once(out / "leaderboard.parquet").to_pandas()
    return board[board["status"] != "ensemble"].reset_index(drop=True)


def wait_until(predicate: Callable[[], Any], timeout_s: float, proc: subprocess.Popen, log: Path) -> Any:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the search ended (exit {proc.returncode}) first:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"condition not met in {timeout_s} s:\n{log.read_text()[-3000:]}")


def tune_results(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every result Tune logged per trial (``result.json`` in its directory), in order; [] for a trial that has
    started but not reported yet."""
    results: dict[str, list[dict[str, Any]]] = {}
    for directory in (out / "ray" / "tune").glob("tune_trial_*"):
        trial_results = results.setdefault(directory.name.split("_")[2], [])
        path = directory / "result.json"
        for line in path.read_text().splitlines() if path.exists() else ():
            try:
                trial_results.append(json.loads(line))
            except ValueError:  # a line being written
                pass
    return results


@pytest.mark.ray
def test_failing_and_diverging_trials_are_recorded_and_the_search_goes_on(ray_head, worker_nodes, ray_tools, tmp_path):
    # ADAPTUNE_FAULT=raise@2 in the environment of one node's processes only: every trial placed there raises
    # at epoch 2 (max_failures 0: no retry). A trial takes a whole node (2 CPUs), so the two trials, which start
    # together, run one on each node: one fails and one completes.
    faulty = worker_nodes(ADAPTUNE_FAULT="raise@2")
    out = tmp_path / "faults"
    config = write_config(tmp_path, trials=2, max_failures=0, resources={"cpus_per_trial": 2})
    result = adaptune("search", config, "--address", ray_head.address, "--out", out, env=ray_tools.env())
    assert result.returncode == 0, result.stderr[-3000:]
    board = finished(out)
    assert len(board) == 2 and board["trial_id"].is_unique
    failed, done = board[board["status"] == "error"], board[board["status"].isin(FINISHED)]
    assert len(failed) == 1 and len(done) == 1, board[["status", "node_id"]]
    assert failed["error"].str.contains("RuntimeError: injected fault at epoch 2").all(), failed["error"].tolist()
    assert (failed["node_id"] == faulty.node_id).all() and (failed["epochs"] == 1).all()
    assert failed["rank"].isna().all()
    assert (done["status"] == "completed").all() and (done["epochs"] == 3).all() and done["error"].isna().all()
    assert (done["node_id"] == ray_head.node_id).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["statuses"]["error"] == len(failed)

    # Resume refuses a finished run unless asked to retry its errors; with --retry-errors, once the faulty node
    # is gone, each failed trial reruns from its epoch-1 checkpoint on the head and replaces its error row.
    refused = adaptune("resume", out, "--address", ray_head.address, env=ray_tools.env())
    assert refused.returncode == 2 and "--retry-errors" in refused.stderr, refused.stderr[-2000:]
    faulty.stop()
    result = adaptune("resume", out, "--retry-errors", "--address", ray_head.address, env=ray_tools.env())
    assert result.returncode == 0, result.stderr[-3000:]
    board = finished(out)
    assert len(board) == 2 and board["trial_id"].is_unique and board["status"].eq("completed").all(), board
    assert board["error"].isna().all() and (board["epochs"] == 3).all()
    retried = board.set_index("trial_id").loc[failed["trial_id"]]
    assert (retried["node_id"] == ray_head.node_id).all()
    history = read_parquet_once(out / "history.parquet").to_pandas()
    assert not history.duplicated(["trial_id", "epoch"]).any() and len(history) == 2 * 3
    results = tune_results(out)
    for trial_id in failed["trial_id"]:  # restored from its checkpoint: epoch 1 is not trained again
        assert [r["epoch"] for r in results[trial_id]] == [1, 2, 3], results[trial_id]
    assert json.loads((out / "summary.json").read_text())["statuses"] == {"completed": 2}


@pytest.mark.ray
def test_trials_spread_over_two_nodes_and_survive_losing_one(ray_head, worker_nodes, ray_tools, tmp_path):
    worker = worker_nodes()
    out, log = tmp_path / "run", tmp_path / "search.log"
    # Every trial freezes the first block: its outputs go into the run's feature cache, which both nodes see.
    config = write_config(tmp_path, trials=6, epochs=4, steps_per_epoch=150, scheduler={"grace_period": 4},
                          search_space={"freeze_depth": [1, 1]})
    proc = start_adaptune("search", config, "--address", ray_head.address, "--out", out, env=ray_tools.env(), log=log)

    def running_on_worker() -> list[str]:
        """Trials running on the worker with 1-2 of 4 epochs checkpointed.

        Not while any trial is starting (no result yet): a node lost then can leave that trial with two failed
        calls in flight on its actor, and Ray Tune 2.60 requeues the trial on the first failure and errors it
        on the second (the trial is PENDING by then, and max_failures is not consulted). Not waiting for a
        trial to finish on the worker first: the first trials to end may all be the head's, and then the
        worker gets no second trial to lose."""
        board, results = finished(out), tune_results(out)
        if not all(results.values()):
            return []
        return [trial_id for trial_id, trial_results in results.items()
                if trial_id not in set(board["trial_id"]) and trial_results[-1].get("node_id") == worker.node_id
                and trial_results[-1].get("epoch", 0) <= 2]

    victims = wait_until(running_on_worker, 600, proc, log)
    worker.kill()  # SIGKILL the worker's raylet, its trial workers and agents: the node is lost
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]

    board = finished(out)
    assert len(board) == 6 and board["trial_id"].is_unique, board[["trial_id", "status"]]
    assert board["status"].isin(FINISHED).all() and (board["epochs"] == 4).all(), board[["status", "epochs"]]
    # Same IP: node ids tell the nodes apart. The victims' first epochs ran on the worker.
    assert ray_head.node_id in set(board["node_id"]) <= {ray_head.node_id, worker.node_id}
    results = tune_results(out)
    for victim in victims:  # retried on the head from its last checkpoint, not from epoch 1
        restarts = [r for r in results[victim] if r.get("iterations_since_restore") == 1]
        trace = [(r.get("epoch"), r.get("iterations_since_restore"), r.get("node_id")) for r in results[victim]]
        assert len(restarts) == 2 and restarts[1]["epoch"] > 1, trace
        assert restarts[0]["node_id"] == worker.node_id, trace
        assert board.set_index("trial_id").loc[victim, "node_id"] == ray_head.node_id
    history = read_parquet_once(out / "history.parquet").to_pandas()
    assert not history.duplicated(["trial_id", "epoch"]).any() and len(history) == 6 * 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 6 and set(summary["nodes"]) == {ray_head.node_id, worker.node_id}
    # One computation per key over the six trials on two nodes (the first epoch of a trial reports what it
    # encoded): source_train, source_val and the target, each once; every other trial, and every trial
    # restored from a checkpoint, read them.
    computed = history.groupby("trial_id")["features_computed"].max()
    assert computed.sum() == 3 and len(list((out / "features").glob("*.pt"))) == 3, computed


@pytest.mark.ray
def test_losing_a_node_while_a_trial_starts_loses_no_trial(ray_head, worker_nodes, ray_tools, tmp_path):
    """The worker dies while a trial is starting there (started, no result yet): the window where Ray Tune 2.60
    can take two failures of one lost actor and error a trial it has just requeued. The search reruns such a
    trial before it ends (Recorder.lost), so every planned trial still finishes, once, with all its epochs."""
    worker = worker_nodes()
    out, log = tmp_path / "run", tmp_path / "search.log"
    config = write_config(tmp_path, trials=8, epochs=3, steps_per_epoch=60, scheduler={"grace_period": 3})
    proc = start_adaptune("search", config, "--address", ray_head.address, "--out", out, env=ray_tools.env(), log=log)

    def a_trial_is_starting() -> bool:
        """A trial has finished on the worker (so trials start there by actor reuse) and one has no result yet."""
        board, results = finished(out), tune_results(out)
        return worker.node_id in set(board["node_id"]) and any(not r for r in results.values())

    wait_until(a_trial_is_starting, 600, proc, log)
    worker.kill()
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    board = finished(out)
    assert len(board) == 8 and board["trial_id"].is_unique, board[["trial_id", "status"]]
    assert board["status"].isin(FINISHED).all() and (board["epochs"] == 3).all(), board[["status", "epochs", "error"]]
    history = read_parquet_once(out / "history.parquet").to_pandas()
    assert not history.duplicated(["trial_id", "epoch"]).any() and len(history) == 8 * 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"] == {"completed": 8}
    print("lost_retry_rounds", summary["lost_retry_rounds"])  # 1 when the race hit (it does not always)


def _kill_driver_after_a_trial(out: Path, log: Path, proc: subprocess.Popen) -> pd.DataFrame:
    """SIGKILL the driver once a trial finished (and not all); returns the leaderboard it left."""
    wait_until(lambda: 1 <= len(finished(out)) < 4, 600, proc, log)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = finished(out)
    assert 1 <= len(before) and not (out / "summary.json").exists()
    return before


def _check_resumed(out: Path, before: pd.DataFrame, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    after = finished(out)
    assert len(after) == 4 and after["trial_id"].is_unique and after["status"].isin(FINISHED).all()
    kept = after.set_index("trial_id").loc[before["trial_id"], ["status", "score", "epochs"]]
    assert kept.equals(before.set_index("trial_id")[["status", "score", "epochs"]])  # unchanged rows
    summary = json.loads((out / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["trials"] == 4


@pytest.mark.ray
def test_resume_after_killing_a_driver_that_started_its_own_ray(ray_tools, tmp_path):
    # No --address: the driver starts a local Ray (under its own RAY_TMPDIR here, to find its processes).
    # Ray starts them with PR_SET_PDEATHSIG (kernel fate sharing), so they die with a SIGKILLed driver.
    ray_tmp = tempfile.mkdtemp(prefix="at-l", dir="/tmp")
    env = ray_tools.env(RAY_TMPDIR=ray_tmp)
    out, log = tmp_path / "run", tmp_path / "search.log"
    config = write_config(tmp_path, steps_per_epoch=100)
    try:
        proc = start_adaptune("search", config, "--out", out, env=env, log=log)
        wait_until(lambda: 1 <= len(finished(out)) < 4 and ray_tools.processes_naming(ray_tmp), 600, proc, log)
        before = _kill_driver_after_a_trial(out, log, proc)
        deadline = time.time() + 60
        while ray_tools.processes_naming(ray_tmp) and time.time() < deadline:
            time.sleep(1)
        assert not ray_tools.processes_naming(ray_tmp), "Ray processes outlived their driver"
        _check_resumed(out, before, adaptune("resume", out, env=env))  # on a new local Ray
        assert not ray_tools.processes_naming(ray_tmp)
    finally:
        ray_tools.kill_all(ray_tools.processes_naming(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.ray
def test_ctrl_c_keeps_finished_trials_and_resume_completes_the_search(ray_head, ray_tools, tmp_path, capsys):
    out, log = tmp_path / "run", tmp_path / "search.log"
    # The budget plans the 4 trials (300 steps each without early stopping); its count of spent steps is saved with
    # the searcher and carries over into the resumed search.
    config = write_config(tmp_path, steps_per_epoch=100, trials=None, budget=1200)
    proc = start_adaptune("search", config, "--address", ray_head.address, "--out", out, env=ray_tools.env(), log=log)
    wait_until(lambda: 1 <= len(finished(out)) < 4, 600, proc, log)
    before = set(finished(out)["trial_id"])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=300) == 130, log.read_text()[-3000:]
    board = finished(out)
    assert before <= set(board["trial_id"]) and board["trial_id"].is_unique
    assert board["status"].isin(FINISHED).all() and len(board) < 4
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "interrupted" and status["done"] == len(board)
    assert not (out / "summary.json").exists()

    # Resume continues the same search only: an edited config.yaml, or another config, is refused (exit 2)
    # before Ray starts, so these run in process.
    saved = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text(saved.replace("epochs: 3", "epochs: 4"))
    for argv in (["resume", str(out)], ["resume", str(out), write_config(tmp_path, "other.yaml", trials=5)]):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        one_line_error(capsys.readouterr().err, "config")
        (out / "config.yaml").write_text(saved)

    # The run's own config (address from its config.yaml): the cluster outlived the driver.
    _check_resumed(out, board, adaptune("resume", out, env=ray_tools.env()))
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"]["capped"] and summary["steps_used"] == 1200


WRITER = """
import sys
import numpy as np
import pandas as pd
from adaptune.reports.run_dir import write_parquet_atomic
rows = int(sys.argv[2])
frame = pd.DataFrame({"trial_id": [f"t{i:07d}" for i in range(rows)], "score": np.random.default_rng(0).random(rows),
                      "method": ["source_only"] * rows, "error": ["x" * 60] * rows})
generation = 0
while True:
    generation += 1
    frame["generation"] = generation
    write_parquet_atomic(frame, sys.argv[1])
    print(generation, flush=True)
"""


def test_the_leaderboard_is_never_half_written(tmp_path):
    path, rows = tmp_path / "leaderboard.parquet", 300_000
    rng, mid_write, delays = random.SystemRandom(), 0, []
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rows)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "1"  # one complete file, then kill at a random moment
        delays.append(rng.uniform(0.0, 1.5))
        time.sleep(delays[-1])
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
        table = pq.read_table(path)
        assert table.num_rows == rows, delays
        assert set(table.column_names) == {"trial_id", "score", "method", "error", "generation"}
        assert len(set(table.column("generation").to_pylist())) == 1  # one write, not a mix of two
        assert len(RunDir(str(tmp_path)).read_table(RunDir.LEADERBOARD)) == rows
        leftovers = list(tmp_path.glob(".tmp-*"))  # the temp file of a write that was cut short
        mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
    assert mid_write >= 1, f"no kill landed mid-write (delays {delays})"


CLIENT = "import ray; ray.init(address={address!r}, log_to_driver=False); print('CPU', ray.cluster_resources()['CPU'])"


@pytest.mark.ray
def test_token_auth_refuses_clients_without_the_token(ray_head, ray_tools, tmp_path):
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    base = {k: v for k, v in ray_tools.env().items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    client = [sys.executable, "-c", CLIENT.format(address=ray_head.address)]
    cases = {"no token": {**base, "HOME": str(empty_home)},
             "wrong token": {**base, "HOME": str(empty_home), "RAY_AUTH_TOKEN": "0" * 32}}
    # A refused GCS connection is retried once a second for 20 s by default; two tries show the refusal as well.
    cases = {name: {**env, "RAY_gcs_server_port_wait_time_s": "2"} for name, env in cases.items()}
    for name, env in cases.items():
        result = subprocess.run(client, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and "CPU" not in result.stdout, name
        assert "AuthenticationError" in result.stderr, (name, result.stderr[-2000:])
    result = subprocess.run(client, env=base, capture_output=True, text=True, timeout=300)  # ~/.ray/auth_token
    assert result.returncode == 0 and result.stdout.startswith("CPU"), result.stderr[-2000:]

    def jobs_api(headers: dict[str, str]) -> int:
        request = urllib.request.Request(f"{ray_head.dashboard}/api/jobs/", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                assert isinstance(json.load(response), list)
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert jobs_api({}) == 401
    assert jobs_api({"Authorization": "Bearer " + "0" * 32}) == 403
    assert jobs_api({"Authorization": f"Bearer {ray_tools.read_token()}"}) == 200
    assert os.stat(ray_tools.token_file).st_mode & 0o077 == 0  # the owner's only
