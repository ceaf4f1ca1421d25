"""`adaptune search --address` joins a Ray cluster started separately (head on 127.0.0.1, token auth on)."""

import os
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.ray
BIN = os.path.dirname(sys.executable)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head_node(tmp_path):
    port, dashboard = _free_port(), _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([f"{BIN}/ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--num-cpus=2", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                    "--disable-usage-stats"], check=True, env=env, capture_output=True, timeout=180)
    yield f"127.0.0.1:{port}"
    subprocess.run([f"{BIN}/ray", "stop", "--force"], env=env, capture_output=True, timeout=180)


def test_search_joins_an_existing_cluster(head_node, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    result = subprocess.run(
        [f"{BIN}/adaptune", "search", "--task", "synthetic:blobs", "--methods", "source_only,dann", "--trials", "2",
         "--epochs", "2", "--quiet", "--address", head_node, "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    trials = board[board["status"] != "ensemble"]
    assert len(trials) == 2 and set(trials["status"]) <= {"completed", "stopped"}
    assert (board["status"] == "ensemble").sum() == 1  # checkpoints read back from the run's storage
