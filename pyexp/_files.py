"""Publishing files: the one place that writes a file so readers never see half of it.

Every file pyexp keeps (``config.json``, ``runs.json``, ``result.pkl``, ``outcome.json``,
checkpoints, payloads) is written to a temporary name in the same folder and then
``os.replace``d over its final name. A crash leaves either the old file or the whole new
one, plus at worst a ``.<name>.*.tmp`` leftover that :func:`drop_leftovers` removes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import StoreError


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_link(source: Path | str, path: Path | str) -> None:
    """Make ``path`` name the very file ``source`` (a hard link; a symlink where hard links fail,
    e.g. across file systems), replacing ``path`` at once. Nothing is copied."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.link.tmp"
    try:
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            os.symlink(os.path.realpath(source), tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def drop_leftovers(folder: Path, name: str) -> None:
    """Remove the temp files of writes to ``folder/name`` that a kill cut short."""
    for leftover in Path(folder).glob(f".{name}.*.tmp"):
        try:
            leftover.unlink()
        except OSError:
            pass


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON serialisable")


def dump_json(obj: Any) -> bytes:
    """``obj`` as indented UTF-8 JSON; Paths become strings, sets and tuples lists."""
    return json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False).encode()


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON (what hashes are computed over)."""
    return json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))


def read_json(path: Path | str) -> Any:
    """Parse a JSON file. Missing: FileNotFoundError; corrupt: StoreError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{path}: corrupt JSON ({exc}); restore it or start a fresh run without --continue"
        ) from exc
