"""The runs below the served folder, shared by every browser session of a viewer process.

Memory stays flat however much the runs log: of each run read the catalog keeps a
:class:`~pyexp.viewer.runstate.RunState` (bounded summaries and statistics, never the series).
Summaries of runs not looked at for a while are evicted (their statistics stay) and read again
on demand; chart-ready series are cached for all sessions within a byte budget.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from ..errors import PyexpError
from ._memory import release_free_memory
from .data import ViewerError, load_run_config, resolve_run
from .runstate import RunState, ScalarStats, signature
from .series import Series, summary_series

#: Bytes of summaries kept for all runs together; the least recently used go first.
SUMMARY_BUDGET = 48 << 20
#: Bytes of chart-ready series kept for all sessions.
SERIES_BUDGET = 16 << 20
#: Seconds an idle reader kept for loading figures lives.
FIGURE_READER_SECONDS = 30.0


class Catalog:
    """Runs below one folder, shared by every browser session of a viewer process.

    Only runs someone asks for are read. ``refresh`` reads what was appended to them and bumps
    a per-run version, so sessions know which charts to redraw.

    Raises:
        ViewerError: ``root`` is not a folder.
    """

    def __init__(self, root: str | os.PathLike[str], *, scan_interval: float = 1.0) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ViewerError(f"{root}: no such folder; pass the folder holding your experiments "
                              "(e.g. out/my_experiment)")
        self._lock = threading.RLock()
        self._runs: list[str] = []
        self._state: dict[str, RunState] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._series: OrderedDict[tuple[Any, ...], Series | None] = OrderedDict()
        self._series_bytes = 0
        self._scanned = -1e9
        self._figure_readers: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self._scan_interval = scan_interval
        self.errors: dict[str, str] = {}
        self.refresh_runs(force=True)

    # ----------------------------------------------------------------- discovery
    @property
    def runs(self) -> list[str]:
        """Names of the runs found so far ("/"-separated paths relative to the root)."""
        return list(self._runs)

    def refresh_runs(self, force: bool = False) -> bool:
        """Discover runs again (at most once per scan interval); return whether the list changed."""
        from ..log import LogReader

        with self._lock:
            now = time.monotonic()
            if not force and now - self._scanned < self._scan_interval:
                return False
            self._scanned = now
            self._drop_idle_readers()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    found = LogReader(self.root).runs if self.root.is_dir() else []
            except (OSError, PyexpError):
                found = []
            safe = []
            for name in found:
                if name not in self._state:
                    try:
                        self._state[name] = RunState(resolve_run(self.root, name))
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

    def _run(self, name: str) -> RunState:
        with self._lock:
            state = self._state.get(name)
            if state is None:
                state = self._state[name] = RunState(resolve_run(self.root, name))
            return state

    # ----------------------------------------------------------------- reading
    def version(self, name: str) -> int:
        """A number that grows whenever new data of run ``name`` was read (-1: not read yet)."""
        state = self._state.get(name)
        return -1 if state is None else state.version

    def load(self, name: str, summaries: bool = True) -> bool:
        """Read run ``name`` unless already read; return whether it is readable.

        Args:
            name: The run.
            summaries: Also keep what charts need (``False``: statistics, text and figures only,
                for a table of many runs).
        """
        try:
            state = self._run(name)
        except ViewerError as exc:
            self.errors[name] = str(exc)
            return False
        with state.lock:
            state.used = time.monotonic()
            if state.version >= 0 and (state.summaries is not None or not summaries):
                return True
            ok = self._guard(name, lambda: state.read_all(keep=summaries))
            if state.version < 0:
                state.version = 0
        if ok and summaries:
            self._evict()
        return bool(ok)

    def refresh(self, names: list[str]) -> set[str]:
        """Read what was appended to runs ``names``; return those that got new data."""
        changed = set()
        for name in names:
            state = self._state.get(name)
            if state is None or state.version < 0:
                continue
            with state.lock:
                found = signature(state.path)
                if found == state.signature:
                    if state.reader is not None and not state.live:
                        state.reader = None  # the run went quiet: free what its reader holds
                        release_free_memory()
                    continue
                if state.reader is not None:
                    ok = self._guard(name, lambda: state.read_appended(found))
                else:
                    ok = self._guard(name, lambda: state.read_all(keep=state.summaries is not None))
                if ok:
                    state.version += 1
                    changed.add(name)
        return changed

    # ----------------------------------------------------------------- what views ask for
    def scalar_tags(self, name: str) -> set[str]:
        """Scalar tags of run ``name`` (read on first request; empty if unreadable)."""
        return set(self._state[name].tags) if self.load(name) else set()

    def stats(self, name: str) -> dict[str, ScalarStats] | None:
        """Last/min/max per scalar tag of run ``name``, or None if it was not read yet."""
        state = self._state.get(name)
        return None if state is None or state.stats is None else dict(state.stats)

    def text(self, name: str) -> dict[str, list[tuple[int, str]]]:
        """Logged text of run ``name`` by tag, as ``(iteration, text)`` pairs."""
        return self._state[name].text if self.load(name) else {}

    def figures(self, name: str) -> dict[str, list[int]]:
        """Iterations at which each figure tag of run ``name`` was logged."""
        return self._state[name].figures if self.load(name) else {}

    def figure_reader(self, name: str) -> Any:
        """A LogReader of run ``name`` to load a figure from (its own, while the run is live)."""
        from ..log import LogReader

        state = self._run(name)
        if state.reader is not None:
            return state.reader
        with self._lock:
            # Loading a figure needs a reader over the whole log: keep the last two a short
            # while (a tab shows several figures of a run), then let them go.
            held = self._figure_readers.pop(name, None)
            reader = held[0] if held else LogReader(state.path)
            self._figure_readers[name] = (reader, time.monotonic())
            while len(self._figure_readers) > 2:
                self._figure_readers.popitem(last=False)
        return reader

    def _drop_idle_readers(self) -> None:
        with self._lock:
            now = time.monotonic()
            idle = [n for n, (_, used) in self._figure_readers.items() if now - used > FIGURE_READER_SECONDS]
            for name in idle:
                del self._figure_readers[name]
        if idle:
            release_free_memory()

    def start_time(self, name: str) -> float | None:
        """When run ``name`` started (seconds since the epoch), if known."""
        state = self._state.get(name)
        return None if state is None else state.start_time

    def series(self, name: str, tag: str, *, smoothing: float, x_mode: str,
               max_points: int) -> Series | None:
        """Scalar ``tag`` of run ``name`` ready to plot (None if the run lacks it or fails).

        Cached across sessions until the run gets new data, so a second browser tab (or a
        change back to an earlier setting) costs nothing.
        """
        key = (name, tag, self.version(name), smoothing, x_mode, max_points)
        with self._lock:
            if key in self._series:
                self._series.move_to_end(key)
                return self._series[key]
        result = self._guard(name, lambda: self._make_series(name, tag, smoothing, x_mode,
                                                             max_points), default=None)
        with self._lock:
            key = (name, tag, self.version(name), smoothing, x_mode, max_points)
            if key not in self._series:
                self._series[key] = result
                self._series_bytes += result.nbytes if result is not None else 0
            while self._series_bytes > SERIES_BUDGET and len(self._series) > 1:
                _, old = self._series.popitem(last=False)
                self._series_bytes -= old.nbytes if old is not None else 0
        return result

    def _make_series(self, name: str, tag: str, smoothing: float, x_mode: str,
                     max_points: int) -> Series | None:
        if not self.load(name):
            return None
        state = self._state[name]
        with state.lock:
            state.used = time.monotonic()
            if tag not in state.tags:
                return None
            if state.summaries is None or (smoothing > 0 and smoothing not in state.smoothed):
                state.read_all(keep=True, weights=(smoothing,) if smoothing > 0 else ())
            raw = state.summaries.get(tag) if state.summaries else None
            if raw is None:
                return None
            smooth = None
            if smoothing > 0:
                state.smoothed.move_to_end(smoothing)
                smooth = state.smoothed[smoothing].get(tag, (None, None))[1]
            return summary_series(raw, smooth, x_mode=x_mode, max_points=max_points,
                                  start_time=state.start_time)

    def _evict(self) -> None:
        """Drop the summaries of the least recently used runs beyond the budget."""
        with self._lock:
            held = sorted((s for s in self._state.values() if s.summaries is not None),
                          key=lambda s: s.used)
        total = sum(s.nbytes for s in held)
        for state in held[:-1]:
            if total <= SUMMARY_BUDGET:
                break
            with state.lock:
                total -= state.nbytes
                state.forget_summaries()

    def _guard(self, name: str, fn: Callable[[], Any], default: Any = False) -> Any:
        """Run a read; a malformed or half-written file becomes a message, never a crash."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn()
        except Exception as exc:  # noqa: BLE001 - any parse error of user files must not kill the viewer
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            return default
        self.errors.pop(name, None)
        return result


_CATALOGS: dict[Path, Catalog] = {}
_CATALOGS_LOCK = threading.Lock()


def shared_catalog(root: str | os.PathLike[str]) -> Catalog:
    """One :class:`Catalog` per folder per process, shared by all sessions."""
    key = Path(root).resolve()
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            _CATALOGS[key] = Catalog(key)
        return _CATALOGS[key]
