"""pyexp: run every config of an experiment in isolation, cache it, resume it, report on it.

Names are imported on first use (PEP 562), so ``import pyexp`` stays cheap: a
subprocess worker only pays for the parts an experiment touches.
"""

import importlib as _importlib
from typing import TYPE_CHECKING

# Bound eagerly: these functions share their name with their submodule, and a lazily bound
# name would be shadowed by the submodule the first time anything imports it.
from .experiment import experiment
from .sweep import sweep

if TYPE_CHECKING:  # what static tools see; at run time the table below is used
    from .checkpoint import Experiment, chkpt
    from .config import Config, build, load_config, merge, register
    from .errors import PyexpError
    from .executors.base import Executor, ExecutorName, get_executor
    from .executors.fork import ForkExecutor
    from .executors.inline import InlineExecutor
    from .executors.ray import RayExecutor
    from .executors.subprocess import SubprocessExecutor
    from .log import LogReader, Logger
    from .result import Result, load_results
    from .runner import ExperimentRunner
    from .tensor import Tensor

_WHERE = {
    "Config": "config",
    "Executor": "executors.base",
    "ExecutorName": "executors.base",
    "Experiment": "checkpoint",
    "ExperimentRunner": "runner",
    "ForkExecutor": "executors.fork",
    "InlineExecutor": "executors.inline",
    "LogReader": "log",
    "Logger": "log",
    "PyexpError": "errors",
    "RayExecutor": "executors.ray",
    "Result": "result",
    "SubprocessExecutor": "executors.subprocess",
    "Tensor": "tensor",
    "build": "config",
    "chkpt": "checkpoint",
    "get_executor": "executors.base",
    "load_config": "config",
    "load_results": "result",
    "merge": "config",
    "register": "config",
}

__all__ = sorted([*_WHERE, "experiment", "sweep"])
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pyexp' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
