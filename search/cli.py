"""``adaptune``: search | resume | status | submit | leaderboard | proxies | report | tasks | methods | backbones.

Bad input of any kind prints one line, ``adaptune: error: <field>: <what was expected>``, and exits 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from adaptune.algorithms.budget import DEFAULT_BUDGET
from adaptune.algorithms.ensemble import AUTO_SMOOTHING, SMOOTHING_WORDS, Smoothing
from adaptune.algorithms.errors import InputError
from adaptune.algorithms.images import AUGMENTATIONS, DEFAULT_AUGMENT, DEFAULT_IMAGE_SIZE
from adaptune.algorithms.preprocess import AUTO, DEFAULT_PREPROCESS, PREPROCESSING
from adaptune.reports.run_dir import RunError

if TYPE_CHECKING:  # imported where used: the CLI starts without torch and Ray
    from .run import Prepared


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        _fail(f"arguments: {message} (see `{self.prog} --help`)")


# What str.splitlines() breaks at: a value quoted in a message (a path, a YAML key, an argument) may hold one.
_LINE_BREAKS = {ord(ch): repr(ch)[1:-1] for ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def _fail(message: str) -> NoReturn:
    print(f"adaptune: error: {message.translate(_LINE_BREAKS)}", file=sys.stderr)
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="adaptune", description="Find the best domain-adaptation method and hyperparameters "
                     "for an unlabeled target domain.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    search = commands.add_parser("search", help="run a search (default: mnist->usps, all methods)")
    search.add_argument("config", nargs="?", help="YAML config file; flags override its values")
    search.add_argument("--task", help="built-in task (see `adaptune tasks`)")
    search.add_argument("--source", help="labeled source data: .npz, .parquet, .csv or image folder")
    search.add_argument("--target", help="unlabeled (or oracle-labeled) target data, same formats")
    search.add_argument("--methods", help="comma-separated method names (their defaults run in this order), "
                        "or 'all' (the default)")
    search.add_argument("--budget", type=int, help=f"optimizer steps summed over trials (default {DEFAULT_BUDGET:,}); "
                        "the number of trials follows from it and the data's size; no trial starts once it is spent")
    search.add_argument("--searcher", choices=("tpe", "random"),
                        help="tpe (each method's defaults first, then Optuna's TPE; the default) or random")
    search.add_argument("--trials", type=int,
                        help="number of trials (default: what the budget affords); a given count runs them all")
    search.add_argument("--epochs", type=int, help="epochs per trial (ASHA may stop a trial earlier)")
    search.add_argument("--time-budget-s", dest="time_budget_s", type=float,
                        help="optional wall-clock cap of the search in seconds")
    search.add_argument("--preprocess", help=f"feature tables: one of {', '.join(PREPROCESSING)} (default "
                                             f"{DEFAULT_PREPROCESS}; {AUTO} picks one per task from the unlabeled "
                                             "features), or several, comma-separated, for the search to draw per "
                                             "trial")
    search.add_argument("--image-size", dest="image_size", type=int,
                        help=f"image folders: pixels per side (default {DEFAULT_IMAGE_SIZE})")
    search.add_argument("--augment", help=f"image folders: training augmentation, one of {', '.join(AUGMENTATIONS)} "
                        f"(default {DEFAULT_AUGMENT})")
    search.add_argument("--proxy", help="selecting proxy, or auto (the default; see `adaptune methods`)")
    search.add_argument("--checkpoint-proxy", dest="checkpoint_proxy",
                        help="keep each trial's best epoch by this proxy, which the sampler and ASHA follow, and "
                             "rank the finished trials by --proxy at that epoch")
    search.add_argument("--closed-form-draws", dest="closed_form_draws", type=int,
                        help="tpe: seeded random draws of each closed-form method's space, run after the "
                        "defaults (they spend no optimizer steps; default 0)")
    search.add_argument("--fewshot-k", dest="fewshot_k", type=int,
                        help="opt in: k labeled target samples per class for the fewshot proxy")
    search.add_argument("--source-gap", dest="source_gap", type=_source_gap,
                        help="held-out source accuracy a recommended trial may lose against the best trial's "
                        "on the same preprocessing: "
                        "auto (the default), none, or a fraction such as 0.05")
    search.add_argument("--smoothing", type=_smoothing,
                        help="the ensemble's predictions mixed with those of each target sample's nearest target "
                        "neighbours (feature tables): auto (the default), none, or a number of neighbours")
    search.add_argument("--recommend", choices=("ensemble", "single"),
                        help="recommend the top-k ensemble (default) or the single best trial by the proxy")
    search.add_argument("--out", help="run directory (default adaptune-runs/<task>-<time>)")
    search.add_argument("--address", help="join an existing Ray cluster (auto, HOST:PORT, ray://HOST:PORT)")
    search.add_argument("--feature-cache", dest="feature_cache", metavar="DIR",
                        help="frozen-backbone outputs in DIR, reused across runs (default: the run's features/)")
    search.add_argument("--seed", type=int, help="random seed of the sampler and the trials")
    search.add_argument("--backbone", help="lenet, mlp, resnet18, resnet50, torchvision:NAME or timm:NAME (default: "
                        "the task's; see `adaptune backbones`)")
    search.add_argument("--weights", help="backbone weights: a local .pt/.pth/.safetensors file, or a torchvision "
                        "weights name found in the local torch hub cache")
    search.add_argument("--runner", choices=("auto", "tune", "train"), help="run trials in Tune or Ray Train")
    search.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (per worker with Ray Train)")
    search.add_argument("--gpus-per-trial", type=float, help="GPUs per trial (fractions pack trials)")
    search.add_argument("--workers", type=int, help="Ray Train data-parallel workers per trial")
    search.add_argument("--quiet", action="store_true", default=None, help="no progress lines")

    board = commands.add_parser("leaderboard", help="print a run's leaderboard")
    board.add_argument("dir")
    board.add_argument("--top", type=int)
    board.add_argument("--by", help="sort by this column (descending) instead of rank")
    board.add_argument("--format", choices=("table", "csv", "json"), default="table")
    board.add_argument("--history", action="store_true", help="print history.parquet (one row per epoch)")
    board.add_argument("--wide", action="store_true", help="every column (default: a compact table of the top 10)")

    proxies = commands.add_parser("proxies", help="how well each proxy agrees with the oracle (needs target labels)")
    proxies.add_argument("dir")

    report = commands.add_parser("report", help="one self-contained HTML (or Markdown) report of one or more runs")
    report.add_argument("dirs", nargs="+", metavar="DIR", help="run directories; several add a cross-task table")
    report.add_argument("--out", help="output file, - for stdout (default DIR/report.html, or adaptune-report.html "
                        "for several runs)")
    report.add_argument("--format", choices=("html", "md"), help="html (default) or md (Markdown; from --out *.md)")
    report.add_argument("--published", metavar="CSV", help="published results (columns method,task,accuracy) shown "
                        "beside ours in the cross-task table")

    resume = commands.add_parser("resume", help="continue an interrupted search (driver killed, Ctrl-C)")
    resume.add_argument("dir")
    resume.add_argument("config", nargs="?", help="optional: must be the run's config (resume refuses changes)")
    resume.add_argument("--address", help="the Ray cluster to continue on (default: the run's)")
    resume.add_argument("--retry-errors", action="store_true",
                        help="also rerun the trials that ended in error (e.g. lost with a node), from their last "
                             "checkpoint; works on a finished run too")

    status = commands.add_parser("status", help="trials done/running/failed, best proxy, nodes and time of a run")
    status.add_argument("dir")

    submit = commands.add_parser("submit", help="submit a search to a Ray cluster as a Ray Job")
    submit.add_argument("config", help="YAML config file")
    submit.add_argument("--address", required=True, help="the cluster's dashboard, http://HEAD:8265")
    submit.add_argument("--out", help="absolute run directory on the cluster's shared storage")
    submit.add_argument("--pip", action="append", help="requirement to install in the job (repeatable), e.g. a "
                        "pinned adaptune==VERSION when the cluster image lacks it")
    submit.add_argument("--wait", action="store_true", help="wait for the job to end; exit 1 unless it succeeded")

    commands.add_parser("tasks", help="list built-in tasks with their sizes")
    commands.add_parser("methods", help="list methods, their hyperparameters and ranges, and the proxies")
    commands.add_parser("backbones", help="list backbones: stages (what freeze_depth counts), feature width, weights")
    return parser


_FLAG_TO_FIELD = {"cpus_per_trial": ("resources", "cpus_per_trial"), "gpus_per_trial": ("resources", "gpus_per_trial"),
                  "workers": ("resources", "workers"), "runner": ("resources", "runner")}


def _source_gap(text: str) -> float | str:
    from adaptune.algorithms.proxies import SOURCE_GAP_WORDS

    return text if text in SOURCE_GAP_WORDS else float(text)


def _smoothing(text: str) -> int | str:
    return text if text in SMOOTHING_WORDS else int(text)


def _raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML file's settings overridden by the flags given; each layer names a task or paths, not both."""
    from .config import check_task_or_paths, load_yaml

    raw = load_yaml(args.config) if args.config else {}
    check_task_or_paths(raw)
    check_task_or_paths(vars(args))
    for name in ("task", "source", "target", "methods", "searcher", "budget", "trials", "epochs", "time_budget_s",
                 "preprocess", "image_size", "augment", "proxy", "checkpoint_proxy", "fewshot_k", "recommend",
                 "closed_form_draws",
                 "source_gap", "smoothing", "out", "address", "seed", "backbone", "weights", "quiet", "feature_cache",
                 *_FLAG_TO_FIELD):
        value = getattr(args, name)
        if value is None:
            continue
        if name in _FLAG_TO_FIELD:
            section, key = _FLAG_TO_FIELD[name]
            if raw.get(section) is not None and not isinstance(raw[section], dict):
                continue  # build_config reports the YAML's malformed section
            raw[section] = {**(raw.get(section) or {}), key: value}
        else:
            raw[name] = value
    if (args.source is not None or args.target is not None) and args.task is None:
        raw.pop("task", None)
    if args.task is not None:
        raw.pop("source", None), raw.pop("target", None)
    return raw


