"""Result: one config's outcome as the report sees it, loaded lazily from its folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .errors import StoreError
from .executors.base import LOG_FILE, RESULT_FILE
from .executors.outcome import Outcome, read_header, read_outcome

_PENDING = "pending: no result yet; run with --continue to run it"


class Code(NamedTuple):
    """The code a result was computed with: a fingerprint of the experiment's sources and the
    git snapshot's commit (None outside git or with ``--no-stash``)."""

    fingerprint: str
    commit: str | None


class Result:
    """A config's ``name``, ``config``, ``result``, ``error``, ``log``, ``logger`` and ``out``.

    ``result``, ``log`` and ``logger`` are read from disk on first access, so
    loading thousands of results for a report is cheap.
    """

    def __init__(self, name: str, config: Any, out: Path, *, run: str | None = None,
                 code_now: str | None = None):
        self.name = name
        self._config = config  # the Config, or a no-argument function that loads it
        self.out = out if isinstance(out, Path) else Path(out)
        self.run = run  # the timestamp of the run this result belongs to
        self._code_now = code_now  # today's code fingerprint, for `stale`
        self._outcome: Outcome | None = None
        self._status: tuple[str, str | None] | None = None
        self._meta: dict[str, Any] = {}
        self._damaged: str | None = None  # why the stored result cannot be read

    def _header(self) -> tuple[str, str | None]:
        """``(status, error)`` from the result file's small header, read on first use."""
        if self._status is None:
            try:
                head = read_header(os.path.join(self.out, RESULT_FILE))  # str join: runs per config
            except StoreError as exc:
                head = {"status": "error", "error": str(exc)}
                self._damaged = str(exc)
                self._outcome = Outcome("error", error=str(exc))
            from .store import reused_header

            head = reused_header(self.out, head)
            if head is None:
                self._status = ("pending", _PENDING)
            elif head["status"] == "ok":
                self._status = ("done", None)
                self._meta = head
            else:
                self._status = ("failed", head["error"])
                self._meta = head
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

    @property
    def code(self) -> Code | None:
        """The code fingerprint and snapshot commit this result was computed with, if recorded."""
        self._header()
        code = self._meta.get("code")
        if not isinstance(code, dict) or not isinstance(code.get("fingerprint"), str):
            return None
        return Code(code["fingerprint"], code.get("commit"))

    @property
    def stale(self) -> bool:
        """True when this finished result was computed by different code than today's.

        Unfinished configs are never stale (they run with today's code); a result that
        recorded no fingerprint is stale only if today's code is known and differs.
        """
        if self.status != "done" or self._code_now is None:
            return False
        code = self.code
        return code is None or code.fingerprint != self._code_now

    @property
    def reused(self) -> bool:
        """True when ``--reuse`` took this result from an earlier run instead of running the config."""
        self._header()
        return bool(self._meta.get("reused_from"))

    @property
    def logged(self) -> dict[str, float] | None:
        """Last value of each scalar the config's run logged, as recorded with its outcome.

        None when not recorded (the config is pending, resumed from checkpoints, or ran with
        an older pyexp): then read :attr:`logger` instead.
        """
        self._header()
        logged = self._meta.get("logged")
        return dict(logged) if isinstance(logged, dict) else None

    @property
    def scalars(self) -> dict[str, Any]:
        """The scalar parts of the result as table columns (``result`` or ``result.<key>``).

        Read from the summary stored with the outcome; only a result stored without one is
        unpickled. Empty for failed and pending configs.
        """
        if self.status != "done":
            return {}
        summary = self._meta.get("summary")
        if not isinstance(summary, dict):
            from .summary import summarize

            summary = summarize(self.result)
            if self._damaged is not None:
                return {}
        return dict(summary.get("scalars") or {})

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
                    self._damaged = str(exc)
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

    def _ran_in(self) -> Path:
        """The folder the result was computed in: an earlier run's for a reused result."""
        origin = self._meta.get("reused_from") if self.reused else None
        if isinstance(origin, str) and origin and ".." not in Path(origin).parts:
            source = self.out.parent.parent / origin
            if source.is_dir():
                return source
        return self.out

    @property
    def log(self) -> str:
        """Captured stdout/stderr of the config's last run ("" if none)."""
        try:
            return (self._ran_in() / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def logger(self) -> Any:
        """A ``LogReader`` over what the experiment logged, or None if it logged nothing.

        For a reused result, the log of the earlier run that computed it.
        """
        folder = self._ran_in()
        if not (folder / ".pyexp").exists():
            return None
        from .log import LogReader

        return LogReader(folder)

    def __repr__(self) -> str:
        state = self.status if self.error is None else f"{self.status}: {self.error}"
        return f"Result({self.name!r}, {state})"
