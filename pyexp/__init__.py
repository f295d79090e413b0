"""pyexp: run every config of an experiment in isolation, cache it, resume it, report on it."""

from .config import Config, build, load_config, merge, register
from .errors import PyexpError
from .executors.base import Executor, ExecutorName, get_executor
from .executors.fork import ForkExecutor
from .executors.inline import InlineExecutor
from .executors.ray import RayExecutor
from .executors.subprocess import SubprocessExecutor
from .experiment import experiment
from .result import Result
from .runner import ExperimentRunner
from .sweep import sweep
from .tensor import Tensor

__all__ = [
    "Config",
    "Executor",
    "ExecutorName",
    "ExperimentRunner",
    "ForkExecutor",
    "InlineExecutor",
    "PyexpError",
    "RayExecutor",
    "Result",
    "SubprocessExecutor",
    "Tensor",
    "build",
    "experiment",
    "get_executor",
    "load_config",
    "merge",
    "register",
    "sweep",
]

__version__ = "0.1.0"
