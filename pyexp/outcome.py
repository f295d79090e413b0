"""The outcome sidecar: how one config ended, stored beside its plain ``result.pkl``.

A finished config folder holds two files:

- ``result.pkl``: exactly ``pickle.dumps(return value)``, so ``pickle.load`` gives the
  value back (a custom executor may write it itself, as the spec's example does);
- ``outcome.json``, published atomically *after* ``result.pkl``::

      {"format": 2, "status": "ok" | "error",
       "error": "ValueError: bad lr" | "killed by SIGSEGV (signal 11)" | null,
       "error_type": "ValueError" | null, "traceback": str | null,
       "signal": 11 | null, "exit_code": int | null,
       "started": unix time | null, "finished": unix time | null,
       "result_size": bytes of result.pkl | null, "result_crc32": CRC-32 of result.pkl | null}

A config is done only when both agree: status ``ok`` and a ``result.pkl`` of that size and
CRC. A failed config has only ``outcome.json`` (a stale ``result.pkl`` beside it is ignored).
This module knows the format, not the file names: callers pass both paths
(:mod:`pyexp.store` owns the names).

Run folders written before the sidecar existed kept everything in ``result.pkl`` behind a
small header pickle; :func:`read` still understands them (``_read_legacy``).
"""

from __future__ import annotations

import json
import os
import pickle
import signal as _signal
import traceback as _traceback
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._files import atomic_write_bytes, dump_json
from .errors import StoreError

FORMAT = 2
_LEGACY_MARK = "pyexp_outcome"  # the header record of the format-1 result.pkl


@dataclass
class Outcome:
    """How one config ended: ``status`` is ``"ok"`` or ``"error"``.

    ``result`` is the return value while it is in memory; it is stored in ``result.pkl``,
    never in ``outcome.json``, and is None for an outcome read back from disk.
    """

    status: str
    result: Any = None
    error: str | None = None  # "ValueError: bad lr" or "killed by SIGSEGV (signal 11)"
    error_type: str | None = None  # "ValueError"
    traceback: str | None = None
    signal: int | None = None
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    result_size: int | None = None
    result_crc32: int | None = None
    code: dict[str, Any] | None = None  # {"fingerprint", "commit"} of the code it ran with
    summary: dict[str, Any] | None = None  # the result's scalars (pyexp.summary), for tables
    logged: dict[str, float] | None = None  # last value of each scalar this attempt logged
    reused_from: str | None = None  # "<timestamp>/<config folder>" whose result --reuse linked

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_exception(cls, exc: BaseException, **kw: Any) -> "Outcome":
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls("error", error=describe_exception(exc), error_type=type(exc).__name__, traceback=tb, **kw)

    @classmethod
    def from_exit(cls, returncode: int, **kw: Any) -> "Outcome":
        """Outcome of a worker that died without writing one (``returncode`` as Popen reports it)."""
        if returncode < 0:
            return cls("error", error=describe_signal(-returncode), signal=-returncode, **kw)
        return cls("error", error=f"worker exited with code {returncode} before reporting a result",
                   exit_code=returncode, **kw)

    def record(self) -> dict[str, Any]:
        """The JSON record of ``outcome.json`` (everything but the in-memory ``result``)."""
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "result"}
        return {"format": FORMAT, **body}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Outcome":
        return cls(**{k: v for k, v in record.items() if k in _RECORD_FIELDS})


#: Fields stored in outcome.json (computed once: ``--continue`` reads thousands of records).
_RECORD_FIELDS = frozenset(f.name for f in fields(Outcome)) - {"result"}


def _read_bytes(path: Path | str) -> bytes:
    """A whole small file with the fewest system calls (this runs once per config when a run opens)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` (just the type name when the message is empty)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_signal(signum: int) -> str:
    """``"killed by SIGSEGV (signal 11)"``."""
    try:
        name = _signal.Signals(signum).name
    except ValueError:
        return f"killed by signal {signum}"
    return f"killed by {name} (signal {signum})"


def _pickle_value(outcome: Outcome) -> tuple[Outcome, bytes | None]:
    """The result's bytes; an unpicklable result turns the outcome into an error."""
    if not outcome.ok:
        return outcome, None
    import cloudpickle  # functions and classes defined in __main__ must survive too

    try:
        return outcome, cloudpickle.dumps(outcome.result)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's result's fault
        return Outcome(
            "error", error=f"result of type {type(outcome.result).__name__} could not be pickled: "
            f"{describe_exception(exc)}", error_type=type(exc).__name__,
            traceback="".join(_traceback.format_exception(type(exc), exc, exc.__traceback__)),
            started=outcome.started, finished=outcome.finished,
        ), None


