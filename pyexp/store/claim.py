"""Claim: the exclusive right of one process to run one config now.

``pyexp.store`` re-exports it. Locking is its own concern, used by the
scheduler before it starts a config and by the fork executor to hand the lock to its child.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from .folder import CLAIM_FILE


class Claim:
    """The right to run one config now: an exclusive ``flock`` on ``<config folder>/.claim``.

    Two processes continuing the same run each claim a config before running it, so
    every config runs once. The lock lives on the open file, which the child running
    the config inherits: it stays held until both this process and that child are
    gone, and the kernel drops it when they die, so a killed run leaves no stale claim.
    Without ``fcntl`` (Windows) claims always succeed.
    """

    #: Descriptors of the claims this process holds; a forked child closes all but its own.
    open_fds: ClassVar[set[int]] = set()

    def __init__(self, folder: Path, fd: int | None):
        self.folder = folder
        self.fd = fd

    @classmethod
    def acquire(cls, folder: Path) -> "Claim | None":
        """Claim ``folder``, or None if another process (or its child) holds it."""
        try:
            import fcntl
        except ImportError:
            return cls(folder, None)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / CLAIM_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only a hint for humans; the lock is what counts
        cls.open_fds.add(fd)
        return cls(folder, fd)

    @staticmethod
    def holder(folder: Path) -> str:
        """The pid that last claimed ``folder`` (a hint for messages), or "?"."""
        try:
            return (folder / CLAIM_FILE).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            Claim.open_fds.discard(self.fd)
            os.close(self.fd)
            self.fd = None

