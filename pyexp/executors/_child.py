"""What every forked config process does on its way in and out.

Shared by the fork executor, the fork-server's children and the Slurm job's child. No pyexp
imports: the fork-server, a fresh interpreter that must start fast, loads it.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import traceback
from typing import Callable, NoReturn


def output_to(fd: int) -> None:
    """Send fds 1 and 2, and ``sys.stdout``/``sys.stderr``, to ``fd`` (which is closed)."""
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    follow_runner_output()


def follow_runner_output() -> None:
    """Make ``sys.stdout``/``sys.stderr`` write fds 1 and 2 through at once, as under ``python -u``
    (``log.out`` holds everything printed up to a crash), and die if they are a broken pipe.

    A pipe there leads to the runner, which reads it for as long as it lives (``-s``). Once it
    breaks the runner is dead, perhaps noticed by nobody yet: the config dies too and stays
    pending, rather than store the ``BrokenPipeError`` as its failure.
    """
    sys.stdout, sys.stderr = (io.TextIOWrapper(_Output(n, "w", closefd=False), encoding="utf-8",
                                               errors="replace", line_buffering=True, write_through=True)
                              for n in (1, 2))


class _Output(io.FileIO):
    def write(self, data) -> int | None:  # type: ignore[no-untyped-def]
        try:
            return super().write(data)
        except BrokenPipeError:
            kill_own_group()


def kill_own_group() -> NoReturn:
    """SIGKILL this process's group if it leads one (what a config starts goes too), then itself."""
    if os.name == "posix":
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)  # noqa: SLF001 - not reached on POSIX


def exit_with(body: Callable[[], int]) -> NoReturn:
    """Run a forked child's ``body`` and leave with its exit code (1 if it raised, after the
    traceback went to the log), skipping the parent's ``atexit`` handlers and buffers."""
    code = 1
    try:
        code = body()
    except BaseException:  # noqa: BLE001 - the parent reads the exit code; log.out says why
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def reseed_after_fork() -> None:
    """Give this forked child its own random streams, as a fresh interpreter would have.

    ``random`` reseeds itself after a fork; numpy's and torch's global generators do not, so
    every config would otherwise draw the same "random" numbers.
    """
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        try:
            np_random.seed()
        except Exception:  # noqa: BLE001 - an odd numpy build must not stop the config
            pass
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "seed"):
        try:
            torch.seed()
        except Exception:  # noqa: BLE001
            pass
