"""Result: one config's outcome as the report sees it, loaded lazily from its folder; load_results."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunNotFoundError, StoreError
from .executors.base import LOG_FILE, RESULT_FILE
from .executors.outcome import Outcome, read_outcome, read_status

if TYPE_CHECKING:
    from .store import Manifest, Run
    from .tensor import Tensor

_PENDING = "pending: no result yet; run with --continue to run it"


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
    def cfg(self) -> Any:
        """Alias of :attr:`config` (the original pyexp's spelling; dict queries accept ``cfg.`` too)."""
        return self.config

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

    def __repr__(self) -> str:
        state = self.status if self.error is None else f"{self.status}: {self.error}"
        return f"Result({self.name!r}, {state})"


def load_results(path: str | os.PathLike[str]) -> Tensor:
    """The results of any pyexp run folder as a Tensor of :class:`Result`, shaped as it was run.

    Works on folders written by ``@pyexp.experiment``, by the ``hydra/launcher=pyexp``
    launcher and by the ``hydra/sweeper=pyexp`` sweeper (whose Hydra sweep folder is
    itself a run folder): ``.sel(lr=0.1)``, globs on names and dict queries on configs
    all work. Results are read lazily, as in a report.

    Args:
        path: A run folder (the one holding ``runs.json``), or an experiment folder
            (``out/<name>``), in which case its latest run is loaded.

    Returns:
        A Tensor of Result with the run's shape, axes and axis values.

    Raises:
        RunNotFoundError: ``path`` is neither a run folder nor a folder of runs (also a
            RuntimeError).
        StoreError: ``runs.json`` or a ``config.json`` is damaged.

    Example:
        >>> results = pyexp.load_results("multirun/2024-01-25/14-30-00")
        >>> results.sel(lr=0.1)["*seed=1*"].result
    """
    from .store import RUNS_FILE, Run, RunStore

    folder = Path(os.fspath(path)).expanduser().absolute()
    run = Run(folder)
    if not run.exists():
        if not folder.is_dir():
            raise RunNotFoundError(f"{folder} does not exist; pass a run folder (the one holding {RUNS_FILE})")
        runs = RunStore(folder.parent, folder.name).runs()
        if not runs:
            raise RunNotFoundError(
                f"{folder} holds no {RUNS_FILE} and no finished runs; pass a run folder written by pyexp "
                "(out/<name>/<timestamp>, or the sweep folder of hydra/sweeper=pyexp)"
            )
        run = runs[-1]
    return load_run(run)


def load_run(run: Run, make: Callable[..., Any] = Result) -> Tensor:
    """All results of ``run`` as a Tensor of ``make(name, config loader, folder)`` with the run's shape."""
    from .tensor import Tensor

    manifest = run.manifest()
    run.check_configs()
    results = []
    for dirname, name in zip(manifest.dirs, run_names(run, manifest)):
        # A loader, not the config: a report that never looks at configs never reads config.json.
        config = functools.partial(_load_config, run, dirname)
        results.append(make(name, config, run.config_dir(dirname)))
    extra = {"axis_values": manifest.meta["axis_values"]} if manifest.meta.get("axis_values") else {}
    return Tensor(results, shape=manifest.shape, axes=manifest.axes, **extra)


def run_names(run: Run, manifest: Manifest) -> list[str]:
    """Config names in manifest order (from runs.json, or each config.json for older runs)."""
    names = manifest.meta.get("names")
    if isinstance(names, list) and len(names) == len(manifest.dirs):
        return [str(n) for n in names]
    return [str(run.read_config(d).get("name", d)) for d in manifest.dirs]


def _load_config(run: Run, dirname: str) -> Any:
    from .config import Config

    return Config(run.read_config(dirname))
