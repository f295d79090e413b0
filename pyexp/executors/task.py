"""A Task (one config to run, anywhere), running it in this process, and "which config am I in".

:func:`run_task` is what every executor ends up calling in the process that runs the config:
it binds the Logger when the function wants one, records iteration 0 (config, code
snapshot), calls the function and turns whatever happens into an
:class:`~pyexp.outcome.Outcome`. While it runs, :func:`current_out` names the config's
folder, which is where ``@chkpt`` functions save.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import store
from ..outcome import Outcome


@dataclass
class Task:
    """Everything needed to run one config, in any process; picklable by cloudpickle."""

    fn: Callable[..., Any]
    config: Any  # a Config whose ``out`` is this task's folder
    name: str
    out: Path
    capture: bool = True  # False: stream output live to the terminal as well
    with_logger: bool = False  # call fn(config, logger) instead of fn(config)
    with_out: bool = False  # call fn(config, out): a second parameter named ``out`` gets the folder
    git_commit: str | None = None
    code: dict[str, Any] | None = None  # the run's code fingerprint and commit: recorded with the outcome
    #: Descriptor of the runner's claim on ``out`` (see pyexp.store.Claim); a child process
    #: keeps it open so the claim outlives a killed runner only as long as the child runs.
    claim_fd: int | None = None
    sys_path: list[str] = field(default_factory=lambda: list(sys.path))
    cwd: str = field(default_factory=os.getcwd)

    @property
    def result_path(self) -> Path:
        return store.result_path(self.out)

    @property
    def outcome_path(self) -> Path:
        return store.outcome_path(self.out)

    @property
    def log_path(self) -> Path:
        return store.log_path(self.out)


# -- which config folder the running experiment writes checkpoints to -------------------------

_CURRENT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("pyexp_config_out", default=None)
# Threads the experiment starts do not inherit context variables, so the folder is also
# kept here; each worker process (or the inline executor) runs one task at a time.
_fallback: list[Path | None] = [None]


def enter(out: Path | None) -> Callable[[], None]:
    """Make ``out`` the current config folder; call the returned function to restore the previous one."""
    token = _CURRENT.set(out)
    previous, _fallback[0] = _fallback[0], out

    def leave() -> None:
        _fallback[0] = previous
        try:
            _CURRENT.reset(token)
        except ValueError:  # left from another context (a thread): the fallback is what counts
            pass

    return leave


def current_out() -> Path | None:
    """The running config's ``out`` folder, or None outside a pyexp task."""
    return _CURRENT.get() or _fallback[0]


def has_checkpoints(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint, i.e. a run of this config would resume, not start over."""
    try:
        return any(name.endswith(".pkl") for name in os.listdir(store.checkpoint_dir(out)))
    except OSError:
        return False


# -- running --------------------------------------------------------------------------------


def run_task(task: Task, call: Callable[[Callable[[Any], Any]], Any] | None = None) -> Outcome:
    """Run ``task`` in this process and return its outcome. Only KeyboardInterrupt escapes.

    ``call(bound)`` lets a custom executor's ``run`` do the calling; ``bound`` takes the config.
    """
    started = time.time()
    logger = None
    logged: dict[str, float] | None = None
    leave_checkpoint_scope = enter(task.out)  # where @chkpt helper functions save
    try:
        fn = task.fn
        if task.with_logger:
            from ..log import Logger

            fresh = not has_checkpoints(task.out)  # a fresh start, not a resume
            if fresh:
                from ..log.attempts import archive_previous_attempt

                archive_previous_attempt(task.out)
            logger = Logger(task.out)
            if fresh:  # a resumed log also holds what earlier attempts logged: tables read it instead
                from ..summary import track_last_scalars

                logged = track_last_scalars(logger)
            _log_run_metadata(logger, task)
            bound = lambda config: fn(config, logger)  # noqa: E731
        elif task.with_out:
            bound = lambda config: fn(config, Path(task.out))  # noqa: E731
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


def _log_run_metadata(logger: Any, task: Task) -> None:
    """Iteration 0 of every experiment log records the config and the code snapshot."""
    from ..config import to_yaml

    logger.set_global_it(0)
    logger.add_text("config", to_yaml(task.config))
    if task.git_commit:
        logger.add_text("git_commit", task.git_commit)


@contextlib.contextmanager
def redirect_output(log_path: Path, tee: bool) -> Iterator[None]:
    """Send this process's Python-level stdout/stderr to ``log_path`` (and the terminal if ``tee``)."""
    log = open(log_path, "w", buffering=1, encoding="utf-8", errors="replace")
    old_out, old_err = sys.stdout, sys.stderr
    if tee:
        out, err = _Tee(log, old_out), _Tee(log, old_err)
    else:
        out = err = log
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        log.close()


class _Tee:
    """Writes to the log and the terminal; a terminal that goes away (``| head``) is dropped."""

    def __init__(self, log: Any, terminal: Any):
        self._log = log
        self._terminal = terminal

    def write(self, s: str) -> int:
        self._log.write(s)
        if self._terminal is not None:
            try:
                self._terminal.write(s)
            except (OSError, ValueError):
                self._terminal = None
        return len(s)

    def flush(self) -> None:
        self._log.flush()
        if self._terminal is not None:
            try:
                self._terminal.flush()
            except (OSError, ValueError):
                self._terminal = None

    def isatty(self) -> bool:
        return False


def store_outcome(task: Task, outcome: Outcome, parent: int | None = None, *,
                  result_written: bool = False) -> Outcome:
    """Publish ``outcome`` for ``task``; if that fails (disk full, file size limit) leave a small error.

    A failure seen after the runner ``parent`` died is not stored: it may be the runner's death
    itself (a broken output pipe), so the config stays pending for ``--continue``.
    """
    if parent is not None and not outcome.ok and os.getppid() != parent:
        return outcome
    if outcome.traceback:
        try:
            sys.stderr.write(outcome.traceback)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the log is gone (pipe closed, disk full): the result matters more
    try:
        return store.publish_outcome(task.out, outcome, result_written=result_written)
    except OSError as exc:
        from ..outcome import describe_exception

        failed = Outcome("error", error=f"could not store the result in {task.result_path}: "
                         f"{describe_exception(exc)}", error_type=type(exc).__name__,
                         started=outcome.started, finished=outcome.finished)
        try:
            return store.publish_outcome(task.out, failed)
        except OSError:
            return failed  # nothing stored: the config stays pending for --continue
