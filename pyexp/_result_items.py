"""The earlier API's item access on a Result: ``r["name"]``, ``r["accuracy"]``, ``r["__error__"]``.

Earlier scripts indexed results like dicts. :class:`ItemAccess` answers those keys from the
Result's attributes, so there is one source of truth; attribute access stays the documented way.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Mapping
from typing import Any

#: Keys every result answers, without reading its outcome.
COMMON_KEYS = ("name", "config", "out")
#: Keys a failed (or not yet run) config answers besides the common ones.
ERROR_KEYS = ("__error__", "type", "message", "traceback")


class ItemAccess:
    """Mixin for :class:`pyexp.Result`; needs ``name``, ``config``, ``out``, ``status``,
    ``error``, ``traceback``, ``result`` and ``_error_kind()``."""

    def _item(self, key: Any) -> Any:
        """``r[key]``, or a bare KeyError (TypeError for an unhashable key)."""
        if key in COMMON_KEYS:
            return getattr(self, key)
        if self.error is not None:
            if key == "__error__":
                return True
            if key == "traceback":
                return self.traceback
            if key in ("type", "message"):
                kind, signum = self._error_kind()
                return error_parts(self.error, kind, signum, self.status == "pending")[key == "message"]
        else:
            value = self.result
            # The returned dict's keys; name/config/out above keep their meaning.
            if isinstance(value, Mapping) and key in value:
                return value[key]
        raise KeyError(key)

    def _keys(self) -> list[Any]:
        """Every key :meth:`__getitem__` answers (for the KeyError message)."""
        if self.error is not None:
            return [*COMMON_KEYS, *ERROR_KEYS]
        value = self.result
        extra = [k for k in value if k not in COMMON_KEYS] if isinstance(value, Mapping) else []
        return [*COMMON_KEYS, *extra]

    def __getitem__(self, key: str) -> Any:
        """The earlier API's item access (prefer ``r.name``, ``r.result["accuracy"]``, ``r.error``).

        A result answers ``"name"``, ``"config"``, ``"out"`` and every key of the returned dict;
        a failed or pending one answers ``"__error__"`` (True), ``"type"``, ``"message"`` and
        ``"traceback"`` instead of the returned dict's keys.

        Raises:
            KeyError: ``key`` is none of those; the message names the keys there are.
        """
        try:
            return self._item(key)
        except (KeyError, TypeError):
            raise KeyError(f"{key!r}: result {self.name!r} ({self.status}) has the keys "
                           f"{', '.join(map(repr, self._keys()))}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """``r[key]``, or ``default`` if this result has no such key."""
        try:
            return self._item(key)
        except (KeyError, TypeError):
            return default

    def __contains__(self, key: object) -> bool:
        try:
            self._item(key)
        except (KeyError, TypeError):
            return False
        return True

    # Item access must not make a result iterable through the old sequence protocol.
    __iter__ = None


def error_parts(error: str, error_type: str | None, signum: int | None, pending: bool) -> tuple[str, str]:
    """``(type, message)`` of a failure, as the earlier API's ``r["type"]``/``r["message"]``.

    An exception gives its type name and message; a death by signal the signal's name
    (``"SIGSEGV"``) and the whole description; anything else (a config that has not run, a
    worker that exited) ``"Pending"`` or ``"WorkerError"`` and the description.
    """
    if error_type:
        prefix = f"{error_type}: "
        if error.startswith(prefix):
            return error_type, error[len(prefix):]
        return error_type, "" if error == error_type else error
    if signum is not None:
        try:
            return _signal.Signals(signum).name, error
        except ValueError:
            return f"signal {signum}", error
    return ("Pending" if pending else "WorkerError"), error
