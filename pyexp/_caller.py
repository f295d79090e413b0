"""What the runner learns from its caller: the experiment function's file and parameters, the
report's signature, and whether ``sys.argv`` is this program's own command line.

Split out of :mod:`pyexp.runner`, which keeps only the phases and the priority of settings.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, Callable


def wants_report_dir(fn: Callable[..., Any]) -> bool:
    """False for ``report(results)`` (the earlier API), True for ``report(results, report_dir)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) != 1


def defining_file(fn: Callable[..., Any]) -> Path:
    try:
        return Path(inspect.getfile(fn)).resolve()
    except (TypeError, OSError):
        return Path.cwd() / "<interactive>"


def second_parameter(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s second positional parameter: ``out`` gets the folder, any other the Logger."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    return params[1].name if len(params) >= 2 else None


def refuse_run_in_fork_server() -> None:
    """A script that calls ``run()`` unguarded must not start a sweep while a fork-server imports it."""
    server = sys.modules.get("pyexp.executors._forkserver")
    if server is not None and server.IMPORTING_MAIN:
        raise server.MainImportAborted("the script calls run() outside `if __name__ == \"__main__\":`")


#: Programs whose command line is never pyexp's, though Python runs them as a script.
_FOREIGN_MAINS = ("pytest", "py.test", "ipykernel_launcher", "_jb_pytest_runner")


def reads_sys_argv() -> bool:
    """Whether sys.argv holds this program's own command line, so pyexp's flags may be in it.

    True when Python was started on a script (``python main.py``, ``python -m pkg.main``),
    whichever module defines the experiment. False in a notebook kernel or the interactive
    interpreter (``__main__`` has no file), under ``python -c`` and under pytest.
    """
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if not main_file or hasattr(sys, "ps1"):
        return False
    spec = getattr(main, "__spec__", None)
    names = {Path(main_file).stem, Path(main_file).parent.name, getattr(spec, "name", "") or ""}
    return not any(n.split(".")[0] in _FOREIGN_MAINS for n in names)
