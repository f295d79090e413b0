"""The JSONL log format: writing (in the Logger's thread) and reading (for LogReader).

```
log_dir/.pyexp
log_dir/scalars.jsonl                 {"it": N, "tag": "...", "value": V, "wall_time": T}
log_dir/text.jsonl                    {"it": N, "tag": "...", "text": "...", "wall_time": T}
log_dir/<it>/figures/<tag>.cpkl       cloudpickled figure
log_dir/<it>/figures/<tag>.meta       {"interactive": bool, "wall_time": T, "png": base64}
log_dir/<it>/checkpoints/<tag>.cpkl   cloudpickled object
```
Tags are percent-quoted in file names ("train/loss" -> "train%2Floss"). Pickles are written to a
temporary name and renamed, ``.meta`` before ``.cpkl``, so a visible ``.cpkl`` is always whole.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .._files import atomic_write_bytes
from ._pbread import LogRewritten, check_same_file
from ._constants import CHECKPOINT, FIGURE, TEXT

SCALARS_FILE = "scalars.jsonl"
TEXT_FILE = "text.jsonl"
_SAFE = " -_.,=+@()[]{}"
_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
# One scalar line as JsonlSink writes it; tags are JSON strings (json.dumps escapes newlines).
_SCALAR_LINE = re.compile(
    rb'^\{"it": (-?\d+), "tag": ("(?:[^"\\\n]|\\.)*"), '
    rb'"value": (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|Infinity)), '
    rb'"wall_time": (\d+(?:\.\d+)?(?:e[+-]?\d+)?)\}$', re.M)


def tag_to_name(tag: str) -> str:
    """A file-name stem for ``tag`` (no separators, never hidden)."""
    name = quote(tag, safe=_SAFE)
    return "%2E" + name[1:] if name.startswith(".") else name


def name_to_tag(name: str) -> str:
    """Inverse of :func:`tag_to_name`."""
    return unquote(name)


class JsonlSink:
    """Appends JSON lines and writes per-iteration pickles (runs in the writer thread)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._scalars = open(log_dir / SCALARS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._text = open(log_dir / TEXT_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._tags: dict[str, str] = {}

    def open(self) -> None:
        from ._pbwrite import _lock

        for f in (self._scalars, self._text):
            if _lock(f):  # no other Logger is appending to it right now
                with open(f.name, "rb+") as raw:
                    _cut_partial_line(raw)

    def write(self, items: list[tuple[Any, ...]], final: bool) -> None:
        scalars: list[str] = []
        texts: list[str] = []
        tags = self._tags
        for item in items:
            if len(item) == 4:
                it, tag, value, wall_time = item
                jtag = tags.get(tag)
                if jtag is None:
                    jtag = tags[tag] = json.dumps(tag)
                number = repr(value)
                if number[-1] in "nf":
                    number = _SPECIAL[number]
                scalars.append(f'{{"it": {it}, "tag": {jtag}, "value": {number}, '
                               f'"wall_time": {wall_time!r}}}\n')
                continue
            it, tag, payload, wall_time, kind = item
            if kind == TEXT:
                texts.append(json.dumps({"it": it, "tag": tag, "text": payload,
                                         "wall_time": wall_time}) + "\n")
            elif kind == FIGURE:
                pickled, png, interactive = payload
                folder = self.log_dir / str(it) / "figures"
                folder.mkdir(parents=True, exist_ok=True)
                name = tag_to_name(tag)
                meta = {"interactive": interactive, "wall_time": wall_time,
                        "png": base64.b64encode(png).decode("ascii")}
                atomic_write_bytes(folder / f"{name}.meta", json.dumps(meta).encode())
                atomic_write_bytes(folder / f"{name}.cpkl", pickled)
            elif kind == CHECKPOINT:
                folder = self.log_dir / str(it) / "checkpoints"
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(folder / f"{tag_to_name(tag)}.cpkl", payload)
        if scalars:
            self._scalars.write("".join(scalars))
        if texts:
            self._text.write("".join(texts))
        self._scalars.flush()
        self._text.flush()

    def close(self) -> None:
        self._scalars.close()
        self._text.close()


def _cut_partial_line(f: Any) -> None:
    """After a crash mid-line, drop that partial line so new records start on a line of their own."""
    size = f.seek(0, os.SEEK_END)
    end = size
    while end > 0:
        start = max(0, end - 65536)
        f.seek(start)
        newline = f.read(end - start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    if keep != size:
        f.truncate(keep)


class JsonlSource:
    """Incrementally reads a JSONL log into a reader's index."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._offsets = {SCALARS_FILE: 0, TEXT_FILE: 0}
        self._heads: dict[str, bytes] = {}
        self._dir_mtimes: dict[Path, int] = {}
        self._warned: set[tuple[str, int]] = set()
        self._tag_cache: dict[bytes, Any] = {}

    def refresh(self, index: Any) -> bool:
        new = self._read_lines(SCALARS_FILE, index)
        new = self._read_lines(TEXT_FILE, index) or new
        return self._scan_iterations(index) or new

    def _read_lines(self, name: str, index: Any) -> bool:
        path = self.log_dir / name
        offset = self._offsets[name]
        try:
            with open(path, "rb") as f:
                self._heads[name] = check_same_file(f, offset, self._heads.get(name, b""), path)
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            if offset:
                raise LogRewritten(path) from None
            return False
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        if end == 0:
            return False
        is_scalars = name == SCALARS_FILE
        if is_scalars and self._fast_scalars(data, end, index):
            self._offsets[name] = offset + end
            return True
        loads = json.loads
        pos = 0
        scalars = index.scalars
        for line in data[:end].split(b"\n")[:-1]:
            start = pos
            pos += len(line) + 1
            if not line.strip():
                continue
            try:
                rec = loads(line)
                it = rec["it"]
                tag = rec["tag"]
                wall_time = rec.get("wall_time", 0.0)
                if is_scalars:
                    value = float(rec["value"])
                else:
                    text = rec["text"]
            except (ValueError, KeyError, TypeError) as exc:
                self._warn(path, offset + start, f"unreadable line ({exc})")
                continue
            if is_scalars:
                cols = scalars.get(tag)
                if cols is None:
                    cols = scalars[tag] = ([], [], [])
                cols[0].append(it)
                cols[1].append(value)
                cols[2].append(wall_time)
            else:
                index.add_text(tag, it, text, wall_time)
            index.iterations.add(it)
        self._offsets[name] = offset + end
        return True

    def _fast_scalars(self, data: bytes, end: int, index: Any) -> bool:
        """Decode lines exactly as JsonlSink writes them with one regex pass (~5x json.loads).

        Returns False, having read nothing, unless every line matches; the caller then parses
        line by line and warns about the odd ones.
        """
        rows = _SCALAR_LINE.findall(data, 0, end)
        if len(rows) != data.count(b"\n", 0, end):
            return False
        scalars = index.scalars
        tags = self._tag_cache
        for raw_tag in {row[1] for row in rows}.difference(tags):
            try:
                tag = json.loads(raw_tag)
            except ValueError:  # an escape JSON does not know: let the slow path warn
                return False
            cols = scalars.get(tag)
            if cols is None:
                cols = scalars[tag] = ([], [], [])
            tags[raw_tag] = cols
        add_iteration = index.iterations.add
        for it, raw_tag, value, wall_time in rows:
            cols = tags[raw_tag]
            step = int(it)
            cols[0].append(step)
            cols[1].append(float(value))
            cols[2].append(float(wall_time))
            add_iteration(step)
        return True

    def _warn(self, path: Path, offset: int, why: str) -> None:
        if (path.name, offset) not in self._warned:
            self._warned.add((path.name, offset))
            warnings.warn(f"{path}: skipped a corrupt record at byte offset {offset}: {why}",
                          stacklevel=4)

    def _scan_iterations(self, index: Any) -> bool:
        changed = False
        try:
            entries = list(os.scandir(self.log_dir))
        except FileNotFoundError:
            return False
        for entry in entries:
            if not entry.is_dir() or not _is_int(entry.name):
                continue
            it = int(entry.name)
            for kind in ("figures", "checkpoints"):
                folder = Path(entry.path) / kind
                try:
                    mtime = folder.stat().st_mtime_ns
                except FileNotFoundError:
                    continue
                if self._dir_mtimes.get(folder) == mtime:
                    continue
                if time.time_ns() - mtime > 2_000_000_000:
                    # Old enough that a coarse-grained mtime cannot hide a later change.
                    self._dir_mtimes[folder] = mtime
                for child in folder.iterdir():
                    if child.suffix != ".cpkl" or child.name.startswith("."):
                        continue
                    tag = name_to_tag(child.stem)
                    target = index.figures if kind == "figures" else index.checkpoints
                    refs = target.setdefault(tag, {})
                    if it not in refs:
                        refs[it] = ("jsonl", child)
                        index.iterations.add(it)
                        changed = True
        return changed


def _is_int(name: str) -> bool:
    return name.lstrip("-").isdigit()


def load_meta(cpkl: Path) -> dict[str, Any]:
    """The ``.meta`` next to a figure's ``.cpkl`` (empty dict if missing or unreadable)."""
    try:
        return json.loads(cpkl.with_suffix(".meta").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
