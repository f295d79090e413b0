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
from ._constants import CHECKPOINT, EVENTS_FILE, FIGURE, FORMAT_VERSION, MARKER, TEXT
from ._pbwrite import ProtobufSink, link_tensorboard
from ._pbwrite import _whole_records_end  # noqa: F401 - tests/reliability inspects torn tails

_INTERVAL = 0.25
_MAX_PENDING = 4_000_000


class Logger:
    """Log scalars, text, figures and checkpoints of one run, asynchronously.

    Args:
        log_dir: Folder of the run; created if needed, marked with a ``.pyexp`` file.
        use_protobuf: Write one ``events.pb`` (TensorBoard-compatible framing and Event
            envelope); False writes ``scalars.jsonl``, ``text.jsonl`` and per-iteration folders.
        tensorboard: Also expose ``events.pb`` under an ``events.out.tfevents.*`` name (a hard
            link) so ``tensorboard --logdir`` shows the scalars and text.

    Scalars keep full float64 precision in both formats.
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
                from ._jsonlwrite import JsonlSink

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
            it = operator.index(it)
        except TypeError:
            raise LogError(f"set_global_it({it!r}): the iteration must be an int") from None
        if not -(1 << 63) <= it < 1 << 63:
            raise LogError(f"set_global_it({it}): the iteration must fit in 64 bits "
                           "(as TensorBoard's step does)")
        self._it = it
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

    from .._files import atomic_write_bytes

    data = json.dumps({"format": fmt, "version": FORMAT_VERSION}) + "\n"
    atomic_write_bytes(log_dir / MARKER, data.encode())
