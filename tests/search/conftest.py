"""Real Ray nodes for the cluster tests: a head and worker nodes on 127.0.0.1 with token auth, started with
``ray start`` and stopped by PID.

Every node gets its own ``--temp-dir`` (short, under /tmp: Unix socket paths are limited to 107 bytes) and its
own ports, so these tests never touch another Ray on the host: a node's processes are the ones whose command
line names its temp dir, plus their descendants (the workers, whose titles setproctitle rewrites). Never
``ray stop``: it stops every Ray process of the user on the host, other people's included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import psutil
import pytest

BIN = os.path.dirname(sys.executable)  # the venv's bin: ray, adaptune
TOKEN_FILE = os.path.expanduser("~/.ray/auth_token")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env(**extra: str) -> dict[str, str]:
    """The environment of a Ray node or client here: token auth on, the venv first on PATH (a Ray Job's driver
    runs ``adaptune``), no inherited address or fault injection."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ADAPTUNE_FAULT")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra)
    return env


def ensure_token() -> None:
    """~/.ray/auth_token, generated once if missing (never printed), readable by its owner only."""
    if not os.path.exists(TOKEN_FILE):
        subprocess.run([f"{BIN}/ray", "get-auth-token", "--generate"], capture_output=True, check=True, timeout=120)
    os.chmod(TOKEN_FILE, 0o600)


def read_token() -> str:
    with open(TOKEN_FILE) as handle:
        return handle.read().strip()


def processes_naming(*markers: str) -> list[psutil.Process]:
    """Processes whose command line contains any of ``markers`` (a node's temp dir, its node id), with all their
    descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or () for marker in markers):
                for member in [proc, *proc.children(recursive=True)]:
                    found[member.pid] = member
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(found.values())


def kill_all(procs: list[psutil.Process], sig: int = signal.SIGKILL, timeout_s: float = 30) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=timeout_s)


@dataclass
class RayNode:
    temp_dir: str
    address: str  # the head's GCS address, HOST:PORT
    dashboard: str | None = None  # the head's http://127.0.0.1:PORT
    client: str | None = None  # the head's Ray Client address, ray://127.0.0.1:PORT
    env: dict[str, str] = field(default_factory=dict, repr=False)
    node_id: str | None = None

    def processes(self) -> list[psutil.Process]:
        """The node's processes. A head's Ray Client server outlives the `ray start` that spawned it and names
        only the node id, not the temp dir."""
        return processes_naming(self.temp_dir, *([f"--node-id={self.node_id}"] if self.node_id else []))

    def kill(self) -> None:
        """SIGKILL the raylet, its workers and agents (and on a head, the GCS and dashboard): a node lost."""
        for _ in range(3):  # a process may fork while we kill
            kill_all(self.processes())

    def stop(self) -> None:
        processes = self.processes()
        # A second for the workers and agents to exit on SIGTERM; the GCS and the raylet outlast 5 s of it, so
        # waiting longer only delays their SIGKILL.
        kill_all(processes, signal.SIGTERM, timeout_s=1)
        # The same list again: a child whose parent died first no longer names the node.
        kill_all(processes)
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if self in _LIVE_NODES:
            _LIVE_NODES.remove(self)


_LIVE_NODES: list[RayNode] = []  # for the log tails of a failed test


def _log_tails(temp_dir: str, files: int = 6, lines: int = 12) -> str:
    """The last lines of the node's newest non-empty ``*.err`` logs (Ray writes its errors there)."""
    logs = [os.path.join(root, name) for root, _, names in os.walk(os.path.join(temp_dir, "session_latest", "logs"))
            for name in names if name.endswith(".err")]
    logs = sorted((p for p in logs if os.path.getsize(p)), key=os.path.getmtime)[-files:]
    parts = []
    for path in logs:
        with open(path, errors="replace") as handle:
            parts.append(f"--- {os.path.relpath(path, temp_dir)}\n" + "".join(handle.readlines()[-lines:]))
    return "\n".join(parts) or "(no error logs)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed cluster test shows the Ray nodes' error logs: the nodes' folders are gone by the time one looks."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for node in _LIVE_NODES:
            report.sections.append((f"ray error logs of {node.temp_dir}", _log_tails(node.temp_dir)))


def _node_id(temp_dir: str) -> str | None:
    """The node id, from the raylet's ``--node_id`` argument."""
    for proc in processes_naming(temp_dir):
        try:
            for part in proc.cmdline():
                if part.startswith("--node_id="):
                    return part.split("=", 1)[1]
        except psutil.NoSuchProcess:
            continue
    return None


