"""Result: one config's outcome as the report sees it; :func:`load_results` opens a whole run."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, NamedTuple

from . import store
from ._result_items import ItemAccess
from .errors import RunNotFoundError, StoreError
from .outcome import Outcome

_PENDING = "pending: no result yet; run with --continue to run it"
_UNREAD: Any = object()


class Code(NamedTuple):
    """The code a result was computed with: a fingerprint of the experiment's sources and the
    git snapshot's commit (None outside git or with ``--no-stash``)."""

    fingerprint: str
    commit: str | None


class Result(ItemAccess):
    """A config's ``name``, ``config``, ``result``, ``error``, ``log``, ``logger`` and ``out``.

    Whether the config finished, and whether its ``result.pkl`` is whole (size and CRC
    recorded in ``outcome.json``), is known as soon as the run is opened
    (:func:`load_results`); the value itself, the log and the logger are read on first
    access, so loading thousands of results for a report is cheap.

    ``result`` is None for a failed or pending config (``error`` says why). A finished
    config whose value cannot be unpickled here (a class it needs no longer imports)
    raises :class:`~pyexp.errors.StoreError` from ``result``, and from then on reports
    that message as its ``error``.

    Scripts written for the earlier API may also index it: ``r["name"]``, ``r["accuracy"]``
    (a key of the returned dict), ``r["__error__"]``... (see :mod:`pyexp._result_items`).
    """

    def __init__(self, name: str, config: Any, out: Path, outcome: Outcome | None = _UNREAD, *,
                 run: str | None = None, code_now: str | None = None):
        self.name = name
        self._config = config  # the Config, or a no-argument function that loads it
        self.out = out if isinstance(out, Path) else Path(out)
        self._outcome = outcome  # None: pending; _UNREAD: read from the folder on first use
        self._value: Any = _UNREAD
        self._load_error: str | None = None
        self.run = run  # the timestamp of the run this result belongs to
        self._code_now = code_now  # today's code fingerprint, for `stale`

    def _stored(self) -> Outcome | None:
        if self._outcome is _UNREAD:
            self._outcome = store.read_outcome(self.out)
        return self._outcome

    @property
    def config(self) -> Any:
        """The config this result ran with (``config.out`` is :attr:`out`), read on first use."""
        if callable(self._config) and not isinstance(self._config, Mapping):
            self._config = self._config()
        return self._config

    #: Alias of :attr:`config`, the original pyexp's spelling (dict queries accept ``cfg.`` too).
    cfg = config

    @property
    def status(self) -> str:
        """``"done"``, ``"failed"`` or ``"pending"``."""
        if self._load_error is not None:
            return "failed"
        return store.status_of(self._stored())

    @property
    def error(self) -> str | None:
        """The error message if the config failed (or has not run), else None."""
        if self._load_error is not None:
            return self._load_error
        outcome = self._stored()
        if outcome is None:
            return _PENDING
        return None if outcome.ok else (outcome.error or "failed")

    @property
    def result(self) -> Any:
        """The experiment's return value; None if the config failed or has not run.

        Raises:
            StoreError: The config finished but its value cannot be unpickled here.
        """
        if self._value is _UNREAD:
            if self.status != "done":
                return None
            try:
                self._value = store.load_result(self.out)
            except StoreError as exc:
                self._load_error = str(exc)
                raise
        return self._value

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failure, if there was an exception."""
        outcome = self._stored()
        return outcome.traceback if outcome is not None else None

    def _error_kind(self) -> tuple[str | None, int | None]:
        """The failure's exception type name and signal number, as far as they are known."""
        if self._load_error is not None:
            return "StoreError", None
        outcome = self._stored()
        return (outcome.error_type, outcome.signal) if outcome is not None else (None, None)

    @property
    def duration(self) -> float | None:
        """Seconds the experiment function ran, if known."""
        outcome = self._stored()
        if outcome is None or outcome.started is None or outcome.finished is None:
            return None
        return outcome.finished - outcome.started

    @property
    def code(self) -> Code | None:
        """The code fingerprint and snapshot commit this result was computed with, if recorded."""
        outcome = self._stored()
        code = outcome.code if outcome is not None else None
        if not isinstance(code, dict) or not isinstance(code.get("fingerprint"), str):
            return None
        return Code(code["fingerprint"], code.get("commit"))

    @property
    def stale(self) -> bool:
        """True when this finished result was computed by different code than today's.

        Unfinished configs are never stale (they run with today's code); a result that
        recorded no fingerprint is stale only when today's code is known.
        """
        if self.status != "done" or self._code_now is None:
            return False
        code = self.code
        return code is None or code.fingerprint != self._code_now

    @property
    def reused(self) -> bool:
        """True when ``--reuse`` linked this result from an earlier run instead of running the config."""
        outcome = self._stored()
        return bool(outcome is not None and outcome.reused_from)

    @property
    def scalars(self) -> dict[str, Any]:
        """The scalar parts of the result as table columns (``result`` or ``result.<key>``).

        Read from the summary stored in ``outcome.json``; only a result stored without one
        (by an older pyexp) is unpickled. Empty for failed and pending configs.
        """
        if self.status != "done":
            return {}
        summary = self._stored().summary
        if not isinstance(summary, dict):
            from .summary import summarize

            try:
                summary = summarize(self.result)
            except StoreError:
                return {}
        return dict(summary.get("scalars") or {})

    @property
    def logged(self) -> dict[str, float] | None:
        """Last value of each scalar the config's run logged, as recorded in its outcome.

        None when not recorded (the config is pending, died, resumed from checkpoints, or ran
        with an older pyexp): then read :attr:`logger` instead.
        """
        outcome = self._stored()
        logged = outcome.logged if outcome is not None else None
        return dict(logged) if isinstance(logged, dict) else None

    @property
    def damaged(self) -> str | None:
        """Why the stored result cannot be read (damaged or unloadable), or None."""
        if self._load_error is not None:
            return self._load_error
        outcome = self._stored()
        if outcome is not None and outcome.error_type == "StoreError":
            return outcome.error
        return None

    def _ran_in(self) -> Path:
        """The folder the result was computed in: an earlier run's for a reused result."""
        outcome = self._stored()
        origin = outcome.reused_from if outcome is not None else None
        if isinstance(origin, str) and origin and ".." not in Path(origin).parts:
            source = self.out.parent.parent / origin
            if source.is_dir():
                return source
        return self.out

    @property
    def log(self) -> str:
        """Captured stdout/stderr of the config's last run ("" if none)."""
        try:
            return store.log_path(self._ran_in()).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def logger(self) -> Any:
        """A ``LogReader`` over what the experiment logged, or None if it logged nothing.

        For a reused result, the log of the earlier run that computed it.
        """
        folder = self._ran_in()
        if not store.has_log(folder):
            return None
        from .log import LogReader

        return LogReader(folder)

    def __repr__(self) -> str:
        state = self.status if self.error is None else f"{self.status}: {self.error}"
        return f"Result({self.name!r}, {state})"


