"""Bad input: exit code 2, one line naming the field, before Ray starts, and nothing written."""

import os
import subprocess
import sys

import numpy as np
import pytest

from adaptune.search.cli import main


@pytest.fixture(autouse=True)
def _never_search(monkeypatch):
    # A config these tests expect to be refused must not start Ray and a whole search if it passes.
    def reached(*args, **kwargs):
        raise AssertionError("the config was accepted and the search was about to start")

    monkeypatch.setattr("adaptune.search.run.run_search", reached)


def _run(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1, err
    return err[0]


def _npz(path, n=6, classes=(0, 1), dim=4):
    y = np.array([classes[i % len(classes)] for i in range(n)])
    np.savez(path, x=np.random.default_rng(0).normal(size=(n, dim)).astype("float32"), y=y)
    return str(path)


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["search", "--task", "mnist->svhn"], "task"),
        (["search", "--task", "synthetic:blobs", "--methods", "dann,fancy"], "methods"),
        (["search", "--task", "synthetic:blobs", "--proxy", "accuracy"], "proxy"),
        (["search", "--task", "synthetic:blobs", "--proxy", "fewshot"], "proxy"),
        (["search", "--task", "synthetic:blobs", "--fewshot-k", "-1"], "fewshot_k"),
        (["search", "--task", "synthetic:blobs", "--closed-form-draws", "-2"], "closed_form_draws"),
        (["search", "--task", "synthetic:blobs", "--trials", "0"], "trials"),
        (["search", "--task", "synthetic:blobs", "--budget", "0"], "budget"),
        (["search", "--task", "synthetic:blobs", "--preprocess", "minmax"], "preprocess"),
        (["search", "--task", "synthetic:blobs", "--preprocess", "zscore,minmax"], "preprocess"),
        (["search", "--task", "synthetic:blobs", "--searcher", "grid"], "arguments"),
        (["search", "--task", "synthetic:blobs", "--source-gap", "1.5"], "source_gap"),
        (["search", "--task", "synthetic:blobs", "--source-gap", "some"], "arguments"),
        (["search", "--task", "synthetic:blobs", "--smoothing", "-1"], "smoothing"),
        (["search", "--task", "synthetic:blobs", "--smoothing", "some"], "arguments"),
        (["search", "--task", "mnist->usps", "--smoothing", "5"], "smoothing"),  # images: no feature neighbourhoods
        (["search", "--task", "synthetic:blobs", "--time-budget-s", "-5"], "time_budget_s"),
        (["search", "--task", "synthetic:blobs", "--recommend", "best"], "arguments"),
        (["search", "--task", "synthetic:blobs", "--backbone", "vgg"], "backbone"),
        (["search", "--source", "/nonexistent/source.npz", "--target", "/nonexistent/t.npz"], "source"),
        (["search", "--task", "synthetic:blobs", "--bogus-flag"], "arguments"),
    ],
)
def test_bad_flags(capsys, tmp_path, argv, field):
    out = tmp_path / "run"
    line = _run(capsys, [*argv, "--out", str(out)] if "--bogus-flag" not in argv else argv)
    assert line.startswith(f"adaptune: error: {field}"), line
    assert not out.exists()


