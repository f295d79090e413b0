"""The executor a run's settings ask for: built with its options, checked against ``--detach``,
told what to ``--preload``; and how many configs may run at once.

Split out of :mod:`pyexp.runner`, which keeps only the phases and the priority of settings.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .executors.base import Executor, get_executor
from .settings import preload_names


def build_executor(s: dict[str, Any]) -> Executor:
    """The executor for resolved settings ``s``; raises ConfigError before phase 1 writes anything."""
    executor = get_executor(s["executor"], _executor_options(s))
    if s["detach"] and executor is not None and not hasattr(executor, "submit_many"):
        raise ConfigError(f"--detach needs an executor whose configs run outside this process "
                          f"(--executor slurm), not {s['executor']!r}")
    if executor is not None and s["preload"]:
        # Checked before phase 1 writes anything; executors that cannot preload ignore it.
        names = preload_names(s["preload"], check=True)
        if hasattr(executor, "preload"):
            executor.preload = [*executor.preload, *(n for n in names if n not in executor.preload)]
    return executor


def jobs_setting(s: dict[str, Any]) -> int | None:
    """``-j``, or None when no layer set it (Slurm then caps nothing; local executors run one)."""
    return int(s["jobs"]) if s.get("jobs_given", True) else None


def _executor_options(s: dict[str, Any]) -> dict[str, Any] | None:
    """Constructor options for the chosen executor: the ``slurm`` settings, for Slurm only."""
    executor = s["executor"]
    if s["slurm"] and (executor == "slurm" or hasattr(executor, "with_options")):
        return s["slurm"]
    return None
