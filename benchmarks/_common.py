"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import itertools
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import torch

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PAPER_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "papers", "results")
# The benchmark group of a built-in task, by its name's prefix (digits: the deep MNIST/USPS tasks, no prefix).
GROUP_BY_PREFIX = {"office-surf": "surf", "amazon": "amazon", "office-decaf": "decaf",
                   "mnist-usps-jda": "jda-digits", "amazon-5000": "amazon-5000", "digits-pixels": "digits-pixels"}
INPUT_KIND = {"digits": "images", **{group: "features" for group in GROUP_BY_PREFIX.values()}}


def group_of(task: str) -> str:
    """The benchmark group a task belongs to (leave-one-group-out holds out one of these at a time)."""
    return GROUP_BY_PREFIX[task.split(":", 1)[0]] if ":" in task else "digits"


def rerun_command(locations: tuple[str, ...] = ()) -> str:
    """This process's command line as a user reruns it from the repository root: ``python -m MODULE ARGS``.

    Under ``python -m`` ``sys.argv[0]`` is the module's absolute path, which says nothing on another machine.
    ``locations`` are options that only say where files go on this machine (``--work DIR``): left out.
    """
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = f"python -m {main_spec.name}" if main_spec else f"python {os.path.relpath(sys.argv[0])}"
    args, kept = iter(sys.argv[1:]), []
    for arg in args:
        if arg in locations:
            next(args, None)
        elif arg.split("=", 1)[0] not in locations:
            kept.append(arg)
    return " ".join([program, *map(shlex.quote, kept)])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {platform.system()} {platform.release()}, no GPU"


def header(title: str, command: str) -> str:
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  check=False).stdout.strip() or "uncommitted"
    except OSError:
        revision = "unknown"
    versions = ", ".join(f"{n} {version(n)}" for n in ("ray", "torch", "optuna"))
    return (f"# {title}\n\n- command: `{command}`\n- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
            f"- machine: {machine()}\n- versions: {versions}; git {revision}\n")


AUTO_RULE_FILE = os.path.join(RESULTS, "proxy_auto.json")  # the selection defaults `adaptune` ships
# The least gain (points of recommended target accuracy, the mean over benchmark groups of each group's mean, paired
# by task and seed) for which a candidate replaces a shipped default; it must also hold with each group left out.
MIN_GAIN = 0.25
# The wall-clock target of a default search on this project's 2-core machine.
SEARCH_TIME_TARGET_S = 600


def read_jsonl(path: str) -> list[dict]:
    """The rows of a JSON-lines results file, gzipped (``.gz``) or not; blank lines skipped."""
    import gzip
    import json

    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def merge_searches(path: str, fresh: list[dict]) -> None:
    """Write the rows ``fresh`` (each of one search, ``task`` and ``seed``, and of one ``rule`` where rows carry
    one) into the JSON-lines file ``path``: they replace every row of the same task and seed there, and of two fresh
    rows of one search and rule the later wins."""
    import json

    newest = {(row["task"], row["seed"], row.get("rule")): row for row in fresh}
    searches = {(task, seed) for task, seed, _ in newest}
    kept = [row for row in (read_jsonl(path) if os.path.exists(path) else [])
            if (row["task"], row["seed"]) not in searches]
    with open(path, "w") as handle:
        for row in sorted(kept + list(newest.values()), key=lambda r: (r["seed"], r["task"], r.get("rule", ""))):
            handle.write(json.dumps(row) + "\n")


def update_auto_rule(**fields: object) -> None:
    """Set ``fields`` in proxy_auto.json, keeping the others: the proxy and the source gap come from two scripts."""
    import json

    rule = {}
    if os.path.exists(AUTO_RULE_FILE):
        with open(AUTO_RULE_FILE) as handle:
            rule = json.load(handle)
    with open(AUTO_RULE_FILE, "w") as handle:
        json.dump({**rule, **fields}, handle, indent=2)
        handle.write("\n")


