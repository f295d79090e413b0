"""Inside a Slurm job: run one config in a fresh interpreter, the way the subprocess executor does.

submitit's job process (``python -m submitit.core._submit``) unpickles a :class:`RunConfig` and
calls it. That process keeps submitit's signal handling (USR2 before the time limit: checkpoint
and requeue), while the config itself runs in a child (``pyexp.executors._worker``) whose
output goes to the config's ``log.out``. So a segfault fails that config alone with
"killed by SIGSEGV", as it would locally. A child killed by SIGTERM/SIGKILL was stopped by Slurm
(time limit, ``scancel``, requeue, preemption): nothing is written then, and the pyexp process
waiting on the run reads Slurm's verdict (``TIMEOUT``, ``CANCELLED``...) instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._process import ProcessJob
from .base import LOG_FILE, RESULT_FILE, Task
from .subprocess import PAYLOAD_FILE

#: Payload of a config submitted to Slurm: kept until the config ends, for requeued restarts.
SLURM_PAYLOAD_FILE = ".slurm_task.pkl"

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
    """Run the config whose payload is in ``out``; returns the child's exit code."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    # The worker deletes the payload it reads; a requeued job needs it again.
    shutil.copyfile(out / SLURM_PAYLOAD_FILE, out / PAYLOAD_FILE)
    with open(out / LOG_FILE, "ab" if restarts else "wb") as log:
        if restarts:
            job = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
            log.write(f"\npyexp: Slurm job {'_'.join(filter(None, job))} restarted (restart {restarts}); "
                      "resuming from this config's checkpoints\n".encode())
            log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyexp.executors._worker", str(out / PAYLOAD_FILE)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            # Slurm signals every process of the job; the warning signal is for submitit, here.
            preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
        )
    job = _ChildJob(Task(fn=None, config=None, name=out.name, out=out), proc)  # type: ignore[arg-type]
    job.wait()
    if (out / RESULT_FILE).exists():
        _unlink(out / SLURM_PAYLOAD_FILE)
    return job.returncode


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class _ChildJob(ProcessJob):
    """The worker child; its death by a signal Slurm sends is left for Slurm to explain."""

    def __init__(self, task: Task, proc: subprocess.Popen):
        super().__init__(task, proc.pid)
        self._proc = proc
        self.returncode = 0

    def _wait_returncode(self) -> int:
        self.returncode = self._proc.wait()
        if self.returncode in _STOPPED_BY_SLURM:
            self.cancelled = True  # ProcessJob then writes no outcome
        return self.returncode