def test_unknown_config_key_and_nested_key(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: synthetic:blobs\nepoch: 3\n")
    assert "epoch: unknown config key" in _run(capsys, ["search", str(config)])
    config.write_text("task: synthetic:blobs\nresources:\n  gpu: 1\n")
    assert "resources.gpu: unknown key" in _run(capsys, ["search", str(config)])
    config.write_text("task: synthetic:blobs\nsearcher: grid\n")
    assert "searcher: expected one of: tpe, random" in _run(capsys, ["search", str(config)])
    config.write_text("task: synthetic:blobs\nscheduler:\n  kind: hyperband\n")
    assert "scheduler.kind: expected one of: asha, none" in _run(capsys, ["search", str(config)])
    config.write_text("task: synthetic:blobs\ntrials: many\n")
    assert "trials: expected a positive integer" in _run(capsys, ["search", str(config)])
    config.write_text("task: synthetic:blobs\nsteps_per_epoch: sometimes\n")
    assert "steps_per_epoch: expected auto or a positive integer" in _run(capsys, ["search", str(config)])
    config.write_text("task: [unclosed\n")
    assert "config:" in _run(capsys, ["search", str(config)])
    assert "config:" in _run(capsys, ["search", str(tmp_path / "missing.yaml")])


def test_empty_domain_and_mismatched_classes(capsys, tmp_path):
    source = _npz(tmp_path / "s.npz")
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 4), dtype="float32"))
    line = _run(capsys, ["search", "--source", source, "--target", str(empty), "--out", str(tmp_path / "o")])
    assert "target" in line and "empty" in line.lower()
    other = _npz(tmp_path / "t.npz", classes=(0, 2))
    line = _run(capsys, ["search", "--source", source, "--target", other, "--out", str(tmp_path / "o")])
    assert line.startswith("adaptune: error: target") and "class" in line
    assert not (tmp_path / "o").exists()


def test_existing_run_directory_is_refused(capsys, tmp_path):
    (tmp_path / "leaderboard.parquet").write_bytes(b"")
    line = _run(capsys, ["search", "--task", "synthetic:blobs", "--out", str(tmp_path)])
    assert line.startswith("adaptune: error: out")


def test_console_script_exit_code(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "adaptune")
    result = subprocess.run([exe, "search", "--task", "nope", "--out", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "task" in result.stderr


def test_example_config_is_valid(tmp_path):
    from pathlib import Path

    from adaptune.search.config import build_config, load_yaml

    raw = load_yaml(str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "search.yaml"))
    config = build_config({**raw, "out": str(tmp_path / "run")})
    assert config.task == "office-surf:A->W" and config.resources.resolved_runner == "tune"


def test_flags_override_yaml(tmp_path):
    from adaptune.search.cli import _raw_config, build_parser

    path = tmp_path / "c.yaml"
    path.write_text("task: mnist->usps\ntrials: 3\nresources:\n  cpus_per_trial: 2\n")
    args = build_parser().parse_args(["search", str(path), "--trials", "5", "--workers", "2", "--source", "s",
                                      "--target", "t"])
    raw = _raw_config(args)
    assert raw["trials"] == 5 and raw["resources"] == {"cpus_per_trial": 2, "workers": 2}
    assert "task" not in raw and raw["source"] == "s"


def test_fewshot_needs_target_labels(capsys, tmp_path):
    source = _npz(tmp_path / "s.npz", n=20)
    target = tmp_path / "t.npz"
    np.savez(target, x=np.zeros((10, 4), dtype="float32"))  # unlabeled
    line = _run(capsys, ["search", "--source", source, "--target", str(target), "--fewshot-k", "2",
                         "--out", str(tmp_path / "run")])
    assert line.startswith("adaptune: error: fewshot_k:"), line
    assert not (tmp_path / "run").exists()


def test_recommend_needs_an_ensemble_row(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: synthetic:blobs\nensemble_k: 0\nrecommend: ensemble\n")
    assert _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")]).startswith(
        "adaptune: error: recommend: expected single with ensemble_k: 0")
    config.write_text("task: synthetic:blobs\nrecommend: best\n")
    assert _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")]).startswith(
        "adaptune: error: recommend: expected one of: ensemble, single")
    config.write_text("task: synthetic:blobs\nensemble_per_method: 0\n")
    assert _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")]) == (
        "adaptune: error: ensemble_per_method: expected a positive count, or null for no cap, got 0")
    config.write_text("task: synthetic:blobs\nsource_gap: [0.1]\n")
    assert _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")]) == (
        "adaptune: error: source_gap: expected auto, none or a fraction of accuracy in [0, 1], got [0.1]")
    config.write_text("task: synthetic:blobs\nsmoothing_weight: 0\n")
    assert _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")]) == (
        "adaptune: error: smoothing_weight: expected a number in (0, 1], got 0")


