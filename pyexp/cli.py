"""Command line: argv -> settings (pyexp's flags plus Hydra ``key=value`` overrides), and ``--list``.

The flags themselves are declared with every other spelling of a setting in
:mod:`pyexp.settings`; argument mistakes are reported by :mod:`pyexp._entry`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ._entry import ArgParser
from .errors import StoreError
from .settings import add_flags
from .store import Run, RunStore


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The runner's argument parser (``--help`` lists every flag)."""
    p = ArgParser(
        prog=prog, argument_default=argparse.SUPPRESS,
        description="Run this pyexp experiment. Extra key=value arguments are Hydra overrides "
        "applied to every config; with -m, comma lists / range() / choice() add sweep axes.",
    )
    add_flags(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra override")
    return p


def parse_cli(argv: list[str], prog: str | None = None) -> dict[str, Any]:
    """The settings given explicitly on the command line, plus ``overrides`` (list of str).

    Raises:
        UsageError: an unknown flag or a malformed value (one line, with the flag meant).
    """
    ns = vars(build_parser(prog).parse_intermixed_args(argv))
    overrides = list(ns.pop("overrides", []))
    for key in ("continue", "report"):
        # `--continue lr=0.1`: argparse took the override as the timestamp.
        if isinstance(ns.get(key), str) and "=" in ns[key]:
            overrides.insert(0, ns[key])
            ns[key] = "latest"
    if "capture" in ns and isinstance(ns["capture"], str):
        ns["capture"] = ns["capture"] != "no"
    if overrides:
        from .settings import split_settings

        from_overrides, overrides = split_settings(overrides)
        ns = {**from_overrides, **ns}  # an explicit flag beats its Hydra spelling
    ns["overrides"] = overrides
    return ns


def print_runs(store: RunStore, file: TextIO | None = None, experiment_file: Path | None = None) -> None:
    """``--list``: one line per run (timestamp, start time, done/failed/pending counts); below it,
    how many results were reused from earlier runs and how many come from code other than
    today's (``experiment_file``'s).

    Configs out on Slurm add ``queued``/``running`` columns: one ``squeue`` per run, and only
    for a run whose unfinished configs record a Slurm job.
    """
    from .checkpoint.files import listing_lines
    from .history import stale_message

    file = file or sys.stdout
    runs = store.runs()
    flat = store.flat_run()
    if flat.exists():  # the run without timestamp (timestamp=False): its latest sweep
        runs.append(flat)
    if not runs:
        print(f"no runs in {store.root}", file=file)
        return
    memo: dict[Any, Any] = {}
    rows = [(run, *_run_counts(run, experiment_file, memo)) for run in runs]
    slurm = any(manifest is not None and (counts["queued"] or counts["running"]) for _, manifest, counts in rows)
    extra = f" {'queued':>6} {'running':>7}" if slurm else ""
    print(f"{'timestamp':<22} {'started':<20} {'configs':>7} {'done':>6} {'failed':>6}{extra} {'pending':>7}",
          file=file)
    for run, manifest, counts in rows:
        if manifest is None:
            print(f"{_label(run, flat):<22} unreadable: {counts}", file=file)
            continue
        started = str(manifest.meta.get("created", "?"))
        extra = f" {counts['queued']:>6} {counts['running']:>7}" if slurm else ""
        print(f"{_label(run, flat):<22} {started:<20} {len(manifest.dirs):>7} {counts['done']:>6} "
              f"{counts['failed']:>6}{extra} {counts['pending']:>7}", file=file)
        if counts["reused"]:
            print(f"    {counts['reused']} of {counts['done']} results reused from earlier runs (--reuse)", file=file)
        if counts["stale"]:
            print(f"    {stale_message(counts['stale'], counts['done'])}", file=file)
        if counts["done"] < len(manifest.dirs):  # unfinished configs: what --continue resumes from
            for line in listing_lines(run, manifest.dirs):
                print(line, file=file)


def _run_counts(run: Any, experiment_file: Path | None, memo: dict[Any, Any]) -> tuple[Any, Any]:
    """``(manifest, counts)`` of a run, or ``(None, the error)`` if its runs.json is unreadable."""
    from .history import current_code, is_stale_header

    try:
        manifest = run.manifest()
    except StoreError as exc:
        return None, exc
    code = current_code(run, experiment_file, memo)
    counts = {"done": 0, "failed": 0, "queued": 0, "running": 0, "pending": 0, "reused": 0, "stale": 0}
    unfinished = []
    for dirname in manifest.dirs:
        status = run.status(dirname)
        counts[status] += 1
        if status == "pending":
            unfinished.append(run.config_dir(dirname))
        elif status == "done":
            outcome = run.outcome(dirname)
            counts["reused"] += bool(outcome.reused_from)
            counts["stale"] += is_stale_header(outcome, code.fingerprint if code else None)
    if unfinished:
        from .executors.slurm import job_states

        for state in job_states(unfinished).values():  # "failed": the job ended without a result
            counts["pending"] -= 1
            counts[state] += 1
    return manifest, counts


def _label(run: Run, flat: Run) -> str:
    return "(no timestamp)" if run is flat else run.timestamp
