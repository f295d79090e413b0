"""What the viewer keeps of one run, and how it reads it: bounded summaries, never the series.

Of each run read, a :class:`RunState` keeps per scalar tag a
:class:`~pyexp.viewer.series.Summary` (and one per smoothing weight in use), the tag's
last/min/max, the run's text and the index of its figures. A run that is still being written
keeps its LogReader, so a refresh reads only the appended bytes; a finished run's reader is
dropped once read.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._memory import release_free_memory
from .data import scalar_arrays
from .series import EmaState, Summary

#: A run whose log files changed this recently keeps its reader (it is probably still logging).
LIVE_SECONDS = 300.0
#: Points per tag a summary keeps (two per bucket): what a chart needs, no more.
SUMMARY_BUCKETS = 640
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


def signature(path: Path) -> tuple[Any, ...]:
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


def _newest(found: tuple[Any, ...]) -> float:
    times = [p[1] if isinstance(p, tuple) else p for p in found if p is not None]
    return max(times, default=0) / 1e9


class RunState:
    """What the catalog keeps of one run (guarded by ``lock``)."""

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

    def read_all(self, keep: bool, weights: tuple[float, ...] = ()) -> bool:
        """Read the whole log into summaries and statistics (the reader is kept only while live).

        Args:
            keep: Keep the summaries charts need (else statistics, text and figures only).
            weights: Smoothing weights to summarise the smoothed values for, too.
        """
        from ..log import LogReader

        found = signature(self.path)
        reader = self.reader if self.reader is not None else LogReader(self.path)
        reader.refresh()
        # The weights asked for now, after those already kept: the oldest are dropped first.
        weights = (*(w for w in self.smoothed if w not in weights), *weights)[-SMOOTHINGS_KEPT:]
        summaries: dict[str, Summary] = {}
        smoothed: dict[float, dict[str, tuple[EmaState, Summary]]] = {w: {} for w in weights}
        for tag in sorted(reader.scalar_tags):
            steps, values, walls = scalar_arrays(reader, tag)
            summaries[tag] = _summarise(steps, values, walls)
            for w in weights:
                ema = EmaState(w)
                smoothed[w][tag] = (ema, _summarise(steps, ema.extend(values), walls))
            self.counts[tag] = len(values)
            del steps, values, walls
        self.tags = set(summaries)
        self.stats = {tag: _stats(s) for tag, s in summaries.items()}
        self.summaries = summaries if keep or weights else None
        self.smoothed = OrderedDict(smoothed)
        self.start_time = reader.start_time
        if self.summaries is not None:  # a statistics-only read keeps no text either
            self._read_other(reader)
        else:
            self.text, self.figures = {}, {}
        self.signature = found
        self.reader = reader if self.live else None
        del reader
        release_free_memory()
        return True

    def _read_other(self, reader: Any) -> None:
        self.text = {tag: [(int(it), str(text)) for it, text in reader.load_text(tag)]
                     for tag in reader.text_tags}
        self.figures = {tag: reader.figure_iterations(tag) for tag in reader.figure_tags}

    def read_appended(self, found: tuple[Any, ...]) -> bool:
        """Read what the kept reader finds appended; return whether anything new arrived.

        Args:
            found: The log files' :func:`signature` now.
        """
        reader = self.reader
        if not reader.refresh():
            self.signature = found
            return False
        tags = sorted(reader.scalar_tags)
        arrays = {tag: scalar_arrays(reader, tag) for tag in tags}
        if self.summaries is None or any(len(a[1]) < self.counts.get(t, 0) for t, a in arrays.items()):
            return self.read_all(keep=self.summaries is not None)  # the log started over
        for tag, columns in arrays.items():
            steps, values, walls = (a[self.counts.get(tag, 0):] for a in columns)
            self.summaries.setdefault(tag, Summary(SUMMARY_BUCKETS)).extend(steps, values, walls)
            for weight, per_tag in self.smoothed.items():
                ema, smooth = per_tag.setdefault(tag, (EmaState(weight), Summary(SUMMARY_BUCKETS)))
                smooth.extend(steps, ema.extend(values), walls)
            self.counts[tag] = len(columns[1])
        self.tags = set(tags)
        self.stats = {tag: _stats(s) for tag, s in self.summaries.items()}
        self.start_time = reader.start_time
        self._read_other(reader)
        self.signature = found
        return True

    @property
    def live(self) -> bool:
        """Whether the run's logs changed recently (so its reader is worth keeping)."""
        return self.signature is not None and time.time() - _newest(self.signature) < LIVE_SECONDS


def _summarise(steps: Any, values: Any, walls: Any) -> Summary:
    summary = Summary(SUMMARY_BUCKETS)
    summary.extend(steps, values, walls)
    return summary


def _stats(summary: Summary) -> ScalarStats:
    finite = summary.vmin <= summary.vmax
    return ScalarStats(summary.last, summary.vmin if finite else None,
                       summary.vmax if finite else None, summary.n)


