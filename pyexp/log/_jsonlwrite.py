"""Writing the JSONL log format (in the Logger's writer thread); ``_jsonlread`` reads it.

```
log_dir/.pyexp
log_dir/scalars.jsonl                 {"it": N, "tag": "...", "value": V, "ts": T}
log_dir/text.jsonl                    {"it": N, "tag": "...", "text": "...", "ts": T}
log_dir/<it>/figures/<tag>.cpkl       cloudpickled figure
log_dir/<it>/figures/<tag>.meta       {"interactive": bool, "ts": T, "png": base64}
log_dir/<it>/checkpoints/<tag>.cpkl   cloudpickled object
```
The lines are the spec's, plus the wall-clock stamp ``ts`` (seconds since the epoch) under the
key the original pyexp writes.
Tags are percent-quoted in file names ("train/loss" -> "train%2Floss"). Pickles are written to a
temporary name and renamed, ``.meta`` before ``.cpkl``, so a visible ``.cpkl`` is always whole.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .._files import atomic_write_bytes
from ._constants import CHECKPOINT, FIGURE, SCALARS_FILE, TEXT, TEXT_FILE

_SAFE = " -_.,=+@()[]{}"
_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


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
                               f'"ts": {wall_time!r}}}\n')
                continue
            it, tag, payload, wall_time, kind = item
            if kind == TEXT:
                texts.append(json.dumps({"it": it, "tag": tag, "text": payload,
                                         "ts": wall_time}) + "\n")
            elif kind == FIGURE:
                pickled, png, interactive = payload
                folder = self.log_dir / str(it) / "figures"
                folder.mkdir(parents=True, exist_ok=True)
                name = tag_to_name(tag)
                meta = {"interactive": interactive, "ts": wall_time,
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
