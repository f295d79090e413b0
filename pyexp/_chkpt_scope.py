"""Which config folder the running experiment writes checkpoints to (set by ``run_task``).

Kept free of imports so ``pyexp.executors.outcome`` can use it without an import cycle.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Callable

#: Inside a config folder: one ``<key>.pkl`` per finished checkpoint.
CHECKPOINT_DIR = ".checkpoints"

_CURRENT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("pyexp_config_out", default=None)
# Threads the experiment starts do not inherit context variables, so the folder is also
# kept here; each worker process (or the inline executor) runs one task at a time.
_fallback: list[Path | None] = [None]


def enter(out: Path | None) -> Callable[[], None]:
    """Make ``out`` the current config folder; call the returned function to restore the previous one."""
    token = _CURRENT.set(out)
    previous, _fallback[0] = _fallback[0], out

    def leave() -> None:
        _fallback[0] = previous
        try:
            _CURRENT.reset(token)
        except ValueError:  # left from another context (a thread): the fallback is what counts
            pass

    return leave


def current_out() -> Path | None:
    """The running config's ``out`` folder, or None outside a pyexp task."""
    return _CURRENT.get() or _fallback[0]


def has_checkpoints(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint, i.e. a run of this config would resume, not start over."""
    try:
        return any(name.endswith(".pkl") for name in os.listdir(Path(out) / CHECKPOINT_DIR))
    except OSError:
        return False
