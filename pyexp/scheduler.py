"""Phase 2: keep up to N tasks in flight, show progress, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import store
from .errors import PyexpError
from .executors.base import DoneJob, Executor, Job
from .executors.task import Task
from .outcome import Outcome
from .store import Claim, result_stamp

#: Seconds a cancelled task gets to exit after SIGTERM before it is killed.
CANCEL_GRACE = 3.0

#: Seconds between attempts to claim a config that another process is running.
CLAIM_POLL = 0.2


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    cached: int = 0
    detached: list[Job] = field(default_factory=list)  # started and left running (--detach)

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

    def cached(self) -> None:
        self.counts.cached += 1
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _wait_into(job: Job, done: "queue.SimpleQueue[tuple[Job, Outcome]]") -> None:
    try:
        outcome = job.wait()
    except KeyboardInterrupt:  # Ctrl-C while the main thread waits (-j 1): stop the run, fail nothing
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken executor must not hang the runner
        outcome = Outcome.from_exception(exc)
    done.put((job, outcome))


# Long on purpose: one loop owns the in-flight set, claims and Ctrl-C; split, the
# state it shares (running, deferred, counts) would have to travel between the pieces.
def execute(tasks: list[Task], executor: Executor, *, jobs: int | None, progress: bool, cached: int,
            stamps: dict[Path, Any] | None = None, continue_hint: str | None = None,
            on_done: Callable[[Task, Outcome], None] | None = None, retry: int = 0,
            detach: bool = False) -> Counts:
    """Run ``tasks`` on ``executor``; returns the counts. Ctrl-C cancels running tasks and re-raises.

    Each task is claimed (:class:`pyexp.store.Claim`) before it starts, so another process
    continuing the same run never runs it too: a task claimed elsewhere is put aside and
    waited for, then counted as cached if that process stored a result for it, or run here
    if it did not (it was killed). ``stamps`` maps each task's folder to the
    :func:`~pyexp.store.result_stamp` seen when the task was planned (default: now); a
    different stamp after claiming means another process ran the task meanwhile.
    ``continue_hint`` is the command printed if a second Ctrl-C kills everything at once.
    ``on_done(task, outcome)`` is called for every task run here (not for those another
    process ran), in the main thread. ``jobs`` is ``-j`` (None: not given, one at a time unless
    the executor says otherwise). An executor with ``submit_many`` gets every claimed task in
    one call (a Slurm job array). With ``detach`` the tasks are started and left running (their
    executor runs them outside this process); ``Counts.detached`` lists their jobs. Without
    ``detach``, a task that fails is submitted again (through ``submit_many`` too), up to
    ``retry`` more times, before it counts as failed; each failed attempt's ``log.out`` is kept
    and the final ``log.out`` holds every attempt's output in order.
    """
    counts = Counts(cached=cached)
    limit = max(1, executor.max_workers or jobs or 1) if tasks else 1  # nothing to run: no cluster to reach
    bar = _Progress(len(tasks) + cached, counts, progress)
    done: "queue.SimpleQueue[tuple[Job, Outcome]]" = queue.SimpleQueue()
    if stamps is None:
        stamps = {task.out: result_stamp(task.out) for task in tasks}
    pending = deque(tasks)
    deferred: list[Task] = []  # claimed by another process: retried until free
    running: dict[int, tuple[Job, Claim]] = {}
    told_waiting = False
    waiting_here: Job | None = None
    attempts: dict[int, int] = {}  # id(task) -> attempts made, for tasks that failed at least once
    try:
        while pending or running or deferred:
            batch: list[tuple[Task, Claim]] = []
            while pending and len(running) + len(batch) < limit:
                task = pending.popleft()
                claim = _claim(task, stamps, deferred, counts, bar)
                if claim is not None:
                    batch.append((task, claim))
            for job, claim in _start(executor, batch, jobs, counts, bar):
                running[id(job)] = (job, claim)
                if isinstance(job, DoneJob):
                    done.put((job, job.wait()))
                elif detach:
                    continue  # left running: nobody here waits for it
                elif limit == 1:  # one at a time: wait right here, a thread would only add latency
                    waiting_here = job
                    _wait_into(job, done)
                    waiting_here = None
                else:
                    threading.Thread(target=_wait_into, args=(job, done), daemon=True).start()
            if detach:
                for _, claim in running.values():
                    claim.release()
                counts.detached = [job for job, _ in running.values()]
                running.clear()
                break
            if not running and not deferred:
                continue  # the last tasks were skipped or failed to start: nothing to wait for
            if deferred and not told_waiting:
                told_waiting = True
                holders = sorted({Claim.holder(t.out) for t in deferred})
                bar.note(f"pyexp: {len(deferred)} config(s) are being run by another pyexp process "
                         f"(pid {', '.join(holders)}); waiting for them")
            try:
                job, outcome = done.get(timeout=CLAIM_POLL if deferred else None)
            except queue.Empty:
                pending.extend(deferred)
                deferred.clear()
                continue
            _, claim = running.pop(id(job))
            claim.release()
            task = job.task
            if not outcome.ok and attempts.get(id(task), 1) <= retry:
                _again(task, outcome, attempts, retry, bar)
                stamps[task.out] = result_stamp(task.out)  # our own failed attempt, not another process's
                pending.appendleft(task)
                continue
            if id(task) in attempts:
                store.join_attempt_logs(task.out)
            if outcome.ok:
                counts.passed += 1
            else:
                counts.failed += 1
            bar.done(task, outcome)
            if on_done is not None:
                on_done(task, outcome)
            if deferred and len(running) < limit:
                pending.extend(deferred)
                deferred.clear()
    except KeyboardInterrupt:
        if waiting_here is not None:  # Ctrl-C arrived while we waited inline: let a thread finish it
            threading.Thread(target=_wait_into, args=(waiting_here, done), daemon=True).start()
        _cancel_all(running, done, continue_hint)
        raise
    finally:
        bar.close()
        for _, claim in running.values():
            claim.release()
    return counts


def _claim(task: Task, stamps: dict[Path, Any], deferred: list[Task], counts: Counts,
           bar: _Progress) -> Claim | None:
    """Claim ``task`` to run it here; None if it runs elsewhere, ran meanwhile, or cannot be claimed."""
    try:
        claim = Claim.acquire(task.out)
    except OSError as exc:  # e.g. a read-only or full disk: this config cannot run
        counts.failed += 1
        bar.done(task, Outcome("error", error=f"cannot claim {task.out} to run it: {exc.strerror or exc}"))
        return None
    if claim is None:
        deferred.append(task)
        return None
    if result_stamp(task.out) != stamps.get(task.out) and _has_result(task):
        claim.release()  # another process ran it after we planned: not again
        bar.cached()
        return None
    store.drop_partial_writes(task.out)  # safe: we hold the claim
    task.claim_fd = claim.fd
    return claim


def _start(executor: Executor, batch: list[tuple[Task, Claim]], jobs: int | None, counts: Counts,
           bar: _Progress) -> list[tuple[Job, Claim]]:
    """Submit the claimed tasks: all at once if the executor has ``submit_many``, else one by one."""
    submit_many = getattr(executor, "submit_many", None)
    if submit_many is not None and batch:
        try:
            submitted = submit_many([task for task, _ in batch], jobs)
        except Exception:
            for _, claim in batch:
                claim.release()
            raise  # a refused batch (sbatch's error) ends the run: nothing was started
        return list(zip(submitted, (claim for _, claim in batch)))
    started = []
    for task, claim in batch:
        try:
            started.append((executor.submit(task), claim))
        except PyexpError:  # a user mistake (e.g. a preload that does not import): stop the run
            claim.release()
            raise
        except Exception as exc:  # noqa: BLE001 - one broken submit must not end the sweep
            claim.release()
            counts.failed += 1
            bar.done(task, Outcome.from_exception(exc))
    return started


def _again(task: Task, outcome: Outcome, attempts: dict[int, int], retry: int, bar: _Progress) -> None:
    """Keep a failed attempt's log and error, and count the attempt, before the task runs again."""
    n = attempts.get(id(task), 1)
    attempts[id(task)] = n + 1
    note = f"pyexp: attempt {n} of {retry + 1} failed: {outcome.error}; running it again"
    store.keep_attempt_log(task.out, n, note)
    bar.note(f"pyexp: {task.name}: {note.removeprefix('pyexp: ')}")


