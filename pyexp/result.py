"""Result: one config's outcome as the report sees it, loaded lazily from its folder."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import StoreError
from .executors.base import LOG_FILE, RESULT_FILE
from .executors.outcome import Outcome, read_outcome, read_status

_PENDING = "pending: no result yet; run with --continue to run it"

#: Keys every result answers by item, as the earlier API's result dicts did.
_COMMON_KEYS = ("name", "config", "out")
#: Keys a failed (or not yet run) config answers besides the common ones.
_ERROR_KEYS = ("__error__", "type", "message", "traceback")
#: ``"ValueError: bad lr"`` -> type and message (how an exception is described in ``error``).
_EXCEPTION_TEXT = re.compile(r"([A-Za-z_][\w.]*)(?:: (.*))?", re.DOTALL)
_SIGNAL_TEXT = re.compile(r"killed by (SIG\w+)")


class Result:
    """A config's ``name``, ``config``, ``result``, ``error``, ``log``, ``logger`` and ``out``.

    ``result``, ``log`` and ``logger`` are read from disk on first access, so
    loading thousands of results for a report is cheap.
    """

    def __init__(self, name: str, config: Any, out: Path):
        self.name = name
        self._config = config  # the Config, or a no-argument function that loads it
        self.out = out if isinstance(out, Path) else Path(out)
        self._outcome: Outcome | None = None
        self._status: tuple[str, str | None] | None = None

    def _header(self) -> tuple[str, str | None]:
        """``(status, error)`` from the result file's small header, read on first use."""
        if self._status is None:
            try:
                found = read_status(self.out / RESULT_FILE)
            except StoreError as exc:
                found = ("error", str(exc))
                self._outcome = Outcome("error", error=str(exc))
            if found is None:
                self._status = ("pending", _PENDING)
            elif found[0] == "ok":
                self._status = ("done", None)
            else:
                self._status = ("failed", found[1])
        return self._status

    @property
    def config(self) -> Any:
        """The config this result ran with (``config.out`` is :attr:`out`), read on first use."""
        if callable(self._config) and not isinstance(self._config, Mapping):
            self._config = self._config()
        return self._config

    @property
    def status(self) -> str:
        """``"done"``, ``"failed"`` or ``"pending"``."""
        return self._header()[0]

    @property
    def error(self) -> str | None:
        """The error message if the config failed (or has not run), else None."""
        return self._header()[1]

    def _load(self) -> Outcome:
        if self._outcome is None:
            if self.status == "pending":
                self._outcome = Outcome("error", error=_PENDING)
            else:
                try:
                    self._outcome = read_outcome(self.out / RESULT_FILE) or Outcome("error", error=_PENDING)
                except StoreError as exc:
                    # Damage the header check could not see (the body's checksum failed).
                    self._outcome = Outcome("error", error=str(exc))
                    self._status = ("failed", str(exc))
        return self._outcome

    @property
    def result(self) -> Any:
        """The experiment's return value (None if it failed or has not run)."""
        return self._load().result

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failure, if there was an exception."""
        return self._load().traceback

    @property
    def duration(self) -> float | None:
        """Seconds the experiment function ran, if known."""
        outcome = self._load()
        if outcome.started is None or outcome.finished is None:
            return None
        return outcome.finished - outcome.started

    @property
    def log(self) -> str:
        """Captured stdout/stderr of the config's last run ("" if none)."""
        try:
            return (self.out / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def logger(self) -> Any:
        """A ``LogReader`` over what the experiment logged, or None if it logged nothing."""
        if not (self.out / ".pyexp").exists():
            return None
        from .log import LogReader

        return LogReader(self.out)

    # -- the earlier API: a result answered item access like a dict -------------------------

    def _item(self, key: Any) -> Any:
        """``r[key]`` of the earlier API, or KeyError without a message."""
        if key in _COMMON_KEYS:  # answered without loading the result
            return getattr(self, key)
        if self.error is not None:
            if key == "__error__":
                return True
            if key == "traceback":
                return self.traceback
            if key in ("type", "message"):
                return _split_error(self.error)[key == "message"]
        else:
            value = self.result
            # The returned dict's keys; name/config/out above keep their meaning.
            if isinstance(value, Mapping) and key in value:
                return value[key]
        raise KeyError(key)

    def _keys(self) -> list[Any]:
        """Every key :meth:`__getitem__` answers (for error messages)."""
        if self.error is not None:
            return [*_COMMON_KEYS, *_ERROR_KEYS]
        value = self.result
        extra = [k for k in value if k not in _COMMON_KEYS] if isinstance(value, Mapping) else []
        return [*_COMMON_KEYS, *extra]

    def __getitem__(self, key: str) -> Any:
        """The earlier API's item access: ``r["name"]``, ``r["accuracy"]``, ``r["__error__"]``...

        Prefer the attributes (``r.name``, ``r.result["accuracy"]``, ``r.error``).

        Raises:
            KeyError: ``key`` is neither a common key, an error key of a failed config, nor
                a key of the returned dict; the message names the keys there are.
        """
        try:
            return self._item(key)
        except (KeyError, TypeError):  # TypeError: an unhashable key
            raise KeyError(f"{key!r}: result {self.name!r} ({self.status}) has the keys "
                           f"{', '.join(map(repr, self._keys()))}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """``r[key]``, or ``default`` if this result has no such key."""
        try:
            return self._item(key)
        except (KeyError, TypeError):
            return default

    # Item access must not make a result iterable through the old sequence protocol.
    __iter__ = None

    def __contains__(self, key: object) -> bool:
        try:
            self._item(key)
        except (KeyError, TypeError):
            return False
        return True

    def __repr__(self) -> str:
        state = self.status if self.error is None else f"{self.status}: {self.error}"
        return f"Result({self.name!r}, {state})"


def _split_error(error: str) -> tuple[str, str]:
    """``(type, message)`` of a stored error text.

    An exception is stored as ``"<Type>: <message>"``; a death by signal as ``"killed by SIGSEGV
    (signal 11)"``, whose type is the signal's name. Anything else (the worker exited, the stored
    result is unreadable, the config has not run) is a ``RuntimeError`` with the text as message.
    """
    killed = _SIGNAL_TEXT.match(error)
    if killed:
        return killed.group(1), error
    exception = _EXCEPTION_TEXT.fullmatch(error)
    if exception:
        return exception.group(1), exception.group(2) or ""
    return "RuntimeError", error