def test_a_checkpoint_proxy_must_score_every_epoch_and_let_the_selecting_proxy_be_read_there(capsys, tmp_path):
    argv = ["search", "--task", "synthetic:blobs", "--out", str(tmp_path / "run")]
    assert _run(capsys, [*argv, "--checkpoint-proxy", "nope"]).startswith(
        "adaptune: error: checkpoint_proxy: unknown proxy 'nope'; expected null or one of: source_acc,")
    assert _run(capsys, [*argv, "--checkpoint-proxy", "circular"]) == (
        "adaptune: error: checkpoint_proxy: circular scores the final epoch only; expected a proxy of every epoch")
    assert _run(capsys, [*argv, "--proxy", "circular", "--checkpoint-proxy", "im"]).startswith(
        "adaptune: error: checkpoint_proxy: expected null: circular scores the final epoch only")
    assert _run(capsys, [*argv, "--checkpoint-proxy", "fewshot"]).startswith(
        "adaptune: error: checkpoint_proxy: fewshot selects on labeled target samples")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--seed", "-1"], "seed"),
        (["--seed", str(2**32)], "seed"),
        (["--cpus-per-trial", "nan"], "resources.cpus_per_trial"),
        (["--cpus-per-trial", "inf"], "resources.cpus_per_trial"),
        (["--gpus-per-trial", "inf"], "resources.gpus_per_trial"),
        (["--gpus-per-trial", "nan"], "resources.gpus_per_trial"),
        (["--time-budget-s", "nan"], "time_budget_s"),
        (["--time-budget-s", "inf"], "time_budget_s"),
        (["--out", ""], "out"),
        (["--out", "/proc/adaptune-run"], "out"),
        (["--feature-cache", ""], "feature_cache"),
        (["--feature-cache", "/proc/adaptune-features"], "feature_cache"),
        (["--task", "synthetic:blobs", "--source", "s.npz", "--target", "t.npz"], "task"),
        (["--task", "synthetic:blobs", "--source", "s.npz"], "task"),
    ],
)
def test_bad_values_of_flags(capsys, tmp_path, flags, field):
    out = tmp_path / "run"
    argv = ["search", "--task", "synthetic:blobs", "--out", str(out), *flags]
    line = _run(capsys, argv)
    assert line.startswith(f"adaptune: error: {field}: expected"), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("seed: -1", "seed"),
        ("seed: 4294967296", "seed"),
        ("budget: 1" + "0" * 400, "budget"),
        ("steps_per_epoch: 1" + "0" * 400, "steps_per_epoch"),
        ("trials: 9223372036854775808", "trials"),
        ("time_budget_s: .nan", "time_budget_s"),
        ("time_budget_s: .inf", "time_budget_s"),
        ("connect_timeout_s: 0", "connect_timeout_s"),
        ("connect_timeout_s: .nan", "connect_timeout_s"),
        ("feature_cache_max_gb: 0", "feature_cache_max_gb"),
        ("feature_cache_max_gb: -1", "feature_cache_max_gb"),
        ("feature_cache_max_gb: .nan", "feature_cache_max_gb"),
        ("resources:\n  cpus_per_trial: .nan", "resources.cpus_per_trial"),
        ("resources:\n  cpus_per_trial: .inf", "resources.cpus_per_trial"),
        ("resources:\n  gpus_per_trial: .inf", "resources.gpus_per_trial"),
        ("resources:\n  gpus_per_trial: 1" + "0" * 400, "resources.gpus_per_trial"),
        ("search_space:\n  lr: [0.001, .inf]", "search_space.lr"),
        ("search_space:\n  lr: [.nan, 0.1]", "search_space.lr"),
        ("search_space:\n  adv_weight: [0.1, .nan]", "search_space.adv_weight"),
        ("search_space:\n  freeze_depth: [-.inf, 0]", "search_space.freeze_depth"),
        ("search_space:\n  freeze_depth: [0, .inf]", "search_space.freeze_depth"),
    ],
)
def test_out_of_range_and_non_finite_yaml_values(capsys, tmp_path, yaml_text, field):
    config = tmp_path / "c.yaml"
    config.write_text(f"task: synthetic:blobs\n{yaml_text}\n")
    out = tmp_path / "run"
    line = _run(capsys, ["search", str(config), "--out", str(out)])
    assert line.startswith(f"adaptune: error: {field}: expected"), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("task: 5", "task"),
        ("task: [a, b]", "task"),
        ("task: {a: 1}", "task"),
        ("source: 5\ntarget: t.npz", "source"),
        ("source: s.npz\ntarget: 5", "target"),
        ("source: [s.npz]\ntarget: t.npz", "source"),
        ("task: synthetic:blobs\nproxy: [a]", "proxy"),
        ("task: synthetic:blobs\nmethods: [[dann]]", "methods"),
        ("task: synthetic:blobs\nmethods: [dann, 5]", "methods"),
        ("task: synthetic:blobs\nmethods: [dann, null]", "methods"),
        ("task: synthetic:blobs\nmethods: {dann: 1}", "methods"),
        ("task: synthetic:blobs\nbackbone: {x: 1}", "backbone"),
        ("task: synthetic:blobs\nout: 123", "out"),
        ("task: synthetic:blobs\nweights: 5", "weights"),
        ("task: synthetic:blobs\nweights: ''", "weights"),
        ("task: synthetic:blobs\nstorage: 5", "storage"),
        ("task: synthetic:blobs\nfeature_cache: [a]", "feature_cache"),
        ("task: synthetic:blobs\nfeature_cache_max_gb: big", "feature_cache_max_gb"),
        ("task: synthetic:blobs\naddress: 5", "address"),
        ("task: synthetic:blobs\nrecommend: 5", "recommend"),
        ("task: synthetic:blobs\npreprocess: 5", "preprocess"),
        ("task: synthetic:blobs\npreprocess: [zscore, zscore]", "preprocess"),
        ("task: synthetic:blobs\npreprocess: [zscore, minmax]", "preprocess"),
        ("task: synthetic:blobs\npreprocess: []", "preprocess"),
        ("task: synthetic:blobs\npreprocess: [[zscore]]", "preprocess"),
        ("task: synthetic:blobs\npreprocess: [auto, zscore-clip]", "preprocess"),
        ("task: synthetic:blobs\nsearcher: 5", "searcher"),
        ("task: synthetic:blobs\nsearcher: [tpe]", "searcher"),
        ("task: synthetic:blobs\nscheduler:\n  kind: 5", "scheduler.kind"),
        ("task: synthetic:blobs\nscheduler:\n  kind: [asha]", "scheduler.kind"),
        ("task: synthetic:blobs\nresources:\n  runner: 5", "resources.runner"),
        ("task: synthetic:blobs\nresources:\n  runner: [tune]", "resources.runner"),
        ("task: synthetic:blobs\nquiet: 3", "quiet"),
        ("task: synthetic:blobs\nsearch_space:\n  lr: [a, b]", "search_space.lr"),
        ("task: synthetic:blobs\nresources: 5", "resources"),
        ("task: synthetic:blobs\nsource: s.npz\ntarget: t.npz", "task"),
    ],
)
def test_wrong_typed_yaml_values(capsys, tmp_path, yaml_text, field):
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text + "\n")
    out = tmp_path / "run"
    flags = [] if yaml_text.startswith("task: synthetic:blobs\nout:") else ["--out", str(out)]  # flags override
    line = _run(capsys, ["search", str(config), *flags])
    assert line.startswith(f"adaptune: error: {field}: "), line
    assert not out.exists()


