"""Helpers shared by the test suite: a clean environment and real experiment scripts.

Imported as ``pyexp_testing`` (tests/ is on pytest's pythonpath); a unique name, because
several test folders have a conftest.py of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYEXP_* / RAY_* (and no colour/TTY surprises), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


class Script:
    """A user script written into a temp folder and run with this interpreter, as a user would."""

    def __init__(self, path: Path):
        self.path = path
        self.dir = path.parent

    def run(self, *args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None,
            **popen: object) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(self.path), *args], cwd=self.dir, env=clean_env(**(env or {})),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **popen,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{self.path.name} {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def runs(self, name: str) -> list[Path]:
        root = self.dir / "out" / name
        return sorted(p for p in root.iterdir() if (p / "runs.json").exists()) if root.exists() else []


def count_calls(counter_dir: Path) -> dict[str, int]:
    """How many times each config ran, from the marker lines the test scripts append."""
    counts: dict[str, int] = {}
    calls = counter_dir / "calls.txt"
    for line in calls.read_text().splitlines() if calls.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return counts
