"""The viewer's data layer: runs below a folder, their configs, and chart-ready series.

Nothing here imports panel, bokeh or plotly, so it is unit-tested without a server. Every path
the viewer opens goes through :func:`resolve_run`, which refuses anything that resolves outside
the served folder (``..``, absolute names, symlinks pointing out).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ViewerError
from ..store import CONFIG_FILE

#: Files a LogReader opens directly inside a run folder; each must resolve inside the root.
_RUN_FILES = (".pyexp", "events.pb", "scalars.jsonl", "text.jsonl")


# --------------------------------------------------------------------------- paths
def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_run(root: Path, name: str) -> Path:
    """The folder of run ``name`` below ``root``, refusing anything that leaves ``root``.

    Raises:
        ViewerError: ``name`` is absolute, climbs out with ``..``, or resolves (through a
            symlink, also of one of its log files) outside ``root``, or is not a run.
    """
    root = Path(root).resolve()
    if not name or "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")):
        raise ViewerError(f"refused run {name!r}: run names are relative to {root}")
    path = (root / name).resolve()
    if path == root or not _inside(path, root):
        raise ViewerError(f"refused run {name!r}: it is outside the served folder {root}")
    for file in _RUN_FILES:
        target = path / file
        if target.is_symlink() and not _inside(target.resolve(), root):
            raise ViewerError(f"refused run {name!r}: {file} points outside {root}")
    if not any((path / f).is_file() for f in _RUN_FILES):
        raise ViewerError(f"no run {name!r} in {root} (no .pyexp marker or log files)")
    return path


# --------------------------------------------------------------------------- configs
def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys; lists become their JSON text."""
    flat: dict[str, Any] = {}
    if not isinstance(config, dict):
        return flat
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, dotted + "."))
        elif isinstance(value, (list, tuple)):
            flat[dotted] = json.dumps(value, default=str)
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[dotted] = value
        else:
            flat[dotted] = str(value)
    return flat


def load_run_config(root: Path, run_dir: Path) -> dict[str, Any]:
    """The flattened ``config.json`` nearest above ``run_dir`` (within ``root``); {} if none/bad."""
    root = Path(root).resolve()
    here = run_dir
    while _inside(here, root):
        path = here / CONFIG_FILE
        if path.is_file() and _inside(path.resolve(), root):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                return {}
            flat = flatten_config(data)
            flat.pop("out", None)  # an absolute path, the same information as the run name
            return flat
        if here == root:
            break
        here = here.parent
    return {}


_CLAUSE = re.compile(r"^\s*(?P<key>[^=!<>~\s]+)\s*(?P<op>!=|>=|<=|=|<|>|~)\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Clause:
    """One ``key op value`` condition on a run's flattened config."""

    key: str
    op: str
    value: Any

    def matches(self, config: dict[str, Any]) -> bool:
        if self.key not in config:
            return self.op == "!="
        have = config[self.key]
        if self.op == "~":
            return re.search(self.value, str(have)) is not None
        if self.op in ("=", "!="):
            equal = have == self.value or str(have) == str(self.value)
            return equal if self.op == "=" else not equal
        try:
            a, b = float(have), float(self.value)
        except (TypeError, ValueError):
            return False
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[self.op]


def parse_config_query(text: str) -> list[Clause]:
    """Parse ``"lr=0.01, model.depth>=2, opt~adam"`` into clauses (all must hold).

    Operators: ``= != < > <= >=`` and ``~`` (regex search). Keys are dotted config paths, with
    or without a leading ``config.``. Values are read as JSON when they parse (``0.01``,
    ``true``, ``"x"``), else as plain text.

    Raises:
        ViewerError: a clause is not ``key op value`` or a ``~`` pattern is not a valid regex.
    """
    clauses = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text or ""))):
        m = _CLAUSE.match(part)
        if not m:
            raise ViewerError(f"config filter {part!r}: write key=value, key>number or "
                              "key~regex (e.g. lr=0.01, model.depth>=2)")
        key = m["key"].removeprefix("config.")
        raw = m["value"]
        if m["op"] == "~":
            try:
                re.compile(raw)
            except re.error as exc:
                raise ViewerError(f"config filter {part!r}: bad regex ({exc})") from None
            value: Any = raw
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        clauses.append(Clause(key, m["op"], value))
    return clauses


def filter_runs(runs: list[str], configs: dict[str, dict[str, Any]], name_regex: str = "",
                config_query: str = "") -> list[str]:
    """Runs whose name matches ``name_regex`` (search) and whose config satisfies the query.

    Raises:
        ViewerError: the regex or the query is malformed.
    """
    try:
        pattern = re.compile(name_regex or "")
    except re.error as exc:
        raise ViewerError(f"run filter {name_regex!r}: bad regex ({exc})") from None
    clauses = parse_config_query(config_query)
    return [r for r in runs if pattern.search(r)
            and all(c.matches(configs.get(r, {})) for c in clauses)]


