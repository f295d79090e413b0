"""The executor contract: how one config is run somewhere and how we hear back.

The runner turns every pending config into a :class:`Task` and hands it to
``executor.submit(task)``, which starts it and returns a :class:`Job`. The
runner waits on jobs from helper threads (``job.wait()``), so ``submit`` is
always called from the main thread (forking there is safe) and may return a job
that is already finished (the in-process executors do).

Whoever runs the task writes its :class:`~pyexp.executors.outcome.Outcome` to
``task.result_path`` atomically; ``job.wait()`` returns that same outcome. A
custom executor only implements the spec's ``run(fn, config, result_path)``;
the default ``submit`` wraps it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Literal

from ..errors import ExecutorError
from .outcome import Outcome, run_task, write_outcome

#: Names ``get_executor`` accepts besides ``"ray:<address>"`` and ``"ray://host:port"``.
ExecutorName = Literal["inline", "subprocess", "fork", "ray"]

RESULT_FILE = "result.pkl"
LOG_FILE = "log.out"


@dataclass
class Task:
    """Everything needed to run one config, in any process; picklable by cloudpickle."""

    fn: Callable[..., Any]
    config: Any  # a Config whose ``out`` is this task's folder
    name: str
    out: Path
    capture: bool = True  # False: stream output live to the terminal as well
    with_logger: bool = False  # call fn(config, logger) instead of fn(config)
    git_commit: str | None = None
    code: dict[str, Any] | None = None  # CodeState.short of the run: recorded with the outcome
    #: Descriptor of the runner's claim on ``out`` (see pyexp.store.Claim); a child process
    #: keeps it open so the claim outlives a killed runner only as long as the child runs.
    claim_fd: int | None = None
    sys_path: list[str] = field(default_factory=lambda: list(sys.path))
    cwd: str = field(default_factory=os.getcwd)

    @property
    def result_path(self) -> Path:
        return self.out / RESULT_FILE

    @property
    def log_path(self) -> Path:
        return self.out / LOG_FILE


class Job(ABC):
    """A started task. ``wait`` may be called from any thread, once."""

    def __init__(self, task: Task):
        self.task = task

    @abstractmethod
    def wait(self) -> Outcome:
        """Block until the task ends and return its outcome (never raises for task failures)."""

    def cancel(self, force: bool = False) -> None:
        """Stop the task if it still runs (Ctrl-C): politely, or at once with ``force``.

        A cancelled task leaves no result behind, so ``--continue`` runs it again.
        """

    @property
    def pids(self) -> list[int]:
        """Local process ids running this task (for orphan checks); empty if none."""
        return []


class DoneJob(Job):
    """A job that finished inside ``submit``."""

    def __init__(self, task: Task, outcome: Outcome):
        super().__init__(task)
        self._outcome = outcome

    def wait(self) -> Outcome:
        return self._outcome


@contextlib.contextmanager
def redirect_output(log_path: Path, tee: bool) -> Iterator[None]:
    """Send this process's Python-level stdout/stderr to ``log_path`` (and the terminal if ``tee``)."""
    log = open(log_path, "w", buffering=1, encoding="utf-8", errors="replace")
    old_out, old_err = sys.stdout, sys.stderr
    if tee:
        out, err = _Tee(log, old_out), _Tee(log, old_err)
    else:
        out = err = log
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        log.close()


class _Tee:
    """Writes to the log and the terminal; a terminal that goes away (``| head``) is dropped."""

    def __init__(self, log: Any, terminal: Any):
        self._log = log
        self._terminal = terminal

    def write(self, s: str) -> int:
        self._log.write(s)
        if self._terminal is not None:
            try:
                self._terminal.write(s)
            except (OSError, ValueError):
                self._terminal = None
        return len(s)

    def flush(self) -> None:
        self._log.flush()
        if self._terminal is not None:
            try:
                self._terminal.flush()
            except (OSError, ValueError):
                self._terminal = None

    def isatty(self) -> bool:
        return False


class Executor(ABC):
    """Runs experiment configs. Subclass and implement :meth:`run` for a custom strategy."""

    #: How many tasks may run at once; ``None`` lets the runner's ``--jobs`` decide.
    max_workers: ClassVar[int | None] = None

    @abstractmethod
    def run(self, fn: Callable[[Any], Any], config: Any, result_path: Path) -> Any:
        """Run ``fn(config)``, store the value at ``result_path`` and return it."""

    def submit(self, task: Task) -> Job:
        """Start ``task``; the default runs :meth:`run` right here with output captured."""
        task.out.mkdir(parents=True, exist_ok=True)
        with redirect_output(task.log_path, tee=not task.capture):
            outcome = run_task(task, call=lambda bound: self.run(bound, task.config, task.result_path))
        write_outcome(task.result_path, outcome)
        return DoneJob(task, outcome)

    def close(self) -> None:
        """Release resources (pools, cluster connections) after a run."""


class TaskExecutor(Executor):
    """An executor defined by :meth:`submit`; the spec's ``run()`` is derived from it."""

    @abstractmethod
    def submit(self, task: Task) -> Job:
        """Start ``task`` and return its job (see the module docstring)."""

    def run(self, fn: Callable[[Any], Any], config: Any, result_path: Path) -> Any:
        outcome = self.submit(Task(fn=fn, config=config, name=str(config.get("name", "")),
                                   out=Path(result_path).parent)).wait()
        if not outcome.ok:
            raise ExecutorError(f"{config.get('name', '')}: {outcome.error}")
        return outcome.result


_REGISTRY: dict[str, str] = {
    "inline": "pyexp.executors.inline:InlineExecutor",
    "subprocess": "pyexp.executors.subprocess:SubprocessExecutor",
    "fork": "pyexp.executors.fork:ForkExecutor",
    "ray": "pyexp.executors.ray:RayExecutor",
}


def register_executor(name: str, target: str | type[Executor]) -> None:
    """Make ``get_executor(name)`` return ``target()`` (a class or ``"module:Class"``)."""
    _REGISTRY[name] = target  # type: ignore[assignment]


def get_executor(name: "str | Executor | None" = None) -> Executor:
    """Return an executor instance for ``name`` (``"subprocess"`` if None) or ``name`` itself.

    ``"ray:auto"``, ``"ray:<address>"`` and ``"ray://host:port"`` select Ray with that address.
    """
    if isinstance(name, Executor):
        return name
    if isinstance(name, type) and issubclass(name, Executor):
        return name()
    if name is None:
        name = "subprocess"
    if not isinstance(name, str):
        raise ExecutorError(f"executor must be a name or an Executor instance, got {name!r}")
    address = None
    if name.startswith("ray://"):
        name, address = "ray", name
    elif name.startswith("ray:"):
        name, address = "ray", name[len("ray:"):]
    target = _REGISTRY.get(name)
    if target is None:
        valid = ", ".join(sorted(_REGISTRY) + ["ray:<address>", "ray://host:port"])
        raise ExecutorError(f"unknown executor {name!r}; choose one of: {valid}")
    if isinstance(target, str):
        import importlib

        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target(address=address) if address is not None else target()
