"""Waiting on configs that run as Slurm jobs: the run store says when they end, squeue says why.

One :class:`Watcher` per executor polls the config folders for results (cheap ``stat`` calls)
and, less often, asks ``squeue`` once for every job still out there. A config is done when its
result is in the store; a job Slurm reports as ended (or no longer reports at all) without a
result becomes that config's error, named by Slurm's state: ``TIMEOUT``, ``CANCELLED``... No
``sacct``: clusters without accounting (slurmdbd) are common, and the store is the truth anyway.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Iterable

from .. import store
from ..outcome import Outcome
from .base import Job
from .task import Task

#: Seconds between looks at the config folders for results.
RESULT_POLL = 0.25
#: Seconds between ``squeue`` calls while jobs are out: well below Slurm's MinJobAge (default
#: 300 s), after which an ended job and its state vanish from squeue.
SQUEUE_POLL = 5.0

#: Slurm job states after which a job never runs again (squeue's %T spelling).
ENDED_STATES = frozenset({"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                          "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT", "SPECIAL_EXIT", "REVOKED"})

#: Ended states after which Slurm itself requeues a job submitted with ``--requeue``.
REQUEUED_STATES = frozenset({"NODE_FAIL", "PREEMPTED"})

_WHY = {
    "TIMEOUT": "the job hit its time limit",
    "CANCELLED": "the job was cancelled (scancel or an administrator)",
    "OUT_OF_MEMORY": "the job ran out of memory",
    "NODE_FAIL": "the node running the job failed",
    "PREEMPTED": "the job was preempted",
    "BOOT_FAIL": "the node failed to boot",
    "DEADLINE": "the job missed its deadline",
    "FAILED": "the job's script failed before the config stored a result",
    "COMPLETED": "the job ended without the config storing a result",
}


def describe_end(job_id: str, state: str | None, reason: str | None = None) -> str:
    """The error text of a config whose Slurm job ended without a result."""
    if state is None:
        return (f"LOST: Slurm job {job_id} ended without storing a result, and Slurm no longer "
                "reports its state")
    why = _WHY.get(state, "the job ended without storing a result")
    detail = f", reason {reason}" if reason and reason != "None" else ""
    return f"{state}: Slurm job {job_id}: {why}{detail}"


def squeue_states(job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``{"<array>_<index>": (state, reason)}`` for the jobs squeue still shows (one call).

    Jobs Slurm has forgotten (``MinJobAge`` after they ended) are missing from the result.
    """
    ids = sorted({j.split("_")[0] for j in job_ids})
    if not ids:
        return {}
    proc = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}  # every one of them is forgotten
        raise OSError(f"squeue failed: {proc.stderr.strip() or proc.returncode}")
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def scancel(job_ids: Iterable[str]) -> None:
    """Cancel these jobs with one ``scancel`` call (already ended ones are ignored by Slurm)."""
    ids = sorted(set(job_ids))
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


class SlurmJob(Job):
    """A config running (or queued) as Slurm job ``job_id`` (``<array>_<index>``)."""

    def __init__(self, task: Task, job_id: str, watcher: "Watcher"):
        super().__init__(task)
        self.job_id = job_id
        self._watcher = watcher
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        self.cancelled = False

    def finish(self, outcome: Outcome) -> None:
        if not self._done.is_set():
            self._outcome = outcome
            self._done.set()

    def wait(self) -> Outcome:
        self._done.wait()
        assert self._outcome is not None
        return self._outcome

    def cancel(self, force: bool = False) -> None:
        """Cancel this job; every job the watcher still waits for goes in the same ``scancel``."""
        self._watcher.cancel_all()


class Watcher:
    """Finishes the :class:`SlurmJob` s it watches from the store (results) and squeue (deaths)."""

    def __init__(self, requeue: bool = False) -> None:
        self.requeue = requeue
        self._jobs: dict[str, SlurmJob] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ended: dict[str, int] = {}  # job -> squeue calls in a row that showed a requeue state
        self._missing: dict[str, int] = {}  # job -> squeue calls in a row that did not list it
        self._cancelled = False

    def watch(self, jobs: list[SlurmJob]) -> None:
        with self._lock:
            for job in jobs:
                self._jobs[job.job_id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="pyexp-slurm-watch")
                self._thread.start()

    def cancel_all(self) -> None:
        """``scancel`` every watched job once (Ctrl-C); they end with no result, so they stay pending."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancelled = True
        scancel(job.job_id for job in jobs)
        for job in jobs:
            job.finish(Outcome("error", error="cancelled"))

    def _loop(self) -> None:
        next_squeue = time.monotonic() + SQUEUE_POLL
        while True:
            with self._lock:
                jobs = list(self._jobs.values())
                if not jobs:
                    self._thread = None  # decided under the lock: watch() starts a new one
                    return
            for job in jobs:
                outcome = _stored_outcome(job.task)
                if outcome is not None:
                    self._finish(job, outcome)
            if time.monotonic() >= next_squeue:
                try:
                    self._check_slurm()
                except OSError:
                    pass  # squeue hiccup (slurmctld restarting): results still arrive through the store
                next_squeue = time.monotonic() + SQUEUE_POLL
            time.sleep(RESULT_POLL)

    def _finish(self, job: SlurmJob, outcome: Outcome) -> None:
        with self._lock:
            self._jobs.pop(job.job_id, None)
        job.finish(outcome)

    def _check_slurm(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        states = squeue_states(job.job_id for job in jobs)
        for job in jobs:
            state = states.get(job.job_id)
            if state is not None:
                self._missing.pop(job.job_id, None)
                if state[0] not in ENDED_STATES:
                    continue
                if self.requeue and state[0] in REQUEUED_STATES:
                    # Slurm requeues a requeueable job after these: final only if it stays so.
                    self._ended[job.job_id] = self._ended.get(job.job_id, 0) + 1
                    if self._ended[job.job_id] < 3:
                        continue
            else:
                # Slurm forgets a job MinJobAge after it ended; one miss may be a race, two are not.
                self._missing[job.job_id] = self._missing.get(job.job_id, 0) + 1
                if self._missing[job.job_id] < 2:
                    continue
            # Ended, or forgotten by Slurm: a result written just before still counts.
            outcome = _stored_outcome(job.task)
            if outcome is None and not job.cancelled:
                outcome = Outcome("error", error=describe_end(job.job_id, *(state or (None, None))),
                                  error_type=state[0] if state else "LOST")
                try:
                    store.publish_outcome(job.task.out, outcome)
                except OSError:
                    pass  # the error is still reported; --continue runs the config again
            self._finish(job, outcome or Outcome("error", error="cancelled"))


def _stored_outcome(task: Task) -> Outcome | None:
    """The config's stored outcome, if it has one (its ``outcome.json`` is published last)."""
    if not os.path.exists(store.outcome_path(task.out)):
        return None
    # verify=False: checking the CRC of every result here would read them all; the run's
    # results are checked when it is next opened.
    return store.read_outcome(task.out, verify=False)
