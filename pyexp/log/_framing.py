"""TFRecord framing and the hand-written Event encoding of the hot path (scalars and text).

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little endian, as TensorBoard reads it. Scalars and text are encoded here byte by byte (field
numbers of events.proto) because building protobuf messages costs several microseconds per value;
tests check the bytes against the generated module and against TensorBoard's own reader.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Callable, Iterable

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct("<QI")
_F64 = struct.Struct("<d")
HEADER_SIZE = 12
FOOTER_SIZE = 4
MASK_DELTA = 0xA282EAD8

FILE_VERSION = "brain.Event:2"


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _crc32c_python(data: bytes, _table: list[int] = []) -> int:  # noqa: B006 - lazily built cache
    """CRC-32C (Castagnoli) without google_crc32c: slow, but correct."""
    if not _table:
        _table.extend(_crc32c_table())
    crc = 0xFFFFFFFF
    table = _table
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _resolve_crc32c() -> Callable[[bytes], int]:
    try:
        import google_crc32c
    except ImportError:
        return _crc32c_python
    return google_crc32c.value


_crc_impl: Callable[[bytes], int] | None = None


def crc_function() -> Callable[[bytes], int]:
    """The CRC-32C implementation in use (google_crc32c's when installed)."""
    global _crc_impl
    if _crc_impl is None:
        _crc_impl = _resolve_crc32c()
    return _crc_impl


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data``, with google_crc32c when it is installed."""
    return (_crc_impl or crc_function())(data)


def mask(crc: Any) -> Any:
    """TFRecord's masking of a CRC-32C (rotated and offset so CRCs of CRCs stay distinct); an
    int, or a numpy array of them as uint64. The writer's and reader's hot loops inline it."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    return mask(crc32c(data))


def frame(data: bytes) -> bytes:
    """One TFRecord: header, ``data``, footer."""
    header = _FRAME_HEADERS.get(len(data))
    if header is None:
        length = _U64.pack(len(data))
        header = length + _U32.pack(masked_crc(length))
        if len(_FRAME_HEADERS) < 65536:
            _FRAME_HEADERS[len(data)] = header  # records of one length share their header
    raw = (_crc_impl or crc_function())(data)
    return b"".join((header, data, _U32.pack((((raw >> 15) | (raw << 17)) + MASK_DELTA)
                                              & 0xFFFFFFFF)))


_FRAME_HEADERS: dict[int, bytes] = {}
_SMALL_VARINTS = [bytes((n,)) for n in range(128)]


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as 64-bit two's complement (int64)."""
    if 0 <= value < 0x80:
        return _SMALL_VARINTS[value]
    if 0 <= value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if 0 <= value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, (value >> 7 & 0x7F) | 0x80, value >> 14))
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(key: int, payload: bytes) -> bytes:
    return bytes((key,)) + varint(len(payload)) + payload


# Summary.Value.metadata of a scalar: plugin "scalars" (empty content = ScalarPluginData version
# 0) and data_class 1 = DATA_CLASS_SCALAR, as TensorBoard's own scalar summaries carry it.
SCALAR_METADATA = _len_field(0x4A, _len_field(0x0A, _len_field(0x0A, b"scalars")) + b"\x20\x01")
# A scalar's TensorProto (18 bytes) up to its float32: dtype = 1 (DT_FLOAT), no shape, one packed
# float_val; then one packed double_val with the exact value. TensorBoard's default (Rust) loader
# shows DT_FLOAT scalars only and reads float_val; pyexp reads double_val (see events.proto).
SCALAR_TENSOR_HEAD = b"\x42\x12\x08\x01\x2a\x04"
DOUBLE_VAL_KEY = b"\x32\x08"
SCALAR_VALUES = struct.Struct("<f2sd")


def pack_scalar(value: float) -> bytes:
    """The 14 value bytes of a scalar: float32 for TensorBoard, then the exact float64."""
    try:
        return SCALAR_VALUES.pack(value, DOUBLE_VAL_KEY, value)
    except OverflowError:  # beyond float32: TensorBoard shows +-inf, pyexp keeps the double
        return SCALAR_VALUES.pack(math.copysign(math.inf, value), DOUBLE_VAL_KEY, value)


class ScalarEncoder:
    """Encode scalars as ``Summary.value`` fields: tensors of TensorBoard's scalars plugin.

    TensorBoard keeps the first metadata it sees per tag and ignores later ones (its own writers
    send it once), so only the first value of each tag in this encoder's life carries it: every
    Logger session of a file starts a new encoder, which keeps each session readable alone.
    """

    def __init__(self) -> None:
        self.prefixes: dict[str, bytes] = {}

    def first(self, tag: str, value: float) -> bytes:
        """The first value of ``tag``: with the plugin metadata; later ones use ``prefixes[tag]``."""
        tag_b = tag.encode("utf-8", "surrogatepass")
        head = b"\x0a" + varint(len(tag_b)) + tag_b + SCALAR_TENSOR_HEAD
        self.prefixes[tag] = b"\x0a" + varint(len(head) + 14) + head
        return b"".join((b"\x0a", varint(len(head) + 14 + len(SCALAR_METADATA)), head,
                         pack_scalar(value), SCALAR_METADATA))

    def encode(self, tag: str, value: float) -> bytes:
        """One scalar (a float) as a ``Summary.value`` field."""
        prefix = self.prefixes.get(tag)
        if prefix is None:
            return self.first(tag, value)
        return prefix + pack_scalar(value)