def publish(outcome: Outcome, result_path: Path, outcome_path: Path, *, result_written: bool = False) -> Outcome:
    """Store ``outcome``: first ``result.pkl`` (success only), then ``outcome.json``.

    Args:
        outcome: What running the config produced.
        result_path: Where ``result.pkl`` goes.
        outcome_path: Where ``outcome.json`` goes.
        result_written: A custom executor already wrote ``result_path`` itself: keep it as
            written and take its size and CRC from the file.

    Returns:
        The outcome as stored (an unpicklable result becomes an error).
    """
    if outcome.ok and result_written:
        data = Path(result_path).read_bytes()
    else:
        outcome, data = _pickle_value(outcome)
        if data is not None:
            atomic_write_bytes(result_path, data)
    if data is not None:
        outcome.result_size, outcome.result_crc32 = len(data), zlib.crc32(data)
        if outcome.summary is None:
            from .summary import summarize

            outcome.summary = summarize(outcome.result)
    atomic_write_bytes(outcome_path, dump_json(outcome.record()))
    return outcome


def unpublish(result_path: Path, outcome_path: Path) -> None:
    """Forget a stored outcome (sidecar first, so no moment shows a result without it)."""
    for path in (outcome_path, result_path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _damaged(result_path: Path, why: str) -> Outcome:
    return Outcome("error", error=f"{result_path}: stored result is damaged ({why}); "
                   "run with --continue to run this config again", error_type="StoreError")


def read(result_path: Path, outcome_path: Path, *, verify: bool = True) -> Outcome | None:
    """The stored outcome, or None if the config has none yet (pending).

    With ``verify`` a success is checked against ``result.pkl`` (size, then CRC-32 of the
    whole file); a mismatch or a missing file is returned as an error outcome, so a damaged
    result is that config's error. A corrupt ``outcome.json`` is an error outcome too.
    """
    try:
        raw = _read_bytes(outcome_path)
    except FileNotFoundError:
        return _read_legacy(Path(result_path))
    try:
        record = json.loads(raw)
        outcome = Outcome.from_record(record)
    except (ValueError, TypeError) as exc:
        return Outcome("error", error=f"{outcome_path}: corrupt ({exc}); run with --continue to run "
                       "this config again", error_type="StoreError")
    if outcome.ok and verify:
        try:
            data = _read_bytes(result_path)
        except FileNotFoundError:
            return _damaged(result_path, "the file is missing")
        if len(data) != outcome.result_size:
            return _damaged(result_path, f"{len(data)} bytes, {outcome.result_size} were written")
        if zlib.crc32(data) != outcome.result_crc32:
            return _damaged(result_path, "CRC-32 mismatch")
    return outcome


def load_value(result_path: Path) -> Any:
    """Unpickle ``result.pkl``. Raises StoreError (naming the fix) if it cannot be loaded."""
    try:
        with open(result_path, "rb") as f:
            first = pickle.load(f)
            if _is_legacy_header(first):
                first = pickle.load(f).get("result")
        return first
    except Exception as exc:  # noqa: BLE001 - the bytes are intact (CRC checked): the code is not
        raise StoreError(
            f"{result_path}: the stored result is intact but cannot be loaded ({describe_exception(exc)}); "
            "make the modules and classes it uses importable here, as they were when it ran"
        ) from exc


# -- format 1 (before outcome.json): result.pkl = header pickle + record pickle ----------------


def _is_legacy_header(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get(_LEGACY_MARK) == 1 and "result" not in obj


def _read_legacy(result_path: Path) -> Outcome | None:
    """Status of a pre-sidecar ``result.pkl``; its value is read later by :func:`load_value`."""
    try:
        f = open(result_path, "rb")
    except FileNotFoundError:
        return None
    with f:
        # Only a legacy header starts with our mark: a bare result.pkl whose outcome.json was
        # never published (a kill between the two) is pending, and is never unpickled here.
        if _LEGACY_MARK.encode() not in f.read(64):
            return None
        f.seek(0)
        try:
            head = pickle.load(f)
        except Exception as exc:  # noqa: BLE001
            return _damaged(result_path, f"{describe_exception(exc)}; written by an older pyexp?")
        if not _is_legacy_header(head):
            return None  # a bare value without its sidecar: never known to have finished
        size = head.get("size")
        if size is not None:
            body = f.read()
            if len(body) != size or zlib.crc32(body) != head.get("crc"):
                return _damaged(result_path, "size/checksum mismatch")
        if head["status"] == "ok":
            return Outcome("ok")
        try:  # a failure's record holds no user objects: read its traceback and timings now
            record = pickle.loads(body) if size is not None else pickle.load(f)
        except Exception:  # noqa: BLE001 - the header alone still tells what failed
            record = {}
    error = head.get("error") or "failed"
    return Outcome("error", error=error, error_type=error.split(":", 1)[0] if ":" in error else None,
                   **{k: record.get(k) for k in ("traceback", "started", "finished", "signal", "exit_code")})
