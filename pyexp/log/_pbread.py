"""Incremental reader of events.pb into a LogReader's index.

Events that hold only scalars repeat the same bytes from one iteration to the next except for
the step, the wall time and the values (same tags, same lengths): the first such event teaches
a *layout* (its fixed bytes and where the values sit), and every later event of that layout is
recognised with one struct call and remembered by position only. When the buffer is done, numpy
gathers the values of all those events at once. Anything else (text, figures, checkpoints, the
first event of each tag, events written by other tools) is decoded value by value.

Scalars are float64 tensors of the scalars plugin; float32 ``simple_value`` (pyexp's logs before
that change, and other tools') are read too. Figures and checkpoints are indexed by file offset
and loaded on demand.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import _framing
from ._index import Batch, Index

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from
_HEADER = struct.Struct("<QI").unpack_from
_U32 = struct.Struct("<I").unpack_from
_TENSOR_HEAD = _framing.SCALAR_TENSOR_HEAD
_DOUBLE_KEY = _framing.DOUBLE_VAL_KEY
_META = _framing.SCALAR_METADATA
_MAX_LAYOUTS = 1024
_BYTE_OFFSETS = {4: np.arange(4), 8: np.arange(8)}


class LogRewritten(Exception):
    """The file shrank or vanished since the last read: the run was started over."""


def check_same_file(f: Any, offset: int, head: bytes, path: Path) -> bytes:
    """Raise LogRewritten unless ``f`` is still the file read up to ``offset`` before.

    The first bytes identify a log (its first record holds the creation time), which catches
    a file deleted and re-created even when the file system reuses the inode number.
    """
    # ``f`` is unbuffered: a buffered file would read a whole block here to return 64 bytes.
    if os.fstat(f.fileno()).st_size < offset:
        raise LogRewritten(path)
    current = f.read(64)
    if head and current[:len(head)] != head:
        raise LogRewritten(path)
    return current if len(current) > len(head) else head


def gather(buf: np.ndarray, positions: np.ndarray, width: int) -> np.ndarray:
    """Little-endian floats of ``width`` bytes (4 or 8) at ``positions`` of ``buf``, as float64."""
    raw = buf[positions[:, None] + _BYTE_OFFSETS[width]]
    return raw.view("<f8" if width == 8 else "<f4").ravel().astype(np.float64, copy=False)


class _Layout:
    """The fixed bytes of a scalars-only event after its step, and where its values sit."""

    __slots__ = ("check", "fixed", "slots", "data", "heads", "steps", "fixed_at", "fixed_bytes")

    def __init__(self, segments: list[bytes], slots: list[tuple[str | None, int, int]]) -> None:
        widths = [width for _, _, width in slots] + [0]
        fmt = "<" + "".join(f"{len(seg)}s{width}x" if width else f"{len(seg)}s"
                            for seg, width in zip(segments, widths))
        self.check = struct.Struct(fmt).unpack_from
        self.fixed = tuple(segments)
        at: list[int] = []  # the same check for many events at once: where the fixed bytes sit
        cursor = 0
        for seg, width in zip(segments, widths):
            at.extend(range(cursor, cursor + len(seg)))
            cursor += len(seg) + width
        self.fixed_at = np.array(at, np.int64)
        self.fixed_bytes = np.frombuffer(b"".join(segments), np.uint8)
        self.slots = slots  # (tag or None for bytes not read, offset after the step, width)
        self.data: list[int] = []  # buffer position of each matching event's data
        self.heads: list[int] = []  # bytes before the summary (wall time and step)
        self.steps: list[int] = []

    def flush(self, view: np.ndarray, batch: Batch) -> None:
        """Gather the values of the events seen in this buffer into ``batch``."""
        if not self.data:
            return
        data = np.array(self.data, np.int64)
        base = data + np.array(self.heads, np.int64)
        steps = np.array(self.steps, np.int64)
        wall = gather(view, data + 1, 8)
        for tag, offset, width in self.slots:
            if tag is not None:
                batch.add_arrays(tag, data, steps, gather(view, base + offset, width), wall)
        self.data, self.heads, self.steps = [], [], []


_HEADER_BYTES = np.arange(12)
#: Fewest same-length events after a recognised one worth checking with numpy at once, and
#: most checked in one go.
_RUN_MIN, _RUN_MAX = 16, 8192


def _take_run(view: np.ndarray, buf: bytes, start: int, end: int, length: int, head: int,
              candidates: list[_Layout], crc: Any) -> int:
    """Recognise at once the events from ``start`` on that repeat the one just recognised.

    A scalars-only log is mostly runs of events of one length, cycling through the layouts of
    its tags (one event per tag and iteration). Each candidate must carry the same record
    header, a step field of the same width, the fixed bytes of one of ``candidates`` and a
    good data checksum; the run ends at the first one that does not (the byte-by-byte loop
    takes over there). Returns how many were taken.
    """
    size = length + 16
    n = min((end - start) // size, _RUN_MAX)
    if n < _RUN_MIN:
        return 0
    starts = start + size * np.arange(n, dtype=np.int64)
    first = start - size  # the event just recognised
    ok = (view[starts[:, None] + _HEADER_BYTES] == view[first:first + 12]).all(axis=1)
    data = starts + 12
    ok &= view[data] == 0x09
    if head > 9:
        ok &= view[data + 9] == 0x10
        for i in range(10, head - 1):  # the step's varint: continuation bits, then its end
            ok &= view[data + i] >= 0x80
        ok &= view[data + head - 1] < 0x80
    fixed = data + head
    rows: dict[bytes, np.ndarray] = {}  # the layouts of one length mostly share where
    matches = []                        # their fixed bytes sit: gather those once
    for layout in candidates:
        key = layout.fixed_at.tobytes()
        if key not in rows:
            gathered = np.ascontiguousarray(view[fixed[:, None] + layout.fixed_at])
            rows[key] = gathered.view(np.dtype((np.void, layout.fixed_at.size))).ravel()
        matches.append(rows[key] == np.void(layout.fixed_bytes.tobytes()))
    ok &= np.logical_or.reduce(matches)
    m = n if ok.all() else int(ok.argmin())
    if not m:
        return 0
    data = data[:m]
    raw = np.array([crc(buf[o:o + length]) for o in data.tolist()], np.uint64)
    good = _framing.mask(raw) == view[(data + length)[:, None] + _BYTE_OFFSETS[4]].view("<u4").ravel()
    if not good.all():
        m = int(good.argmin())  # a bad checksum: the loop warns about it and goes on
        data = data[:m]
    steps = np.zeros(m, np.int64)
    for i in range(10, head):
        steps |= (view[data + i].astype(np.int64) & 0x7F) << (7 * (i - 10))
    taken = np.zeros(m, bool)
    for layout, match in zip(candidates, matches):  # the first that fits, as the loop does
        mine = match[:m] & ~taken
        taken |= mine
        if mine.any():
            layout.data.extend(data[mine].tolist())
            layout.heads.extend([head] * int(mine.sum()))
            layout.steps.extend(steps[mine].tolist())
    return m


class ProtobufSource:
    """Reads the complete records appended to ``events.pb`` since the last refresh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.bytes_read = 0
        self._head = b""
        self._warned: set[int] = set()
        self._layouts: dict[int, list[_Layout]] = {}  # by event length after the step
        self._tags: dict[bytes, str] = {}
        self._header_crcs: dict[int, int] = {}  # record length -> its header's checksum

    def refresh(self, index: Index, kinds: object = None) -> bool:
        """Read the appended records (every kind: events.pb interleaves them)."""
        try:
            with open(self.path, "rb", buffering=0) as f:
                self._head = check_same_file(f, self.offset, self._head, self.path)
                f.seek(self.offset)
                buf = f.read()
        except FileNotFoundError:
            if self.offset:
                raise LogRewritten(self.path) from None
            return False
        self.bytes_read += len(buf)
        if len(buf) < _framing.HEADER_SIZE:
            return False
        batch = Batch()
        try:
            count, pos = self._scan(index, batch, buf, self.offset)
            view = np.frombuffer(buf, np.uint8)
            for layouts in self._layouts.values():
                for layout in layouts:
                    layout.flush(view, batch)
        finally:
            for layouts in self._layouts.values():  # positions point into this buffer only
                for layout in layouts:
                    layout.data, layout.heads, layout.steps = [], [], []
        batch.commit(index)
        self.offset += pos
        return count > 0

    # Long on purpose: the reader's hot loop, inlined for speed (bench_logger.py).
    def _scan(self, index: Index, batch: Batch, buf: bytes, base: int) -> tuple[int, int]:
        """Feed every whole, CRC-checked record of ``buf`` to the index.

        Returns ``(records read, where the incomplete tail starts)``. A record failing its data
        checksum is skipped with a warning (its length, whose own checksum held, is trusted);
        after a bad length checksum the next valid record is searched byte by byte. Events of
        a known layout are recognised right here (kept inline: a function call per record
        would cost as much as the recognising).
        """
        unpack_header = _HEADER
        unpack_u32 = _U32
        crc = _framing.crc_function()
        header_ok = self._header_crcs
        layouts = self._layouts
        mask_delta = _framing.MASK_DELTA
        end = len(buf)
        pos = 0
        count = 0
        view = None
        skip = 0
        while end - pos >= 12:
            length, length_crc = unpack_header(buf, pos)
            if header_ok.get(length) != length_crc:
                raw = crc(buf[pos:pos + 8])
                if (((raw >> 15) | (raw << 17)) + mask_delta) & 0xFFFFFFFF != length_crc:
                    found = _framing.resync(buf, pos + 1, end)
                    self._warn(base + pos, "bad length checksum")
                    if found is None:
                        return count, pos  # resume here: a record may still be arriving
                    pos = found
                    continue
                if len(header_ok) < 65536:
                    header_ok[length] = length_crc
            stop = pos + 12 + length
            if stop + 4 > end:
                break
            data = buf[pos + 12:stop]
            raw = crc(data)
            if (((raw >> 15) | (raw << 17)) + mask_delta) & 0xFFFFFFFF != unpack_u32(buf, stop)[0]:
                self._warn(base + pos, "bad data checksum")
                pos = stop + 4
                continue
            count += 1
            if length > 12 and data[0] == 0x09:
                if data[9] != 0x10:
                    step, head = 0, 9
                elif data[10] < 0x80:
                    step, head = data[10], 11
                elif data[11] < 0x80:
                    step, head = (data[10] & 0x7F) | data[11] << 7, 12
                elif data[12] < 0x80:
                    step, head = (data[10] & 0x7F) | (data[11] & 0x7F) << 7 | data[12] << 14, 13
                else:
                    step, head = -1, 0
                candidates = layouts.get(length - head) if head else None
                if candidates is not None:
                    for layout in candidates:
                        if layout.check(data, head) == layout.fixed:
                            layout.data.append(pos + 12)
                            layout.heads.append(head)
                            layout.steps.append(step)
                            break
                    else:
                        candidates = None
                    if candidates is not None:
                        pos = stop + 4
                        if skip:
                            skip -= 1
                            continue
                        if view is None:
                            view = np.frombuffer(buf, np.uint8)
                        taken = _take_run(view, buf, pos, end, length, head, candidates, crc)
                        count += taken
                        pos += taken * (length + 16)
                        skip = 0 if taken >= _RUN_MIN else 64  # no run here: retry later
                        continue
            self._ingest(index, batch, base, pos + 12, data)
            pos = stop + 4
        return count, pos

    def _warn(self, offset: int, why: str) -> None:
        if offset not in self._warned:
            self._warned.add(offset)
            warnings.warn(f"{self.path}: skipped a corrupt record at byte offset {offset}: {why}",
                          stacklevel=5)

    def _ingest(self, index: Index, batch: Batch, base: int, at: int, data: bytes) -> None:
        try:
            return self._ingest_summary(index, batch, base, at, data)
        except IndexError:  # checksum held but the event is cut short: written by another tool
            return self._ingest_generic(index, batch, base, at, data)

    # Long on purpose: decodes and learns a layout in one walk over the event.
    def _ingest_summary(self, index: Index, batch: Batch, base: int, at: int, data: bytes) -> None:
        """Decode a summary event by hand and learn its layout if it holds scalars only."""
        n = len(data)
        if n < 11 or data[0] != 0x09:
            return self._ingest_generic(index, batch, base, at, data)
        wall_time = _F64(data, 1)[0]
        pos, step = 9, 0
        if data[9] == 0x10:
            step, pos = _varint(data, 10)
            if step >= 1 << 63:
                step -= 1 << 64
        head = pos
        if pos >= n or data[pos] != 0x2A:
            return self._ingest_generic(index, batch, base, at, data)
        length, pos = _varint(data, pos + 1)
        if pos + length != n:
            return self._ingest_generic(index, batch, base, at, data)
        segments: list[bytes] | None = []
        slots: list[tuple[str | None, int, int]] = []
        last = head
        while pos < n:
            found = _scalar_at(data, pos, n)
            if found is not None:
                tag_at, tag_end, value_at, width, end = found
                tag = self._tag(data[tag_at:tag_end])
                value = _F64(data, value_at)[0] if width == 8 else _F32(data, value_at)[0]
                batch.add(tag, at, step, value, wall_time)
                if segments is not None:
                    if width == 8:  # the float32 copy for TensorBoard: varies, not read
                        segments.append(data[last:value_at - 6])
                        slots.append((None, value_at - 6 - head, 4))
                        last = value_at - 2
                    segments.append(data[last:value_at])
                    slots.append((tag, value_at - head, width))
                    last = value_at + width
                pos = end
                continue
            segments = None  # not scalars only: no layout for this event
            try:
                size, start = _varint(data, pos + 1)
                if data[pos] != 0x0A or start + size > n:
                    raise ValueError("value overruns the event")
                value = _pb().Summary.Value.FromString(data[start:start + size])
            except Exception as exc:  # noqa: BLE001 - checksum held: written by another tool
                self._warn(base + at - 12, f"malformed summary value ({exc})")
                return None
            _add_value(index, batch, value, at, step, wall_time)
            pos = start + size
        if segments and 0 <= step < 1 << 21 and sum(map(len, self._layouts.values())) < _MAX_LAYOUTS:
            segments.append(data[last:])
            candidates = self._layouts.setdefault(n - head, [])
            if len(candidates) < 4:
                candidates.append(_Layout(segments, slots))
        return None

    def _tag(self, raw: bytes) -> str:
        tag = self._tags.get(raw)
        if tag is None:
            tag = self._tags[raw] = raw.decode("utf-8", "replace")
        return tag

    def _ingest_generic(self, index: Index, batch: Batch, base: int, at: int, data: bytes) -> None:
        pb = _pb()
        offset = base + at - _framing.HEADER_SIZE
        try:
            event = pb.Event.FromString(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError; CRC held, so rare
            self._warn(offset, f"undecodable event ({exc})")
            return
        kind = event.WhichOneof("what")
        step, wall_time = event.step, event.wall_time
        if kind == "summary":
            for value in event.summary.value:
                _add_value(index, batch, value, at, step, wall_time)
        elif kind == "figure":
            index.other_iterations.add(step)
            index.figures.setdefault(event.figure.tag, {})[step] = (
                "pb", (offset, len(data)), event.figure.interactive, wall_time)
        elif kind == "checkpoint":
            index.other_iterations.add(step)
            index.checkpoints.setdefault(event.checkpoint.tag, {})[step] = (
                "pb", (offset, len(data)), wall_time)
        elif kind == "run_metadata":
            index.metadata.append({"wall_time": wall_time,
                                   "pid": event.run_metadata.pid,
                                   "hostname": event.run_metadata.hostname,
                                   "pyexp_version": event.run_metadata.pyexp_version})

    def load(self, location: tuple[int, int]) -> Any:
        """The Event stored at ``location`` (offset, length) as a protobuf message."""
        offset, length = location
        with open(self.path, "rb") as f:
            f.seek(offset + _framing.HEADER_SIZE)
            data = f.read(length)
        return _pb().Event.FromString(data)


def _scalar_at(data: bytes, pos: int, n: int) -> tuple[int, int, int, int, int] | None:
    """``(tag start, tag end, value position, width, end)`` if a scalar as pyexp writes it
    starts at ``pos``.

    Three shapes, each ``0a <size> 0a <tag length> <tag>`` and then: the scalars plugin's tensor
    (a float32 for TensorBoard, then the exact float64, which is the value), the same with the
    plugin metadata (a tag's first value), or a float32 ``simple_value`` (logs written before
    pyexp kept float64).
    """
    if pos + 4 > n or data[pos] != 0x0A:
        return None
    try:  # a varint running off the end (not pyexp's bytes) is simply no match
        size, at = (data[pos + 1], pos + 2) if data[pos + 1] < 0x80 else _varint(data, pos + 1)
        end = at + size
        if end > n or at + 2 > n or data[at] != 0x0A:
            return None
        tag_len, tag_at = (data[at + 1], at + 2) if data[at + 1] < 0x80 else _varint(data, at + 1)
    except IndexError:
        return None
    after_tag = tag_at + tag_len
    rest = end - after_tag
    if after_tag >= end:
        return None
    if data[after_tag] == 0x15 and rest == 5:
        return tag_at, after_tag, after_tag + 1, 4, end
    if (data[after_tag:after_tag + 6] == _TENSOR_HEAD
            and data[after_tag + 10:after_tag + 12] == _DOUBLE_KEY):
        if rest == 20 or (rest == 20 + len(_META) and data[end - len(_META):end] == _META):
            return tag_at, after_tag, after_tag + 12, 8, end
    return None


def _add_value(index: Index, batch: Batch, value: Any, at: int, step: int,
               wall_time: float) -> None:
    """One decoded ``Summary.Value``: a scalar (float or tensor) or text; others are skipped."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        batch.add(value.tag, at, step, value.simple_value, wall_time)
    elif kind == "tensor":
        tensor = value.tensor
        if tensor.string_val:
            text = tensor.string_val[0].decode("utf-8", "replace")
            index.add_text(value.tag, step, text, wall_time)
        elif tensor.tensor_shape.dim:
            return  # not a scalar
        elif len(tensor.double_val) == 1:
            batch.add(value.tag, at, step, tensor.double_val[0], wall_time)
        elif len(tensor.float_val) == 1:  # e.g. TensorFlow's tf.summary.scalar
            batch.add(value.tag, at, step, tensor.float_val[0], wall_time)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result, pos
        shift += 7


def _pb() -> Any:
    from . import events_pb2

    return events_pb2
