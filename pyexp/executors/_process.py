"""What the subprocess and fork executors share: a child in its own session, and its aftermath."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO

from .. import store
from ..outcome import Outcome
from ._child import kill_own_group
from .base import Job
from .task import Task


#: Seconds between a child's checks that the pyexp process that started it still lives.
WATCH_INTERVAL = 0.2


def watch_parent(parent: int) -> None:
    """In a child: once ``parent`` dies (even by ``kill -9``), kill this child's process group.

    The config then stays pending instead of running on as an orphan that could race
    the ``--continue`` run taking it over.
    """

    if os.name != "posix":
        return  # no process groups to kill; Windows children are not watched

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL)
        kill_own_group()

    threading.Thread(target=watch, daemon=True, name="pyexp-watch-parent").start()


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def start_tee(source: IO[bytes], log_path: Path) -> threading.Thread:
    """Copy a child's output pipe to its log and to our stdout (``-s``); never blocks the child."""

    def pump() -> None:
        # Keep draining the pipe whatever happens to the log (disk full) or the terminal (closed,
        # e.g. `| head`): a child blocked on a full pipe would hang the sweep.
        log = open(log_path, "wb")
        sinks = [log, getattr(sys.stdout, "buffer", None)]
        try:
            for chunk in iter(lambda: source.read1(65536), b""):
                for i, sink in enumerate(sinks):
                    if sink is None:
                        continue
                    try:
                        sink.write(chunk)
                        sink.flush()
                    except (OSError, ValueError):
                        sinks[i] = None
        finally:
            source.close()
            try:
                log.close()
            except OSError:
                pass

    thread = threading.Thread(target=pump, daemon=True, name="pyexp-tee")
    thread.start()
    return thread


class ProcessJob(Job):
    """A task running in a child process that leads its own process group."""

    def __init__(self, task: Task, pid: int, tee: threading.Thread | None = None):
        super().__init__(task)
        self.pid = pid
        self._tee = tee
        self.cancelled = False

    @property
    def pids(self) -> list[int]:
        return [self.pid]

    def _wait_returncode(self) -> int:
        raise NotImplementedError

    def wait(self) -> Outcome:
        returncode = self._wait_returncode()
        # The child leads its own group: whatever it left behind dies with it.
        self._kill_group(signal.SIGKILL)
        if self._tee is not None:
            self._tee.join()
        # The child just wrote it: its CRC is checked when the run is next opened.
        outcome = store.read_outcome(self.task.out, verify=False)
        if outcome is None:
            if self.cancelled:  # stopped by us: leave no result, so --continue runs it again
                return Outcome("error", error="cancelled")
            outcome = Outcome.from_exit(returncode)
            # Exit code 1 is an uncaught exception in the worker itself: its last line says which.
            last = _last_line(self.task.log_path) if returncode == 1 else ""
            if last:
                outcome.error += f" (last output: {last})"
            store.publish_outcome(self.task.out, outcome)
        return outcome

    def cancel(self, force: bool = False) -> None:
        self.cancelled = True
        self._kill_group(signal.SIGKILL if force else signal.SIGTERM)

    def _kill_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
