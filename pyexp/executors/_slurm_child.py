"""Inside a Slurm job: run one config in a child of the job's fresh interpreter, isolated.

submitit's job process (``python -m submitit.core._submit``) unpickles a :class:`RunConfig` and
calls it. That process keeps submitit's signal handling (USR2 before the time limit: checkpoint
and requeue), while the config itself runs in a forked child whose output goes to the config's
``log.out``. So a segfault fails that config alone with "killed by SIGSEGV", as it would
locally. A child killed by SIGTERM/SIGKILL was stopped by Slurm
(time limit, ``scancel``, requeue, preemption): nothing is written then, and the pyexp process
waiting on the run reads Slurm's verdict (``TIMEOUT``, ``CANCELLED``...) instead.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from .. import store
from ..outcome import Outcome
from ..store import LOG_FILE, SLURM_PAYLOAD_FILE
from ._child import exit_with, output_to
from ._process import ProcessJob, _last_line, watch_parent
from .task import Task, run_task, store_outcome

#: Deaths that mean "Slurm stopped this job": the verdict is Slurm's, not the config's.
_STOPPED_BY_SLURM = (-signal.SIGTERM, -signal.SIGKILL)


class RunConfig:
    """The callable submitit runs in the job: the config in folder ``out``."""

    def __init__(self, out: str, requeue: bool, time_known: bool = True):
        self.out = out
        self.requeue = requeue
        self.time_known = time_known

    def __call__(self) -> int:
        if not self.requeue:
            # submitit would requeue on the time-limit warning signal; without requeue the job
            # simply runs until Slurm stops it, and TIMEOUT is reported from Slurm's state.
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        elif not self.time_known:
            _handle_signals_without_time_limit()
        return run_config(Path(self.out))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on the time-limit/preemption signal; returning the call requeues it.

        The config's own ``@chkpt`` checkpoints live in its folder, so the restarted job resumes
        from them with nothing more to save here.
        """
        if not self.requeue:
            return None
        from submitit.core.utils import DelayedSubmission

        return DelayedSubmission(self)


def _handle_signals_without_time_limit() -> None:
    """submitit's USR2 handler, for a job whose time limit is the partition's (unknown here).

    submitit compares the run time with the limit it was given to tell a time-out from a
    preemption, and fails on ``None``; an unknown limit counts as never reached, so the job
    is requeued on every warning signal (each restart resumes from the checkpoints).
    """
    from submitit.core.job_environment import JobEnvironment
    from submitit.core.utils import DelayedSubmission

    env = JobEnvironment()
    delayed = DelayedSubmission.load(env.paths.submitted_pickle)
    delayed.set_timeout(10**9, delayed._timeout_countdown)
    env._handle_signals(env.paths, delayed)


def run_config(out: Path) -> int:
    """Run the config whose payload is in ``out`` in a forked child; returns its exit code.

    A fork, not a fresh interpreter: this process has just started and imported what the
    worker needs, so the child starts in milliseconds (a second interpreter per job cost
    about half a second here) and is still isolated: a crash kills only the child.
    """
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    log = os.open(out / LOG_FILE, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if restarts else os.O_TRUNC), 0o644)
    if restarts:
        array = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        job = "_".join(array) if all(array) else os.environ.get("SLURM_JOB_ID", "?")
        os.write(log, f"\npyexp: Slurm job {job} restarted (restart {restarts}); "
                      "resuming from this config's checkpoints\n".encode())
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child: never returns
        _child(out, log, parent)
    os.close(log)
    job = _ChildJob(Task(fn=None, config=None, name=out.name, out=out), pid)  # type: ignore[arg-type]
    job.wait()
    if store.outcome_path(out).exists():
        _unlink(out / SLURM_PAYLOAD_FILE)
    return job.returncode


def _child(out: Path, log: int, parent: int) -> NoReturn:
    def body() -> int:
        os.setsid()
        # submitit's handlers are for the job process; Slurm's warning signal is not for us.
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        for signum in (signal.SIGTERM, signal.SIGCONT, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        watch_parent(parent)
        output_to(log)
        with open(out / SLURM_PAYLOAD_FILE, "rb") as f:
            header = pickle.load(f)
            # User modules must be importable before the task (which may reference them) is unpickled.
            sys.path[:] = header["sys_path"]
            os.chdir(header["cwd"])
            task = pickle.load(f)
        store_outcome(task, run_task(task), parent)
        return 0

    exit_with(body)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class _ChildJob(ProcessJob):
    """The forked child; its death by a signal Slurm sends is left for Slurm to explain."""

    def __init__(self, task: Task, pid: int):
        super().__init__(task, pid)
        self.returncode = 0

    def _wait_returncode(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        if self.returncode in _STOPPED_BY_SLURM:
            self.cancelled = True  # ProcessJob then writes no outcome
        return self.returncode

    def wait(self) -> None:  # type: ignore[override]
        """Wait for the child; record why it died if it left no result (and Slurm did not stop it).

        Unlike ProcessJob.wait, a stored result is not loaded: nobody here needs its value.
        """
        returncode = self._wait_returncode()
        self._kill_group(signal.SIGKILL)
        if store.outcome_path(self.task.out).exists() or self.cancelled:
            return
        outcome = Outcome.from_exit(returncode)
        last = _last_line(self.task.log_path) if returncode == 1 else ""
        if last:
            outcome.error += f" (last output: {last})"
        store.publish_outcome(self.task.out, outcome)