def _prepare(args: argparse.Namespace) -> Prepared:
    """The search prepared from the arguments; then each backbone notice (a checkpoint's classifier left out, ...)
    as one ``adaptune: ...`` line. Bad input raises first, so it stays the only line."""
    from adaptune.algorithms.backbones import BackboneNotice

    from .config import build_config
    from .run import prepare

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BackboneNotice)
        prepared = prepare(build_config(_raw_config(args)))
    for caught_warning in caught:
        if issubclass(caught_warning.category, BackboneNotice):
            print(f"adaptune: {caught_warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(caught_warning.message, caught_warning.category, caught_warning.filename,
                                 caught_warning.lineno)
    return prepared


def cmd_search(args: argparse.Namespace) -> int:
    from .run import run_search

    prepared = _prepare(args)
    c = prepared.config
    print(f"adaptune: searching {c.task_label()}: {prepared.plan.describe()}; {len(c.methods)} methods, "
          f"proxy {prepared.proxy}{' (auto)' if c.proxy == 'auto' else ''}"
          f"{f' at the epochs {prepared.checkpoint_proxy} keeps' if prepared.ranks_at_checkpoint else ''}"
          f"{'' if prepared.source_gap is None else f', source gap {prepared.source_gap:g}'}"
          f"{'' if prepared.smoothing is None else f', ensemble {prepared.smoothing.describe()}'}, "
          f"preprocess {prepared.preprocess_label}"
          f"{' (auto)' if c.preprocess == AUTO and prepared.task.input_kind == 'features' else ''}, out {c.out}",
          file=sys.stderr)
    summary = run_search(prepared)
    from adaptune.reports.leaderboard import compact_table
    from adaptune.reports.run_dir import RunDir

    run_dir = RunDir(summary["out"])
    print(compact_table(run_dir.read_table(RunDir.LEADERBOARD)))
    print(f"\nleaderboard: {run_dir.file(RunDir.LEADERBOARD)}  "
          f"({summary['trials']} trials in {summary['wall_s']:.0f}s; every column: adaptune leaderboard "
          f"{summary['out']} --wide)")
    if summary.get("recommendation"):
        print(f"recommended: {describe_recommendation(summary['recommendation'])}")
        print(f"report: adaptune report {summary['out']}  (writes {run_dir.report_file('html')})")
    failed = summary.get("all_failed")
    if failed:
        print(f"adaptune: error: every trial failed ({summary['trials']}); the first: {failed['message']} (full "
              f"traceback: {failed['traceback']})", file=sys.stderr)
        return 1
    if summary["state"] != "finished":
        print(f"adaptune: interrupted; the leaderboard holds every finished trial; continue with: adaptune resume "
              f"{summary['out']}", file=sys.stderr)
        return 130
    return 0


