"""What a LogReader has read so far: typed scalar columns, text, and references to pickles.

Scalars live in numpy arrays (int64 steps, float64 values, float64 wall times shared by the
tags of an event) instead of three Python objects a point. Sources decode a whole read buffer
at a time and hand each tag's new points over as arrays (:class:`Batch`), so a refresh appends
one chunk per tag; chunks are joined only when the tag is asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_EMPTY_I = np.empty(0, np.int64)
_EMPTY_F = np.empty(0, np.float64)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # handed out without copying: nobody may change the cache
    return array


def _join(head: np.ndarray, chunks: list[np.ndarray], dtype: type) -> np.ndarray:
    """``head`` followed by ``chunks`` as one read-only array; a lone chunk is used as is."""
    parts = [head, *chunks] if len(head) else chunks
    return _frozen(np.concatenate(parts, dtype=dtype) if len(parts) > 1
                   else np.asarray(parts[0], dtype))


class ScalarSeries:
    """One scalar tag: aligned steps, values and wall times, in logging order.

    Steps and values are joined into one array each when asked for (16 bytes a point, cached
    until new points arrive). Wall times stay in the chunks they were decoded in: the tags of
    one event share one wall-time array, so they cost 8 bytes an event, not a point, and are
    joined only when someone asks for them.
    """

    __slots__ = ("_steps", "_values", "_pending", "_times", "_size")

    def __init__(self) -> None:
        self._steps = _EMPTY_I
        self._values = _EMPTY_F
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._times: list[np.ndarray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def extend(self, steps: np.ndarray, values: np.ndarray, wall_times: np.ndarray) -> None:
        """Append points (three equally long arrays; ``wall_times`` may be shared with others)."""
        if not len(steps):
            return
        self._pending.append((steps, values))
        self._times.append(wall_times)
        self._size += len(steps)
        if len(self._times) > 64:
            # A live run refreshed for hours: fold the small chunks, keep the first (shared) one.
            self._times[1:] = [np.concatenate(self._times[1:])]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` as read-only int64 and float64 arrays."""
        if self._pending:
            self._steps = _join(self._steps, [p[0] for p in self._pending], np.int64)
            self._values = _join(self._values, [p[1] for p in self._pending], np.float64)
            self._pending = []
        return self._steps, self._values

    def wall_times(self) -> np.ndarray:
        """Wall times of the points (a new read-only float64 array)."""
        if not self._times:
            return _EMPTY_F
        return _frozen(np.concatenate(self._times, dtype=np.float64))

    def last(self) -> tuple[int, float]:
        """The last ``(step, value)`` without joining anything."""
        steps, values = self._pending[-1] if self._pending else (self._steps, self._values)
        return int(steps[-1]), float(values[-1])

    def first_wall_time(self) -> float | None:
        """Wall time of the first point, if any."""
        return float(self._times[0][0]) if self._times else None


class Index:
    """Everything read so far; the sources append to it."""

    def __init__(self) -> None:
        self.scalars: dict[str, ScalarSeries] = {}
        self.text: dict[str, tuple[list[int], list[str], list[float]]] = {}
        self.figures: dict[str, dict[int, tuple[Any, ...]]] = {}
        self.checkpoints: dict[str, dict[int, tuple[Any, ...]]] = {}
        self.other_iterations: set[int] = set()  # of text, figures and checkpoints
        self.metadata: list[dict[str, Any]] = []
        self._iterations: list[int] | None = None

    def changed(self) -> None:
        """Forget what is derived from the data (new points arrived)."""
        self._iterations = None

    def series(self, tag: str) -> ScalarSeries:
        """The series of ``tag``, created empty if new."""
        series = self.scalars.get(tag)
        if series is None:
            series = self.scalars[tag] = ScalarSeries()
        return series

    def add_text(self, tag: str, it: int, text: str, wall_time: float) -> None:
        cols = self.text.get(tag)
        if cols is None:
            cols = self.text[tag] = ([], [], [])
        cols[0].append(it)
        cols[1].append(text)
        cols[2].append(wall_time)
        self.other_iterations.add(it)

    def iterations(self) -> list[int]:
        """Sorted iterations at which anything was logged."""
        if self._iterations is None:
            steps = [series.arrays()[0] for series in self.scalars.values()]
            steps.append(np.fromiter(self.other_iterations, np.int64, len(self.other_iterations)))
            self._iterations = np.unique(np.concatenate(steps)).tolist()
        return self._iterations


class Batch:
    """Points decoded from one read buffer, per tag, merged in file order by :meth:`commit`.

    A tag's points may come in several pieces (events of different layouts, values decoded one
    by one); each piece carries the buffer positions of its points so the merge keeps the
    order in which they were written.
    """

    def __init__(self) -> None:
        self._pieces: dict[str, list[tuple[np.ndarray, ...]]] = {}
        self._loose: dict[str, tuple[list[int], list[int], list[float], list[float]]] = {}

    def add_arrays(self, tag: str, positions: np.ndarray, steps: np.ndarray, values: np.ndarray,
                   wall_times: np.ndarray) -> None:
        """Add a piece: four aligned arrays."""
        self._pieces.setdefault(tag, []).append((positions, steps, values, wall_times))

    def add(self, tag: str, position: int, step: int, value: float, wall_time: float) -> None:
        """Add one point."""
        loose = self._loose.get(tag)
        if loose is None:
            loose = self._loose[tag] = ([], [], [], [])
        loose[0].append(position)
        loose[1].append(step)
        loose[2].append(value)
        loose[3].append(wall_time)

    def commit(self, index: Index) -> bool:
        """Append everything to ``index``; return whether there was anything."""
        for tag, (positions, steps, values, times) in self._loose.items():
            self.add_arrays(tag, np.array(positions, np.int64), np.array(steps, np.int64),
                            np.array(values, np.float64), np.array(times, np.float64))
        self._loose = {}
        for tag, pieces in self._pieces.items():
            series = index.series(tag)
            if len(pieces) > 1:
                pieces.sort(key=lambda piece: piece[0][0])
                if any(a[0][-1] > b[0][0] for a, b in zip(pieces, pieces[1:])):
                    # Interleaved (e.g. text every few iterations breaks the run of
                    # identical events): merge by position.
                    order = np.argsort(np.concatenate([p[0] for p in pieces]), kind="stable")
                    pieces = [tuple(np.concatenate([p[k] for p in pieces])[order]  # type: ignore[misc]
                                    for k in range(4))]
            for _, steps, values, times in pieces:
                # One after the other (the usual case: a tag's first event, then events of
                # one layout): appended as they are, so the wall times stay shared.
                series.extend(steps, values, times)
        new = bool(self._pieces)
        self._pieces = {}
        if new:
            index.changed()
        return new
