"""pyexp: run every config of an experiment in isolation, cache it, resume it, report on it.

Names are imported on first use (PEP 562), so ``import pyexp`` stays cheap: a
subprocess worker only pays for the parts an experiment touches.
"""

import importlib as _importlib
from typing import TYPE_CHECKING

# Bound eagerly: this function shares its name with its module, and a lazily bound name
# would be shadowed by the submodule the first time anything imports it.
from .experiment import experiment

if TYPE_CHECKING:  # what static tools see; at run time the table below is used
    from .checkpoint import chkpt
    from .config import Config, build, load_config, merge, register
    from .config.sweep import sweep
    from .errors import (CheckpointError, ConfigError, ConfigFileError, ExecutorError, ImportCycleError,
                         LogError, MissingExtraError, NoMatchError, OverrideError, PyexpError, RegistryError,
                         RunNotFoundError, StoreError, TagNotFoundError, UnknownExecutorError,
                         UnknownTypeError, UsageError, ViewerError)
    from .executors.base import Executor, ExecutorName, Job, get_executor
    from .executors.fork import ForkExecutor
    from .executors.inline import InlineExecutor
    from .executors.ray import RayExecutor
    from .executors.slurm import SlurmExecutor
    from .executors.spawn import SpawnExecutor
    from .executors.subprocess import SubprocessExecutor
    from .executors.task import Task
    from .experiment import Experiment
    from .log import LogReader, Logger
    from .result import Result, load_results
    from .runner import ExperimentRunner
    from .tensor import Tensor

_ERRORS = ("CheckpointError", "ConfigError", "ConfigFileError", "ExecutorError", "ImportCycleError",
           "LogError", "MissingExtraError", "NoMatchError", "OverrideError", "PyexpError", "RegistryError",
           "RunNotFoundError", "StoreError", "TagNotFoundError", "UnknownExecutorError", "UnknownTypeError",
           "UsageError", "ViewerError")

_WHERE = {
    "Config": "config",
    "Executor": "executors.base",
    "ExecutorName": "executors.base",
    "Experiment": "experiment",
    "ExperimentRunner": "runner",
    "ForkExecutor": "executors.fork",
    "InlineExecutor": "executors.inline",
    "Job": "executors.base",
    "LogReader": "log",
    "Logger": "log",
    "RayExecutor": "executors.ray",
    "Result": "result",
    "SlurmExecutor": "executors.slurm",
    "SpawnExecutor": "executors.spawn",
    "SubprocessExecutor": "executors.subprocess",
    "Task": "executors.task",
    "Tensor": "tensor",
    "build": "config",
    "chkpt": "checkpoint",
    "get_executor": "executors.base",
    "load_config": "config",
    "load_results": "result",
    "merge": "config",
    "register": "config",
    "sweep": "config.sweep",
    **{name: "errors" for name in _ERRORS},
}

__all__ = sorted([*_WHERE, "experiment"])
from ._version import __version__  # noqa: E402


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pyexp' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
