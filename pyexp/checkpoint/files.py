"""Checkpoint files: ``<config out>/.checkpoints/<key>.pkl``, written atomically, read defensively.

A file holds two pickles back to back, like ``result.pkl``: a small plain-pickle header
``{"pyexp_checkpoint": 1, "label", "saved", "size", "crc"}`` and then the cloudpickled body
``{"state": dict | None, "value": Any, "calls": dict | None}``. The header lets ``--list`` and "which checkpoint is
the latest" avoid unpickling user objects; size and CRC reject a truncated or damaged file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import time
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from .._files import atomic_write_bytes
from ..errors import CheckpointError
from ..outcome import describe_exception
from ..store import checkpoint_dir

SUFFIX = ".pkl"
_MARK = "pyexp_checkpoint"


class Loaded(NamedTuple):
    state: dict[str, Any] | None
    value: Any
    calls: dict[str, int] | None  # per-key call counts of the instance when it was saved


def folder(out: Path | str) -> Path:
    return checkpoint_dir(out)


def files(out: Path | str) -> list[Path]:
    """The checkpoint files of one config folder (no temp files), sorted by name."""
    try:
        return sorted(p for p in folder(out).iterdir()
                      if p.suffix == SUFFIX and not p.name.startswith(".") and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(obj)


def dump_state(state: dict[str, Any], label: str) -> bytes:
    """Pickle an experiment's attributes; an unpicklable one raises CheckpointError naming it."""
    try:
        return _dumps(state)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's object's fault
        raise _unpicklable(state, None, label, exc) from None


