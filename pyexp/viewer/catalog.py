"""The runs below the served folder, shared by every browser session of a viewer process."""

from __future__ import annotations

import os
from collections import OrderedDict
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from ..errors import PyexpError
from .data import Series, ViewerError, load_run_config, prepare_series, resolve_run

#: Prepared (smoothed, downsampled) series kept for all sessions; a few MB at most.
_SERIES_CACHE = 512


class Catalog:
    """Runs below one folder, shared by every browser session of a viewer process.

    Only runs someone selected are read; ``refresh`` re-reads appended data incrementally and
    bumps a per-run version so sessions know which charts to redraw.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ViewerError(f"{root}: no such folder; pass the folder holding your experiments "
                              "(e.g. out/my_experiment)")
        self._lock = threading.RLock()
        self._runs: list[str] = []
        self._readers: dict[str, Any] = {}
        self._versions: dict[str, int] = {}
        self._run_locks: dict[str, threading.RLock] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self._series: OrderedDict[tuple[Any, ...], Series | None] = OrderedDict()
        self.refresh_runs()

    @property
    def runs(self) -> list[str]:
        """Names of the runs found so far ("/"-separated paths relative to the root)."""
        return list(self._runs)

    def refresh_runs(self) -> bool:
        """Discover runs again; return whether the list changed."""
        from ..log import LogReader

        with self._lock:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    found = LogReader(self.root).runs if self.root.is_dir() else []
            except (OSError, PyexpError):
                found = []
            safe = []
            for name in found:
                try:
                    resolve_run(self.root, name)
                except ViewerError:
                    continue
                safe.append(name)
            changed = safe != self._runs
            self._runs = safe
            return changed

    def config(self, name: str) -> dict[str, Any]:
        """The flattened config of run ``name`` (cached; {} when it has none)."""
        with self._lock:
            if name not in self._configs:
                self._configs[name] = load_run_config(self.root, resolve_run(self.root, name))
            return self._configs[name]

    def configs(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Flattened configs of ``names`` (default: every run)."""
        return {n: self.config(n) for n in (self._runs if names is None else names)}

    def reader(self, name: str) -> Any:
        """The LogReader of run ``name``, created (and read) on first request.

        Raises:
            ViewerError: the name is not a run inside the root.
        """
        from ..log import LogReader

        with self._lock:
            reader = self._readers.get(name)
            if reader is None:
                reader = LogReader(resolve_run(self.root, name))
                self._readers[name] = reader
                self._run_locks[name] = threading.RLock()
        # A per-run lock: reading one big run must not hold up pages that need other runs.
        with self._run_locks[name]:
            if self._versions.get(name, -1) < 0:
                self._guard(name, reader.refresh)
                self._versions[name] = 0
        return reader

    def version(self, name: str) -> int:
        """A number that grows whenever new data of run ``name`` was read (-1: not read yet)."""
        return self._versions.get(name, -1)

    def refresh(self, names: list[str]) -> set[str]:
        """Read what was appended to runs ``names``; return those that got new data."""
        changed = set()
        for name in names:
            if self.version(name) < 0:
                continue
            with self._run_locks[name]:
                if self._guard(name, self._readers[name].refresh):
                    self._versions[name] += 1
                    changed.add(name)
        return changed

    def series(self, name: str, tag: str, *, smoothing: float, x_mode: str,
               max_points: int) -> Series | None:
        """Scalar ``tag`` of run ``name`` ready to plot (None if the run lacks it or fails).

        Cached across sessions until the run gets new data, so a second browser tab (or a
        change back to an earlier smoothing) costs nothing.
        """
        key = (name, tag, self.version(name), smoothing, x_mode, max_points)
        with self._lock:
            if key in self._series:
                self._series.move_to_end(key)
                return self._series[key]

        def load(reader: Any) -> Series | None:
            if tag not in reader.scalar_tags:
                return None
            return prepare_series(reader.scalar_columns(tag), smoothing=smoothing, x_mode=x_mode,
                                  max_points=max_points, start_time=reader.start_time)

        result = self.safe(name, load)
        with self._lock:
            key = (name, tag, self.version(name), smoothing, x_mode, max_points)
            self._series[key] = result
            while len(self._series) > _SERIES_CACHE:
                self._series.popitem(last=False)
        return result

    def _guard(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run a read; a malformed or half-written file becomes a message, never a crash."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn()
        except Exception as exc:  # noqa: BLE001 - any parse error of user files must not kill the viewer
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            return False
        self.errors.pop(name, None)
        return result

    def safe(self, name: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """``fn(reader)`` for run ``name``, or ``default`` if reading fails."""
        try:
            reader = self.reader(name)
        except ViewerError as exc:
            self.errors[name] = str(exc)
            return default
        with self._run_locks[name]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return fn(reader)
            except Exception as exc:  # noqa: BLE001 - see _guard
                self.errors[name] = f"{type(exc).__name__}: {exc}"
                return default


_CATALOGS: dict[Path, Catalog] = {}
_CATALOGS_LOCK = threading.Lock()


def shared_catalog(root: str | os.PathLike[str]) -> Catalog:
    """One :class:`Catalog` per folder per process, shared by all sessions."""
    key = Path(root).resolve()
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            _CATALOGS[key] = Catalog(key)
        return _CATALOGS[key]
