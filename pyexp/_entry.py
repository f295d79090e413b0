"""How every command-line entry point reports a user mistake: one line, exit 1.

The runner (``python main.py ...``), ``python -m pyexp.viewer``, the TensorBoard converter
and any other ``python -m pyexp...`` command parse their arguments with :class:`ArgParser`
and run under :func:`user_errors`:

- a bad argument (``--no-such-flag``, ``-j many``) prints ``pyexp: error: <what and fix>``,
  with ``did you mean --continue?`` for a near miss, and exits 1 (``--help`` exits 0);
- a :class:`~pyexp.errors.PyexpError` prints ``pyexp: error: <message>`` and exits 1;
- Ctrl-C outside the run phase prints ``pyexp: interrupted`` and exits 130;
- ``PYEXP_DEBUG=1`` re-raises instead, to show the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import sys
from typing import Iterator, NoReturn

from .errors import PyexpError, UsageError


def debugging() -> bool:
    """True when ``PYEXP_DEBUG`` asks for tracebacks instead of one-line errors."""
    return os.environ.get("PYEXP_DEBUG", "") not in ("", "0")


class ArgParser(argparse.ArgumentParser):
    """An argparse parser whose mistakes raise :class:`UsageError` (one line, the flag meant)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}{self._suggestion(message)} (see {self.prog} --help)")

    def _suggestion(self, message: str) -> str:
        match = re.search(r"unrecognized arguments: (\S+)", message)
        if not match:
            return ""
        word = match.group(1).split("=", 1)[0].lstrip("-")
        flags = {s.lstrip("-"): s for action in self._actions for s in action.option_strings if s.startswith("--")}
        close = difflib.get_close_matches(word, list(flags), n=1, cutoff=0.75)
        return f"; did you mean {flags[close[0]]}?" if close else ""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``pyexp: error: message`` on one line and exit with ``code``."""
    print(f"pyexp: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


@contextlib.contextmanager
def user_errors(enabled: bool = True) -> Iterator[None]:
    """Turn a PyexpError into one line + exit 1, and Ctrl-C into exit 130 (unless debugging)."""
    if not enabled or debugging():
        yield
        return
    try:
        yield
    except PyexpError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("\npyexp: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
