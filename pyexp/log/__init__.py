"""Logging for experiments: :class:`Logger` writes, :class:`LogReader` reads.

Two formats share one API: a single TensorBoard-compatible ``events.pb`` (default) and JSONL
files; the reader also reads the earlier pyexp's per-iteration layout. Importing this package is
cheap: protobuf, cloudpickle, matplotlib and google_crc32c are imported on first use, numpy on
the first read (logging never imports it).
"""

from .logger import Logger
from .reader import LogReader, TagNotFoundError

__all__ = ["LogReader", "Logger", "TagNotFoundError"]