def _ray_start(args: list[str], env: dict[str, str], temp_dir: str) -> None:
    result = subprocess.run([f"{BIN}/ray", "start", *args, f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
                             "--disable-usage-stats", f"--dashboard-agent-listen-port={free_port()}",
                             f"--metrics-export-port={free_port()}"],
                            env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        kill_all(processes_naming(temp_dir))
        raise RuntimeError(f"ray start failed: {result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def start_head(num_cpus: int = 2, **env_extra: str) -> RayNode:
    ensure_token()
    temp_dir = tempfile.mkdtemp(prefix="at-h", dir="/tmp")
    port, dashboard, client = free_port(), free_port(), free_port()
    env = ray_env(**env_extra)
    _ray_start(["--head", f"--port={port}", f"--num-cpus={num_cpus}", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}"], env, temp_dir)
    _LIVE_NODES.append(RayNode(temp_dir, f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}",
                               f"ray://127.0.0.1:{client}", env, _node_id(temp_dir)))
    return _LIVE_NODES[-1]


def alive_nodes(head: RayNode) -> list[str]:
    """Node ids the cluster reports alive, from the dashboard's state API (with the token)."""
    request = urllib.request.Request(f"{head.dashboard}/api/v0/nodes?limit=100",
                                     headers={"Authorization": f"Bearer {read_token()}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = json.load(response)
    return [n["node_id"] for n in data["data"]["result"]["result"] if n["state"] == "ALIVE"]


def wait_for_nodes(head: RayNode, count: int, timeout_s: float = 240) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if len(alive_nodes(head)) == count:
                return
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"the cluster did not reach {count} alive nodes in {timeout_s} s")


def start_worker(head: RayNode, num_cpus: int = 2, **env_extra: str) -> RayNode:
    temp_dir = tempfile.mkdtemp(prefix="at-w", dir="/tmp")
    env = ray_env(**env_extra)
    _ray_start([f"--address={head.address}", f"--num-cpus={num_cpus}"], env, temp_dir)
    node = RayNode(temp_dir, head.address, env=env, node_id=_node_id(temp_dir))
    _LIVE_NODES.append(node)
    deadline = time.time() + 240
    while node.node_id not in alive_nodes(head):
        if time.time() > deadline:
            node.stop()
            raise TimeoutError("the worker node did not join")
        time.sleep(1)
    return node


_HEAD: list[RayNode] = []  # the cluster head, while the tests that use it run
_HEAD_MODULES: set[str] = set()  # the test files with a test that uses it


def _test_file(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_finish(session: pytest.Session) -> None:
    _HEAD_MODULES.update(_test_file(item) for item in session.items if "ray_head" in getattr(item, "fixturenames", ()))


@pytest.fixture
def ray_head(request: pytest.FixtureRequest) -> RayNode:
    """One head (2 CPUs, token auth, dashboard, venv on PATH) for the cluster tests, started by the first test that
    asks for it and kept while the next test is in a file that uses it too (the cluster test files run one after
    another under `make test`). It is stopped before any other test: a second Ray instance on the host while a test
    runs its own local Ray makes Ray's state API ambiguous ("multiple active Ray instances"), and Ray Train's
    placement-group cleaner then leaks the worker group's placement group, starving later trials.

    Its Ray Client server waits 60 s rather than 30 s for the server process it starts per client: on a busy 2-core
    host that start has taken longer than 30 s; and a few starts never answered at all (2 of 16 client tests here
    took 165-170 s instead of ~35 s while the head waited 120 s before the search connected again).

    Its GCS declares a killed node dead after 3 failed health checks 1 s apart rather than 5 checks 3 s apart, so
    the node-loss tests wait ~3 s for it, not ~15 s; each check still has Ray's 10 s to answer, so a busy node is
    not taken for a lost one."""
    if not request.node.get_closest_marker("ray"):  # it would run beside the Ray tests (tests/run-suite)
        pytest.fail("this test uses the cluster head: mark it @pytest.mark.ray")
    if not _HEAD:
        _HEAD.append(start_head(num_cpus=2, RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="60",
                                RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3"))
    return _HEAD[0]


@pytest.hookimpl(trylast=True)  # after the test's own fixtures, which may still talk to the head
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if _HEAD and (nextitem is None or _test_file(nextitem) not in _HEAD_MODULES):
        _HEAD.pop().stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _HEAD:
        _HEAD.pop().stop()


@pytest.fixture
def worker_nodes(ray_head: RayNode) -> Iterator[Callable[..., RayNode]]:
    """Start worker nodes (2 CPUs each; keyword arguments are extra environment variables of the node's
    processes); each is stopped after the test, and the head is back to one node."""
    started: list[RayNode] = []

    def start(num_cpus: int = 2, **env_extra: str) -> RayNode:
        started.append(start_worker(ray_head, num_cpus, **env_extra))
        return started[-1]

    yield start
    for node in started:
        node.stop()
    if started:
        wait_for_nodes(ray_head, 1)


@pytest.fixture(scope="session")
def ray_tools() -> SimpleNamespace:
    """The helpers above for test modules (which cannot import this conftest by name reliably)."""
    return SimpleNamespace(bin=BIN, env=ray_env, processes_naming=processes_naming, kill_all=kill_all,
                           read_token=read_token, free_port=free_port, token_file=TOKEN_FILE)