def describe_recommendation(rec: dict[str, Any]) -> str:
    """One line: what to ship, its proxy score and (with target labels) its oracle accuracy."""
    oracle = rec.get("target_acc")
    oracle_text = f", oracle {100 * oracle:.1f}%" if isinstance(oracle, float) and math.isfinite(oracle) else ""
    if rec["kind"] == "ensemble":
        # Proxies that read source predictions have no value for an average of target predictions.
        score = rec.get("score")
        score_text = (f"{rec['proxy']} {score:.4f}" if isinstance(score, float) and math.isfinite(score)
                      else f"the top {len(rec['members'])} trials by {rec['proxy']}")
        smoothed = f", {Smoothing(**rec['smoothing']).describe()}" if rec.get("smoothing") else ""
        return (f"the ensemble {rec['trial_id']} (average the predictions of trials {', '.join(rec['members'])}: "
                f"{', '.join(rec['methods'])}{smoothed}), {score_text}{oracle_text}")
    return f"trial {rec['trial_id']} ({rec['method']}), {rec['proxy']} {rec['score']:.4f}{oracle_text}"


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from adaptune.reports.leaderboard import compact_table, format_table
    from adaptune.reports.run_dir import RunDir

    if args.top is not None and args.top < 1:
        raise InputError("top", f"expected a positive number of rows, got {args.top}")
    df = RunDir(args.dir).read_table(RunDir.HISTORY if args.history else RunDir.LEADERBOARD)
    if args.format == "table" and not (args.wide or args.history or args.by):
        print(compact_table(df, top=args.top or 10))
    else:
        print(format_table(df, top=args.top, by=args.by, fmt=args.format))
    return 0


