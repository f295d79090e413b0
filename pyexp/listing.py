"""``--list``: every run of an experiment with its progress."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from .errors import StoreError
from .store import RunStore


def print_runs(store: RunStore, file: TextIO | None = None, experiment_file: Path | None = None) -> None:
    """Print one line per run: timestamp, start time, done/failed/pending counts; below it, how many
    results were reused from earlier runs and how many come from code other than today's
    (``experiment_file``'s)."""
    from .history import current_code, is_stale_header, stale_message

    file = file or sys.stdout
    runs = store.runs()
    if not runs:
        print(f"no runs in {store.root}", file=file)
        return
    print(f"{'timestamp':<22} {'started':<20} {'configs':>7} {'done':>6} {'failed':>6} {'pending':>7}", file=file)
    memo: dict[Any, Any] = {}
    for run in runs:
        try:
            manifest = run.manifest()
        except StoreError as exc:
            print(f"{run.timestamp:<22} unreadable: {exc}", file=file)
            continue
        code = current_code(run, experiment_file, memo)
        counts = {"done": 0, "failed": 0, "pending": 0, "reused": 0, "stale": 0}
        for dirname in manifest.dirs:
            head = run.header(dirname)
            status = "pending" if head is None else "done" if head["status"] == "ok" else "failed"
            counts[status] += 1
            if status == "done":
                counts["reused"] += bool(head.get("reused_from"))
                counts["stale"] += is_stale_header(head, code.fingerprint if code else None)
        started = str(manifest.meta.get("created", "?"))
        print(f"{run.timestamp:<22} {started:<20} {len(manifest.dirs):>7} {counts['done']:>6} "
              f"{counts['failed']:>6} {counts['pending']:>7}", file=file)
        if counts["reused"]:
            print(f"    {counts['reused']} of {counts['done']} results reused from earlier runs (--reuse)", file=file)
        if counts["stale"]:
            print(f"    {stale_message(counts['stale'], counts['done'])}", file=file)
        if counts["done"] < len(manifest.dirs):  # unfinished configs: what --continue resumes from
            from ._chkpt_store import listing_lines

            for line in listing_lines(run, manifest.dirs):
                print(line, file=file)
