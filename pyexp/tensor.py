"""Tensor: an n-d grid of arbitrary objects (configs, results) with named axes.

A plain int is a flat row-major position (like ``len()`` and iteration); tuples,
slices and Ellipsis index per axis as in numpy; a ``str`` is a glob on each
element's name and a ``dict`` is an AND of constraints on dotted paths.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import _tensor_lookup as _lookup
from .errors import ConfigError


class Tensor:
    """A row-major n-d container of arbitrary elements with named axes.

    Iterating a Tensor yields its *elements* in row-major order (not sub-tensors),
    and ``len()`` is the number of elements.

    Args:
        data: The elements, flat and row-major.
        shape: The grid shape; defaults to ``(len(data),)``.
        axes: One name per axis; defaults to ``("axis0", "axis1", ...)``.
        axis_values: Optional ``{axis name: [one dict per index]}``; for a sweep axis
            each dict is the variation that produced that index (e.g.
            ``{"name": "lr0.1", "learning_rate": 0.1}``). :meth:`sel` uses it, and
            indexing keeps it in step with the data. Must be JSON-friendly if it is
            to be stored in ``runs.json``.

    Raises:
        ConfigError: The shape does not fit the data or the axes do not fit the shape.
    """

    __slots__ = ("_data", "_shape", "_axes", "_axis_values")

    def __init__(
        self,
        data: Iterable[Any],
        shape: Iterable[int] | None = None,
        axes: Iterable[str] | None = None,
        *,
        axis_values: Mapping[str, list[Any]] | None = None,
    ) -> None:
        items = list(data)
        dims = (len(items),) if shape is None else tuple(int(s) for s in shape)
        if any(s < 0 for s in dims) or math.prod(dims) != len(items):
            raise ConfigError(f"a Tensor of shape {dims} needs {math.prod(dims)} elements, got {len(items)}")
        names = tuple(f"axis{i}" for i in range(len(dims))) if axes is None else tuple(str(a) for a in axes)
        if len(names) != len(dims):
            raise ConfigError(f"a Tensor of shape {dims} needs {len(dims)} axis names, got {names}")
        values: dict[str, list[Any]] = {}
        for axis, entries in (axis_values or {}).items():
            if axis in names:
                entries = list(entries)
                if len(entries) != dims[names.index(axis)]:
                    raise ConfigError(
                        f"axis_values[{axis!r}] has {len(entries)} entries but axis {axis!r} "
                        f"has size {dims[names.index(axis)]}"
                    )
                values[axis] = entries
        self._data = items
        self._shape = dims
        self._axes = names
        self._axis_values = values

    # -- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each axis."""
        return self._shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self._shape)

    @property
    def size(self) -> int:
        """The number of elements."""
        return len(self._data)

    @property
    def axes(self) -> tuple[str, ...]:
        """The axis names."""
        return self._axes

    @property
    def axis_values(self) -> dict[str, list[Any]]:
        """``{axis: [variation dict per index]}`` for the axes that have them (a copy)."""
        return {k: list(v) for k, v in self._axis_values.items()}

    @property
    def flat(self) -> list[Any]:
        """The elements as a flat row-major list (a copy)."""
        return list(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def tolist(self) -> Any:
        """The elements as nested lists following the shape."""
        def build(offset: int, dim: int) -> Any:
            if dim == len(self._shape):
                return self._data[offset]
            step = math.prod(self._shape[dim + 1:])
            return [build(offset + i * step, dim + 1) for i in range(self._shape[dim])]

        return build(0, 0)

    def map(self, fn: Callable[[Any], Any]) -> Tensor:
        """Apply ``fn`` to every element; the result keeps the shape, axes and axis values."""
        return Tensor([fn(x) for x in self._data], self._shape, self._axes, axis_values=self._axis_values)

    def __repr__(self) -> str:
        names = [_lookup.name_of(x) for x in self._data[:6]]
        shown = ", ".join(repr(n) if n is not _lookup.MISSING else type(x).__name__ for n, x in zip(names, self._data))
        more = ", ..." if len(self._data) > 6 else ""
        return f"Tensor(shape={self._shape}, axes={self._axes}, [{shown}{more}])"

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self._data, "shape": self._shape, "axes": self._axes, "axis_values": self._axis_values}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._data = state["data"]
        self._shape = tuple(state["shape"])
        self._axes = tuple(state["axes"])
        self._axis_values = dict(state.get("axis_values") or {})

    # -- indexing ------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        """Index by flat position, per axis, by name glob or by dict query.

        * ``t[i]`` (a plain int): the i-th element in row-major order, whatever the
          shape, like ``len()`` and iteration; negative ints count from the end.
        * ``t[0, 1, 0]``, ``t[:, 0]``, ``t[1:]``, ``t[..., 0]``: per axis, as in numpy
          (an int inside a tuple drops its axis, a slice keeps it).
        * ``t["exp_lr0.1_*"]``: elements whose name matches the glob.
        * ``t[{"config.mlp.width": 128}]``: elements satisfying every constraint;
          a dict value is a recursive subset (``{"mlp": {"width": 128}}`` is the same
          query), a callable value is a predicate.

        A glob or dict query that matches one element returns that element; several
        return a Tensor, shaped as the sub-grid they form (else 1-D, axis ``"match"``).

        Raises:
            IndexError: An int is out of range, or too many indices were given.
            NoMatchError: A glob or dict query matched nothing (also an IndexError);
                the message names the query and the closest names or keys.
            TypeError: The key is of another type.
        """
        if isinstance(key, str):
            mask = _lookup.glob_mask(self._data, key)
            if not any(mask):
                raise _lookup.no_name_match(self._data, key)
            return self._select(mask)
        if isinstance(key, Mapping):
            mask = _lookup.dict_mask(self._data, key)
            if not any(mask) and self._data:
                raise _lookup.no_dict_match(self._data, key)
            return self._select(mask)
        if not isinstance(key, (tuple, slice, bool)) and key is not Ellipsis and hasattr(key, "__index__"):
            return self._data[self._flat_index(key.__index__())]
        return self._index(key if isinstance(key, tuple) else (key,))

    def _flat_index(self, i: int) -> int:
        size = len(self._data)
        if not -size <= i < size:
            raise IndexError(f"index {i} is out of range for a Tensor of {size} elements (shape {self._shape}); "
                             f"a plain int counts elements in row-major order, use t[i, j, ...] per axis")
        return i % size

    def _index(self, key: tuple[Any, ...]) -> Any:
        ellipses = sum(1 for k in key if k is Ellipsis)
        if ellipses > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        explicit = len(key) - ellipses
        if explicit > self.ndim:
            raise IndexError(f"too many indices for a Tensor of shape {self._shape}: {len(key)} given")
        if ellipses:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - explicit) + key[at + 1:]
        else:
            key = key + (slice(None),) * (self.ndim - len(key))
        picks: list[list[int]] = []
        kept: list[int] = []
        for dim, (k, size) in enumerate(zip(key, self._shape)):
            if isinstance(k, slice):
                picks.append(list(range(size))[k])
                kept.append(dim)
            elif isinstance(k, bool) or not hasattr(k, "__index__"):
                raise TypeError(
                    f"Tensor indices must be ints, slices, '...', a glob str or a dict of "
                    f"constraints, got {type(k).__name__}: {k!r}"
                )
            else:
                i = k.__index__()
                if not -size <= i < size:
                    raise IndexError(f"index {i} is out of bounds for axis {dim} ({self._axes[dim]!r}) "
                                     f"of size {size}")
                picks.append([i % size])
        return self._gather(picks, kept)

    def _gather(self, picks: list[list[int]], kept: list[int]) -> Any:
        """Elements at the outer product of ``picks``; axes not in ``kept`` are dropped."""
        strides = [math.prod(self._shape[d + 1:]) for d in range(self.ndim)]
        offsets = [[i * s for i in p] for p, s in zip(picks, strides)]
        data = [self._data[sum(c)] for c in itertools.product(*offsets)]
        if not kept:
            return data[0]
        values = {}
        for d in kept:
            axis = self._axes[d]
            if axis in self._axis_values:
                values[axis] = [self._axis_values[axis][i] for i in picks[d]]
        return Tensor(data, [len(picks[d]) for d in kept], [self._axes[d] for d in kept], axis_values=values)

    def _select(self, mask: list[bool]) -> Any:
        """One match: that element. Several: a sub-grid when they form one, else 1-D."""
        hits = [i for i, keep in enumerate(mask) if keep]
        if len(hits) == 1:
            return self._data[hits[0]]
        if len(hits) == len(self._data) and self.ndim:
            return Tensor(self._data, self._shape, self._axes, axis_values=self._axis_values)
        if hits and self.ndim:
            per_axis: list[set[int]] = [set() for _ in self._shape]
            for flat in hits:
                for d, i in enumerate(_unravel(flat, self._shape)):
                    per_axis[d].add(i)
            if math.prod(len(s) for s in per_axis) == len(hits):
                return self._gather([sorted(s) for s in per_axis], list(range(self.ndim)))
        return Tensor([self._data[i] for i in hits], axes=("match",))

    def sel(self, **selection: Any) -> Any:
        """Select along named axes by the value that produced each index.

        ``results.sel(learning_rate=0.1)`` picks the index of axis ``learning_rate``
        whose sweep variation set ``learning_rate`` to 0.1. Without stored axis values
        an index matches when every element in its slice has that value (looked up
        on the element, or on its ``config``). Scalars that leave exactly one index of
        an axis drop that axis (like an int index); several matches, or a list of
        values, keep it.

        Args:
            **selection: ``axis name (or one key of a paired "a+b" axis, or a key the
                axis's stored variations set) = value``. A dotted axis name like
                ``"mlp.width"`` can be passed via ``**{...}``.

        Returns:
            A Tensor, or a single element when every axis was dropped.

        Raises:
            ConfigError: Unknown axis, or no index along it has that value.
        """
        picks: list[list[int]] = [list(range(s)) for s in self._shape]
        listed: set[int] = set()  # axes selected by a list of values: kept even with one index
        asked: dict[int, list[str]] = {}
        for key, wanted in selection.items():
            dim = self._axis_for(key)
            many = isinstance(wanted, list)
            options = wanted if many else [wanted]
            found: list[int] = []
            for option in options:
                found += [i for i in range(self._shape[dim]) if i not in found and self._axis_has(dim, i, key, option)]
            if not found:
                raise ConfigError(
                    f"no index of axis {self._axes[dim]!r} has {key}={wanted!r}; "
                    f"its values are {self._describe_axis(dim, key)}"
                )
            picks[dim] = [i for i in picks[dim] if i in found] if not many else [i for i in found if i in picks[dim]]
            asked.setdefault(dim, []).append(f"{key}={wanted!r}")
            if not picks[dim]:
                raise ConfigError(f"no index of axis {self._axes[dim]!r} has {' and '.join(asked[dim])} together")
            if many:
                listed.add(dim)
        drop = {d for d in asked if d not in listed and len(picks[d]) == 1}
        return self._gather(picks, [d for d in range(self.ndim) if d not in drop])

    def _axis_for(self, key: str) -> int:
        if key in self._axes:
            return self._axes.index(key)
        for dim, axis in enumerate(self._axes):
            if key in axis.split("+"):
                return dim
        # An axis whose variations set the key without being named after it, e.g. the
        # "job" axis of a Hydra launcher run, whose entries hold each job's override values.
        for dim, axis in enumerate(self._axes):
            if any(isinstance(v, Mapping) and (key in v or "**" + key in v) for v in self._axis_values.get(axis, ())):
                return dim
        raise ConfigError(f"the Tensor has no axis {key!r}; its axes are {list(self._axes)}")

    def _axis_has(self, dim: int, index: int, key: str, value: Any) -> bool:
        axis = self._axes[dim]
        if axis in self._axis_values:
            variation = self._axis_values[axis][index]
            if isinstance(variation, Mapping):
                for candidate in (key, "**" + key):
                    if candidate in variation:
                        return _lookup.equal(variation[candidate], value)
                if key == axis and variation.get("name") == value:
                    return True
            return False
        stride = math.prod(self._shape[dim + 1:])
        block = self._shape[dim] * stride
        path = key.split(".")
        for start in range(index * stride, len(self._data), block):
            for x in self._data[start:start + stride]:
                got = _lookup.resolve_element(x, path)
                if got is _lookup.MISSING or not _lookup.equal(got, value):
                    return False
        return True

    def _describe_axis(self, dim: int, key: str) -> str:
        axis = self._axes[dim]
        if axis in self._axis_values:
            out = []
            for v in self._axis_values[axis]:
                if isinstance(v, Mapping):
                    out.append(v.get(key, v.get("**" + key, v.get("name"))))
                else:
                    out.append(v)
            return repr(out)
        return f"(no stored values; {self._shape[dim]} indices)"

    # -- export --------------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """A pandas DataFrame with one row per element.

        For results: ``run``, ``name``, ``status``, ``error``, ``stale``, ``reused``, ``code``,
        the config as ``config.<dotted key>`` columns, scalar results as ``result`` /
        ``result.<key>``, the last value of each logged scalar as ``log.<tag>``, and ``out``
        (see :mod:`pyexp.table`). Results are not unpickled: their scalars come from the
        summary stored when each config finished. For plain configs: ``name`` and the
        flattened config keys (``mlp.width``).

        Raises:
            MissingExtraError: pandas is not installed (``pip install "pyexp[export]"``).
        """
        from . import table

        return table.to_frame(table.rows_of(self._data))

    def to_parquet(self, path: str | Path) -> None:
        """Write :meth:`to_pandas`'s table to a Parquet file at ``path`` (needs pyarrow)."""
        from . import table

        table.write(table.rows_of(self._data), path, "parquet")


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return out[::-1]
