"""Bad input against the real command line: every probe must end in one clear line, never a traceback or a hang.

Each probe runs ``adaptune`` as a user would, in a fresh process with a time limit, on files this script makes
(binary configs, broken tables, odd images, hostile weights files, broken run directories). A probe passes when
it exits 2 with exactly one stderr line starting ``adaptune: error:`` and writes nothing under its ``--out``; a
probe marked *valid* passes when it exits 0. Also measured: whether a search whose every trial fails exits 0, and
which sockets a local search listens on (loopback or not).

  python -m benchmarks.bad_inputs          # writes benchmarks/results/bad_inputs.md
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psutil
import yaml

from benchmarks._common import header, md_table, write

BIN = os.path.join(os.path.dirname(sys.executable), "adaptune")
TIMEOUT_S = 120
FIXTURE_RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures",
                           "run-small")
TINY = ["--trials", "1", "--epochs", "1", "--methods", "source_only", "--quiet"]


@dataclass
class Probe:
    name: str
    argv: list[str]
    valid: bool = False  # a probe that must succeed (exit 0)
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content, written before it runs


def _npz(x: np.ndarray, y: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, x=x.astype("float32"), y=y)
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _png(width: int, height: int, mode: str = "L") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _torch_save(obj: object) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


class Payload:
    """Unpickling this would run a command; ``weights_only`` loading must refuse it."""

    def __reduce__(self) -> tuple:
        return (os.system, ("echo payload-ran > payload-ran.txt",))


SOCKETS_FINDINGS = """What follows: the dashboard (8265) is the one port adaptune can place, and it is on 127.0.0.1.
Ray 2.60 offers no setting that binds its core gRPC servers (GCS, raylet, the driver's and workers' core worker,
the dashboard and runtime-env agents) to loopback: they listen on all interfaces (`::`, `0.0.0.0`) or on the node
address, and `ray.init` turns a loopback `_node_ip_address` into the host's address. What guards them is Ray's
token authentication, on by default for a local Ray in 2.60 (`RAY_AUTH_MODE=disabled` turns it off; do not on a
shared host). clusters/README.md lists the ports of a cluster and how to keep them private.
"""


def _config(key: str, value: str) -> bytes:
    """A tiny search's YAML with ``key: value`` written as given (so a probe that is wrongly accepted is short)."""
    base = {"task": "synthetic:blobs", "trials": 1, "epochs": 1, "methods": ["source_only"], "quiet": True}
    base.pop(key, None)
    return (yaml.safe_dump(base) + f"{key}: {value}\n").encode()


