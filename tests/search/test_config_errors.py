"""Bad input: exit code 2, one line naming the field, before Ray starts, and nothing written."""

import os
import subprocess
import sys

import numpy as np
import pytest

from adaptune.search.cli import main


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
        (["search", "--task", "synthetic:blobs", "--trials", "0"], "trials"),
        (["search", "--task", "synthetic:blobs", "--budget", "0"], "budget"),
        (["search", "--task", "synthetic:blobs", "--preprocess", "minmax"], "preprocess"),
        (["search", "--task", "synthetic:blobs", "--searcher", "grid"], "arguments"),
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
