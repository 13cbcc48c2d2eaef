"""Benchmarks are scripts, not a package: tests load them by path."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("realism")``: ``benchmarks/realism.py`` as a module, loaded once per session."""

    def load(name: str):
        module_name = f"{name}_benchmark"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # dataclasses look their module up
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    return load
