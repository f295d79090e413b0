"""Coming back to a run: which stored run ``--continue``/``--report`` open, and what the user is
told so they can come back (the command that continues a run, the jobs a ``--detach`` left running).

Split out of :mod:`pyexp.runner`, which keeps only the phases and the priority of settings.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

from .errors import RunNotFoundError
from .store import Run, RunStore


def stored_run(store: RunStore, which: str | None, flat: bool) -> Run:
    """The run ``which`` names (a timestamp or "latest"), or with ``flat`` the run without timestamp."""
    if not flat or which not in (None, "latest"):
        return store.get(which)
    run = store.flat_run()
    if not run.exists():
        raise RunNotFoundError(f"no run without timestamp in {store.root} ({run.runs_file} does not "
                               "exist); run the experiment once with timestamp=False / --no-timestamp")
    return run


#: Flags that do not carry over to the command that continues a run (flag -> takes a value).
_NOT_CONTINUED = {"--continue": None, "--report": None, "-m": False, "--multirun": False, "--list": False,
                  "--detach": False, "--timestamp": None, "--rerun": False}
#: Runner-setting overrides (``pyexp.<key>=``) that do not carry over either.
_NOT_CONTINUED_SETTINGS = ("continue", "report", "list", "multirun", "detach", "timestamp", "rerun")


def continue_command(argv: list[str], timestamp: str | None) -> str:
    """The shell command that continues run ``timestamp``: ``argv`` without overrides/--continue.

    With ``timestamp`` None (a run without timestamp) it is ``argv`` without ``--rerun``:
    the same sweep again, whose finished configs are skipped.
    """
    script = argv[0] if argv and argv[0] else "main.py"
    if timestamp is None:
        again = [a for a in argv[1:] if a not in ("--rerun", "--detach")
                 and not a.lstrip("+").startswith(("pyexp.rerun=", "pyexp.detach="))]
        return shlex.join(["python", script, *again])
    kept, rest = [], list(argv[1:])
    while rest:
        arg = rest.pop(0)
        flag = arg.split("=", 1)[0]
        if flag in _NOT_CONTINUED:
            # --continue/--report take an optional timestamp as the next word.
            if "=" not in arg and _NOT_CONTINUED[flag] is None and rest and re.match(r"^\d{4}-", rest[0]):
                rest.pop(0)
            continue
        if not arg.startswith("-") and "=" in arg:
            key = arg.split("=", 1)[0].lstrip("+")
            if key.startswith("pyexp.") and key[len("pyexp."):] not in _NOT_CONTINUED_SETTINGS:
                kept.append(arg)  # a runner setting (pyexp.slurm.partition=gpu) still applies
            continue  # an override: the run's configs are frozen
        kept.append(arg)
    return shlex.join(["python", script, *kept, f"--continue={timestamp}"])



def print_detached(counts: Any, command: str, run: Run) -> None:
    ids = [str(getattr(job, "job_id", "?")) for job in counts.detached]
    arrays = sorted({i.split("_")[0] for i in ids}, key=lambda a: (len(a), a))
    print(f"pyexp: {len(ids)} config(s) left running as Slurm job(s) {', '.join(ids[:3])}"
          f"{', ...' if len(ids) > 3 else ''} (array {', '.join(arrays)}; see `squeue -j {','.join(arrays)}`); "
          f"{counts.cached} already done -> {run.path}", file=sys.stderr)
    print(f"pyexp: come back with:\n    {command}", file=sys.stderr, flush=True)
