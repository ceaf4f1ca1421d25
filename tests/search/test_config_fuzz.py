"""Property-based: whatever a config file and the flags hold, ``adaptune search`` either gets to the point of
starting the search or prints one ``adaptune: error:`` line and exits 2, writing nothing.

Runs in-process with ``run_search`` replaced by a stub that stops there: config building and ``prepare`` (task
loading, backbone check, plan) run for real; Ray is never reached. Examples are a plausible config (so that
most get past the first checks) with up to two values replaced by anything YAML can hold, plus a few flags.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptune.algorithms.methods import METHODS
from adaptune.algorithms.preprocess import PREPROCESSING
from adaptune.algorithms.proxies import PROXIES
from adaptune.search.cli import main

EXAMPLES = 300


class _Reached(Exception):
    """The config was accepted: the search would start now."""


ODD_TEXT = ["", " ", "/proc/x", "/proc/x/y", "../x", "x", "a/b", ".", "/", "~", "\x00", "a\x00b", "a\nb", "x" * 300,
            "a/" * 2100, "é/ü", "-", "--x", "nan", "inf", "1e3", "null", "all", "auto", "s3://bucket/x",
            "ftp://host/x", "file:///tmp/x", "r18.pth", "ResNet18_Weights.IMAGENET1K_V1", "synthetic:blobs", "dann"]
text = st.sampled_from(ODD_TEXT) | st.text(max_size=12)
numbers = (st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -1, 2, 2**31, 2**32 - 1, 2**32, 2**63, 10**400, 0.5, -0.0, 1e308, math.nan,
                              math.inf, -math.inf]))
scalars = st.none() | st.booleans() | numbers | text
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
# Weights strings are left out: loading weights (and refusing them for lenet/mlp) is the backbones' tests' part.
weights_values = st.none() | numbers | st.booleans() | st.lists(text, max_size=2) | st.sampled_from(["", "\x00"])

lr_bounds = st.tuples(st.floats(1e-5, 1e-2), st.floats(1e-2, 1.0)).map(list)
GOOD_SECTIONS: dict[str, dict[str, st.SearchStrategy]] = {
    "search_space": {"lr": lr_bounds, "adv_weight": lr_bounds, "freeze_depth": st.just([0, 0])},
    "scheduler": {"kind": st.sampled_from(["asha", "none"]), "grace_period": st.integers(1, 4),
                  "reduction_factor": st.integers(2, 4)},
    "resources": {"runner": st.sampled_from(["auto", "tune", "train"]), "cpus_per_trial": st.floats(0.25, 4),
                  "gpus_per_trial": st.sampled_from([0, 0.5, 1]), "workers": st.integers(1, 2),
                  "max_concurrent": st.none() | st.integers(1, 4)},
}
GOOD: dict[str, st.SearchStrategy] = {
    "methods": st.sampled_from(["all", "dann,source_only"])
    | st.lists(st.sampled_from(sorted(METHODS)), min_size=1, max_size=3, unique=True),
    "searcher": st.sampled_from(["tpe", "random"]),
    "trials": st.none() | st.integers(1, 6),
    "budget": st.integers(1, 5000),
    "epochs": st.integers(1, 6),
    "steps_per_epoch": st.sampled_from(["auto", None]) | st.integers(1, 60),
    "preprocess": st.sampled_from(list(PREPROCESSING)),
    "proxy": st.sampled_from(["auto", *(p for p in PROXIES if p != "fewshot")]),
    "fewshot_k": st.sampled_from([0, 0, 1, 2]),
    "closed_form_draws": st.integers(0, 3),
    "ensemble_k": st.integers(0, 6),
    "ensemble_per_method": st.none() | st.integers(1, 3),
    "recommend": st.sampled_from([None, "single"]),
    "seed": st.integers(0, 2**32 - 1),
    "backbone": st.sampled_from([None, "mlp"]),
    "batch_size": st.integers(1, 200),
    "amp": st.booleans(),
    "time_budget_s": st.none() | st.floats(1, 1e6),
    "quiet": st.booleans(),
    "storage": st.sampled_from(["store", "s3://bucket/x", "file:///tmp/adaptune-store"]),
    "feature_cache": st.sampled_from(["features", "../shared/features"]),
    "feature_cache_max_gb": st.sampled_from([0.001, 20, 1e308]),
    "max_failures": st.integers(0, 3),
    "address": st.sampled_from([None, "auto"]),
    "out": st.sampled_from(["run", "../elsewhere/run"]),
    **{name: st.fixed_dictionaries({}, optional=section) for name, section in GOOD_SECTIONS.items()},
}
TOP_KEYS = [*sorted(GOOD), "task", "source", "target", "weights", "recommendations"]
SECTION_KEYS = [(name, key) for name, section in GOOD_SECTIONS.items() for key in [*section, "extra"]]

FLAGS: dict[str, st.SearchStrategy] = {
    "--task": st.sampled_from(["synthetic:blobs", "mnist->svhn"]),
    "--source": text, "--target": text,
    "--methods": st.sampled_from(["all", "dann", "dann,dann", "fancy", ""]),
    "--budget": (st.integers(-1, 5000) | st.sampled_from([2**63, 10**400])).map(str),
    "--trials": st.integers(-1, 6).map(str),
    "--epochs": st.integers(-1, 6).map(str), "--fewshot-k": st.integers(-1, 2).map(str),
    "--seed": st.sampled_from([-1, 0, 7, 2**32 - 1, 2**32, 2**64]).map(str),
    "--time-budget-s": numbers.map(str), "--cpus-per-trial": numbers.map(str), "--gpus-per-trial": numbers.map(str),
    "--workers": st.integers(-1, 3).map(str),
    "--searcher": st.sampled_from(["tpe", "random", "grid"]), "--recommend": st.sampled_from(["single", "x"]),
    "--runner": st.sampled_from(["auto", "tune", "train", "x"]), "--preprocess": text, "--proxy": text,
    "--backbone": st.sampled_from(["mlp", "vgg"]) | text, "--weights": st.sampled_from(["", "\x00"]),
    "--address": text, "--out": text, "--feature-cache": text, "--quiet": st.just(None), "--bogus": text,
}
flag_lists = st.lists(st.sampled_from(sorted(FLAGS)).flatmap(
    lambda flag: FLAGS[flag].map(lambda value: [flag] if value is None else [flag, value])), max_size=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    np.savez(folder / "s.npz", x=rng.normal(size=(60, 4)).astype("float32") + y[:, None], y=y)
    np.savez(folder / "t.npz", x=rng.normal(size=(45, 4)).astype("float32"), y=np.arange(45) % 3)
    np.savez(folder / "unlabeled.npz", x=rng.normal(size=(45, 4)).astype("float32"))
    (folder / "notes.txt").write_text("not data\n")
    return folder


def _domains(data: Path) -> st.SearchStrategy:
    """Which data: mostly the fast synthetic task or a pair of small files; sometimes the default (mnist->usps),
    both kinds at once, or odd paths."""
    paths = st.sampled_from([str(data / name) for name in ("s.npz", "t.npz", "unlabeled.npz", "missing.npz",
                                                           "notes.txt", "")]) | text
    pair = st.fixed_dictionaries({"source": st.just(str(data / "s.npz")),
                                  "target": st.sampled_from([str(data / "t.npz"), str(data / "unlabeled.npz")])})
    return st.one_of(st.just({"task": "synthetic:blobs"}), st.just({"task": "synthetic:blobs"}), pair, st.just({}),
                     st.fixed_dictionaries({}, optional={"task": text, "source": paths, "target": paths}))


def _config(data: Path) -> st.SearchStrategy:
    def mutate(drawn: tuple[dict[str, Any], dict[str, Any], list[tuple[Any, Any]]]) -> dict[str, Any]:
        domain, config, changes = drawn
        config = {**domain, **config}
        for where, value in changes:
            if isinstance(where, tuple):
                section, key = where
                current = config.get(section)
                config[section] = {**(current if isinstance(current, dict) else {}), key: value}
            else:
                config[where] = value
        return config

    key = st.sampled_from(TOP_KEYS) | st.sampled_from(SECTION_KEYS) | st.text(max_size=8)
    change = key.flatmap(lambda k: st.tuples(st.just(k), weights_values if k == "weights" else anything))
    return st.tuples(_domains(data), st.fixed_dictionaries({}, optional=GOOD), st.lists(change, max_size=2)).map(mutate)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_any_config_and_flags_search_or_fail_in_one_line(data, tmp_path, monkeypatch, capsys):
    """300 examples (EXAMPLES, derandomized) of a config file with flags; about 15-20 s on two busy cores."""

    def reached(*args: Any, **kwargs: Any) -> None:
        raise _Reached

    monkeypatch.setattr("adaptune.search.run.run_search", reached)
    sandbox = tmp_path / "cwd"  # relative paths land here
    sandbox.mkdir()
    monkeypatch.chdir(sandbox)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(_config(data), flag_lists, st.sampled_from([True, True, True, False]))
    def check(config: dict[str, Any], flags: list[list[str]], with_out: bool) -> None:
        base = Path(tempfile.mkdtemp(dir=tmp_path))
        path = base / "c.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        before = _tree(tmp_path)
        argv = ["search", str(path), *(["--out", str(base / "run")] if with_out else []),
                *(item for flag in flags for item in flag)]
        capsys.readouterr()
        try:
            main(argv)
        except _Reached:
            pass
        except SystemExit as error:
            lines = capsys.readouterr().err.strip().splitlines()
            assert error.code == 2, (argv, lines)
            assert len(lines) == 1 and lines[0].startswith("adaptune: error: "), (argv, lines)
        else:
            pytest.fail(f"main returned without searching or failing: {argv}")
        assert _tree(tmp_path) == before, argv

    check()
