"""Cost of the per-epoch proxies against one training epoch (plain torch, 1 CPU thread).

Usage: python benchmarks/proxy_cost.py   (writes benchmarks/results/proxy_cost.md)
One DANN epoch on mnist->usps (LeNet), then the evaluation forward pass (held-out source 1000 + target 2007)
and every registered proxy on its outputs, each timed separately (median of 5).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, md_table, write  # noqa: E402


def main() -> None:
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.loop import TrialSpec, build, evaluate, run_trial
    from adaptune.algorithms.methods import get_method
    from adaptune.algorithms.proxies import PROXIES

    torch.set_num_threads(1)
    task = load_task("mnist->usps")
    spec = TrialSpec("dann", {}, "lenet", epochs=1)
    epoch = run_trial(task, spec, lambda metrics, state: None)
    cls = get_method("dann")
    data, classifier, _ = build(task, spec, cls, cls.defaults(), MemoryStore(), torch.device("cpu"))

    def timed(fn) -> float:  # noqa: ANN001
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    forward = timed(lambda: evaluate(classifier, data, 1024, torch.device("cpu")))
    rows = [["training epoch (dann)", epoch["train_s"], 100.0], ["evaluation forward pass", forward,
                                                                100 * forward / epoch["train_s"]]]
    total = 0.0
    for name, proxy in PROXIES.items():
        # a fresh Evaluation each time, so the shared density ratio (iwcv, dev) is paid where it is first used
        cost = timed(lambda proxy=proxy: proxy.fn(evaluate(classifier, data, 1024, torch.device("cpu")))) - forward
        cost = max(cost, 0.0)
        total += cost
        rows.append([f"proxy {name}", cost, 100 * cost / epoch["train_s"]])
    rows.append(["all proxies (sum)", total, 100 * total / epoch["train_s"]])
    text = "\n".join([
        header("Proxy cost per epoch", "python benchmarks/proxy_cost.py"),
        "\nmnist->usps, LeNet + bottleneck, 1 CPU thread. Proxy rows are net of the forward pass (median of 5).\n",
        md_table([[n, f"{s:.3f}", f"{p:.1f}"] for n, s, p in rows], ["what", "seconds", "% of a training epoch"]),
        "\nTarget (issue 4): all cheap proxies together at most 10% of one training epoch.",
    ])
    print(write("proxy_cost.md", text + "\n"))


if __name__ == "__main__":
    main()
