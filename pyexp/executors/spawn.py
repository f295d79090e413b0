"""Run each config in its own fresh Python interpreter: slow to start, but works on every platform.

The ``spawn`` executor. The default ``subprocess`` executor uses it where it cannot fork
(Windows), and for code that cannot be forked at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from .._files import atomic_write_bytes
from ..store import PAYLOAD_FILE
from ._process import ProcessJob, start_tee
from .base import Executor, Job, prepare
from .task import Task


class _PopenJob(ProcessJob):
    def __init__(self, task: Task, proc: subprocess.Popen, tee: Any):
        super().__init__(task, proc.pid, tee)
        self._proc = proc

    def _wait_returncode(self) -> int:
        return self._proc.wait()


class SpawnExecutor(Executor):
    """Runs ``python -m pyexp.executors._worker`` per config; output goes straight to ``log.out``."""

    def submit(self, task: Task) -> Job:
        import pickle

        import cloudpickle

        prepare(task)
        payload = task.out / PAYLOAD_FILE
        # First a plain-pickle header (where to import from), then the task itself: the
        # worker must fix sys.path before unpickling functions that live in user modules.
        header = pickle.dumps({"sys_path": task.sys_path, "cwd": task.cwd, "parent": os.getpid(),
                               "claim_fd": task.claim_fd})
        atomic_write_bytes(payload, header + cloudpickle.dumps(task))
        # Unbuffered, so log.out holds everything printed up to a crash.
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "pyexp.executors._worker", str(payload)]
        fds = (task.claim_fd,) if task.claim_fd is not None else ()
        if task.capture:
            with open(task.log_path, "wb") as log:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=task.cwd, env=env, start_new_session=True, pass_fds=fds,
                )
            return _PopenJob(task, proc, None)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=task.cwd, env=env, start_new_session=True, pass_fds=fds,
        )
        return _PopenJob(task, proc, start_tee(proc.stdout, task.log_path))