def probes() -> list[Probe]:
    rng = np.random.default_rng(0)
    good_x, good_y = rng.normal(size=(60, 4)), np.arange(60) % 3
    good = {"src.npz": _npz(good_x, good_y), "tgt.npz": _npz(rng.normal(size=(60, 4)), np.arange(60) % 3)}
    table = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"]).assign(label=np.arange(60) % 3)
    images = {f"img/{c}/{i}.png": _png(8, 8) for c in ("cat", "dog") for i in range(4)}
    search = ["search", "--task", "synthetic:blobs"]
    user = ["search", "--source", "src.npz", "--target", "tgt.npz"]
    out: list[Probe] = [
        Probe("valid: tiny built-in search", [*search, *TINY, "--out", "OUT"], valid=True),
        Probe("valid: tiny user-table search", [*user, *TINY, "--out", "OUT"], valid=True, files=good),
        *[Probe(f"seed {s}", [*search, "--seed", s, "--out", "OUT"]) for s in ("-1", str(2**32), "1e3")],
        *[Probe(f"config {k}: {v}", ["search", "c.yaml", *([] if k == "out" else ["--out", "OUT"])],
                files={"c.yaml": _config(k, v)})
          for k, v in [("task", "5"), ("task", "[a, b]"), ("proxy", "[a]"), ("methods", "[[dann]]"),
                       ("backbone", "{x: 1}"), ("source", "5"), ("out", "123"), ("seed", ".nan"),
                       ("time_budget_s", ".inf"), ("budget", "1e999"), ("epochs", "-3"), ("weights", "[1]"),
                       ("searcher", "grid"), ("storage", "ftp://x"), ("trials", "true"), ("quiet", "3")]],
        *[Probe(f"config {section}.{k}: {v}", ["search", "c.yaml", "--out", "OUT"],
                files={"c.yaml": _config(section, f"\n  {k}: {v}")})
          for section, k, v in [("resources", "cpus_per_trial", ".nan"), ("resources", "gpus_per_trial", ".inf"),
                                ("resources", "workers", "0"), ("resources", "max_concurrent", "-1"),
                                ("search_space", "lr", "[0.0001, .inf]"), ("search_space", "lr", "[.nan, 1]"),
                                ("search_space", "adv_weight", "[3, 1]"), ("scheduler", "grace_period", "0"),
                                ("scheduler", "kind", "hyperband"), ("scheduler", "reduction_factor", ".nan")]],
        Probe("config: binary file", ["search", "c.yaml", "--out", "OUT"], files={"c.yaml": bytes(range(256))}),
        Probe("config: a directory", ["search", "img", "--out", "OUT"], files=images),
        Probe("config: python tag", ["search", "c.yaml", "--out", "OUT"],
              files={"c.yaml": b"task: !!python/object/apply:os.system ['echo hi']\n"}),
        Probe("submit: binary config", ["submit", "c.yaml", "--address", "http://127.0.0.1:1"],
              files={"c.yaml": b"\xff\xfe\x00\x01"}),
        Probe("out: empty", [*search, "--out", ""]),
        Probe("out: unwritable", [*search, "--out", "/proc/adaptune-x"]),
        Probe("out: under a file", [*search, "--out", "src.npz/run"], files=good),
        Probe("out: a partial run", [*search, "--out", "part"], files={"part/config.yaml": b"task: x\n"}),
        Probe("address: nothing listens", [*search, "--address", "127.0.0.1:1", "--out", "OUT"]),
        Probe("address: not host:port", [*search, "--address", "nowhere", "--out", "OUT"]),
        Probe("task with source", [*search, "--source", "src.npz", "--target", "tgt.npz", "--out", "OUT"],
              files=good),
        Probe("source: one sample per class", ["search", "--source", "one.npz", "--target", "tgt.npz", "--out",
                                               "OUT"], files={**good, "one.npz": _npz(good_x[:3], good_y[:3])}),
        Probe("source: a single class", ["search", "--source", "mono.npz", "--target", "tgt.npz", "--out", "OUT"],
              files={**good, "mono.npz": _npz(good_x, np.zeros(60, dtype=int))}),
        Probe("source: zero features", ["search", "--source", "z.npz", "--target", "z.npz", "--out", "OUT"],
              files={"z.npz": _npz(np.zeros((60, 0)), good_y)}),
        Probe("source: pickled npz", ["search", "--source", "p.npz", "--target", "tgt.npz", "--out", "OUT"],
              files={**good, "p.npz": pickle.dumps({"x": 1})}),
        Probe("fewshot_k too large", [*user, "--fewshot-k", "100000", "--out", "OUT"], files=good),
        Probe("parquet: renamed target columns", ["search", "--source", "s.parquet", "--target", "t.parquet",
                                                  "--out", "OUT"],
              files={"s.parquet": _parquet(table), "t.parquet": _parquet(table.rename(columns={"a": "z"}))}),
        Probe("parquet: truncated", ["search", "--source", "s.parquet", "--target", "s.parquet", "--out", "OUT"],
              files={"s.parquet": _parquet(table)[:200]}),
        Probe("images: decompression bomb", ["search", "--source", "img", "--target", "img", "--out", "OUT"],
              files={**images, "img/cat/bomb.png": _png(20000, 10000, "1")}),
        Probe("images: not an image", ["search", "--source", "img", "--target", "img", "--out", "OUT"],
              files={**images, "img/dog/x.png": b"not a png"}),
        Probe("weights with mlp", [*search, "--weights", "w.pth", "--out", "OUT"],
              files={"w.pth": _torch_save({})}),
        *[Probe(f"weights: {kind}", ["search", "--source", "img", "--target", "img", "--backbone", "resnet18",
                                     "--weights", "w.pth", "--out", "OUT"], files={**images, "w.pth": content})
          for kind, content in [("pickle payload", pickle.dumps(Payload())), ("random bytes", os.urandom(512)),
                                ("a list", _torch_save([1, 2, 3])), ("wrong shapes", _torch_save({"fc.weight": 1}))]],
        Probe("weights: bare name not cached", ["search", "--source", "img", "--target", "img", "--backbone",
                                                "resnet18", "--weights", "IMAGENET1K_V1", "--out", "OUT"],
              files=images),
        Probe("leaderboard --top -3", ["leaderboard", "run", "--top", "-3"]),
        Probe("status: a list", ["status", "run"], files={"run/status.json": b"[]"}),
        Probe("status: binary", ["status", "run"], files={"run/status.json": b"\xff\x00\xfe"}),
        Probe("status: truncated summary", ["status", "run"],
              files={"run/status.json": b'{"state": "finished"}', "run/summary.json": b'{"state": "fin'}),
        Probe("report: unwritable out", ["report", "run", "--out", "/proc/adaptune-x/r.html"]),
        Probe("report: not a run", ["report", "img"], files=images),
    ]
    return out


