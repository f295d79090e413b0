"""Helpers shared by the fault-injection tests: real scripts, real processes, polling with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

from pyexp.errors import StoreError
from pyexp.executors.outcome import Outcome, read_outcome

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from pyexp_testing import clean_env  # noqa: E402


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie nobody reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def assert_all_dead(pids: list[int], timeout: float = 5.0, what: str = "children") -> None:
    wait_until(lambda: not [p for p in pids if alive(p)], timeout,
               f"{what} {[p for p in pids if alive(p)]} to exit (orphans left running)")


def read_pids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(x) for x in path.read_text().split()]


class Script:
    """A user's experiment script in its own folder, run the way a user runs it."""

    def __init__(self, folder: Path, source: str, name: str = "main.py"):
        self.dir = folder
        self.path = folder / name
        self.path.write_text(textwrap.dedent(source))

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, str(self.path), *args]

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
            **kw: object) -> subprocess.CompletedProcess:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.run(self.cmd(*args), cwd=self.dir, env=clean_env(**(env or {})),
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)

    def start(self, *args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen:
        """Start in a new session, as a terminal's foreground job would have its own group."""
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.cmd(*args), cwd=self.dir, env=clean_env(**(env or {})),
                                stdin=subprocess.DEVNULL, start_new_session=True, **kw)

    def out(self, name: str) -> Path:
        return self.dir / "out" / name

    def runs(self, name: str) -> list[Path]:
        root = self.out(name)
        return sorted(p for p in root.iterdir() if (p / "runs.json").exists()) if root.exists() else []

    def config_dirs(self, run: Path) -> dict[str, Path]:
        """Config name -> folder, from runs.json (which must parse)."""
        dirs = json.loads((run / "runs.json").read_text())["runs"]
        return {json.loads((run / d / "config.json").read_text())["name"]: run / d for d in dirs}


def outcome_of(folder: Path) -> Outcome | None:
    """The stored outcome, None if none; a corrupt file fails the test (atomic writes forbid it)."""
    try:
        return read_outcome(folder / "result.pkl")
    except StoreError as exc:
        raise AssertionError(f"half-written or corrupt result read back: {exc}") from None


def last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def one_line_error(stderr: str) -> str:
    """The stderr of a failed CLI run must be exactly one ``pyexp: error: ...`` line, no traceback."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert "error:" in lines[0], lines[0]
    return lines[0]


def killpg_quietly(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
