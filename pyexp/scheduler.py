"""Phase 2: keep up to N tasks in flight, show progress, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .executors.base import DoneJob, Executor, Job, Task
from .executors.outcome import Outcome

#: Seconds a cancelled task gets to exit after SIGTERM before it is killed.
CANCEL_GRACE = 3.0


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    cached: int = 0

    def __str__(self) -> str:
        return f"{self.passed} ok, {self.failed} failed, {self.cached} cached"


class _Progress:
    """A tqdm bar with pass/fail/cached counts; silent when disabled (``-s``)."""

    def __init__(self, total: int, counts: Counts, enabled: bool):
        self.counts = counts
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=counts.cached, unit="cfg", dynamic_ncols=True,
                            mininterval=0.2, file=sys.stderr)
            self._postfix()

    def _postfix(self) -> None:
        c = self.counts
        self.bar.set_postfix_str(f"passed={c.passed} failed={c.failed} cached={c.cached}", refresh=False)

    def done(self, task: Task, outcome: Outcome) -> None:
        if self.bar is None:
            if not outcome.ok:
                print(f"pyexp: {task.name} failed: {outcome.error}", file=sys.stderr)
            return
        if not outcome.ok:
            self.bar.write(f"FAILED {task.name}: {outcome.error}  (log: {task.log_path})", file=sys.stderr)
        self._postfix()
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _wait_into(job: Job, done: "queue.SimpleQueue[tuple[Job, Outcome]]") -> None:
    try:
        outcome = job.wait()
    except BaseException as exc:  # noqa: BLE001 - a broken executor must not hang the runner
        outcome = Outcome.from_exception(exc)
    done.put((job, outcome))


def execute(tasks: list[Task], executor: Executor, *, jobs: int, progress: bool, cached: int) -> Counts:
    """Run ``tasks`` on ``executor``; returns the counts. Ctrl-C cancels running tasks and re-raises."""
    counts = Counts(cached=cached)
    limit = max(1, executor.max_workers or jobs)
    bar = _Progress(len(tasks) + cached, counts, progress)
    done: "queue.SimpleQueue[tuple[Job, Outcome]]" = queue.SimpleQueue()
    pending = deque(tasks)
    running: dict[int, Job] = {}
    try:
        while pending or running:
            while pending and len(running) < limit:
                job = executor.submit(pending.popleft())
                running[id(job)] = job
                if isinstance(job, DoneJob):
                    done.put((job, job.wait()))
                else:
                    threading.Thread(target=_wait_into, args=(job, done), daemon=True).start()
            job, outcome = done.get()
            del running[id(job)]
            if outcome.ok:
                counts.passed += 1
            else:
                counts.failed += 1
            bar.done(job.task, outcome)
    except KeyboardInterrupt:
        _cancel_all(running, done)
        raise
    finally:
        bar.close()
    return counts


def _cancel_all(running: dict[int, Job], done: "queue.SimpleQueue[tuple[Job, Outcome]]") -> None:
    """Stop every running task: SIGTERM, a short grace period, then SIGKILL. A 2nd Ctrl-C exits now."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    for job in running.values():
        job.cancel()
    deadline = time.monotonic() + CANCEL_GRACE
    while running:
        try:
            job, _ = done.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        running.pop(id(job), None)
    for job in running.values():
        job.cancel(force=True)
    while running:
        try:
            job, _ = done.get(timeout=5.0)
        except queue.Empty:
            break
        running.pop(id(job), None)
    signal.signal(signal.SIGINT, signal.default_int_handler)