def write(name: str, text: str, folder: str = RESULTS) -> str:
    """Write a result page ``name`` into ``folder`` (benchmarks/results by default); returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def kept_proxy(summary: dict) -> str:
    """The proxy by which a run's trials kept their checkpoints (from its summary.json): its checkpoint proxy, which
    is its selecting proxy unless the run named another (summaries from before the setting name none)."""
    return summary.get("checkpoint_proxy") or summary["proxy"]


def kept_metric(summary: dict) -> str:
    """The reported metric by which a run's trials kept their checkpoints: :func:`kept_proxy`'s."""
    return f"proxy_{kept_proxy(summary)}"


def selection_label(summary: dict) -> str:
    """How a run ranked its trials, for a table: its proxy, and the proxy whose epochs it read when another."""
    kept = kept_proxy(summary)
    return summary["proxy"] + ("" if kept == summary["proxy"] else f" at {kept}")


def kept_predictions(run: str, trial_id: str, metric: str) -> torch.Tensor | None:
    """The target probabilities of a trial's best kept checkpoint by ``metric`` in the run directory ``run`` (of equal
    scores, the latest), the checkpoint the search's ensemble row reads; None when it kept none."""
    import glob
    import json
    import math

    import torch

    from adaptune.reports.run_dir import RunDir

    for directory in glob.glob(os.path.join(run, "ray", "tune", f"tune_trial_{trial_id}_*")):
        with open(os.path.join(directory, "result.json")) as handle:
            results = [json.loads(line) for line in handle if line.strip()]
        kept = [(r.get(metric, -math.inf), i, os.path.join(directory, r["checkpoint_dir_name"],
                                                          RunDir.CHECKPOINT_PREDICTIONS))
                for i, r in enumerate(results) if r.get("checkpoint_dir_name")]
        kept = [entry for entry in kept if os.path.exists(entry[2])]
        if kept:
            return torch.load(max(kept)[2], map_location="cpu", weights_only=True)
    return None


def page_table(page: str) -> list[dict[str, str]]:
    """The rows of the first table of the result page ``page`` (in benchmarks/results), keyed by its headers."""
    with open(os.path.join(RESULTS, page)) as handle:
        lines = handle.read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    table = [line.strip("| ").split(" | ") for line in itertools.takewhile(lambda line: line.startswith("|"),
                                                                          lines[start:])]
    return [dict(zip(table[0], row)) for row in table[2:]]


def against_best(searches: list[tuple[float, float, float]]) -> tuple[float, float, int, int]:
    """Searches given as (recommended, best trial, baseline) accuracies (%): the mean recommended accuracy, the mean
    loss against each search's best trial, the index of the search that loses most, and how many searches' recommended
    accuracy is at or above their baseline."""
    losses = [best - recommended for recommended, best, _ in searches]
    return (statistics.fmean(recommended for recommended, _, _ in searches), statistics.fmean(losses),
            max(range(len(losses)), key=losses.__getitem__),
            sum(recommended >= baseline for recommended, _, baseline in searches))


def one_decimal(value: float) -> str:
    """``value`` to one decimal, 0.0 for anything that rounds to zero (never -0.0)."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def md_table(rows: list[list[object]], headers: list[str]) -> str:
    """A Markdown table (floats by :func:`one_decimal`; a ``|`` inside a cell, as in a union of preprocessings,
    is escaped so that it does not split the cell)."""
    def cell(value: object) -> str:
        return (one_decimal(value) if isinstance(value, float) else str(value)).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def held_out_choices(per_group: pd.DataFrame, preferred: str | None = None) -> dict[str, str]:
    """Leave one group out: for each group (a row of ``per_group``, the candidates as columns), the candidate of
    least mean over the other groups. Means equal to 1e-6 tie; a tie goes to ``preferred`` (the shipped
    candidate, when given), then to the earlier column."""
    choices = {}
    for group in per_group.index:
        others = per_group.drop(group).mean().round(6)
        choices[group] = min(per_group.columns, key=lambda candidate: (others[candidate], candidate != preferred))
    return choices


def held_out_score(per_group: pd.DataFrame, chosen: dict[str, str]) -> float:
    """The mean over the groups (rows) of ``per_group`` of each group's value under the candidate ``chosen`` for it
    (:func:`held_out_choices`)."""
    return float(sum(per_group.loc[group, chosen[group]] for group in per_group.index) / len(per_group))
