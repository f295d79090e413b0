"""Scalar series maths for the viewer: smoothing, downsampling and a bounded running summary.

No panel import here (unit-tested without a server). The viewer keeps, per run and tag, a
:class:`Summary` of a few thousand points instead of the whole series: every bucket's minimum
and maximum survive, so spikes and the last value are drawn exactly, while memory stays flat
however long the run logs. Appended points extend a summary in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import ViewerError

X_MODES = ("step", "relative", "wall")


# --------------------------------------------------------------------------- smoothing
def ema(values: Any, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average; non-finite values pass through.

    ``s_n = (w * s_{n-1} + (1 - w) * x_n) / (1 - w**k)`` with ``k`` the number of finite values
    seen, so the first point equals the first value instead of being pulled towards zero.
    """
    return EmaState(weight).extend(values)


class EmaState:
    """A running :func:`ema`: feed chunks in order and get each chunk's smoothed values."""

    def __init__(self, weight: float) -> None:
        self.weight = min(max(float(weight), 0.0), 0.999999)
        self.acc = 0.0
        self.count = 0

    def extend(self, values: Any) -> np.ndarray:
        """Smoothed values of ``values``, continuing from the chunks fed before."""
        y = np.asarray(values, dtype=float)
        w = self.weight
        if w <= 0 or y.size == 0:
            return y.copy()
        finite = np.isfinite(y)
        x = y[finite]
        out = y.copy()
        if x.size:
            acc = _ema_raw(x, w, self.acc)
            count = np.arange(self.count + 1, self.count + x.size + 1, dtype=float)
            out[finite] = acc / -np.expm1(count * math.log(w))
            self.acc, self.count = float(acc[-1]), self.count + int(x.size)
        return out


def _ema_raw(x: np.ndarray, w: float, carry: float) -> np.ndarray:
    """acc_n = w*acc_{n-1} + (1-w)*x_n from acc_0 = carry, vectorised in blocks."""
    # Inside a block, acc_n = w^n * (carry + (1-w) * sum_k w^-k x_k); the block length keeps
    # w^-k far from overflow, and a small w needs no memory beyond a few points anyway.
    block = max(1, min(x.size, int(300 / -math.log(w))))
    out = np.empty_like(x)
    for start in range(0, x.size, block):
        chunk = x[start:start + block]
        k = np.arange(1, chunk.size + 1, dtype=float)
        powers = np.exp(k * math.log(w))
        acc = powers * (carry + (1 - w) * np.cumsum(chunk / powers))
        out[start:start + block] = acc
        carry = acc[-1]
    return out


# --------------------------------------------------------------------------- downsampling
def downsample_indices(values: Any, max_points: int) -> np.ndarray:
    """Indices to keep: per bucket its min and max (in order), plus the first and last point."""
    y = np.asarray(values, dtype=float)
    n = y.size
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)
    pad = buckets * size - n
    lo = np.concatenate([np.where(np.isnan(y), np.inf, y), np.full(pad, np.inf)])
    hi = np.concatenate([np.where(np.isnan(y), -np.inf, y), np.full(pad, -np.inf)])
    base = np.arange(buckets) * size
    i_min = base + lo.reshape(buckets, size).argmin(axis=1)
    i_max = base + hi.reshape(buckets, size).argmax(axis=1)
    keep = np.unique(np.concatenate([i_min, i_max, [0, n - 1]]))
    return keep[keep < n]


