"""The benchmarks run as one package from the repository root (``python -m benchmarks.<name>``)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import benchmarks

MODULES = sorted(module.name for module in pkgutil.walk_packages(benchmarks.__path__, "benchmarks."))


def test_every_script_and_paper_reproduction_is_found():
    assert {"benchmarks.skeleton", "benchmarks.gpu_check", "benchmarks.papers.surf_shallow"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_as_part_of_the_package(name):
    importlib.import_module(name)


def test_paper_reproductions_keep_their_methods_out_of_the_product_registry():
    from adaptune.algorithms.methods import METHODS, get_method
    from benchmarks.papers import surf_shallow

    assert surf_shallow.NoAdaptation.name not in METHODS
    assert surf_shallow.method_class("no_adaptation") is surf_shallow.NoAdaptation
    assert surf_shallow.method_class("coral") is get_method("coral")