def varying_keys(configs: dict[str, dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between runs (the useful ones to colour by)."""
    values: dict[str, set[str]] = {}
    for config in configs.values():
        for key, value in config.items():
            values.setdefault(key, set()).add(json.dumps(value, default=str))
    n = len(configs)
    return sorted(k for k, v in values.items()
                  if len(v) > 1 or sum(k in c for c in configs.values()) < n)


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")


def run_colors(runs: list[str], configs: dict[str, dict[str, Any]],
               color_by: str = "run") -> dict[str, str]:
    """A colour per run: by run (stable order) or by the value of config key ``color_by``."""
    if color_by in ("", "run"):
        return {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}
    keyed = {r: json.dumps(configs.get(r, {}).get(color_by), default=str) for r in runs}
    distinct = sorted(set(keyed.values()), key=_natural)
    slot = {v: i for i, v in enumerate(distinct)}
    return {r: PALETTE[slot[keyed[r]] % len(PALETTE)] for r in runs}


def _natural(text: str) -> tuple[Any, ...]:
    try:
        return (0, float(json.loads(text)), text)
    except (TypeError, ValueError):
        return (1, 0.0, text)


# --------------------------------------------------------------------------- series
def ema(values: Any, weight: float) -> Any:
    """TensorBoard's debiased exponential moving average; non-finite values pass through.

    ``s_n = (w * s_{n-1} + (1 - w) * x_n) / (1 - w**k)`` with ``k`` the number of finite values
    seen, so the first point equals the first value instead of being pulled towards zero.
    """
    import numpy as np

    y = np.asarray(values, dtype=float)
    if weight <= 0 or y.size == 0:
        return y.copy()
    weight = min(float(weight), 0.999999)
    finite = np.isfinite(y)
    x = y[finite]
    out = y.copy()
    if x.size:
        acc = _ema_raw(x, weight)
        count = np.arange(1, x.size + 1, dtype=float)
        out[finite] = acc / -np.expm1(count * math.log(weight))
    return out


def _ema_raw(x: Any, w: float) -> Any:
    """acc_n = w*acc_{n-1} + (1-w)*x_n from acc_0 = 0, vectorised in blocks."""
    import numpy as np

    # Inside a block, acc_n = w^n * (carry + (1-w) * sum_k w^-k x_k); the block length keeps
    # w^-k far from overflow, and a small w needs no memory beyond a few points anyway.
    block = max(1, min(x.size, int(300 / -math.log(w))))
    out = np.empty_like(x)
    carry = 0.0
    for start in range(0, x.size, block):
        chunk = x[start:start + block]
        k = np.arange(1, chunk.size + 1, dtype=float)
        powers = np.exp(k * math.log(w))
        acc = powers * (carry + (1 - w) * np.cumsum(chunk / powers))
        out[start:start + block] = acc
        carry = acc[-1]
    return out


def downsample_indices(values: Any, max_points: int) -> Any:
    """Indices to keep: per bucket its min and max (in order), plus the first and last point."""
    import numpy as np

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


X_MODES = ("step", "relative", "wall")


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


def prepare_series(columns: tuple[list[int], list[float], list[float]], *, smoothing: float = 0.0,
                   x_mode: str = "step", max_points: int = 2000,
                   start_time: float | None = None) -> Series:
    """Turn ``(iterations, values, wall_times)`` into a downsampled :class:`Series`.

    Smoothing runs on the full series first, then raw and smoothed lines are each downsampled
    with min/max buckets, so spikes and the last value always survive.

    Args:
        columns: Iterations, values and wall times (seconds since the epoch), same length.
        smoothing: EMA weight in [0, 1); 0 plots the raw values only.
        x_mode: ``"step"`` (iteration), ``"relative"`` (seconds since the run started) or
            ``"wall"`` (epoch milliseconds, for a date axis).
        max_points: Upper bound on points per line sent to the browser.
        start_time: Origin of relative time (default: the first wall time).
    """
    import numpy as np

    if x_mode not in X_MODES:
        raise ViewerError(f"x axis {x_mode!r}: choose one of {', '.join(X_MODES)}")
    its = np.asarray(columns[0], dtype=np.int64)
    y = np.asarray(columns[1], dtype=float)
    t = np.asarray(columns[2], dtype=float)
    n = min(its.size, y.size, t.size)
    its, y, t = its[:n], y[:n], t[:n]
    if x_mode == "step":
        x = its.astype(float)
    elif x_mode == "relative":
        origin = start_time if start_time is not None else (t[0] if n else 0.0)
        x = t - origin
    else:
        x = t * 1000.0
    smooth = ema(y, smoothing) if smoothing > 0 else y
    keep = downsample_indices(y, max_points)
    keep_s = downsample_indices(smooth, max_points) if smoothing > 0 else keep
    return Series(x=x[keep], y=_finite(y[keep]), x_smooth=x[keep_s],
                  y_smooth=_finite(smooth[keep_s]), iterations=its[keep], n_points=n)


def _finite(a: Any) -> Any:
    import numpy as np

    # Arrays travel to the browser as binary buffers; NaN there makes Plotly draw a gap.
    return np.where(np.isfinite(a), a, np.nan)


def group_tags(tags: list[str] | set[str]) -> dict[str, list[str]]:
    """Tags grouped by the prefix before their first "/" (no prefix: group "")."""
    groups: dict[str, list[str]] = {}
    for tag in sorted(tags):
        groups.setdefault(tag.split("/", 1)[0] if "/" in tag else "", []).append(tag)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] != "", kv[0])))


def value_at(pairs: list[tuple[int, Any]], iteration: int) -> tuple[int, Any] | None:
    """The last ``(it, value)`` logged at or before ``iteration`` (None if none)."""
    best = None
    for it, value in pairs:
        if it <= iteration and (best is None or it >= best[0]):
            best = (it, value)
    return best