class Summary:
    """A bounded, appendable min/max-bucket summary of one series.

    Full buckets of ``size`` consecutive points keep only their minimum and maximum; when more
    than ``buckets`` buckets are held, neighbouring pairs merge (keeping the pair's min and max)
    and ``size`` doubles. The first point, the last point and the points of the unfinished
    bucket are kept too, so at most ``2 * buckets + size + 2`` points are held whatever the
    length of the series, and every spike survives.

    Args:
        buckets: Upper bound on full buckets (the resolution of a drawn line).
    """

    def __init__(self, buckets: int = 512) -> None:
        self.buckets = buckets
        self.size = 1
        self.n = 0
        self.vmin = math.inf
        self.vmax = -math.inf
        self._first: tuple[int, float, float] | None = None
        self._last: tuple[int, float, float] | None = None
        # min and max of each full bucket, two entries per bucket: global index, step, value, wall
        self._kept = [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0)]
        self._tail = [np.empty(0, np.int64), np.empty(0), np.empty(0)]  # the unfinished bucket

    @property
    def nbytes(self) -> int:
        """Memory held by the kept points."""
        return sum(a.nbytes for a in (*self._kept, *self._tail))

    @property
    def last(self) -> float | None:
        """The last value appended (None before any)."""
        return None if self._last is None else self._last[1]

    def extend(self, steps: Any, values: Any, walls: Any) -> None:
        """Append points, in logging order."""
        values = np.asarray(values, dtype=float)
        if not values.size:
            return
        steps = np.asarray(steps, dtype=np.int64)
        walls = np.asarray(walls, dtype=float)
        if self._first is None:
            self._first = (int(steps[0]), float(values[0]), float(walls[0]))
        self._last = (int(steps[-1]), float(values[-1]), float(walls[-1]))
        finite = values[np.isfinite(values)]
        if finite.size:
            self.vmin = min(self.vmin, float(finite.min()))
            self.vmax = max(self.vmax, float(finite.max()))
        start = self.n - self._tail[0].size  # global index of the first point of the tail
        self.n += values.size
        steps, values, walls = (np.concatenate([t, a]) for t, a in zip(self._tail, (steps, values, walls)))
        while self._kept[0].size // 2 + values.size // self.size > self.buckets:
            self._merge_pairs()  # coarser buckets before adding: a long chunk never piles up
        full = values.size // self.size * self.size
        if full:
            self._add_buckets(start, steps[:full], values[:full], walls[:full])
        # Copies: a view would keep the whole appended chunk alive.
        self._tail = [steps[full:].copy(), values[full:].copy(), walls[full:].copy()]

    def _add_buckets(self, start: int, steps: np.ndarray, values: np.ndarray,
                     walls: np.ndarray) -> None:
        size = self.size
        count = values.size // size
        pick = _bucket_extremes(values.reshape(count, size)) + np.repeat(np.arange(count) * size, 2)
        new = (start + pick, steps[pick], values[pick], walls[pick])
        self._kept = [np.concatenate([old, add]) for old, add in zip(self._kept, new)]

    def _merge_pairs(self) -> None:
        """Merge neighbouring buckets two by two (an odd last one stays as it is)."""
        idx, steps, values, walls = self._kept
        pairs = values.size // 4
        cut = pairs * 4
        pick = _bucket_extremes(values[:cut].reshape(pairs, 4)) + np.repeat(np.arange(pairs) * 4, 2)
        self._kept = [np.concatenate([a[:cut][pick], a[cut:]]) for a in (idx, steps, values, walls)]
        self.size *= 2

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, values, wall times)`` of the kept points, in logging order."""
        if self._first is None:
            return np.empty(0, np.int64), np.empty(0), np.empty(0)
        idx, steps, values, walls = self._kept
        if idx.size > 1:  # a bucket whose min and max are one point holds it twice
            fresh = np.concatenate([[True], idx[1:] != idx[:-1]])
            idx, steps, values, walls = (a[fresh] for a in self._kept)
        parts = [(steps, values, walls)]
        if not (idx.size and idx[0] == 0):
            parts.insert(0, tuple(np.array([v]) for v in self._first))
        parts.append(tuple(self._tail))
        if not self._tail[0].size and not (idx.size and idx[-1] == self.n - 1):
            parts.append(tuple(np.array([v]) for v in self._last))
        return (np.concatenate([p[0] for p in parts]).astype(np.int64),
                np.concatenate([p[1] for p in parts]).astype(float),
                np.concatenate([p[2] for p in parts]).astype(float))


def _bucket_extremes(rows: np.ndarray) -> np.ndarray:
    """Per row, the column indices of its min and max, in index order (flattened)."""
    lo = np.where(np.isnan(rows), np.inf, rows).argmin(axis=1)
    hi = np.where(np.isnan(rows), -np.inf, rows).argmax(axis=1)
    return np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1).ravel()


# --------------------------------------------------------------------------- chart-ready lines
@dataclass
class Series:
    """One run's scalar tag, ready to plot: the raw and the smoothed line (both downsampled).

    All fields but ``n_points`` (the length before downsampling) are numpy arrays.
    """

    x: Any
    y: Any
    x_smooth: Any
    y_smooth: Any
    iterations: Any
    n_points: int

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(a.nbytes for a in (self.x, self.y, self.x_smooth, self.y_smooth, self.iterations))


def _x(x_mode: str, steps: np.ndarray, walls: np.ndarray, origin: float | None) -> np.ndarray:
    if x_mode == "step":
        return steps.astype(float)
    if x_mode == "relative":
        if origin is None or not math.isfinite(origin):
            finite = walls[np.isfinite(walls)]  # a log line without a time stamp has NaN
            origin = float(finite[0]) if finite.size else 0.0
        return walls - origin
    return walls * 1000.0  # epoch milliseconds, what a date axis wants


def _check_mode(x_mode: str) -> None:
    if x_mode not in X_MODES:
        raise ViewerError(f"x axis {x_mode!r}: choose one of {', '.join(X_MODES)}")


def _finite(a: np.ndarray) -> np.ndarray:
    # Arrays travel to the browser as binary buffers; NaN there makes Plotly draw a gap.
    return np.where(np.isfinite(a), a, np.nan)


def prepare_series(columns: tuple[Any, Any, Any], *, smoothing: float = 0.0, x_mode: str = "step",
                   max_points: int = 2000, start_time: float | None = None) -> Series:
    """Turn full ``(iterations, values, wall_times)`` columns into a downsampled :class:`Series`.

    Smoothing runs on the full series first, then raw and smoothed lines are each downsampled
    with min/max buckets, so spikes and the last value always survive.

    Args:
        columns: Iterations, values and wall times (seconds since the epoch), same length.
        smoothing: EMA weight in [0, 1); 0 plots the raw values only.
        x_mode: ``"step"`` (iteration), ``"relative"`` (seconds since the run started) or
            ``"wall"`` (epoch milliseconds, for a date axis).
        max_points: Upper bound on points per line sent to the browser.
        start_time: Origin of relative time (default: the first wall time).

    Raises:
        ViewerError: unknown ``x_mode``.
    """
    _check_mode(x_mode)
    its = np.asarray(columns[0], dtype=np.int64)
    y = np.asarray(columns[1], dtype=float)
    t = np.asarray(columns[2], dtype=float)
    n = min(its.size, y.size, t.size)
    its, y, t = its[:n], y[:n], t[:n]
    x = _x(x_mode, its, t, start_time)
    smooth = ema(y, smoothing) if smoothing > 0 else y
    keep = downsample_indices(y, max_points)
    keep_s = downsample_indices(smooth, max_points) if smoothing > 0 else keep
    return Series(x=x[keep], y=_finite(y[keep]), x_smooth=x[keep_s],
                  y_smooth=_finite(smooth[keep_s]), iterations=its[keep], n_points=n)


def summary_series(raw: Summary, smooth: Summary | None, *, x_mode: str = "step",
                   max_points: int = 2000, start_time: float | None = None) -> Series:
    """A :class:`Series` from the summaries of the raw and (optionally) smoothed values.

    Raises:
        ViewerError: unknown ``x_mode``.
    """
    _check_mode(x_mode)
    steps, values, walls = raw.points()
    keep = downsample_indices(values, max_points)
    steps, values, walls = steps[keep], values[keep], walls[keep]
    x = _x(x_mode, steps, walls, start_time)
    if smooth is None:
        return Series(x=x, y=_finite(values), x_smooth=x, y_smooth=_finite(values),
                      iterations=steps, n_points=raw.n)
    s_steps, s_values, s_walls = smooth.points()
    keep = downsample_indices(s_values, max_points)
    return Series(x=x, y=_finite(values), x_smooth=_x(x_mode, s_steps[keep], s_walls[keep], start_time),
                  y_smooth=_finite(s_values[keep]), iterations=steps, n_points=raw.n)
