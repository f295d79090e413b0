"""Run configs in this very process: no isolation, best for debugging."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from .base import DoneJob, Executor, Job, Task, redirect_output
from .outcome import Outcome, describe_exception, run_task, write_outcome


class InlineExecutor(Executor):
    """Calls the experiment in the current process; a crash takes the whole run down."""

    def run(self, fn: Callable[[Any], Any], config: Any, result_path: Path) -> Any:
        value = fn(config)
        write_outcome(Path(result_path), Outcome("ok", result=value))
        return value

    def submit(self, task: Task) -> Job:
        task.out.mkdir(parents=True, exist_ok=True)
        with redirect_output(task.log_path, tee=not task.capture):
            outcome = run_task(task)
            if outcome.traceback:
                print(outcome.traceback, end="", file=sys.stderr)
        try:
            write_outcome(task.result_path, outcome)
        except OSError as exc:  # disk full: report it; with no result the config stays pending
            outcome = Outcome("error", error=f"could not store the result in {task.result_path}: "
                              f"{describe_exception(exc)}; it stays pending for --continue")
        return DoneJob(task, outcome)
