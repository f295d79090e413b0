"""Logger: the caller enqueues, a background thread batches and writes.

The caller side of ``add_scalar`` is a closed check, ``float()``, ``time.time()`` and a deque
append: ~0.3 µs. The writer thread wakes every ``_INTERVAL`` seconds (or on ``flush()``), drains
the deque and hands the batch to a sink (events.pb or JSONL files). Scalars and text of one
iteration go into one Event; the last iteration of a batch is held back for one wake-up so a
batch boundary rarely splits an iteration, and is never held longer (live readers stay current).
"""

from __future__ import annotations

import atexit
import io
import operator
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import LogError

MARKER = ".pyexp"
EVENTS_FILE = "events.pb"
FORMAT_VERSION = 1
_INTERVAL = 0.25
_MAX_PENDING = 4_000_000

# Item kinds; a scalar is the plain 4-tuple (it, tag, value, wall_time) to keep enqueue cheap.
TEXT, FIGURE, CHECKPOINT = 1, 2, 3


class Logger:
    """Log scalars, text, figures and checkpoints of one run, asynchronously.

    Args:
        log_dir: Folder of the run; created if needed, marked with a ``.pyexp`` file.
        use_protobuf: Write one ``events.pb`` (TensorBoard-compatible framing and Event
            envelope); False writes ``scalars.jsonl``, ``text.jsonl`` and per-iteration folders.
        tensorboard: Also expose ``events.pb`` under an ``events.out.tfevents.*`` name (a hard
            link) so ``tensorboard --logdir`` shows the scalars and text.

    Protobuf logs store scalars as float32 (TensorBoard's ``simple_value``); JSONL keeps doubles.
    Everything logged is written by ``flush()``, ``close()``, leaving a ``with`` block, or at
    interpreter exit.
    """

    def __init__(self, log_dir: str | os.PathLike[str], use_protobuf: bool = True,
                 tensorboard: bool = False) -> None:
        self.log_dir = Path(log_dir)
        if tensorboard and not use_protobuf:
            raise LogError(f"Logger({str(self.log_dir)!r}): tensorboard=True needs "
                           "use_protobuf=True (TensorBoard cannot read the JSONL format)")
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            _write_marker(self.log_dir, "protobuf" if use_protobuf else "jsonl")
            if use_protobuf:
                self._sink: Any = ProtobufSink(self.log_dir / EVENTS_FILE)
                if tensorboard:
                    link_tensorboard(self.log_dir)
            else:
                from .jsonl import JsonlSink

                self._sink = JsonlSink(self.log_dir)
        except OSError as exc:
            raise LogError(f"cannot create the log in {self.log_dir}: {exc}; "
                           "pass a writable log_dir") from exc
        self.use_protobuf = use_protobuf
        self._it = 0
        self._closed = False
        self._error: BaseException | None = None
        self._queue: deque[tuple[Any, ...]] = deque()
        self._append = self._queue.append
        self._cond = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"pyexp-logger:{self.log_dir.name}",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ----------------------------------------------------------------- caller side
    @property
    def global_it(self) -> int:
        """The iteration the next values are logged at."""
        return self._it

    def set_global_it(self, it: int) -> None:
        """Set the iteration number that the following ``add_*`` calls log at."""
        try:
            self._it = operator.index(it)
        except TypeError:
            raise LogError(f"set_global_it({it!r}): the iteration must be an int") from None
        if len(self._queue) > _MAX_PENDING:
            self._wait_for_writer()

    def _wait_for_writer(self) -> None:
        # Back-pressure at iteration boundaries: a caller logging faster than the disk keeps
        # at most ~_MAX_PENDING items (a few hundred MB) in memory.
        with self._cond:
            self._cond.notify_all()
            while len(self._queue) > _MAX_PENDING // 2 and self._thread.is_alive():
                self._cond.wait(0.5)

    def add_scalar(self, tag: str, value: float) -> None:
        """Log a number (anything ``float()`` accepts) under ``tag`` at the current iteration."""
        if self._closed:
            self._raise_closed("add_scalar", tag)
        if tag.__class__ is not str or not tag:
            raise LogError(f"add_scalar({tag!r}, ...): the tag must be a non-empty str")
        try:
            self._append((self._it, tag, float(value), _now()))
        except (TypeError, ValueError, OverflowError):
            raise LogError(f"add_scalar({tag!r}, {value!r}): the value must be a number") from None

    def add_text(self, tag: str, text: str) -> None:
        """Log a string under ``tag`` at the current iteration."""
        self._check(tag, "add_text")
        if not isinstance(text, str):
            raise LogError(f"add_text({tag!r}, ...): the text must be a str, got "
                           f"{type(text).__name__}")
        self._append((self._it, tag, text, _now(), TEXT))

    def add_figure(self, tag: str, figure: Any, interactive: bool = True) -> None:
        """Log a matplotlib figure: pickled now, plus a PNG so readers need not unpickle it.

        Args:
            tag: Name of the figure series.
            figure: A matplotlib ``Figure`` (any picklable object is stored; only objects with
                ``savefig`` get a PNG).
            interactive: Whether the viewer should show it as an interactive widget
                (True) or as the static PNG (False).
        """
        self._check(tag, "add_figure")
        pickled = _pickle(figure, f"add_figure({tag!r}, ...)")
        png = b""
        if hasattr(figure, "savefig"):
            buf = io.BytesIO()
            try:
                figure.savefig(buf, format="png")
                png = buf.getvalue()
            except Exception as exc:  # noqa: BLE001 - the pickle is still worth keeping
                import warnings

                warnings.warn(f"add_figure({tag!r}): could not render a PNG: {exc}", stacklevel=2)
        self._append((self._it, tag, (pickled, png, bool(interactive)), _now(), FIGURE))

    def add_checkpoint(self, tag: str, obj: Any) -> None:
        """Log any picklable object (pickled now, so later changes to ``obj`` are not seen)."""
        self._check(tag, "add_checkpoint")
        self._append((self._it, tag, _pickle(obj, f"add_checkpoint({tag!r}, ...)"), _now(),
                      CHECKPOINT))

    def flush(self) -> None:
        """Block until everything logged so far is written to disk (visible to readers)."""
        if self._closed and not self._thread.is_alive():
            return
        with self._cond:
            self._flush_requested += 1
            target = self._flush_requested
            self._cond.notify_all()
            while self._flush_done < target:
                if not self._thread.is_alive():
                    break
                self._cond.wait(0.5)
        self._raise_writer_error()

    def close(self) -> None:
        """Write everything, close the files. Logging afterwards raises ``LogError``."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._raise_writer_error()

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"it={self._it}"
        return f"Logger({str(self.log_dir)!r}, {'protobuf' if self.use_protobuf else 'jsonl'}, {state})"

    def _check(self, tag: Any, method: str) -> None:
        if self._closed:
            self._raise_closed(method, tag)
        if not isinstance(tag, str) or not tag:
            raise LogError(f"{method}({tag!r}, ...): the tag must be a non-empty str")
        if not self.use_protobuf and len(tag.encode("utf-8", "surrogatepass")) > 180:
            raise LogError(f"{method}({tag[:40]!r}...): JSONL logs use the tag as a file name; "
                           "keep it under 180 bytes or use the protobuf format")

    def _raise_closed(self, method: str, tag: Any) -> None:
        raise LogError(f"{method}({tag!r}, ...): the Logger for {self.log_dir} is closed; "
                       "log before close() or create a new Logger")

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise LogError(f"writing the log in {self.log_dir} failed: {self._error}") from self._error

    # ----------------------------------------------------------------- writer thread
    def _run(self) -> None:
        sink = self._sink
        queue = self._queue
        try:
            sink.open()
        except Exception as exc:  # noqa: BLE001 - reported to the caller by flush()/close()
            self._error = exc
        while True:
            with self._cond:
                if not self._stop and self._flush_requested == self._flush_done:
                    self._cond.wait(_INTERVAL)
                target = self._flush_requested
                stop = self._stop
            final = stop or target != self._flush_done
            items = [queue.popleft() for _ in range(len(queue))]
            if self._error is None:
                try:
                    sink.write(items, final)
                except Exception as exc:  # noqa: BLE001
                    self._error = exc
            if stop:
                items = [queue.popleft() for _ in range(len(queue))]
                try:
                    if self._error is None:
                        sink.write(items, True)
                    sink.close()
                except Exception as exc:  # noqa: BLE001
                    self._error = self._error or exc
            with self._cond:
                self._flush_done = self._flush_requested if stop else target
                self._cond.notify_all()
            if stop:
                return


_now = time.time


def _pickle(obj: Any, what: str) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the caller's object
        raise LogError(f"{what}: the object cannot be pickled: {exc}") from exc


def _write_marker(log_dir: Path, fmt: str) -> None:
    import json

    marker = log_dir / MARKER
    tmp = log_dir / f".pyexp.tmp-{os.getpid()}-{threading.get_ident()}"
    tmp.write_text(json.dumps({"format": fmt, "version": FORMAT_VERSION}) + "\n")
    os.replace(tmp, marker)


def link_tensorboard(log_dir: Path) -> Path | None:
    """Give ``log_dir/events.pb`` an ``events.out.tfevents.*`` name TensorBoard looks for.

    Returns the alias (existing or new), or None when there is no events.pb yet.
    """
    import socket

    events = log_dir / EVENTS_FILE
    if not events.exists():
        events.touch()
    for existing in log_dir.glob("events.out.tfevents.*.pyexp"):
        try:
            if os.path.samefile(existing, events):
                return existing
        except OSError:
            continue
    alias = log_dir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.pyexp"
    try:
        os.link(events, alias)
    except OSError:
        os.symlink(EVENTS_FILE, alias)
    return alias


class ProtobufSink:
    """Appends TFRecord-framed Events to events.pb (runs in the writer thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Opened here so a permission error surfaces in the caller's Logger() call.
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._held: list[tuple[Any, ...]] = []
        self._held_it: Any = None

    def open(self) -> None:
        from . import _framing

        self._framing = _framing
        self._encoder = _framing.ScalarEncoder()
        # A crash may have left a partial record: cut it off so new records do not follow
        # garbage. Only when no other Logger is appending to this file right now (flock).
        end = _whole_records_end(self.path) if _lock(self._file) else None
        if end is not None:
            self._file.truncate(end)
        if os.fstat(self._file.fileno()).st_size == 0:
            self._emit(self._event(time.time(), 0, file_version=_framing.FILE_VERSION))
        meta = self._pb().RunMetadata(format_version=FORMAT_VERSION, pid=os.getpid(),
                                      hostname=_hostname(), pyexp_version=_pyexp_version())
        self._emit(self._event(time.time(), 0, run_metadata=meta))
        self._file.flush()

    def _pb(self) -> Any:
        from . import events_pb2

        return events_pb2

    def _event(self, wall_time: float, step: int, **what: Any) -> bytes:
        return self._pb().Event(wall_time=wall_time, step=step, **what).SerializeToString()

    def _emit(self, data: bytes) -> None:
        self._file.write(self._framing.frame(data))

    def write(self, items: list[tuple[Any, ...]], final: bool) -> None:
        if self._held:
            items = self._held + items
            self._held = []
        if not items:
            if final:
                self._file.flush()
            return
        frame = self._framing.frame
        encode_event = self._framing.encode_event
        encode_text = self._framing.encode_text
        encode = self._encoder.encode
        out: list[bytes] = []
        parts: list[bytes] = []
        cur: Any = None
        t0 = 0.0
        start = 0  # index in items where the current group started
        for index, item in enumerate(items):
            if len(item) == 4:
                it = item[0]
                if it != cur:
                    if parts:
                        out.append(frame(encode_event(t0, cur, parts)))
                        parts = []
                    cur, t0, start = it, item[3], index
                parts.append(encode(item[1], item[2]))
                continue
            it, tag, payload, wall_time, kind = item
            if kind == TEXT:
                if it != cur:
                    if parts:
                        out.append(frame(encode_event(t0, cur, parts)))
                        parts = []
                    cur, t0, start = it, wall_time, index
                parts.append(encode_text(tag, payload))
                continue
            pb = self._pb()
            if kind == FIGURE:
                pickled, png, interactive = payload
                record = pb.Event(wall_time=wall_time, step=it, figure=pb.Figure(
                    tag=tag, interactive=interactive, png=png, pickle=pickled))
            else:
                record = pb.Event(wall_time=wall_time, step=it,
                                  checkpoint=pb.Checkpoint(tag=tag, pickle=payload))
            out.append(frame(record.SerializeToString()))
        if parts:
            if final or cur == self._held_it:
                out.append(frame(encode_event(t0, cur, parts)))
                self._held_it = None
            else:
                # Hold the newest iteration back once: more of its values may still come.
                self._held = [item for item in items[start:] if len(item) == 4 or item[4] == TEXT]
                self._held_it = cur
        else:
            self._held_it = None
        if out:
            self._file.write(b"".join(out))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _lock(file: Any) -> bool:
    """Take an exclusive advisory lock for this Logger's life; False if another holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, assume we are alone
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _whole_records_end(path: Path) -> int | None:
    """End of the last whole record of an existing events file, None if it is clean or new."""
    import struct

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    pos = 0
    with open(path, "rb") as f:
        while pos < size:
            header = f.read(12)
            if len(header) < 12:
                return pos
            length = struct.unpack_from("<Q", header)[0]
            if pos + 12 + length + 4 > size:
                return pos
            pos += 12 + length + 4
            f.seek(pos)
    return None


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _pyexp_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyexp")
    except Exception:  # noqa: BLE001 - metadata is informative only
        return ""
