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
    today's (``experiment_file``'s)."""
    from .checkpoint.files import listing_lines
    from .history import current_code, is_stale_header, stale_message

    file = file or sys.stdout
    runs = store.runs()
    flat = store.flat_run()
    if flat.exists():  # the run without timestamp (timestamp=False): its latest sweep
        runs.append(flat)
    if not runs:
        print(f"no runs in {store.root}", file=file)
        return
    print(f"{'timestamp':<22} {'started':<20} {'configs':>7} {'done':>6} {'failed':>6} {'pending':>7}", file=file)
    memo: dict[Any, Any] = {}
    for run in runs:
        try:
            manifest = run.manifest()
        except StoreError as exc:
            print(f"{_label(run, flat):<22} unreadable: {exc}", file=file)
            continue
        code = current_code(run, experiment_file, memo)
        counts = {"done": 0, "failed": 0, "pending": 0, "reused": 0, "stale": 0}
        for dirname in manifest.dirs:
            status = run.status(dirname)
            counts[status] += 1
            if status == "done":
                outcome = run.outcome(dirname)
                counts["reused"] += bool(outcome.reused_from)
                counts["stale"] += is_stale_header(outcome, code.fingerprint if code else None)
        started = str(manifest.meta.get("created", "?"))
        print(f"{_label(run, flat):<22} {started:<20} {len(manifest.dirs):>7} {counts['done']:>6} "
              f"{counts['failed']:>6} {counts['pending']:>7}", file=file)
        if counts["reused"]:
            print(f"    {counts['reused']} of {counts['done']} results reused from earlier runs (--reuse)", file=file)
        if counts["stale"]:
            print(f"    {stale_message(counts['stale'], counts['done'])}", file=file)
        if counts["done"] < len(manifest.dirs):  # unfinished configs: what --continue resumes from
            for line in listing_lines(run, manifest.dirs):
                print(line, file=file)


def _label(run: Run, flat: Run) -> str:
    return "(no timestamp)" if run is flat else run.timestamp
