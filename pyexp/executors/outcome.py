"""Outcome records: what running one config produced, and how it is stored.

``result.pkl`` holds two pickles back to back: a small header
``{"pyexp_outcome": 1, "status", "error"}`` (so a status check never unpickles a
big result) and then the full record of :meth:`Outcome.to_record`. A failure is
as cacheable and inspectable as a success. Files are
written to a temporary name in the same folder and ``os.replace``d, so a
half-written file never looks like a result.
"""

from __future__ import annotations

import os
import pickle
import signal as _signal
import tempfile
import time
import traceback as _traceback
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .. import _chkpt_scope
from ..errors import StoreError

if TYPE_CHECKING:
    from .base import Task

_MARK = "pyexp_outcome"


@dataclass
class Outcome:
    """How one config ended: ``status`` is ``"ok"`` or ``"error"``."""

    status: str
    result: Any = None
    error: str | None = None  # "ValueError: bad lr" or "killed by SIGSEGV (signal 11)"
    traceback: str | None = None
    signal: int | None = None
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    code: dict[str, Any] | None = None  # the code fingerprint and snapshot commit it ran with
    logged: dict[str, float] | None = None  # last value of each scalar this attempt logged

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_exception(cls, exc: BaseException, **kw: Any) -> "Outcome":
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls("error", error=describe_exception(exc), traceback=tb, **kw)

    @classmethod
    def from_exit(cls, returncode: int, **kw: Any) -> "Outcome":
        """Outcome of a worker that died without writing one (``returncode`` as Popen reports it)."""
        if returncode < 0:
            return cls("error", error=describe_signal(-returncode), signal=-returncode, **kw)
        return cls(
            "error", error=f"worker exited with code {returncode} before reporting a result",
            exit_code=returncode, **kw,
        )

    def to_record(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies the result and turns dataclass results into dicts.
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record[_MARK] = 1
        return record

    @classmethod
    def from_record(cls, record: Any) -> "Outcome":
        if isinstance(record, dict) and record.get(_MARK) == 1:
            fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
            return cls(**fields)
        # A custom executor that pickled the bare value, as in the spec's example.
        return cls("ok", result=record)


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_signal(signum: int) -> str:
    try:
        name = _signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
        return f"killed by {name}"
    return f"killed by {name} (signal {signum})"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def dump_outcome(outcome: Outcome) -> bytes:
    """Pickle ``outcome``; an unpicklable result becomes an error outcome instead."""
    import cloudpickle

    try:
        body = cloudpickle.dumps(outcome.to_record())
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's result's fault
        outcome = Outcome(
            "error",
            error=f"result of type {type(outcome.result).__name__} could not be pickled: "
            f"{describe_exception(exc)}",
            traceback="".join(_traceback.format_exception(type(exc), exc, exc.__traceback__)),
            started=outcome.started,
            finished=outcome.finished,
        )
        body = cloudpickle.dumps(outcome.to_record())
    # The body's size and CRC let a reader reject a truncated or damaged file.
    from ..summary import summarize

    # The code it ran with and a scalar summary let tables skip unpickling the body.
    header = pickle.dumps({_MARK: 1, "status": outcome.status, "error": outcome.error,
                           "size": len(body), "crc": zlib.crc32(body), "code": outcome.code,
                           "summary": summarize(outcome.result) if outcome.ok else None,
                           "logged": outcome.logged})
    return header + body


def write_outcome(path: Path, outcome: Outcome) -> None:
    atomic_write_bytes(path, dump_outcome(outcome))


def _corrupt(path: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"{path}: cannot read stored result ({describe_exception(exc)}); "
        "run with --continue to run this config again"
    )


def _is_header(obj: Any) -> bool:
    """The small first pickle of a result file (a full record also carries the mark, plus "result")."""
    return isinstance(obj, dict) and obj.get(_MARK) == 1 and "result" not in obj


def read_status(path: Path) -> tuple[str, str | None] | None:
    """``(status, error)`` from the header alone, or None if there is no result. Corrupt: StoreError."""
    head = read_header(path)
    return None if head is None else (head["status"], head["error"])


def read_header(path: Path) -> dict[str, Any] | None:
    """The small header (status, error, code, summary) without the result, or None if there is no
    result. A bare value written by a custom executor reads as ``{"status": "ok", "error": None}``.
    Corrupt: StoreError."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        try:
            head = pickle.load(f)
        except Exception as exc:  # noqa: BLE001
            raise _corrupt(path, exc) from exc
        if _is_header(head):
            size = head.get("size")
            if size is not None and f.tell() + size != os.fstat(f.fileno()).st_size:
                raise _corrupt(path, EOFError("file is truncated or has trailing data"))
            return head
    return {"status": "ok", "error": None}  # a bare value written by a custom executor


def read_outcome(path: Path) -> Outcome | None:
    """The stored outcome, or None if there is none. A corrupt file raises StoreError."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        try:
            first = pickle.load(f)
            if _is_header(first):
                if first.get("size") is None:
                    return Outcome.from_record(pickle.load(f))
                body = f.read()
                if len(body) != first["size"] or zlib.crc32(body) != first.get("crc"):
                    raise EOFError("file is truncated or damaged (size/checksum mismatch)")
            else:
                return Outcome.from_record(first)
        except Exception as exc:  # noqa: BLE001
            raise _corrupt(path, exc) from exc
    try:
        return Outcome.from_record(pickle.loads(body))
    except Exception as exc:  # noqa: BLE001 - the bytes are intact: the code they need is not
        raise StoreError(
            f"{path}: the stored result is intact but cannot be loaded ({describe_exception(exc)}); "
            "make the modules and classes it uses importable here, as they were when it ran"
        ) from exc


def run_task(task: "Task", call: Callable[[Callable[[Any], Any]], Any] | None = None) -> Outcome:
    """Run ``task`` in this process and return its outcome. Only KeyboardInterrupt escapes.

    ``call(bound)`` lets a custom executor's ``run`` do the calling; ``bound`` takes the config.
    """
    started = time.time()
    logger = None
    logged: dict[str, float] | None = None
    leave_checkpoint_scope = _chkpt_scope.enter(task.out)  # where @chkpt helper functions save
    try:
        fn = task.fn
        if task.with_logger:
            from ..log import Logger

            fresh = not _chkpt_scope.has_checkpoints(task.out)  # not a resume
            if fresh:
                from ..log.attempts import archive_previous_attempt

                archive_previous_attempt(task.out)
            logger = Logger(task.out)
            if fresh:  # a resumed log also holds what earlier attempts logged: tables read it instead
                from ..summary import track_last_scalars

                logged = track_last_scalars(logger)
            _log_run_metadata(logger, task)
            bound = lambda config: fn(config, logger)  # noqa: E731
        else:
            bound = fn
        value = call(bound) if call is not None else bound(task.config)
        outcome = Outcome("ok", result=value, started=started)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit and MemoryError are results too
        outcome = Outcome.from_exception(exc, started=started)
    finally:
        leave_checkpoint_scope()
        if logger is not None:
            try:
                logger.close()
            except Exception:  # noqa: BLE001 - a broken log must not hide the result
                pass
    outcome.finished = time.time()
    outcome.code = task.code
    outcome.logged = logged
    return outcome


def _log_run_metadata(logger: Any, task: "Task") -> None:
    """Iteration 0 of every experiment log records the config and the code snapshot."""
    from ..config import to_yaml

    logger.set_global_it(0)
    logger.add_text("config", to_yaml(task.config))
    if task.git_commit:
        logger.add_text("git_commit", task.git_commit)
