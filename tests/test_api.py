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


def test_the_whole_error_tree_is_exported_drawn_and_derives_the_matching_builtin():
    import pyexp.errors as errors

    tree = {name for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, errors.PyexpError)}
    assert tree <= set(pyexp.__all__), tree - set(pyexp.__all__)
    for name in tree:
        assert name in errors.__doc__, f"{name} is missing from the tree drawn in errors.py"
        assert getattr(pyexp, name) is getattr(errors, name)
    assert issubclass(pyexp.ConfigError, ValueError) and issubclass(pyexp.UsageError, ValueError)
    assert issubclass(pyexp.RunNotFoundError, RuntimeError)
    assert issubclass(pyexp.TagNotFoundError, KeyError) and issubclass(pyexp.TagNotFoundError, pyexp.LogError)
    assert issubclass(pyexp.ViewerError, pyexp.PyexpError) and issubclass(pyexp.ViewerError, ValueError)
    from pyexp.log import TagNotFoundError
    from pyexp.viewer.data import ViewerError

    assert TagNotFoundError is pyexp.TagNotFoundError and ViewerError is pyexp.ViewerError


def test_one_executor_contract():
    """submit(task) -> Job with wait()/cancel(); the spec's run() is an adapter on top of it."""
    import inspect

    assert list(inspect.signature(pyexp.Executor.submit).parameters) == ["self", "task"]
    assert list(inspect.signature(pyexp.Executor.run).parameters) == ["self", "fn", "config", "result_path"]
    assert {"wait", "cancel"} <= set(vars(pyexp.Job))
    for cls in (pyexp.InlineExecutor, pyexp.SubprocessExecutor, pyexp.ForkExecutor):
        assert cls.__mro__[1] is pyexp.Executor  # no second, opposite base class
