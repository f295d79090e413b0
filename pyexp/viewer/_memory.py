"""Keep the viewer's resident memory flat: hand freed memory back to the system.

A long-lived server that reads large logs now and then frees what it read, but glibc keeps
freed blocks (per thread arena, and below its dynamic mmap threshold) and the resident size
only ever grows. These calls make freed memory go back; elsewhere they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_libc: Any = None


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.malloc_trim  # noqa: B018 - absent on musl
                _libc = libc
            except (OSError, AttributeError):
                pass
    return _libc


def tune_allocator() -> None:
    """Few arenas and a fixed mmap threshold: large arrays are unmapped as soon as freed."""
    libc = _glibc()
    if libc:
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024)


def release_free_memory() -> None:
    """Return the heap's free pages to the system (after a large read was dropped)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
