"""Finding runs: a folder with a ``.pyexp`` marker or log files is a run; runs are not nested."""

from __future__ import annotations

import os
from pathlib import Path

from ._constants import EVENTS_FILE, MARKER, SCALARS_FILE


def is_run(path: Path) -> bool:
    """Whether ``path`` is a pyexp run: it holds the marker, events.pb or scalars.jsonl."""
    return ((path / MARKER).is_file() or (path / EVENTS_FILE).is_file()
            or (path / SCALARS_FILE).is_file())


def discover_runs(root: Path) -> list[str]:
    """Runs below ``root`` (not ``root`` itself); folders inside a run are not searched."""
    found: list[str] = []
    root_is_run = is_run(root)
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and is_run(here):
            found.append(here.relative_to(root).as_posix())
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (root_is_run and here == root and d.lstrip("-").isdigit()))
    return sorted(found)