def _has_result(task: Task) -> bool:
    """True if another process stored an outcome meanwhile (a damaged result counts as none)."""
    outcome = store.read_outcome(task.out)
    return outcome is not None and (outcome.ok or outcome.error_type != "StoreError")


def _finish(running: dict[int, tuple[Job, Claim]], job: Job) -> None:
    entry = running.pop(id(job), None)
    if entry is not None:
        entry[1].release()


def _cancel_all(running: dict[int, tuple[Job, Claim]], done: "queue.SimpleQueue[tuple[Job, Outcome]]",
                continue_hint: str | None) -> None:
    """Stop every running task: SIGTERM, a short grace period, then SIGKILL. A 2nd Ctrl-C kills now."""

    def kill_now(*_: Any) -> None:
        for job, _claim in list(running.values()):
            try:
                job.cancel(force=True)
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        hint = f" Continue with:\n    {continue_hint}" if continue_hint else ""
        os.write(2, f"\npyexp: killed the running configs.{hint}\n".encode())
        os._exit(130)

    signal.signal(signal.SIGINT, kill_now)
    if running:
        print(f"\npyexp: interrupted; stopping {len(running)} running config(s) "
              "(press Ctrl-C again to kill them at once)", file=sys.stderr, flush=True)
    for job, _claim in running.values():
        job.cancel()
    deadline = time.monotonic() + CANCEL_GRACE
    while running:
        try:
            job, _ = done.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        _finish(running, job)
    for job, _claim in running.values():
        job.cancel(force=True)
    while running:
        try:
            job, _ = done.get(timeout=5.0)
        except queue.Empty:
            break
        _finish(running, job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