def save(path: Path, state: dict[str, Any] | None, value: Any, label: str,
         calls: dict[str, int] | None = None) -> None:
    """Write a checkpoint atomically. Unpicklable state or value raises CheckpointError."""
    try:
        body = _dumps({"state": state, "value": value, "calls": calls})
    except Exception as exc:  # noqa: BLE001
        raise _unpicklable(state or {}, value, label, exc) from None
    header = pickle.dumps({_MARK: 1, "label": label, "saved": time.time(), "size": len(body),
                           "crc": zlib.crc32(body)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, header + body)
    except OSError as exc:
        raise CheckpointError(f"{label}: cannot write checkpoint {path} ({describe_exception(exc)}); "
                              "free some space or fix the folder's permissions") from None


def _unpicklable(state: dict[str, Any], value: Any, label: str, exc: BaseException) -> CheckpointError:
    """Find which attribute (or the return value) stops the checkpoint from pickling."""
    for key, item in state.items():
        try:
            _dumps(item)
        except Exception as inner:  # noqa: BLE001
            return CheckpointError(
                f"{label}: attribute self.{key} (a {type(item).__name__}) cannot be pickled for the "
                f"checkpoint ({describe_exception(inner)}); store something picklable in self.{key}, "
                "or create that object inside the method instead of keeping it on self"
            )
    if value is not None:
        try:
            _dumps(value)
        except Exception as inner:  # noqa: BLE001
            return CheckpointError(
                f"{label}: its return value (a {type(value).__name__}) cannot be pickled for the "
                f"checkpoint ({describe_exception(inner)}); return something picklable"
            )
    return CheckpointError(f"{label}: the checkpoint cannot be pickled ({describe_exception(exc)})")


def _read_header(f: Any) -> dict[str, Any]:
    head = pickle.load(f)
    if not (isinstance(head, dict) and head.get(_MARK) == 1 and isinstance(head.get("size"), int)):
        raise ValueError("not a pyexp checkpoint")
    return head


def saved_at(path: Path) -> float | None:
    """When the checkpoint was written (from its header), or None if it is unreadable."""
    try:
        with open(path, "rb") as f:
            head = _read_header(f)
            if f.tell() + head["size"] != os.fstat(f.fileno()).st_size:
                return None
            return float(head["saved"])
    except Exception:  # noqa: BLE001 - any unreadable file simply does not count
        return None


def load(path: Path, consequence: str) -> Loaded | None:
    """The checkpoint at ``path``, or None if there is none or it is corrupt.

    A corrupt one is reported on stderr, naming the file and ``consequence`` (what happens instead).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    try:
        with f:
            head = _read_header(f)
            body = f.read()
        if len(body) != head["size"] or zlib.crc32(body) != head.get("crc"):
            raise EOFError("file is truncated or damaged (size/checksum mismatch)")
        data = pickle.loads(body)
        return Loaded(data.get("state"), data.get("value"), data.get("calls"))
    except Exception as exc:  # noqa: BLE001 - a bad checkpoint only costs re-running the method
        print(f"pyexp: warning: ignoring corrupt checkpoint {path} ({describe_exception(exc)}); "
              f"{consequence}", file=sys.stderr, flush=True)
        return None


def latest_state(out: Path | str) -> dict[str, Any] | None:
    """The state of the most recently saved readable checkpoint of a config, if any has state."""
    dated = [(when, p) for p in files(out) if (when := saved_at(p)) is not None]
    for _, path in sorted(dated, key=lambda item: (item[0], item[1].stat().st_mtime_ns), reverse=True):
        found = load(path, "the state of an earlier checkpoint is used instead, if there is one")
        if found is not None and found.state is not None:
            return found.state
    return None


def digest(*parts: Any) -> str:
    """A hash of ``parts`` that is the same in every process (unlike ``hash()`` of str or set)."""
    h = hashlib.sha256()
    _feed(h, parts)
    return h.hexdigest()[:12]


def _feed(h: Any, obj: Any) -> None:
    kind = type(obj)
    if obj is None or kind in (bool, int, float, complex, str, bytes):
        h.update(f"{kind.__name__}:{obj!r};".encode())
    elif isinstance(obj, (list, tuple)):
        h.update(f"{kind.__name__}[{len(obj)}:".encode())
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, Mapping):
        # Key order does not matter for a dict argument; the digests of the keys give a stable order.
        items = sorted(((digest(k), k, v) for k, v in obj.items()), key=lambda kv: kv[0])
        h.update(f"map[{len(items)}:".encode())
        for key_digest, _, value in items:
            h.update(key_digest.encode())
            _feed(h, value)
        h.update(b"]")
    elif isinstance(obj, (set, frozenset)):
        h.update(f"set[{','.join(sorted(digest(x) for x in obj))}]".encode())
    elif isinstance(obj, PurePath):
        h.update(f"path:{obj};".encode())
    elif isinstance(obj, (str, int, float)):  # subclasses (enums, numpy scalars fall through below)
        h.update(f"{kind.__qualname__}:{obj!r};".encode())
    elif all(hasattr(obj, a) for a in ("tobytes", "dtype", "shape")):  # numpy / torch-on-cpu arrays
        h.update(f"array:{obj.dtype}:{tuple(obj.shape)}:".encode())
        h.update(obj.tobytes())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dc:{kind.__module__}.{kind.__qualname__}:".encode())
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    else:
        try:
            h.update(pickle.dumps(obj, protocol=4))
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"an argument of type {kind.__name__} cannot be hashed for a checkpoint key "
                f"({describe_exception(exc)}); pass plain values (numbers, strings, lists, dicts, arrays)"
            ) from None


def listing_lines(run: Any, dirs: list[str], limit: int = 10) -> list[str]:
    """``--list`` lines for the unfinished configs of ``run`` that have checkpoints to resume from."""
    lines, more = [], 0
    for dirname in dirs:
        status = run.status(dirname)
        if status == "done":
            continue
        found = files(run.config_dir(dirname))
        if not found:
            continue
        if len(lines) == limit:
            more += 1
            continue
        names = ", ".join(p.stem for p in found[:5]) + (", ..." if len(found) > 5 else "")
        plural = "s" if len(found) != 1 else ""
        lines.append(f"    {dirname}: {status}, {len(found)} checkpoint{plural} ({names})")
    if more:
        lines.append(f"    ... and {more} more unfinished config(s) with checkpoints")
    return lines
