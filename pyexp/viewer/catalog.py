"""The runs below the served folder, shared by every browser session of a viewer process.

Memory stays flat however much the runs log: of each run read, the catalog keeps bounded
summaries per scalar tag (see :class:`~pyexp.viewer.series.Summary`), the last/min/max of every
tag, its text and the index of its figures, never the full series. A run that is still being
written keeps its LogReader, so a refresh reads only the appended bytes; a finished run's
reader is dropped after reading. Summaries of runs not looked at for a while are evicted
(their statistics stay) and read again on demand.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import PyexpError
from ._memory import release_free_memory
from .data import ViewerError, load_run_config, resolve_run, scalar_arrays
from .series import EmaState, Series, Summary, summary_series

#: A run whose log files changed this recently keeps its reader (it is probably still logging).
LIVE_SECONDS = 300.0
#: Bytes of summaries kept for all runs together; the least recently used go first.
SUMMARY_BUDGET = 48 << 20
#: Bytes of chart-ready series kept for all sessions.
SERIES_BUDGET = 16 << 20
#: Points per tag a summary keeps (two per bucket): what a chart needs, no more.
SUMMARY_BUCKETS = 640
#: Seconds an idle reader kept for loading figures lives.
FIGURE_READER_SECONDS = 30.0
#: Smoothing weights whose summaries a run keeps at once.
SMOOTHINGS_KEPT = 2
_LOG_FILES = (".pyexp", "events.pb", "scalars.jsonl", "text.jsonl")


@dataclass(frozen=True)
class ScalarStats:
    """Last, minimum and maximum (of the finite values) and the number of points of a tag."""

    last: float | None
    min: float | None
    max: float | None
    count: int


class _Run:
    """What the catalog keeps of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.version = -1
        self.signature: tuple[Any, ...] | None = None
        self.reader: Any = None  # kept while the run is live
        self.start_time: float | None = None
        self.tags: set[str] = set()
        self.summaries: dict[str, Summary] | None = None
        self.smoothed: OrderedDict[float, dict[str, tuple[EmaState, Summary]]] = OrderedDict()
        self.counts: dict[str, int] = {}
        self.stats: dict[str, ScalarStats] | None = None
        self.text: dict[str, list[tuple[int, str]]] = {}
        self.figures: dict[str, list[int]] = {}
        self.used = 0.0

    @property
    def nbytes(self) -> int:
        held = sum(s.nbytes for s in (self.summaries or {}).values())
        return held + sum(s.nbytes for tags in self.smoothed.values() for _, s in tags.values())

    def forget_summaries(self) -> None:
        self.summaries = None
        self.smoothed.clear()


def _signature(path: Path) -> tuple[Any, ...]:
    """Sizes and times of a run's log files: changes whenever something is logged."""
    parts: list[Any] = []
    for name in _LOG_FILES:
        try:
            st = os.stat(path / name)
        except OSError:
            parts.append(None)
            continue
        parts.append((st.st_size, st.st_mtime_ns))
    try:
        parts.append(os.stat(path).st_mtime_ns)  # the per-iteration layout adds folders
    except OSError:
        parts.append(None)
    return tuple(parts)