def config_names(run: store.Run) -> list[str]:
    """Config names in manifest order (from runs.json, or each config.json for older runs)."""
    manifest = run.manifest()
    names = manifest.meta.get("names")
    if isinstance(names, list) and len(names) == len(manifest.dirs):
        return [str(n) for n in names]
    return [str(run.read_config(d).get("name", d)) for d in manifest.dirs]


def as_config(data: dict[str, Any]) -> Any:
    from .config import Config

    return Config(data)


def _load_config(run: store.Run, dirname: str) -> Any:
    return as_config(run.read_config(dirname))


def load_results(run: store.Run | str | os.PathLike[str], make: Callable[..., Any] = Result) -> Any:
    """The results of any pyexp run folder as a Tensor of :class:`Result`, shaped as it was run.

    Works on folders written by ``@pyexp.experiment``, by the ``hydra/launcher=pyexp``
    launcher and by the ``hydra/sweeper=pyexp`` sweeper (whose Hydra sweep folder is itself
    a run folder): ``.sel(lr=0.1)``, globs on names and dict queries on configs all work.
    Every config's outcome is read and checked (size and CRC of ``result.pkl``) here, so a
    damaged result is that config's ``error`` from the start; values are read on first use.

    Args:
        run: A run folder (the one holding ``runs.json``), an experiment folder such as
            ``out/<name>`` (its latest run is loaded), or a :class:`~pyexp.store.Run`.
        make: Builds each element from ``(name, config_loader, out, outcome=...)``.

    Returns:
        A Tensor of Result with the run's shape, axes and axis values.

    Raises:
        RunNotFoundError: ``run`` is neither a run folder nor a folder of runs (also a
            RuntimeError).
        StoreError: ``runs.json`` or a ``config.json`` is damaged.

    Example:
        >>> results = pyexp.load_results("multirun/2024-01-25/14-30-00")
        >>> results.sel(lr=0.1, seed=1).result
    """
    from .tensor import Tensor

    if not isinstance(run, store.Run):
        run = _open_run(Path(os.fspath(run)).expanduser().absolute())
    manifest = run.manifest()
    run.check_configs()
    results = []
    for dirname, name in zip(manifest.dirs, config_names(run)):
        # A loader, not the config: a report that never looks at configs never reads config.json.
        config = functools.partial(_load_config, run, dirname)
        results.append(make(name, config, run.config_dir(dirname), outcome=run.outcome(dirname)))
    extra = {"axis_values": manifest.meta["axis_values"]} if manifest.meta.get("axis_values") else {}
    return Tensor(results, shape=manifest.shape, axes=manifest.axes, **extra)


def _open_run(folder: Path) -> store.Run:
    """The run in ``folder``, or the latest run of the experiment folder ``folder``."""
    run = store.Run(folder)
    if run.exists():
        return run
    if not folder.is_dir():
        raise RunNotFoundError(f"{folder} does not exist; pass a run folder (the one holding {store.RUNS_FILE})")
    runs = store.RunStore(folder.parent, folder.name).runs()
    if not runs:
        raise RunNotFoundError(
            f"{folder} holds no {store.RUNS_FILE} and no finished runs; pass a run folder written by pyexp "
            "(out/<name>/<timestamp>, or the sweep folder of hydra/sweeper=pyexp)"
        )
    return runs[-1]
