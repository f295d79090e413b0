"""Incremental reader of events.pb into a LogReader's index.

Scalar values written by pyexp's own encoder (``0a L 0a T <tag> 15 <float32>``) are decoded by
hand, which is ~5x faster than walking protobuf messages; anything else (text, figures,
checkpoints, events written by other tools) goes through the generated protobuf classes.
Figures and checkpoints are indexed by file offset and loaded on demand.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path
from typing import Any

from . import _framing

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from
_HEADER = struct.Struct("<QI").unpack_from
_U32 = struct.Struct("<I").unpack_from


class LogRewritten(Exception):
    """The file shrank or vanished since the last read: the run was started over."""


def check_same_file(f: Any, offset: int, head: bytes, path: Path) -> bytes:
    """Raise LogRewritten unless ``f`` is still the file read up to ``offset`` before.

    The first bytes identify a log (its first record holds the creation time), which catches
    a file deleted and re-created even when the file system reuses the inode number.
    """
    if os.fstat(f.fileno()).st_size < offset:
        raise LogRewritten(path)
    current = f.read(64)
    if head and current[:len(head)] != head:
        raise LogRewritten(path)
    return current if len(current) > len(head) else head


class ProtobufSource:
    """Reads the complete records appended to ``events.pb`` since the last refresh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._head = b""
        self._warned: set[int] = set()
        self._tags: dict[bytes, Any] = {}
        # summary length -> (unpack, prefixes, column appenders, the appenders if only one) of a
        # scalars-only event
        self._layouts: dict[int, tuple[Any, ...]] = {}
        self._header_crcs: dict[int, int] = {}  # record length -> its header's checksum

    def refresh(self, index: Any) -> bool:
        try:
            with open(self.path, "rb") as f:
                self._head = check_same_file(f, self.offset, self._head, self.path)
                f.seek(self.offset)
                buf = f.read()
        except FileNotFoundError:
            if self.offset:
                raise LogRewritten(self.path) from None
            return False
        if len(buf) < _framing.HEADER_SIZE:
            return False
        count, pos = self._scan(index, buf, self.offset)
        self.offset += pos
        return count > 0

    # Long on purpose: the reader's hot loop, inlined for speed (bench_logger.py).
    def _scan(self, index: Any, buf: bytes, base: int) -> tuple[int, int]:
        """Feed every whole, CRC-checked record of ``buf`` to the index.

        Returns ``(records read, where the incomplete tail starts)``. A record failing its data
        checksum is skipped with a warning (its length, whose own checksum held, is trusted);
        after a bad length checksum the next valid record is searched byte by byte. Events that
        repeat a known scalar layout are decoded right here (the common case, kept inline
        because a function call per record would cost as much as the decoding).
        """
        unpack_header = _HEADER
        unpack_u32 = _U32
        crc = _framing.crc_function()
        header_ok = self._header_crcs
        layouts = self._layouts
        add_iteration = index.iterations.add
        ingest = self._ingest
        mask_delta = _framing.MASK_DELTA
        end = len(buf)
        pos = 0
        count = 0
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
                layout = layouts.get(length - head) if head else None
                if layout is not None:
                    # Same tags as an earlier event: one struct call decodes every value, and
                    # the unpacked prefixes (summary header, keys, lengths, tag bytes) must
                    # match byte for byte, so this is that event with other numbers.
                    unpack, prefixes, appenders, single = layout
                    fields = unpack(data, head)
                    if single is not None:  # one scalar per event: skip the generic loop
                        if fields[0] == prefixes[0]:
                            add_iteration(step)
                            single[0](step)
                            single[1](fields[1])
                            single[2](_F64(data, 1)[0])
                            pos = stop + 4
                            continue
                    elif fields[0::2] == prefixes:
                        wall_time = _F64(data, 1)[0]
                        add_iteration(step)
                        for (add_step, add_value, add_time), value in zip(appenders, fields[1::2]):
                            add_step(step)
                            add_value(value)
                            add_time(wall_time)
                        pos = stop + 4
                        continue
            ingest(index, base + pos, data)
            pos = stop + 4
        return count, pos

    def _warn(self, offset: int, why: str) -> None:
        if offset not in self._warned:
            self._warned.add(offset)
            warnings.warn(f"{self.path}: skipped a corrupt record at byte offset {offset}: {why}",
                          stacklevel=5)

    def _ingest(self, index: Any, offset: int, data: bytes) -> None:
        try:
            return self._ingest_summary(index, offset, data)
        except IndexError:  # checksum held but the event is cut short: written by another tool
            return self._ingest_generic(index, offset, data)

    # Long on purpose: the hot decode loop, inlined for speed (bench_logger.py).
    def _ingest_summary(self, index: Any, offset: int, data: bytes) -> None:
        # Fast path: wall_time, optional step, summary -- the layout pyexp's encoder writes.
        n = len(data)
        if n < 11 or data[0] != 0x09:
            return self._ingest_generic(index, offset, data)
        wall_time = _F64(data, 1)[0]
        pos = 9
        step = 0
        if data[9] == 0x10:
            byte = data[10]
            if byte < 0x80:
                step, pos = byte, 11
            elif data[11] < 0x80:
                step, pos = (byte & 0x7F) | data[11] << 7, 12
            else:
                step, pos = _varint(data, 10)
                if step >= 1 << 63:
                    step -= 1 << 64
        head = pos
        layout = self._layouts.get(n - head)
        if layout is not None:
            # Same tags as an earlier event: one struct call decodes every value, and the
            # unpacked prefixes (summary header, keys, lengths, tag bytes) must match byte for
            # byte, so the event is exactly the earlier one with other numbers.
            unpack, prefixes, appenders, _ = layout
            fields = unpack(data, head)
            if fields[0::2] == prefixes:
                index.iterations.add(step)
                for (add_step, add_value, add_time), value in zip(appenders, fields[1::2]):
                    add_step(step)
                    add_value(value)
                    add_time(wall_time)
                return None
        if pos >= n or data[pos] != 0x2A:
            return self._ingest_generic(index, offset, data)
        length, pos = _varint(data, pos + 1)
        if pos + length != n:
            return self._ingest_generic(index, offset, data)
        index.iterations.add(step)
        summary_start = pos
        parts: list[tuple[bytes, Any]] | None = []
        scalars = index.scalars
        tags = self._tags
        while pos < n:
            try:
                size = data[pos + 1]
                tag_len = data[pos + 3]
                if (data[pos] == 0x0A and size == tag_len + 7 and size < 0x80
                        and data[pos + 2] == 0x0A and data[pos + 4 + tag_len] == 0x15):
                    cols = tags.get(data[pos + 4:pos + 4 + tag_len])
                    if cols is None:
                        cols = self._columns(scalars, data[pos + 4:pos + 4 + tag_len])
                    cols[0].append(step)
                    cols[1].append(_F32(data, pos + 5 + tag_len)[0])
                    cols[2].append(wall_time)
                    if parts is not None:
                        parts.append((data[pos:pos + 5 + tag_len], cols))
                    pos += 2 + size
                    continue
            except IndexError:
                pass
            parts = None  # not scalars only: no layout for this event
            # Anything else (text, long tags): one Summary.Value through protobuf.
            try:
                size, start = _varint(data, pos + 1)
                if data[pos] != 0x0A or start + size > n:
                    raise ValueError("value overruns the event")
                value = _pb().Summary.Value.FromString(data[start:start + size])
            except Exception as exc:  # noqa: BLE001 - checksum held: written by another tool
                self._warn(offset, f"malformed summary value ({exc})")
                return None
            self._value(index, value, step, wall_time)
            pos = start + size
        if parts and len(self._layouts) < 1024:
            prefixes = [prefix for prefix, _ in parts]
            prefixes[0] = data[head:summary_start] + prefixes[0]  # the summary's key and length
            fmt = "<" + "".join(f"{len(prefix)}sf" for prefix in prefixes)
            appenders = tuple((c[0].append, c[1].append, c[2].append) for _, c in parts)
            self._layouts[n - head] = (struct.Struct(fmt).unpack_from, tuple(prefixes), appenders,
                                       appenders[0] if len(appenders) == 1 else None)
        return None

    def _columns(self, scalars: dict[str, Any], tag_bytes: bytes) -> Any:
        tag = tag_bytes.decode("utf-8", "replace")
        cols = scalars.get(tag)
        if cols is None:
            cols = scalars[tag] = ([], [], [])
        self._tags[tag_bytes] = cols
        return cols

    def _value(self, index: Any, value: Any, step: int, wall_time: float) -> None:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            cols = index.scalars.get(value.tag)
            if cols is None:
                cols = index.scalars[value.tag] = ([], [], [])
            cols[0].append(step)
            cols[1].append(value.simple_value)
            cols[2].append(wall_time)
        elif kind == "tensor" and value.tensor.string_val:
            text = value.tensor.string_val[0].decode("utf-8", "replace")
            index.add_text(value.tag, step, text, wall_time)

    def _ingest_generic(self, index: Any, offset: int, data: bytes) -> None:
        pb = _pb()
        try:
            event = pb.Event.FromString(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError; CRC held, so rare
            self._warn(offset, f"undecodable event ({exc})")
            return
        kind = event.WhichOneof("what")
        step, wall_time = event.step, event.wall_time
        if kind == "summary":
            index.iterations.add(step)
            for value in event.summary.value:
                self._value(index, value, step, wall_time)
        elif kind == "figure":
            index.iterations.add(step)
            index.figures.setdefault(event.figure.tag, {})[step] = (
                "pb", (offset, len(data)), event.figure.interactive, wall_time)
        elif kind == "checkpoint":
            index.iterations.add(step)
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
