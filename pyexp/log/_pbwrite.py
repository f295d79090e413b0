"""Writing events.pb: the protobuf sink of the Logger's writer thread, and TensorBoard aliases."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ._constants import EVENTS_FILE, FIGURE, FORMAT_VERSION, TEXT


def link_tensorboard(log_dir: Path) -> Path:
    """Give ``log_dir/events.pb`` an ``events.out.tfevents.*`` name TensorBoard looks for.

    The alias is a hard link (a symlink where hard links fail), so it follows every append.
    Returns the alias, existing or new; an empty events.pb is created if there is none yet.
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
            self._emit(_framing.encode_file_version(time.time()))
        self._emit(_framing.encode_run_metadata(time.time(), FORMAT_VERSION, _pyexp_version(),
                                                _hostname(), os.getpid()))
        self._file.flush()

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
        event_record = self._framing.event_record
        encode_text = self._framing.encode_text
        prefixes = self._encoder.prefixes
        first = self._encoder.first
        pack_scalar = self._framing.pack_scalar
        pack = self._framing.SCALAR_VALUES.pack  # inlined pack_scalar: the hot path
        key = self._framing.DOUBLE_VAL_KEY
        out: list[bytes] = []
        parts: list[bytes] = []
        fresh: list[str] = []  # tags whose first value (with metadata) is in the current group
        cur: Any = None
        t0 = 0.0
        start = 0  # index in items where the current group started
        for index, item in enumerate(items):
            if len(item) == 4:
                it = item[0]
                if it != cur:
                    if parts:
                        out.append(event_record(t0, cur, parts))
                        parts = []
                    cur, t0, start = it, item[3], index
                    fresh = []
                prefix = prefixes.get(item[1])
                if prefix is None:
                    parts.append(first(item[1], item[2]))
                    fresh.append(item[1])
                    continue
                try:
                    parts.append(prefix + pack(item[2], key, item[2]))
                except OverflowError:  # beyond float32
                    parts.append(prefix + pack_scalar(item[2]))
                continue
            it, tag, payload, wall_time, kind = item
            if kind == TEXT:
                if it != cur:
                    if parts:
                        out.append(event_record(t0, cur, parts))
                        parts = []
                    cur, t0, start = it, wall_time, index
                    fresh = []
                parts.append(encode_text(tag, payload))
                continue
            if kind == FIGURE:
                pickled, png, interactive = payload
                record = self._framing.encode_figure(wall_time, it, tag, interactive, png, pickled)
            else:
                record = self._framing.encode_checkpoint(wall_time, it, tag, payload)
            out.append(frame(record))
        if parts:
            if final or cur == self._held_it:
                out.append(event_record(t0, cur, parts))
                self._held_it = None
            else:
                # Hold the newest iteration back once: more of its values may still come.
                self._held = [item for item in items[start:] if len(item) == 4 or item[4] == TEXT]
                self._held_it = cur
                for tag in fresh:  # not written yet: their metadata must come when they are
                    del prefixes[tag]
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
    from .._version import __version__

    return __version__
