"""A config's earlier attempt at logging, moved aside before the config runs again from the start.

Without this, a config re-run after a crash would append to its interrupted attempt's
``events.pb`` and every iteration it logs again would appear twice. A resumed attempt (one with
``@chkpt`` checkpoints to restore) keeps appending instead: the iterations of the phases it
skips exist only in the old log.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._constants import EVENTS_FILE

#: Inside the config folder; hidden, so LogReader and the viewer do not list it as a run.
PREVIOUS_DIR = ".previous-attempts"


def archive_previous_attempt(log_dir: Path) -> Path | None:
    """Move an earlier attempt's event log to ``.previous-attempts/<n>/``; return that folder or None."""
    log_dir = Path(log_dir)
    events = log_dir / EVENTS_FILE
    if not events.exists():
        return None
    target = new_attempt_dir(log_dir)
    for path in [events, *log_dir.glob("events.out.tfevents.*.pyexp")]:
        os.replace(path, target / path.name)
    return target


def new_attempt_dir(folder: Path) -> Path:
    """Create and return the next free ``<folder>/.previous-attempts/<n>/`` (n = 1, 2, ...)."""
    previous = Path(folder) / PREVIOUS_DIR
    previous.mkdir(exist_ok=True)
    n = 1 + max((int(p.name) for p in previous.iterdir() if p.name.isdigit()), default=0)
    while True:
        target = previous / str(n)
        try:
            target.mkdir()
        except FileExistsError:  # taken meanwhile (two processes setting attempts aside)
            n += 1
            continue
        return target