def run_probe(probe: Probe, root: str) -> dict:
    work = tempfile.mkdtemp(dir=root)
    for path, content in probe.files.items():
        full = os.path.join(work, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(content)
    out = os.path.join(work, "OUT")
    argv = [out if a == "OUT" else a for a in probe.argv]
    if "run" in probe.argv and not os.path.exists(os.path.join(work, "run")):
        shutil.copytree(FIXTURE_RUN, os.path.join(work, "run"))  # a real finished run
    started = time.time()
    process = subprocess.Popen([BIN, *argv], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=TIMEOUT_S)
        code = process.returncode
    except subprocess.TimeoutExpired:  # a hang: kill its whole process group (its local Ray too), keep nothing
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        code, stderr = None, ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    traceback = "Traceback (most recent call last)" in stderr
    wrote = os.path.exists(out) and bool(os.listdir(out))
    payload_ran = os.path.exists(os.path.join(work, "payload-ran.txt"))
    if probe.valid:
        ok = code == 0 and not traceback
    else:
        ok = (code == 2 and len(lines) == 1 and lines[0].startswith("adaptune: error:") and not wrote
              and not payload_ran)
    return {"probe": probe.name, "exit": "hang" if code is None else code, "lines": len(lines),
            "traceback": traceback, "wrote": wrote, "payload_ran": payload_ran, "ok": ok,
            "message": (lines[-1] if lines else "").replace(work, "WORK")[:160], "wall_s": time.time() - started}


def listening_sockets(root: str) -> list[dict]:
    """The TCP sockets a tiny local search's process tree listens on, sampled while it runs."""
    out = os.path.join(root, "sockets-run")
    process = subprocess.Popen([BIN, "search", "--task", "synthetic:blobs", *TINY, "--out", out],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    seen: dict[tuple, dict] = {}

    def sample() -> None:
        root_process = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = {p.pid: p for p in [root_process, *root_process.children(recursive=True)]}
                for conn in psutil.net_connections(kind="tcp"):
                    if conn.status == "LISTEN" and conn.pid in tree:
                        name = tree[conn.pid].name()
                        seen[(conn.laddr.ip, name)] = {"address": conn.laddr.ip, "process": name}
            except psutil.Error:
                pass
            time.sleep(1.0)

    thread = threading.Thread(target=sample)
    thread.start()
    process.wait(timeout=600)
    thread.join()
    return sorted(seen.values(), key=lambda r: (r["address"], r["process"]))


def main() -> None:
    root = tempfile.mkdtemp(prefix="adaptune-bad-inputs-")
    results = []
    for probe in probes():
        results.append(run_probe(probe, root))
        print(json.dumps(results[-1]), flush=True)
    sockets = listening_sockets(root)
    loopback = ("127.0.0.1", "::1")
    exposed = [s for s in sockets if s["address"] not in loopback]
    failed = [r for r in results if not r["ok"]]
    text = header("Bad input against the command line", "python -m benchmarks.bad_inputs")
    text += (f"\n{len(results)} probes, each `adaptune ...` in a fresh process (time limit {TIMEOUT_S} s) on files "
             "made for it. A bad-input probe passes when it exits 2 with exactly one line `adaptune: error: <field>: "
             "<expected>`, writes nothing under `--out`, and no payload ran; a `valid:` probe passes when it exits "
             "0. `WORK` stands for the probe's own temporary directory. The property-based test "
             "`tests/search/test_config_fuzz.py` adds generated configs and flags in process.\n\n")
    text += (f"**{len(results) - len(failed)} of {len(results)} pass; tracebacks: "
             f"{sum(r['traceback'] for r in results)}; hangs: {sum(r['exit'] == 'hang' for r in results)}.**\n\n")
    text += md_table([[r["probe"], r["exit"], r["lines"], "yes" if r["traceback"] else "",
                       "ok" if r["ok"] else "FAIL", r["message"].replace("|", "\\|")] for r in results],
                     ["probe", "exit", "stderr lines", "traceback", "verdict", "last stderr line"])
    text += (f"\n\n## Listening sockets of a local search\n\n`adaptune search --task synthetic:blobs` (one tiny "
             f"trial), its process tree sampled every second: {len(sockets)} (address, process) pairs, "
             f"{len(exposed)} not on loopback.\n\n")
    text += md_table([[s["address"], s["process"]] for s in sockets], ["listening on", "process"])
    text += "\n\n" + SOCKETS_FINDINGS
    print(write("bad_inputs.md", text))


if __name__ == "__main__":
    main()