_TEXT_METADATA = _len_field(0x4A, _len_field(0x0A, _len_field(0x0A, b"text")))


def encode_text(tag: str, text: str) -> bytes:
    """A text-plugin ``Summary.value`` field: DT_STRING scalar tensor with plugin_name "text"."""
    tag_b = tag.encode("utf-8")
    tensor = b"\x08\x07" + _len_field(0x42, text.encode("utf-8", "surrogatepass"))
    value = _len_field(0x0A, tag_b) + _len_field(0x42, tensor) + _TEXT_METADATA  # field order
    return _len_field(0x0A, value)


def event_record(wall_time: float, step: int, summary_fields: Iterable[bytes]) -> bytes:
    """``frame(encode_event(...))`` in one call (the writer's per-iteration hot path)."""
    summary = b"".join(summary_fields)
    size = len(summary)
    size_b = _SMALL_VARINTS[size] if size < 0x80 else varint(size)
    if not step:
        data = b"".join((b"\x09", _F64.pack(wall_time), b"\x2a", size_b, summary))
    elif 0 < step < 0x4000:
        step_b = _SMALL_VARINTS[step] if step < 0x80 else bytes(((step & 0x7F) | 0x80, step >> 7))
        data = b"".join((b"\x09", _F64.pack(wall_time), b"\x10", step_b, b"\x2a", size_b, summary))
    else:
        data = b"".join((b"\x09", _F64.pack(wall_time), b"\x10", varint(step), b"\x2a", size_b,
                         summary))
    header = _FRAME_HEADERS.get(len(data))
    if header is None:
        return frame(data)
    raw = (_crc_impl or crc_function())(data)
    return b"".join((header, data, _U32.pack((((raw >> 15) | (raw << 17)) + MASK_DELTA)
                                              & 0xFFFFFFFF)))


def _event_head(wall_time: float, step: int) -> bytes:
    head = b"\x09" + _F64.pack(wall_time)
    return head + b"\x10" + varint(step) if step else head


def _string_field(key: int, text: str) -> bytes:
    return _len_field(key, text.encode("utf-8", "surrogatepass")) if text else b""


def _varint_field(key: int, value: int) -> bytes:
    return bytes((key,)) + varint(value) if value else b""


def encode_file_version(wall_time: float) -> bytes:
    """The first Event of a file: ``file_version = "brain.Event:2"``."""
    return _event_head(wall_time, 0) + _string_field(0x1A, FILE_VERSION)


def encode_run_metadata(wall_time: float, format_version: int, pyexp_version: str,
                        hostname: str, pid: int) -> bytes:
    """An Event with ``run_metadata`` (field 102)."""
    body = (_varint_field(0x08, format_version) + _string_field(0x12, pyexp_version)
            + _string_field(0x1A, hostname) + _varint_field(0x20, pid))
    return _event_head(wall_time, 0) + b"\xb2\x06" + varint(len(body)) + body


def encode_figure(wall_time: float, step: int, tag: str, interactive: bool, png: bytes,
                  pickled: bytes) -> bytes:
    """An Event with a ``figure`` (field 100)."""
    body = b"".join((_string_field(0x0A, tag), b"\x10\x01" if interactive else b"",
                     _len_field(0x1A, png) if png else b"", _len_field(0x22, pickled) if pickled else b""))
    return b"".join((_event_head(wall_time, step), b"\xa2\x06", varint(len(body)), body))


def encode_checkpoint(wall_time: float, step: int, tag: str, pickled: bytes) -> bytes:
    """An Event with a ``checkpoint`` (field 101)."""
    body = _string_field(0x0A, tag) + (_len_field(0x12, pickled) if pickled else b"")
    return b"".join((_event_head(wall_time, step), b"\xaa\x06", varint(len(body)), body))


def encode_event(wall_time: float, step: int, summary_fields: Iterable[bytes]) -> bytes:
    """A serialized Event carrying a Summary made of already-encoded ``Summary.value`` fields."""
    summary = b"".join(summary_fields)
    if step:
        return b"".join((b"\x09", _F64.pack(wall_time), b"\x10", varint(step), b"\x2a",
                         varint(len(summary)), summary))
    return b"".join((b"\x09", _F64.pack(wall_time), b"\x2a", varint(len(summary)), summary))


def resync(view: bytes, pos: int, end: int) -> int | None:
    """Offset of the next record whose header and data checksums both hold, or None."""
    unpack_header = _HEADER.unpack_from
    while end - pos >= HEADER_SIZE + FOOTER_SIZE:
        length, length_crc = unpack_header(view, pos)
        if masked_crc(view[pos:pos + 8]) == length_crc:
            stop = pos + HEADER_SIZE + length
            if stop + FOOTER_SIZE <= end and \
                    masked_crc(view[pos + HEADER_SIZE:stop]) == _U32.unpack_from(view, stop)[0]:
                return pos
        pos += 1
    return None
