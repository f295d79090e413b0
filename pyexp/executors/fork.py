"""Run each config in a forked child (POSIX): isolated, with the parent's modules already loaded."""

from __future__ import annotations

import os
import signal
import sys

from ..errors import ExecutorError
from ..store import Claim
from ._child import exit_with, output_to, reseed_after_fork
from ._process import ProcessJob, start_tee, watch_parent
from .base import Executor, Job, prepare
from .task import Task, run_task, store_outcome


class _ForkJob(ProcessJob):
    def _wait_returncode(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


class ForkExecutor(Executor):
    """``os.fork()`` per config; must be submitted from the main thread (the runner does)."""

    def __init__(self) -> None:
        if not hasattr(os, "fork"):
            raise ExecutorError("executor 'fork' needs os.fork (POSIX); use 'subprocess' on this platform")
        #: Modules imported here once, before the first fork (the ``preload`` setting).
        self.preload: list[str] = []

    def submit(self, task: Task) -> Job:
        prepare(task)
        if self.preload:
            import importlib

            for name in self.preload:
                importlib.import_module(name)
        read_end = write_end = None
        if not task.capture:
            read_end, write_end = os.pipe()
        import cloudpickle  # noqa: F401 - loaded once here instead of in every child that stores a result

        # Anything buffered now would otherwise be written twice, once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # child: never returns
            def body() -> int:
                os.setsid()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                watch_parent(parent)
                reseed_after_fork()
                # Claims on the configs of sibling tasks belong to the parent, not to us.
                for fd in Claim.open_fds - {task.claim_fd}:
                    os.close(fd)
                Claim.open_fds.clear()
                if write_end is not None:
                    os.close(read_end)
                    output_to(write_end)
                else:
                    output_to(os.open(task.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
                store_outcome(task, run_task(task), parent)
                return 0

            exit_with(body)
        tee = None
        if read_end is not None:
            os.close(write_end)
            tee = start_tee(os.fdopen(read_end, "rb"), task.log_path)
        return _ForkJob(task, pid, tee)
