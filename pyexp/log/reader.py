"""LogReader: discover runs and load what a Logger wrote, in any format, incrementally.

numpy, protobuf and the format readers are imported on first read, not with this module: the
Logger shares the package and must stay cheap to import.
"""

from __future__ import annotations

import gc
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import LogError, TagNotFoundError
from ._constants import EVENTS_FILE, MARKER, SCALARS_FILE, TEXT_FILE
from ._runs import discover_runs, is_run

SCALARS, TEXT, FILES = "scalars", "text", "files"  # kinds of data, read on first use
_KINDS = frozenset((SCALARS, TEXT, FILES))

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class LogReader:
    """Read a pyexp log folder (a run) or discover the runs below a folder.

    The format (events.pb, JSONL, or the earlier pyexp's per-iteration ``scalars.json``
    layout) is detected from the files. Data is read on first use; ``refresh()`` reads only
    what was appended since, so a live run can be followed. Scalars are kept as numpy arrays
    (see :meth:`scalars`). One reader may be shared between threads.

    Args:
        log_dir: A run folder (holds a ``.pyexp`` marker) or any folder above runs.

    Raises:
        LogError: ``log_dir`` does not exist.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self._path = Path(log_dir)
        if not self._path.is_dir():
            raise LogError(f"LogReader({str(log_dir)!r}): no such folder; pass a run folder "
                           "(it holds a .pyexp marker) or a folder above runs")
        self._index: Any = None
        self._sources: list[Any] = []
        self._runs: list[str] | None = None
        self._kinds: set[str] = set()  # the kinds of data read so far (see _load)
        # Readers are shared between threads (the viewer's sessions): reading and the joins
        # of cached arrays happen under this lock.
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- discovery
    @property
    def path(self) -> Path:
        """The folder this reader reads."""
        return self._path

    @property
    def is_run(self) -> bool:
        """Whether this folder is a pyexp run (has a marker or log files)."""
        return is_run(self._path)

    @property
    def runs(self) -> list[str]:
        """Names (relative paths, "/"-separated) of the runs found below this folder, sorted."""
        if self._runs is None:
            self._runs = discover_runs(self._path)
        return list(self._runs)

    def get_run(self, name: str) -> "LogReader":
        """A reader for the run ``name`` (as listed by :attr:`runs`) below this folder."""
        path = self._path / name
        if not is_run(path):
            raise LogError(f"{path} is not a pyexp run (no {MARKER} marker); "
                           f"runs here: {self.runs[:10]}")
        return LogReader(path)

    def refresh(self) -> bool:
        """Read what was appended since the last read; return whether anything new arrived.

        On a folder above runs, look for runs again; return whether the list changed.
        """
        if not self.is_run:
            old = self._runs or []
            self._runs = discover_runs(self._path)
            return old != self._runs
        with self._lock:
            if not self._kinds:
                self._load()
                return True
            return self._refresh_sources(self._index, self._kinds)

    def _load(self, *kinds: str) -> Any:
        """The index, with at least ``kinds`` of data read (default: all of them).

        Each kind is read on first use only, where the format keeps it apart: JSONL scalars,
        JSONL text and the ``<iteration>/`` pickle folders are separate files (events.pb is
        one file and is read whole).
        """
        with self._lock:
            if self._index is None:
                from ._index import Index

                self._index = Index()
            wanted = set(kinds or _KINDS) - self._kinds
            if wanted:
                self._kinds |= wanted
                self._refresh_sources(self._index, wanted)
            return self._index

    def _refresh_sources(self, index: Any, kinds: set[str]) -> bool:
        if not self._sources:
            self._sources = _open_sources(self._path)
        from ._pbread import LogRewritten

        new = False
        try:
            with _gc_paused():
                for source in self._sources:
                    new = source.refresh(index, kinds) or new
        except LogRewritten:
            # Started over (e.g. a failed config re-run from scratch): read it anew.
            loaded, self._kinds = self._kinds, set()
            self._index = None
            self._sources = []
            self._load(*loaded)
            return True
        if new:
            index.changed()
        return new

    # ----------------------------------------------------------------- tags
    @property
    def iterations(self) -> list[int]:
        """Sorted iteration numbers at which anything was logged."""
        return list(self._load().iterations())

    @property
    def scalar_tags(self) -> set[str]:
        """Tags logged with ``add_scalar``."""
        return set(self._load(SCALARS).scalars)

    @property
    def text_tags(self) -> set[str]:
        """Tags logged with ``add_text``."""
        return set(self._load(TEXT).text)

    @property
    def figure_tags(self) -> set[str]:
        """Tags logged with ``add_figure``."""
        return set(self._load(FILES).figures)

    @property
    def checkpoint_tags(self) -> set[str]:
        """Tags logged with ``add_checkpoint``."""
        return set(self._load(FILES).checkpoints)

    @property
    def start_time(self) -> float | None:
        """Wall time the first Logger opened this run (or of the earliest value), if known."""
        index = self._load(SCALARS, TEXT)
        if index.metadata:
            return index.metadata[0]["wall_time"]
        times = [series.first_wall_time() for series in index.scalars.values()]
        times += [cols[2][0] for cols in index.text.values() if cols[2]]
        times = [t for t in times if t is not None and t == t]  # no NaN: unknown stamps
        return min(times) if times else None

    def __contains__(self, tag: object) -> bool:
        index = self._load()
        return any(tag in kind for kind in (index.scalars, index.text, index.figures,
                                             index.checkpoints))

    def __getitem__(self, tag: str) -> tuple[int, Any]:
        """The last ``(iteration, value)`` logged under ``tag``, whatever its kind."""
        series = self._load(SCALARS).scalars.get(tag)
        if series is not None and len(series):
            return series.last()
        cols = self._load(TEXT).text.get(tag)
        if cols is not None and cols[0]:
            return cols[0][-1], cols[1][-1]
        index = self._load(FILES)
        if tag in index.figures:
            it = max(index.figures[tag])
            return it, self.load_figure(tag, it)
        if tag in index.checkpoints:
            it = max(index.checkpoints[tag])
            return it, self.load_checkpoint(tag, it)
        raise self._missing(tag, "")

    def _missing(self, tag: str, kind: str) -> TagNotFoundError:
        index = self._load()
        known = sorted({*index.scalars, *index.text, *index.figures, *index.checkpoints})
        what = f"{kind} tag" if kind else "tag"
        return TagNotFoundError(f"{self._path}: no {what} {tag!r} in the log; "
                                f"logged tags: {known[:20]}")

    # ----------------------------------------------------------------- scalars and text
    def load_scalars(self, tag: str, with_time: bool = False) -> list[tuple[Any, ...]]:
        """All values of a scalar tag as ``(iteration, value)`` pairs in logging order.

        Args:
            tag: The scalar tag.
            with_time: Return ``(iteration, value, wall_time)`` triples instead (seconds since
                the epoch when the value was logged; NaN where the log has no stamp).

        For plotting or arithmetic use :meth:`scalars`: the same data as numpy arrays, without
        a Python object per point.
        """
        return list(zip(*(column.tolist() for column in self._columns(tag, with_time))))

    def scalars(self, tag: str) -> tuple["NDArray[np.int64]", "NDArray[np.float64]"]:
        """A scalar tag as two aligned numpy arrays ``(steps, values)``, in logging order.

        ``steps`` is int64 (the iteration of each value), ``values`` float64: 16 bytes a
        point. The arrays are read-only and shared with the reader's cache (no copy); after
        ``refresh()`` brings new values, the next call returns new, longer arrays.

        Raises:
            TagNotFoundError: No scalar was logged under ``tag`` (it is also a ``KeyError``).
        """
        return self._columns(tag, False)  # type: ignore[return-value]

    def scalar_wall_times(self, tag: str) -> "NDArray[np.float64]":
        """Seconds since the epoch at which each value of :meth:`scalars` was logged (float64).

        NaN where the log holds no stamp (a JSONL line without ``ts``). Not cached: the tags
        logged together share their wall times in memory, and this joins them on each call.
        """
        return self._columns(tag, True)[2]

    def scalar_columns(self, tag: str) -> tuple["NDArray[np.int64]", "NDArray[np.float64]",
                                                "NDArray[np.float64]"]:
        """``(steps, values, wall_times)`` of a scalar tag as aligned read-only numpy arrays."""
        return self._columns(tag, True)  # type: ignore[return-value]

    def _columns(self, tag: str, with_time: bool) -> tuple[Any, ...]:
        with self._lock:  # joining a series' chunks must not race a refresh adding one
            series = self._load(SCALARS).scalars.get(tag)
            if series is None:
                raise self._missing(tag, "scalar")
            steps, values = series.arrays()
            return (steps, values, series.wall_times()) if with_time else (steps, values)

    def load_text(self, tag: str, with_time: bool = False) -> list[tuple[Any, ...]]:
        """All values of a text tag as ``(iteration, text)`` (or with wall time) tuples."""
        with self._lock:
            cols = self._load(TEXT).text.get(tag)
            if cols is None:
                raise self._missing(tag, "text")
            return list(zip(*cols)) if with_time else list(zip(cols[0], cols[1]))

    # ----------------------------------------------------------------- figures
    def figure_iterations(self, tag: str) -> list[int]:
        """Sorted iterations at which figure ``tag`` was logged."""
        refs = self._load(FILES).figures.get(tag)
        if refs is None:
            raise self._missing(tag, "figure")
        return sorted(refs)

    def _figure_ref(self, tag: str, iteration: int | None) -> tuple[int, tuple[Any, ...]]:
        refs = self._load(FILES).figures.get(tag)
        if refs is None:
            raise self._missing(tag, "figure")
        it = max(refs) if iteration is None else iteration
        if it not in refs:
            raise TagNotFoundError(f"{self._path}: figure {tag!r} was not logged at iteration "
                                   f"{it}; it was at {sorted(refs)[:20]}")
        return it, refs[it]

    def _inside_run(self, path: Path) -> Path:
        """``path`` if it really lies in this run's folder: a JSONL pickle symlinked elsewhere is refused.

        The viewer unpickles what it reads, so a log must not lead it to files outside its folder.
        """
        resolved = Path(path).resolve()
        try:
            resolved.relative_to(Path(self._path).resolve())
        except ValueError:
            raise LogError(f"{path} points outside the run folder {self._path}; refusing to read it") from None
        return resolved

    def _figure_record(self, tag: str, iteration: int | None) -> tuple[bytes, bytes, bool]:
        """(pickle, png, interactive) of a figure."""
        _, ref = self._figure_ref(tag, iteration)
        if ref[0] == "pb":
            figure = self._sources[0].load(ref[1]).figure
            return figure.pickle, figure.png, figure.interactive
        from ._jsonlread import load_meta

        cpkl = self._inside_run(ref[1])
        meta = load_meta(cpkl)
        import base64

        png = base64.b64decode(meta.get("png", ""))
        return cpkl.read_bytes(), png, bool(meta.get("interactive", True))

    def load_figure(self, tag: str, iteration: int | None = None) -> Any:
        """Unpickle the figure ``tag`` logged at ``iteration`` (default: the last one)."""
        return _unpickle(self._figure_record(tag, iteration)[0], f"figure {tag!r}")

    def load_figure_png(self, tag: str, iteration: int | None = None) -> bytes | None:
        """The PNG rendered when the figure was logged (no unpickling), or None if none was."""
        return self._figure_record(tag, iteration)[1] or None

    def figure_interactive(self, tag: str, iteration: int | None = None) -> bool:
        """Whether the figure was logged with ``interactive=True``."""
        it, ref = self._figure_ref(tag, iteration)
        if ref[0] == "pb":
            return bool(ref[2])
        from ._jsonlread import load_meta

        return bool(load_meta(self._inside_run(ref[1])).get("interactive", True))

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_iterations(self, tag: str) -> list[int]:
        """Sorted iterations at which checkpoint ``tag`` was logged."""
        refs = self._load(FILES).checkpoints.get(tag)
        if refs is None:
            raise self._missing(tag, "checkpoint")
        return sorted(refs)

    def load_checkpoint(self, tag: str, iteration: int | None = None) -> Any:
        """Unpickle the checkpoint ``tag`` logged at ``iteration`` (default: the last one)."""
        refs = self._load(FILES).checkpoints.get(tag)
        if refs is None:
            raise self._missing(tag, "checkpoint")
        it = max(refs) if iteration is None else iteration
        if it not in refs:
            raise TagNotFoundError(f"{self._path}: checkpoint {tag!r} was not logged at "
                                   f"iteration {it}; it was at {sorted(refs)[:20]}")
        ref = refs[it]
        data = self._sources[0].load(ref[1]).checkpoint.pickle if ref[0] == "pb" \
            else self._inside_run(ref[1]).read_bytes()
        return _unpickle(data, f"checkpoint {tag!r}")

    def load_checkpoints(self, tag: str) -> list[tuple[int, Any]]:
        """All checkpoints of ``tag`` as ``(iteration, object)`` pairs, by iteration."""
        return [(it, self.load_checkpoint(tag, it)) for it in self.checkpoint_iterations(tag)]

    def __repr__(self) -> str:
        kind = "run" if self.is_run else f"{len(self.runs)} runs"
        return f"LogReader({str(self._path)!r}, {kind})"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of small tuples would trigger many useless collections: pause the collector."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _open_sources(path: Path) -> list[Any]:
    """The readers of a run's files: events.pb, JSONL, or the earlier per-iteration layout.

    Pickles in ``<iteration>/`` folders (JSONL and the earlier layout) are found by the JSONL
    source; the earlier layout is recognised by its ``<iteration>/scalars.json`` files when the
    run has neither events.pb nor JSONL files.
    """
    from ._jsonlread import JsonlSource
    from ._pbread import ProtobufSource

    sources: list[Any] = [ProtobufSource(path / EVENTS_FILE), JsonlSource(path)]
    if not any((path / name).exists() for name in (EVENTS_FILE, SCALARS_FILE, TEXT_FILE)):
        from ._legacyread import LegacySource, is_legacy

        if is_legacy(path):
            sources.append(LegacySource(path))
    return sources


def _unpickle(data: bytes, what: str) -> Any:
    import pickle

    try:
        return pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - e.g. the class was renamed since
        raise LogError(f"cannot unpickle {what}: {type(exc).__name__}: {exc}") from exc
