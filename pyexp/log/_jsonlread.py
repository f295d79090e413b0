"""Reading the JSONL log format (see ``_jsonlwrite``) incrementally into a LogReader's index.

Lines as pyexp and the original pyexp write them (``{"it", "tag", "value", "ts"}``) are decoded
with one regex pass and numpy's number parsing; any other valid JSON line (other key order or
spacing, ``wall_time`` instead of ``ts``, no stamp) goes through ``json.loads``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Collection

import numpy as np

from ._constants import SCALARS_FILE, TEXT_FILE
from ._index import Batch, Index
from ._jsonlwrite import name_to_tag
from ._pbread import LogRewritten, check_same_file

_NUMBER = rb"-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|NaN|Infinity)"
_SCALAR_LINE = re.compile(
    rb'^\{"it": (-?\d+), "tag": ("(?:[^"\\\n]|\\.)*"), "value": (' + _NUMBER + rb')'
    rb'(?:, "(?:ts|wall_time)": (' + _NUMBER + rb'))?\}$', re.M)
_STAMP_KEYS = ("ts", "wall_time")  # the original's key first, then the one pyexp wrote before


def stamp(record: dict[str, Any]) -> float:
    """The wall-clock stamp of a JSONL record or ``.meta`` file (NaN when it has none)."""
    for key in _STAMP_KEYS:
        value = record.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return math.nan


class JsonlSource:
    """Incrementally reads a JSONL log into a reader's index."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.bytes_read = 0
        self._offsets = {SCALARS_FILE: 0, TEXT_FILE: 0}
        self._heads: dict[str, bytes] = {}
        self._dir_mtimes: dict[Path, int] = {}
        self._warned: set[tuple[str, int]] = set()
        self._tags: dict[bytes, str] = {}

    def refresh(self, index: Index, kinds: Collection[str] = ("scalars", "text", "files")) -> bool:
        """Read what was appended to the files of ``kinds`` ("scalars", "text", "files")."""
        new = "scalars" in kinds and self._read_lines(SCALARS_FILE, index)
        new = ("text" in kinds and self._read_lines(TEXT_FILE, index)) or new
        return ("files" in kinds and self._scan_iterations(index)) or new

    def _read_lines(self, name: str, index: Index) -> bool:
        path = self.log_dir / name
        offset = self._offsets[name]
        try:
            with open(path, "rb", buffering=0) as f:
                self._heads[name] = check_same_file(f, offset, self._heads.get(name, b""), path)
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            if offset:
                raise LogRewritten(path) from None
            return False
        self.bytes_read += len(data)
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        if end == 0:
            return False
        is_scalars = name == SCALARS_FILE
        if not (is_scalars and self._fast_scalars(data, end, index)):
            self._slow_lines(path, offset, data[:end], is_scalars, index)
        self._offsets[name] = offset + end
        return True

    def _slow_lines(self, path: Path, offset: int, data: bytes, is_scalars: bool,
                    index: Index) -> None:
        batch = Batch()
        pos = 0
        for line in data.split(b"\n")[:-1]:
            start = pos
            pos += len(line) + 1
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                it, tag = rec["it"], rec["tag"]
                if not isinstance(it, int) or not isinstance(tag, str):
                    raise TypeError("'it' must be an int and 'tag' a string")
                if not -(1 << 63) <= it < 1 << 63:
                    raise ValueError("'it' does not fit in 64 bits")
                payload = float(rec["value"]) if is_scalars else rec["text"]
            except (ValueError, KeyError, TypeError) as exc:
                self._warn(path, offset + start, f"unreadable line ({exc})")
                continue
            if is_scalars:
                batch.add(tag, start, it, payload, stamp(rec))
            else:
                index.add_text(tag, it, str(payload), stamp(rec))
        batch.commit(index)

    def _fast_scalars(self, data: bytes, end: int, index: Index) -> bool:
        """Decode lines exactly as the Logger writes them with one regex pass and numpy.

        Returns False, having read nothing, unless every line matches; the caller then parses
        line by line and warns about the odd ones.
        """
        rows = _SCALAR_LINE.findall(data, 0, end)
        if not rows or len(rows) != data.count(b"\n", 0, end):
            return False
        its, raw_tags, values, stamps = zip(*rows)
        tags = self._tags
        for raw_tag in set(raw_tags).difference(tags):
            try:
                tags[raw_tag] = json.loads(raw_tag)
            except ValueError:  # an escape JSON does not know: let the slow path warn
                return False
        try:
            steps = np.array(its).astype(np.int64)
            numbers = np.array(values).astype(np.float64)
        except (ValueError, OverflowError):  # e.g. an iteration beyond int64: the slow path warns
            return False
        raw_stamps = np.array(stamps)
        present = raw_stamps != b""  # the spec's lines have no stamp
        if present.all():
            wall = raw_stamps.astype(np.float64)
        else:
            wall = np.full(len(rows), np.nan)
            wall[present] = raw_stamps[present].astype(np.float64)
        names, codes = np.unique(np.array(raw_tags), return_inverse=True)
        batch = Batch()
        for code, raw_tag in enumerate(names.tolist()):
            mask = codes == code if len(names) > 1 else slice(None)
            batch.add_arrays(tags[raw_tag], _NO_POSITIONS, steps[mask], numbers[mask], wall[mask])
        batch.commit(index)
        return True

    def _warn(self, path: Path, offset: int, why: str) -> None:
        if (path.name, offset) not in self._warned:
            self._warned.add((path.name, offset))
            warnings.warn(f"{path}: skipped a corrupt record at byte offset {offset}: {why}",
                          stacklevel=4)

    def _scan_iterations(self, index: Index) -> bool:
        changed = False
        for it, entry in iteration_dirs(self.log_dir):
            for kind in ("figures", "checkpoints"):
                folder = Path(entry) / kind
                try:
                    mtime = folder.stat().st_mtime_ns
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if self._dir_mtimes.get(folder) == mtime:
                    continue
                if time.time_ns() - mtime > 2_000_000_000:
                    # Old enough that a coarse-grained mtime cannot hide a later change.
                    self._dir_mtimes[folder] = mtime
                target = index.figures if kind == "figures" else index.checkpoints
                for child in folder.iterdir():
                    if child.suffix != ".cpkl" or child.name.startswith("."):
                        continue
                    refs = target.setdefault(name_to_tag(child.stem), {})
                    if it not in refs:
                        refs[it] = ("jsonl", child)
                        index.other_iterations.add(it)
                        changed = True
        return changed


_NO_POSITIONS = np.empty(0, np.int64)  # one piece per tag: nothing to merge


def iteration_dirs(log_dir: Path) -> list[tuple[int, str]]:
    """``(iteration, path)`` of the ``<iteration>/`` folders of a run, by iteration."""
    try:
        entries = list(os.scandir(log_dir))
    except FileNotFoundError:
        return []
    return sorted((int(e.name), e.path) for e in entries
                  if e.name.lstrip("-").isdigit() and e.is_dir())


def load_meta(cpkl: Path) -> dict[str, Any]:
    """The ``.meta`` next to a figure's ``.cpkl`` (empty dict if missing or unreadable)."""
    try:
        meta = json.loads(cpkl.with_suffix(".meta").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
