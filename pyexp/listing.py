"""``--list``: every run of an experiment with its progress."""

from __future__ import annotations

import sys
from typing import TextIO

from .errors import StoreError
from .store import RunStore


def print_runs(store: RunStore, file: TextIO | None = None) -> None:
    """Print one line per run: timestamp, start time, and done/failed/pending counts."""
    file = file or sys.stdout
    runs = store.runs()
    flat = store.flat_run()
    if flat.exists():  # the run without timestamp (timestamp=False): its latest sweep
        runs.append(flat)
    if not runs:
        print(f"no runs in {store.root}", file=file)
        return
    print(f"{'timestamp':<22} {'started':<20} {'configs':>7} {'done':>6} {'failed':>6} {'pending':>7}", file=file)
    for run in runs:
        try:
            manifest = run.manifest()
        except StoreError as exc:
            print(f"{'(no timestamp)' if run is flat else run.timestamp:<22} unreadable: {exc}", file=file)
            continue
        counts = {"done": 0, "failed": 0, "pending": 0}
        for dirname in manifest.dirs:
            counts[run.status(dirname)] += 1
        started = str(manifest.meta.get("created", "?"))
        label = "(no timestamp)" if run is flat else run.timestamp
        print(f"{label:<22} {started:<20} {len(manifest.dirs):>7} {counts['done']:>6} "
              f"{counts['failed']:>6} {counts['pending']:>7}", file=file)
        if counts["done"] < len(manifest.dirs):  # unfinished configs: what --continue resumes from
            from ._chkpt_store import listing_lines

            for line in listing_lines(run, manifest.dirs):
                print(line, file=file)
