"""Run configs in this very process: no isolation, best for debugging."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from .. import store
from ..outcome import Outcome, describe_exception
from .base import DoneJob, Executor, Job, prepare
from .task import Task, redirect_output, run_task


class InlineExecutor(Executor):
    """Calls the experiment in the current process; a crash takes the whole run down."""

    def run(self, fn: Callable[[Any], Any], config: Any, result_path: Path) -> Any:
        # The spec's call: the function's own exception propagates as is.
        value = fn(config)
        store.publish_outcome(Path(result_path).parent, Outcome("ok", result=value))
        return value

    def submit(self, task: Task) -> Job:
        prepare(task)
        with redirect_output(task.log_path, tee=not task.capture):
            outcome = run_task(task)
            if outcome.traceback:
                print(outcome.traceback, end="", file=sys.stderr)
        try:
            outcome = store.publish_outcome(task.out, outcome)
        except OSError as exc:  # disk full: report it; with no result the config stays pending
            store.forget_outcome(task.out)
            outcome = Outcome("error", error=f"could not store the result in {task.result_path}: "
                              f"{describe_exception(exc)}; it stays pending for --continue",
                              error_type=type(exc).__name__)
        return DoneJob(task, outcome)
