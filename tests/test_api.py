"""The public namespace: complete, sorted, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pyexp

SPEC_NAMES = {
    # functions
    "sweep", "merge", "get_executor", "load_config", "register", "build", "experiment", "chkpt",
    # classes
    "Config", "Result", "Tensor", "Experiment", "ExperimentRunner", "Executor", "InlineExecutor",
    "SubprocessExecutor", "ForkExecutor", "RayExecutor", "Logger", "LogReader",
    # types
    "ExecutorName",
}


def test_all_is_sorted_complete_and_importable():
    assert pyexp.__all__ == sorted(pyexp.__all__)
    assert SPEC_NAMES <= set(pyexp.__all__)
    public = {n for n in dir(pyexp) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(pyexp, n)).__name__ == "module"}
    assert public - modules == set(pyexp.__all__)
    for name in pyexp.__all__:
        assert getattr(pyexp, name) is not None


def test_import_is_light():
    code = (
        "import sys, pyexp\n"
        "heavy = [m for m in ('ray', 'panel', 'bokeh', 'matplotlib', 'omegaconf', 'hydra', 'google.protobuf',"
        " 'plotly', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
