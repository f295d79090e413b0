"""The executor contract: ``submit(task) -> Job``, and ``Job.wait()`` / ``Job.cancel()``.

The runner turns every pending config into a :class:`~pyexp.executors.task.Task` and hands
it to ``executor.submit(task)``, which starts it and returns a :class:`Job`. The runner
waits on jobs from helper threads (``job.wait()``), so ``submit`` is always called from the
main thread (forking there is safe) and may return a job that is already finished.

Whoever runs the task publishes its outcome (``result.pkl`` then ``outcome.json``, see
:func:`pyexp.store.publish_outcome`); ``job.wait()`` returns that same outcome.

A custom executor has two ways in, one contract underneath:

- override :meth:`Executor.submit` (what every built-in executor does), or
- override the spec's :meth:`Executor.run` ``(fn, config, result_path)``: the default
  ``submit`` is a small adapter that calls it right here, with output captured, and keeps
  a ``result.pkl`` that ``run`` wrote itself exactly as written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from .. import store
from ..errors import ExecutorError, UnknownExecutorError
from ..outcome import Outcome
from .task import Task, redirect_output, run_task

#: Names ``get_executor`` accepts besides ``"ray:<address>"`` and ``"ray://host:port"``.
ExecutorName = Literal["inline", "subprocess", "fork", "spawn", "ray", "slurm"]

__all__ = ["DoneJob", "Executor", "ExecutorName", "Job", "Task", "get_executor", "prepare"]


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


def prepare(task: Task) -> None:
    """Create the config folder and forget a stale outcome, so a crash cannot leave it looking current."""
    task.out.mkdir(parents=True, exist_ok=True)
    store.forget_outcome(task.out)


class Executor:
    """Runs experiment configs: implement :meth:`submit`, or the spec's :meth:`run` for a simple one."""

    #: How many tasks may run at once; ``None`` lets the runner's ``--jobs`` decide.
    max_workers: ClassVar[int | None] = None

    def submit(self, task: Task) -> Job:
        """Start ``task`` and return its job. The default runs :meth:`run` right here."""
        if type(self).run is Executor.run:
            raise ExecutorError(f"{type(self).__name__} implements neither submit(task) nor "
                                "run(fn, config, result_path); implement one of them")
        prepare(task)
        with redirect_output(task.log_path, tee=not task.capture):
            outcome = run_task(task, call=lambda bound: self.run(bound, task.config, task.result_path))
        # run() may have pickled the value itself, as the spec's example does: keep that file.
        written = outcome.ok and task.result_path.exists()
        return DoneJob(task, store.publish_outcome(task.out, outcome, result_written=written))

    def run(self, fn: Callable[[Any], Any], config: Any, result_path: Path) -> Any:
        """Run ``fn(config)``, store the value at ``result_path`` and return it (the spec's API).

        Override this for a simple custom executor. On a built-in executor it runs one
        config through :meth:`submit` and raises ExecutorError if the config fails.
        """
        if type(self).submit is Executor.submit:
            raise ExecutorError(f"{type(self).__name__} implements neither submit(task) nor "
                                "run(fn, config, result_path); implement one of them")
        folder = Path(result_path).parent
        outcome = self.submit(Task(fn=fn, config=config, name=str(config.get("name", "")), out=folder)).wait()
        if not outcome.ok:
            raise ExecutorError(f"{config.get('name', '')}: {outcome.error}")
        return outcome.result if outcome.result is not None else store.load_result(folder)

    def close(self) -> None:
        """Release resources (pools, cluster connections) after a run."""

    def validate(self, count: int = 1, jobs: int | None = None) -> None:
        """Raise a PyexpError if this executor cannot run ``count`` configs (``-j jobs``).

        Called before a fresh run writes anything; the default accepts everything.

        An executor that starts many tasks in one go (a Slurm job array) may also define
        ``submit_many(tasks, jobs) -> list[Job]``; the scheduler then hands it every pending
        task at once instead of calling :meth:`submit` per task.
        """


_REGISTRY: dict[str, str] = {
    "inline": "pyexp.executors.inline:InlineExecutor",
    "subprocess": "pyexp.executors.subprocess:SubprocessExecutor",
    "fork": "pyexp.executors.fork:ForkExecutor",
    "spawn": "pyexp.executors.spawn:SpawnExecutor",
    "ray": "pyexp.executors.ray:RayExecutor",
    "slurm": "pyexp.executors.slurm:SlurmExecutor",
}


def get_executor(name: "str | Executor | type[Executor] | None" = None,
                 options: dict[str, Any] | None = None) -> Executor:
    """Return an executor instance for ``name`` (``"subprocess"`` if None) or ``name`` itself.

    ``"ray:auto"``, ``"ray:<address>"`` and ``"ray://host:port"`` select Ray with that address.
    ``options`` are keyword arguments for the executor's constructor (``"slurm"``'s partition,
    time...); given with an executor instance that has ``with_options``, they replace its own.
    """
    if isinstance(name, Executor):
        with_options = getattr(name, "with_options", None)
        return with_options(**options) if options and with_options is not None else name
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
        raise UnknownExecutorError(f"unknown executor {name!r}; choose one of: {valid}")
    import importlib

    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if address is not None:
        return cls(address=address)
    return cls(**options) if options else cls()
