"""CORAL with each domain centred on its own mean, against the paper's map of the raw features.

The paper (Sun, Feng, Saenko, AAAI 2016) whitens and re-colours features that were z-scored per domain. The
product's CORAL centres each domain on its own mean first and lands the source on the target's mean, which is the
same thing on z-scored tables and not on raw inputs (image pixels, a frozen backbone's activations). This script
runs one CORAL trial at its defaults on every built-in task both ways: the same fitted covariances and head
penalty, the source mapped by ``(x - ms) A + mt`` (shipped) or by ``x A`` (the paper's map of raw features).
Target labels fill the oracle column only.

  python -m benchmarks.coral_centring        # writes benchmarks/results/coral_centring.md
"""

from __future__ import annotations

import statistics
import time

import torch

from adaptune.algorithms.data import load_task
from adaptune.algorithms.features import MemoryStore
from adaptune.algorithms.loop import TrialSpec, build, evaluate, fit_head
from adaptune.algorithms.methods.subspace import CORAL
from adaptune.algorithms.proxies import oracle_accuracy, source_accuracy
from benchmarks._common import group_of, header, md_table, rerun_command, write
from benchmarks.methods_bench import GROUPS


class PaperCORAL(CORAL):
    """CORAL's source map applied to the raw features, as the paper's Algorithm 1 writes it."""

    def transform_source(self, x: torch.Tensor) -> torch.Tensor:
        return self.source_map(x)


VARIANTS = {"centred (shipped)": CORAL, "raw (paper's map)": PaperCORAL}


def run_task(task_name: str) -> dict:
    """One CORAL trial at its defaults per variant: held-out source and target accuracy (%)."""
    task = load_task(task_name)
    device = torch.device("cpu")
    row = {"task": task_name, "group": group_of(task_name), "kind": task.input_kind}
    for label, method_cls in VARIANTS.items():
        spec = TrialSpec("coral", {}, task.default_backbone, epochs=1)
        torch.manual_seed(spec.seed)
        data, classifier, method = build(task, spec, method_cls, method_cls.defaults(), MemoryStore(), device)
        fit_head(classifier, method, data, float(method.hparams["head_l2"]))
        evaluation = evaluate(classifier, data, spec.eval_batch_size, device)
        row[label] = (100 * source_accuracy(evaluation),
                      100 * oracle_accuracy(evaluation.target_logits, data.target_oracle))
    return row


def main() -> None:
    torch.set_num_threads(2)
    started = time.perf_counter()
    rows = [run_task(task) for group in GROUPS for task in GROUPS[group]]
    shipped, paper = VARIANTS
    text = header("CORAL centred per domain against the paper's raw map", rerun_command())
    text += ("\nOne CORAL trial per built-in task at its defaults (`coral_reg` 1, `head_l2` 0.3; each task's default "
             "preprocessing for the tables, raw pixels for the image tasks, which have no "
             "pretrained weights here), the source mapped both ways from the same fit. Held-out source and target "
             f"accuracy (%), target by the oracle labels (reporting only); {time.perf_counter() - started:.0f} s in "
             "all, 2 threads.\n\n## Per group\n\n")
    groups = list(dict.fromkeys(row["group"] for row in rows))
    text += md_table([[group, sum(r["group"] == group for r in rows),
                       *[statistics.fmean(r[v][i] for r in rows if r["group"] == group) for v in (paper, shipped)
                         for i in (0, 1)]] for group in groups],
                     ["group", "tasks", f"source {paper}", f"target {paper}", f"source {shipped}",
                      f"target {shipped}"])
    text += "\n\n## Per task\n\n" + md_table(
        [[r["task"], r["kind"], *r[paper], *r[shipped], r[shipped][1] - r[paper][1]] for r in rows],
        ["task", "input", "source raw", "target raw", "source centred", "target centred", "target change"])
    changes = {kind: [r[shipped][1] - r[paper][1] for r in rows if r["kind"] == kind]
               for kind in ("features", "images")}
    largest = max((r for r in rows if r["kind"] == "features"), key=lambda r: abs(r[shipped][1] - r[paper][1]))
    text += ("\n\n## What follows\n\n"
             "On the tables centring changes the target accuracy by "
             f"{statistics.fmean(changes['features']):+.2f} points on average (at most "
             f"{largest[shipped][1] - largest[paper][1]:+.1f}, {largest['task']}): their preprocessing already "
             "centres each domain, or nearly, as the paper's z-scoring did. On the image tasks' raw pixels it changes "
             "it by "
             + ", ".join(f"{c:+.1f}" for c in changes["images"])
             + ": the paper's map of uncentred features keeps the source away from the target's mean, and the head "
             "fitted on the moved source reads that shift as a class. Frozen pretrained features are uncentred too, "
             "so the product centres each domain on its own mean.\n")
    print(write("coral_centring.md", text))


if __name__ == "__main__":
    main()
