"""LogReader: discover runs and load what a Logger wrote, in either format, incrementally."""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import LogError, TagNotFoundError
from ._constants import EVENTS_FILE, MARKER


class _Index:
    """Everything read so far; sources append to it."""

    def __init__(self) -> None:
        self.scalars: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self.text: dict[str, tuple[list[int], list[str], list[float]]] = {}
        self.figures: dict[str, dict[int, tuple[Any, ...]]] = {}
        self.checkpoints: dict[str, dict[int, tuple[Any, ...]]] = {}
        self.iterations: set[int] = set()
        self.metadata: list[dict[str, Any]] = []

    def add_text(self, tag: str, it: int, text: str, wall_time: float) -> None:
        cols = self.text.get(tag)
        if cols is None:
            cols = self.text[tag] = ([], [], [])
        cols[0].append(it)
        cols[1].append(text)
        cols[2].append(wall_time)


class LogReader:
    """Read a pyexp log folder (a run) or discover the runs below a folder.

    The format (events.pb or JSONL) is detected from the files. Data is read on first use;
    ``refresh()`` reads only what was appended since, so a live run can be followed.

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
        self._index: _Index | None = None
        self._sources: list[Any] = []
        self._runs: list[str] | None = None

    # ----------------------------------------------------------------- discovery
    @property
    def path(self) -> Path:
        """The folder this reader reads."""
        return self._path

    @property
    def is_run(self) -> bool:
        """Whether this folder is a pyexp run (has a marker or log files)."""
        return _is_run(self._path)

    @property
    def runs(self) -> list[str]:
        """Names (relative paths, "/"-separated) of the runs found below this folder, sorted."""
        if self._runs is None:
            self._runs = _discover_runs(self._path)
        return list(self._runs)

    def get_run(self, name: str) -> "LogReader":
        """A reader for the run ``name`` (as listed by :attr:`runs`) below this folder."""
        path = self._path / name
        if not _is_run(path):
            raise LogError(f"{path} is not a pyexp run (no {MARKER} marker); "
                           f"runs here: {self.runs[:10]}")
        return LogReader(path)

    def refresh(self) -> bool:
        """Read what was appended since the last read; return whether anything new arrived.

        On a folder above runs, look for runs again; return whether the list changed.
        """
        if not self.is_run:
            old = self._runs or []
            self._runs = _discover_runs(self._path)
            return old != self._runs
        if self._index is None:
            self._index = _Index()
        return self._refresh_sources(self._index)

    def _load(self) -> _Index:
        if self._index is None:
            self._index = _Index()
            self._refresh_sources(self._index)
        return self._index

    def _refresh_sources(self, index: _Index) -> bool:
        if not self._sources:
            from ._pbread import ProtobufSource
            from .jsonl import JsonlSource

            self._sources = [ProtobufSource(self._path / EVENTS_FILE), JsonlSource(self._path)]
        from ._pbread import LogRewritten

        new = False
        try:
            with _gc_paused():
                for source in self._sources:
                    new = source.refresh(index) or new
        except LogRewritten:
            # Started over (e.g. a failed config re-run from scratch): read it anew.
            self._index = _Index()
            self._sources = []
            self._refresh_sources(self._index)
            return True
        return new

    # ----------------------------------------------------------------- tags
    @property
    def iterations(self) -> list[int]:
        """Sorted iteration numbers at which anything was logged."""
        return sorted(self._load().iterations)

    @property
    def scalar_tags(self) -> set[str]:
        """Tags logged with ``add_scalar``."""
        return set(self._load().scalars)

    @property
    def text_tags(self) -> set[str]:
        """Tags logged with ``add_text``."""
        return set(self._load().text)

    @property
    def figure_tags(self) -> set[str]:
        """Tags logged with ``add_figure``."""
        return set(self._load().figures)

    @property
    def checkpoint_tags(self) -> set[str]:
        """Tags logged with ``add_checkpoint``."""
        return set(self._load().checkpoints)

    @property
    def start_time(self) -> float | None:
        """Wall time the first Logger opened this run (or of the earliest value), if known."""
        index = self._load()
        if index.metadata:
            return index.metadata[0]["wall_time"]
        times = [cols[2][0] for cols in (*index.scalars.values(), *index.text.values()) if cols[2]]
        return min(times) if times else None

    def __contains__(self, tag: object) -> bool:
        index = self._load()
        return any(tag in kind for kind in (index.scalars, index.text, index.figures,
                                             index.checkpoints))

    def __getitem__(self, tag: str) -> tuple[int, Any]:
        """The last ``(iteration, value)`` logged under ``tag``, whatever its kind."""
        index = self._load()
        for kind in (index.scalars, index.text):
            cols = kind.get(tag)
            if cols is not None and cols[0]:
                return cols[0][-1], cols[1][-1]
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
                the epoch when the value was logged).
        """
        cols = self._load().scalars.get(tag)
        if cols is None:
            raise self._missing(tag, "scalar")
        return list(zip(*cols)) if with_time else list(zip(cols[0], cols[1]))

    def scalar_columns(self, tag: str) -> tuple[list[int], list[float], list[float]]:
        """A scalar tag as three lists ``(iterations, values, wall_times)`` (for plotting)."""
        cols = self._load().scalars.get(tag)
        if cols is None:
            raise self._missing(tag, "scalar")
        return list(cols[0]), list(cols[1]), list(cols[2])

    def load_text(self, tag: str, with_time: bool = False) -> list[tuple[Any, ...]]:
        """All values of a text tag as ``(iteration, text)`` (or with wall time) tuples."""
        cols = self._load().text.get(tag)
        if cols is None:
            raise self._missing(tag, "text")
        return list(zip(*cols)) if with_time else list(zip(cols[0], cols[1]))

    # ----------------------------------------------------------------- figures
    def figure_iterations(self, tag: str) -> list[int]:
        """Sorted iterations at which figure ``tag`` was logged."""
        refs = self._load().figures.get(tag)
        if refs is None:
            raise self._missing(tag, "figure")
        return sorted(refs)

    def _figure_ref(self, tag: str, iteration: int | None) -> tuple[int, tuple[Any, ...]]:
        refs = self._load().figures.get(tag)
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
        from .jsonl import load_meta

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
        from .jsonl import load_meta

        return bool(load_meta(self._inside_run(ref[1])).get("interactive", True))

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_iterations(self, tag: str) -> list[int]:
        """Sorted iterations at which checkpoint ``tag`` was logged."""
        refs = self._load().checkpoints.get(tag)
        if refs is None:
            raise self._missing(tag, "checkpoint")
        return sorted(refs)

    def load_checkpoint(self, tag: str, iteration: int | None = None) -> Any:
        """Unpickle the checkpoint ``tag`` logged at ``iteration`` (default: the last one)."""
        refs = self._load().checkpoints.get(tag)
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


def _unpickle(data: bytes, what: str) -> Any:
    import pickle

    try:
        return pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - e.g. the class was renamed since
        raise LogError(f"cannot unpickle {what}: {type(exc).__name__}: {exc}") from exc


def _is_run(path: Path) -> bool:
    return ((path / MARKER).is_file() or (path / EVENTS_FILE).is_file()
            or (path / "scalars.jsonl").is_file())


def _discover_runs(root: Path) -> list[str]:
    """Runs below ``root`` (not ``root`` itself); folders inside a run are not searched."""
    found: list[str] = []
    root_is_run = _is_run(root)
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and _is_run(here):
            found.append(here.relative_to(root).as_posix())
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (root_is_run and here == root and d.lstrip("-").isdigit()))
    return sorted(found)

