"""Reading logs in the earlier pyexp's per-iteration layout (read only: no Logger writes it).

```
log_dir/.pyexp
log_dir/<iteration>/scalars.json        {tag: value, ...}
log_dir/<iteration>/text.json           {tag: text, ...}
log_dir/<iteration>/figures/<tag>.cpkl  + <tag>.meta        (read by the JSONL source)
```
Those files hold no wall-clock stamp; a value's wall time is its file's modification time.
A file that changes after it was read makes the reader start over (``LogRewritten``): the
earlier Logger rewrote an iteration's file as values were added to it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Collection

from ._index import Batch, Index
from ._jsonlread import iteration_dirs
from ._pbread import LogRewritten

SCALARS_JSON = "scalars.json"
TEXT_JSON = "text.json"


def is_legacy(log_dir: Path) -> bool:
    """Whether any ``<iteration>/`` folder of ``log_dir`` holds a scalars.json or text.json."""
    return any(os.path.isfile(os.path.join(path, name))
               for _, path in iteration_dirs(log_dir) for name in (SCALARS_JSON, TEXT_JSON))


class LegacySource:
    """Reads each ``<iteration>/scalars.json`` and ``text.json`` once, in iteration order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.bytes_read = 0
        self._seen: dict[str, tuple[int, int]] = {}  # path -> (mtime_ns, size) when read

    def refresh(self, index: Index, kinds: Collection[str] = ("scalars", "text")) -> bool:
        """Read the iteration files not read yet (scalars and text come together)."""
        if "scalars" not in kinds and "text" not in kinds:
            return False
        batch = Batch()
        new = False
        for it, folder in iteration_dirs(self.log_dir):
            for name in (SCALARS_JSON, TEXT_JSON):
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except FileNotFoundError:
                    if path in self._seen:
                        raise LogRewritten(path) from None
                    continue
                state = (stat.st_mtime_ns, stat.st_size)
                known = self._seen.get(path)
                if known == state:
                    continue
                if known is not None:
                    raise LogRewritten(path)
                self._seen[path] = state
                data = self._load(Path(path))
                wall_time = stat.st_mtime
                for tag, value in data.items():
                    if name == TEXT_JSON:
                        index.add_text(str(tag), it, str(value), wall_time)
                    elif isinstance(value, (int, float)):
                        batch.add(str(tag), 0, it, float(value), wall_time)
                    else:
                        self._warn(path, f"the value of {tag!r} is not a number")
                new = True
        batch.commit(index)
        return new

    def _load(self, path: Path) -> dict[str, object]:
        try:
            raw = path.read_bytes()
            self.bytes_read += len(raw)
            data = json.loads(raw)
        except (OSError, ValueError) as exc:
            self._warn(str(path), f"unreadable ({exc})")
            return {}
        if not isinstance(data, dict):
            self._warn(str(path), "not a JSON object of tag: value")
            return {}
        return data

    def _warn(self, path: str, why: str) -> None:
        warnings.warn(f"{path}: skipped: {why}", stacklevel=4)
