"""Cost of the per-epoch proxies against one training epoch (plain torch, 1 CPU thread).

Usage: python -m benchmarks.proxy_cost   (writes benchmarks/results/proxy_cost.md)
One DANN epoch on mnist->usps (LeNet), then the evaluation forward pass (held-out source 1000 + target 2007)
and every registered proxy on its outputs, each timed separately (median of 5).
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks._common import header, md_table, write

TASKS = ["mnist->usps", "office-surf:A->W", "amazon:B->K"]


def measure(task_name: str) -> list[list]:
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.loop import TrialSpec, build, evaluate, run_trial
    from adaptune.algorithms.methods import get_method
    from adaptune.algorithms.proxies import PROXIES, compute_proxies

    task = load_task(task_name)
    spec = TrialSpec("dann", {}, task.default_backbone, epochs=1)
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

    train_s = epoch["train_s"]
    forward = timed(lambda: evaluate(classifier, data, 1024, torch.device("cpu")))
    rows = [[task_name, "training epoch (dann)", train_s, 100.0],
            [task_name, "evaluation forward pass", forward, 100 * forward / train_s]]
    for name, proxy in PROXIES.items():
        # a fresh Evaluation each time, so the shared density ratio (iwcv, dev) is paid where it is first used
        cost = timed(lambda proxy=proxy: proxy.fn(evaluate(classifier, data, 1024, torch.device("cpu")))) - forward
        cost = max(cost, 0.0)
        label = f"proxy {name}" + (" (once per trial, final epoch)" if proxy.final_only else "")
        rows.append([task_name, label, cost, 100 * cost / train_s])
    # What an epoch pays: every per-epoch proxy on one Evaluation, as the loop calls them.
    cheap = max(timed(lambda: compute_proxies(evaluate(classifier, data, 1024, torch.device("cpu")))) - forward, 0.0)
    rows.append([task_name, "all per-epoch proxies (compute_proxies)", cheap, 100 * cheap / train_s])
    return rows


def main() -> None:
    torch.set_num_threads(1)
    rows = [row for task in TASKS for row in measure(task)]
    text = "\n".join([
        header("Proxy cost per epoch", "python -m benchmarks.proxy_cost"),
        "\nOne DANN epoch per task (LeNet on digits, MLP on SURF and Amazon; + bottleneck), 1 CPU thread. Proxy "
        "rows are net of the evaluation forward pass (median of 5). `fewshot` is NaN here (no opt-in).\n",
        md_table([[t, n, f"{s:.3f}", f"{p:.1f}"] for t, n, s, p in rows],
                 ["task", "what", "seconds", "% of a training epoch"]),
        "\nTarget: all cheap proxies together at most 10% of one training epoch. The last row per task "
        "is that cost as an epoch pays it: `compute_proxies` on one evaluation (the density ratio that iwcv and "
        "dev share is estimated once, in closed form), net of the forward pass. The feature tasks' epochs are "
        "a fraction of a second (a few dozen small batches), so the proxies' fixed costs weigh most there.",
    ])
    print(write("proxy_cost.md", text + "\n"))


if __name__ == "__main__":
    main()