def test_malformed_yaml_section_with_a_flag_into_it(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    for section in ("[1, 2]", "0", "''"):
        config.write_text(f"task: synthetic:blobs\nresources: {section}\n")
        line = _run(capsys, ["search", str(config), "--workers", "2", "--out", str(tmp_path / "run")])
        assert line.startswith("adaptune: error: resources: expected a mapping"), line


def test_binary_or_directory_config(capsys, tmp_path):
    binary = tmp_path / "c.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "run"
    for argv in (["search", str(binary), "--out", str(out)],
                 ["submit", str(binary), "--address", "http://127.0.0.1:1"],
                 ["search", str(tmp_path), "--out", str(out)],
                 ["submit", str(tmp_path), "--address", "http://127.0.0.1:1"]):
        assert _run(capsys, argv).startswith("adaptune: error: config: expected"), argv
    assert not out.exists()


def test_partial_run_directory_is_refused(capsys, tmp_path):
    (tmp_path / "config.yaml").write_text("task: synthetic:blobs\n")
    line = _run(capsys, ["search", "--task", "synthetic:blobs", "--out", str(tmp_path)])
    assert line.startswith("adaptune: error: out: expected a new directory") and "adaptune resume" in line, line
    assert (tmp_path / "config.yaml").read_text() == "task: synthetic:blobs\n"


def test_out_that_cannot_be_created(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker, blocker / "run", "/proc/adaptune/run", tmp_path / ("x" * 300)):
        line = _run(capsys, ["search", "--task", "synthetic:blobs", "--out", str(out)])
        assert line.startswith("adaptune: error: out: expected"), line
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_task_and_paths_in_different_layers(tmp_path):
    from adaptune.search.cli import _raw_config, build_parser
    from adaptune.search.config import build_config

    path = tmp_path / "c.yaml"
    path.write_text("source: s.npz\ntarget: t.npz\n")
    raw = _raw_config(build_parser().parse_args(["search", str(path), "--task", "synthetic:blobs"]))
    assert raw == {"task": "synthetic:blobs"}
    assert build_config({**raw, "out": str(tmp_path / "run")}).task == "synthetic:blobs"


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    from adaptune.search.config import build_config

    monkeypatch.chdir(tmp_path)
    config = build_config({"source": "s.npz", "target": "data/t.npz", "weights": "r18.pth", "storage": "store",
                           "out": "runs/one"})
    assert config.source == str(tmp_path / "s.npz") and config.target == str(tmp_path / "data" / "t.npz")
    assert config.weights == str(tmp_path / "r18.pth") and config.storage == str(tmp_path / "store")
    assert config.out == str(tmp_path / "runs" / "one") and config.task is None
    assert not (tmp_path / "runs").exists()
    (tmp_path / "weights.bin").write_bytes(b"")
    assert build_config({"task": "synthetic:blobs", "weights": "weights.bin", "out": "run"}).weights == str(
        tmp_path / "weights.bin")
    config = build_config({"task": "synthetic:blobs", "weights": "ResNet18_Weights.IMAGENET1K_V1",
                           "storage": "s3://bucket/adaptune", "out": "run"})
    assert config.weights == "ResNet18_Weights.IMAGENET1K_V1" and config.storage == "s3://bucket/adaptune"


def test_feature_cache_is_absolute_and_not_part_of_what_is_searched(tmp_path, monkeypatch, capsys):
    from adaptune.search.config import build_config

    monkeypatch.chdir(tmp_path)
    plain = build_config({"task": "synthetic:blobs", "out": "run"})
    shared = build_config({"task": "synthetic:blobs", "out": "run", "feature_cache": "cache",
                           "feature_cache_max_gb": 0.5})
    assert shared.feature_cache == str(tmp_path / "cache") and not (tmp_path / "cache").exists()
    assert shared.config_hash() == plain.config_hash()  # where features are cached never changes a result
    (tmp_path / "file").write_text("")
    line = _run(capsys, ["search", "--task", "synthetic:blobs", "--out", "run", "--feature-cache", "file"])
    assert line.startswith("adaptune: error: feature_cache: expected a directory"), line


@pytest.mark.parametrize("top", ["-3", "0"])
def test_leaderboard_top_must_be_positive(capsys, tmp_path, top):
    line = _run(capsys, ["leaderboard", str(tmp_path), "--top", top])
    assert line.startswith(f"adaptune: error: top: expected a positive number of rows, got {int(top)}"), line


def test_yaml_nested_too_deeply_or_aliased_into_a_huge_value(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: " + "[" * 5000 + "]" * 5000 + "\n")
    assert _run(capsys, ["search", str(config)]).startswith("adaptune: error: config: expected settings nested")
    # Ten levels of ten aliases: a small file whose value, written out in full, would be 10**10 items.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    config.write_text("\n".join(lines) + "\n")
    line = _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")])
    assert line.startswith("adaptune: error: l0: unknown config key") and len(line) < 1000, line
    config.write_text("task:\n" + "".join(f"  - {entry.split(': ', 1)[1]}\n" for entry in lines))
    line = _run(capsys, ["search", str(config), "--out", str(tmp_path / "run")])
    assert line.startswith("adaptune: error: task: expected a built-in task name") and len(line) < 1000, line


def test_line_breaks_in_values_stay_on_the_one_line(capsys, tmp_path):
    line = _run(capsys, ["search", "--source", "a\nb.npz", "--target", "t\u2028.npz", "--out", str(tmp_path / "r")])
    assert line.startswith("adaptune: error: source: ") and "a\\nb.npz" in line, line
    config = tmp_path / "c.yaml"
    config.write_text('task: synthetic:blobs\n"ep\\x1eochs": 3\n"": 1\n')
    line = _run(capsys, ["search", str(config), "--out", str(tmp_path / "r")])
    assert line.startswith("adaptune: error: 'ep\\x1eochs': unknown config key"), line
    assert _run(capsys, ["search", "--task", "synthetic:blobs", "--bogus\x85"]).startswith("adaptune: error: arguments")


def test_edges_that_are_accepted(tmp_path):
    from adaptune.search.config import build_config

    for seed in (0, 2**32 - 1):
        assert build_config({"task": "synthetic:blobs", "seed": seed, "out": str(tmp_path / "run")}).seed == seed
    config = build_config({"task": "synthetic:blobs", "search_space": None, "time_budget_s": 1e300,
                           "resources": {"cpus_per_trial": 0.5, "gpus_per_trial": 0}, "out": str(tmp_path)})
    assert config.search_space == {} and config.out == str(tmp_path)
    # Several preprocessings (YAML list or comma-separated flag) are searched; a one-kind list is that kind.
    for value, expected in ((["zscore", "domain-scale"], ["zscore", "domain-scale"]),
                            ("none,zscore", ["none", "zscore"]), (["domain-scale"], "domain-scale"), ("auto", "auto")):
        config = build_config({"task": "synthetic:blobs", "preprocess": value, "out": str(tmp_path)})
        assert config.preprocess == expected
        assert config.preprocess_choices == (tuple(expected) if isinstance(expected, list) else (expected,))


def test_methods_lists_every_method_and_what_auto_resolves_to(capsys):
    from adaptune.algorithms.methods import METHODS
    from adaptune.algorithms.proxies import AUTO_PROXY, AUTO_RANKING_PROXY
    from adaptune.search.config import DEFAULT_ENSEMBLE_PER_METHOD

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS)
    for kind, kept in AUTO_PROXY.items():
        ranking = AUTO_RANKING_PROXY.get(kind)
        assert (f"{kind}: {ranking} at {kept}'s best epoch" if ranking else f"{kind}: {kept}") in out
    assert f"ensemble_per_method: at most {DEFAULT_ENSEMBLE_PER_METHOD} " in out
