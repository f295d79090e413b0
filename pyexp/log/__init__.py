"""Logging for experiments: :class:`Logger` writes, :class:`LogReader` reads.

Two formats share one API: a single TensorBoard-compatible ``events.pb`` (default) and JSONL
files; the reader also reads the earlier pyexp's per-iteration layout. Importing this package is
cheap: protobuf, cloudpickle, matplotlib and google_crc32c are imported on first use, numpy on
the first read (logging never imports it).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .logger import Logger
    from .reader import LogReader, TagNotFoundError

__all__ = ["LogReader", "Logger", "TagNotFoundError"]
_WHERE = {"Logger": "logger", "LogReader": "reader", "TagNotFoundError": "reader"}


def __getattr__(name: str) -> object:
    # Imported on first use, so the store can name the log's files without loading the Logger.
    if name not in _WHERE:
        raise AttributeError(f"module 'pyexp.log' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