def _newest(signature: tuple[Any, ...]) -> float:
    times = [p[1] if isinstance(p, tuple) else p for p in signature if p is not None]
    return max(times, default=0) / 1e9


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
        self._state: dict[str, _Run] = {}
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
                        self._state[name] = _Run(resolve_run(self.root, name))
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

    def _run(self, name: str) -> _Run:
        with self._lock:
            state = self._state.get(name)
            if state is None:
                state = self._state[name] = _Run(resolve_run(self.root, name))
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
            ok = self._guard(name, lambda: self._read_all(state, keep=summaries))
            if state.version < 0:
                state.version = 0
        if ok and summaries:
            self._evict()
        return bool(ok)

    def _read_all(self, state: _Run, keep: bool, weights: tuple[float, ...] = ()) -> bool:
        """Read the whole log of a run into its summaries (and drop the reader unless live)."""
        from ..log import LogReader

        signature = _signature(state.path)
        reader = state.reader if state.reader is not None else LogReader(state.path)
        reader.refresh()
        weights = tuple(dict.fromkeys((*weights, *state.smoothed)))[-SMOOTHINGS_KEPT:]
        summaries: dict[str, Summary] = {}
        smoothed: dict[float, dict[str, tuple[EmaState, Summary]]] = {w: {} for w in weights}
        for tag in sorted(reader.scalar_tags):
            steps, values, walls = scalar_arrays(reader, tag)
            summaries[tag] = _summarise(steps, values, walls)
            for w in weights:
                ema = EmaState(w)
                smoothed[w][tag] = (ema, _summarise(steps, ema.extend(values), walls))
            state.counts[tag] = len(values)
            del steps, values, walls
        state.tags = set(summaries)
        state.stats = {tag: _stats(s) for tag, s in summaries.items()}
        state.summaries = summaries if keep or weights else None
        state.smoothed = OrderedDict(smoothed)
        self._read_other(state, reader)
        state.signature = signature
        state.reader = reader if time.time() - _newest(signature) < LIVE_SECONDS else None
        del reader
        release_free_memory()
        return True

    @staticmethod
    def _read_other(state: _Run, reader: Any) -> None:
        state.start_time = reader.start_time
        state.text = {tag: [(int(it), str(text)) for it, text in reader.load_text(tag)]
                      for tag in reader.text_tags}
        state.figures = {tag: reader.figure_iterations(tag) for tag in reader.figure_tags}

    def refresh(self, names: list[str]) -> set[str]:
        """Read what was appended to runs ``names``; return those that got new data."""
        changed = set()
        for name in names:
            state = self._state.get(name)
            if state is None or state.version < 0:
                continue
            with state.lock:
                signature = _signature(state.path)
                if signature == state.signature:
                    if state.reader is not None and time.time() - _newest(signature) > LIVE_SECONDS:
                        state.reader = None  # the run went quiet: free what its reader holds
                        release_free_memory()
                    continue
                if state.reader is not None:
                    ok = self._guard(name, lambda: self._read_appended(state, signature))
                else:
                    ok = self._guard(name, lambda: self._read_all(state, keep=state.summaries is not None))
                if ok:
                    state.version += 1
                    changed.add(name)
        return changed

    def _read_appended(self, state: _Run, signature: tuple[Any, ...]) -> bool:
        reader = state.reader
        if not reader.refresh():
            state.signature = signature
            return False
        tags = sorted(reader.scalar_tags)
        arrays = {tag: scalar_arrays(reader, tag) for tag in tags}
        if state.summaries is None or any(len(a[1]) < state.counts.get(t, 0) for t, a in arrays.items()):
            return self._read_all(state, keep=state.summaries is not None)  # the log started over
        for tag, columns in arrays.items():
            steps, values, walls = (a[state.counts.get(tag, 0):] for a in columns)
            state.summaries.setdefault(tag, Summary(SUMMARY_BUCKETS)).extend(steps, values, walls)
            for weight, per_tag in state.smoothed.items():
                ema, smooth = per_tag.setdefault(tag, (EmaState(weight), Summary(SUMMARY_BUCKETS)))
                smooth.extend(steps, ema.extend(values), walls)
            state.counts[tag] = len(columns[1])
        state.tags = set(tags)
        state.stats = {tag: _stats(s) for tag, s in state.summaries.items()}
        self._read_other(state, reader)
        state.signature = signature
        return True

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
                self._read_all(state, keep=True, weights=(smoothing,) if smoothing > 0 else ())
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


def _summarise(steps: Any, values: Any, walls: Any) -> Summary:
    summary = Summary(SUMMARY_BUCKETS)
    summary.extend(steps, values, walls)
    return summary


def _stats(summary: Summary) -> ScalarStats:
    finite = summary.vmin <= summary.vmax
    return ScalarStats(summary.last, summary.vmin if finite else None,
                       summary.vmax if finite else None, summary.n)


_CATALOGS: dict[Path, Catalog] = {}
_CATALOGS_LOCK = threading.Lock()


def shared_catalog(root: str | os.PathLike[str]) -> Catalog:
    """One :class:`Catalog` per folder per process, shared by all sessions."""
    key = Path(root).resolve()
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            _CATALOGS[key] = Catalog(key)
        return _CATALOGS[key]
