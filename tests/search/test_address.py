"""`adaptune search --address` joins a Ray cluster started separately (head on 127.0.0.1, token auth on)."""

import json
import os

import pyarrow.parquet as pq
import pytest
from cli_helpers import adaptune  # tests/search/cli_helpers.py


@pytest.mark.ray
@pytest.mark.parametrize("kind", ["gcs", "client"])
def test_search_joins_an_existing_cluster(ray_head, tmp_path, kind):
    """By the GCS address (HOST:PORT) and through Ray Client (ray://HOST:PORT). The budget plans the two trials
    (2 epochs of 100 steps each, no rung below them), so the searcher that counts it travels to the cluster too."""
    out = tmp_path / "run"
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    address = ray_head.address if kind == "gcs" else ray_head.client
    result = adaptune("search", "--task", "synthetic:blobs", "--methods", "source_only,dann", "--budget", "400",
                      "--epochs", "2", "--quiet", "--address", address, "--out", out, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    trials = board[board["status"] != "ensemble"]
    assert len(trials) == 2 and set(trials["status"]) <= {"completed", "stopped"}
    assert (board["status"] == "ensemble").sum() == 1  # checkpoints read back from the run's storage
    assert set(trials["node_id"]) == {ray_head.node_id}  # ran on that cluster, not on a new local Ray
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"]["capped"] and summary["plan"]["trials"] == 2 and summary["state"] == "finished"


@pytest.mark.parametrize("address", ["ray://127.0.0.1:1", "127.0.0.1:http"])
def test_an_address_where_nothing_listens_is_one_line(tmp_path, address):
    """ray.init would retry the GCS without end; the search gives up at once with one line, and writes nothing."""
    out = tmp_path / "run"
    result = adaptune("search", "--task", "synthetic:blobs", "--trials", "1", "--address", address, "--out", out,
                      env=dict(os.environ), timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("adaptune: error: address:"), lines
    assert not out.exists()


def test_a_client_server_that_did_not_answer_is_named_and_retried():
    """Ray Client's "Initialization failure from server:" carries the head's traceback: the line that says why
    is its last one, and a server that did not answer in time is worth a new connection (a new server)."""
    from adaptune.search.run import CLIENT_REASON_CHARS, client_failure_reason, client_server_failed

    head_traceback = ("Initialization failure from server:\nTraceback (most recent call last):\n"
                      '  File "proxier.py", line 778, in Datapath\n    raise RuntimeError(\n'
                      "RuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err`\n")
    reason = client_failure_reason(ConnectionAbortedError(head_traceback))
    assert reason.startswith("RuntimeError: Proxy failed to Connect to backend!")
    assert client_server_failed(reason)
    assert client_server_failed(client_failure_reason(RuntimeError("Starting Ray client server failed. See x")))
    long = client_failure_reason(ConnectionAbortedError(head_traceback.replace("`ray_client_server.err`", "x " * 200)))
    assert len(long) <= CLIENT_REASON_CHARS and long.endswith(" ...") and "\n" not in long  # whole words, one line
    refused = client_failure_reason(ConnectionError("ray client connection timeout\nmore"))
    assert refused == "ray client connection timeout" and not client_server_failed(refused)