def cmd_proxies(args: argparse.Namespace) -> int:
    from adaptune.reports.leaderboard import format_table
    from adaptune.reports.proxy_quality import write_proxy_quality
    from adaptune.reports.run_dir import RunDir

    print(format_table(write_proxy_quality(args.dir), top=None, by=None, fmt="table"))
    print(f"\nwritten: {RunDir(args.dir).file(RunDir.PROXY_QUALITY)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from adaptune.reports.report import write_report

    path = write_report(args.dirs, out=args.out, fmt=args.format, published=args.published)
    if path != "-":
        print(f"report: {path}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from adaptune.reports.leaderboard import compact_table
    from adaptune.reports.run_dir import RunDir

    from .jobs import resume

    summary = resume(args.dir, args.config, args.address, args.retry_errors)
    print(compact_table(RunDir(summary["out"]).read_table(RunDir.LEADERBOARD)))
    print(f"\n{summary['state']}: {summary['trials']} trials in {summary['out']}")
    return 0 if summary["state"] == "finished" else 130


def cmd_status(args: argparse.Namespace) -> int:
    from .jobs import format_status, read_status

    print(format_status(read_status(args.dir)))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from .jobs import follow_hint, submit

    job_id, status = submit(args.config, args.address, args.out, args.pip, args.wait)
    print(follow_hint(job_id, args.address, args.out) if status == "SUBMITTED" else f"job {job_id}: {status}")
    return 0 if status in ("SUBMITTED", "SUCCEEDED") else 1


def cmd_tasks(args: argparse.Namespace) -> int:
    from adaptune.algorithms.data import list_tasks

    print(f"{'task':<22} {'kind':<9} {'backbone':<9} {'classes':>7} {'src_train':>9} {'src_val':>7} "
          f"{'tgt_train':>9} {'tgt_val':>7}")
    for t in list_tasks():
        print(f"{t['name']:<22} {t['input_kind']:<9} {t['default_backbone']:<9} {t['num_classes']:>7} "
              f"{t['source_train']:>9} {t['source_val']:>7} {t['target_train']:>9} {t['target_val']:>7}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from adaptune.algorithms.hparams import default_ranges
    from adaptune.algorithms.methods import METHODS
    from adaptune.algorithms.proxies import AUTO_SOURCE_GAP, PROXIES, auto_gap_words, auto_rule_words

    from .config import DEFAULT_ENSEMBLE_PER_METHOD
    from .space import method_params

    for name, cls in sorted(METHODS.items()):
        print(f"{name}  [{cls.family}]  {cls.summary}")
        for param in method_params(name, default_ranges()):
            print(f"    {param.describe()}")
    print("\nfreeze_depth ranges over 0..(backbone depth) when --weights gives a pretrained backbone, else 0.")
    print("\nproxies (higher is better):")
    for name, proxy in PROXIES.items():
        print(f"    {name:<11} {proxy.summary}")
    print(f"    {'auto':<11} by input kind, the rule with the least regret in our benchmark among proxies that never "
          f"over-rated one family ({auto_rule_words()})  (default)")
    gaps = ", ".join(f"{kind}: {auto_gap_words(kind)}" for kind in AUTO_SOURCE_GAP)
    print(f"\nsource_gap auto: trials further below the best held-out source accuracy are not recommended ({gaps})")
    smoothing = ", ".join(f"{kind}: {'none' if rule is None else rule.describe()}" for kind, rule in
                          AUTO_SMOOTHING.items())
    print(f"smoothing auto: the recommended ensemble's target predictions, by input kind ({smoothing})")
    print(f"ensemble_per_method: at most {DEFAULT_ENSEMBLE_PER_METHOD} of the recommended ensemble's trials share a "
          "method (default)")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from adaptune.algorithms.backbones import (
        LISTED_BACKBONES,
        TIMM_CUTS,
        TIMM_PREFIX,
        TIMM_REQUIREMENT,
        WEIGHTS_SUFFIXES,
        describe_backbone,
        timm_version,
        torchvision_resnets,
    )

    version = timm_version()
    print(f"{'backbone':<28} {'stages':>6} {'features':>8}  {'--weights':<19} stages in order (freeze_depth k "
          "freezes the first k)")
    for name in LISTED_BACKBONES:
        if name.startswith(TIMM_PREFIX) and version is None:
            continue
        info = describe_backbone(name)
        print(f"{info.name:<28} {info.depth:>6} {info.out_features:>8}  {info.weights:<19} {info.stages}")
    resnets = torchvision_resnets()
    kinds = sorted({re.sub(r"\d.*", "", name) for name in resnets})  # resnet, resnext, wide_resnet
    print(f"\ntorchvision:NAME  any of torchvision's {len(resnets)} ResNets: {'*, '.join(kinds)}* (e.g. resnet34)")
    if version is None:
        print(f"timm:NAME  needs timm: pip install '{TIMM_REQUIREMENT}'")
    else:
        import timm

        families = ", ".join(cut.family for cut in TIMM_CUTS.values())
        print(f"timm:NAME  any of the {len(timm.list_models())} models of timm {version} (timm.list_models('vit*') "
              f"lists some); in stages: {families}; others: one stage")
    print(f"--weights: a local {'/'.join(WEIGHTS_SUFFIXES)} file, or a torchvision weights name in the local torch "
          "hub cache; adaptune never downloads weights")
    return 0


def _quiet_runtime() -> None:
    # No usage-stats upload (no network beyond loopback) and no per-checkpoint snapshot warnings.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0; ours prints progress
    import logging

    for name in ("ray.tune", "ray.train", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_runtime()
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["search", *(argv or [])])
    handlers = {"search": cmd_search, "leaderboard": cmd_leaderboard, "proxies": cmd_proxies, "tasks": cmd_tasks,
                "methods": cmd_methods, "report": cmd_report, "resume": cmd_resume, "status": cmd_status,
                "submit": cmd_submit, "backbones": cmd_backbones}
    try:
        return handlers[args.command](args)
    except (InputError, RunError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        print("adaptune: interrupted; the leaderboard holds every finished trial", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
