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
    if not runs:
        print(f"no runs in {store.root}", file=file)
        return
    rows = []
    for run in runs:
        try:
            manifest = run.manifest()
        except StoreError as exc:
            rows.append((run, None, exc))
            continue
        counts = {"done": 0, "failed": 0, "queued": 0, "running": 0, "pending": 0}
        unfinished = []
        for dirname in manifest.dirs:
            status = run.status(dirname)
            counts[status] += 1
            if status == "pending":
                unfinished.append(run.config_dir(dirname))
        # Configs out on Slurm: squeue (once per run, only if one records a job) says which.
        for state in _slurm_states(unfinished).values():
            counts["pending"] -= 1
            counts[state] += 1
        rows.append((run, manifest, counts))
    slurm = any(isinstance(c, dict) and (c["queued"] or c["running"]) for _, _, c in rows)
    extra = f" {'queued':>6} {'running':>7}" if slurm else ""
    print(f"{'timestamp':<22} {'started':<20} {'configs':>7} {'done':>6} {'failed':>6}{extra} {'pending':>7}",
          file=file)
    for run, manifest, counts in rows:
        if manifest is None:
            print(f"{run.timestamp:<22} unreadable: {counts}", file=file)
            continue
        started = str(manifest.meta.get("created", "?"))
        extra = f" {counts['queued']:>6} {counts['running']:>7}" if slurm else ""
        print(f"{run.timestamp:<22} {started:<20} {len(manifest.dirs):>7} {counts['done']:>6} "
              f"{counts['failed']:>6}{extra} {counts['pending']:>7}", file=file)
        if counts["done"] < len(manifest.dirs):  # unfinished configs: what --continue resumes from
            from ._chkpt_store import listing_lines

            for line in listing_lines(run, manifest.dirs):
                print(line, file=file)


def _slurm_states(folders: list) -> dict:
    """``{folder: "queued" | "running" | "failed"}`` for pending configs Slurm still shows."""
    if not folders:
        return {}
    from .executors.slurm import job_states

    return job_states(folders)
