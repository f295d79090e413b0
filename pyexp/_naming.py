"""How a config's folder is named: its sanitised name plus a hash, unique within a run.

Split from :mod:`pyexp.store` (which re-exports every name here): the store owns where files
live, this module how a config or a launcher job is turned into one safe folder name.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ._files import canonical_json
from .errors import ConfigError

#: Keys left out of the config hash: the folder itself and the Hydra/pyexp settings nodes.
HASH_EXCLUDED_KEYS = ("out", "hydra", "pyexp")

_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')

def sanitize_name(name: str) -> str:
    """A config name made safe as one directory name: ``/\\:*?"<>|`` and control chars become ``_``."""
    safe = _UNSAFE.sub("_", str(name))
    if safe in ("", ".", ".."):
        safe = safe.replace(".", "_") or "_"
    return safe


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 8-hex-digit hash of the task config: sorted JSON without ``out``, ``hydra``, ``pyexp``."""
    body = {k: v for k, v in config.items() if k not in HASH_EXCLUDED_KEYS}
    try:
        text = canonical_json(body)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"config {config.get('name')!r}: {_unjsonable_key(body)} holds a value that cannot be "
            f"stored in config.json ({exc}); use numbers, strings, bools, None, lists and dicts"
        ) from None
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _unjsonable_key(value: Any, path: str = "") -> str:
    """Dotted path of the first value json.dumps would reject (for the error message)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"key {path + str(key)!r}"
            found = _unjsonable_key(item, f"{path}{key}.")
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            found = _unjsonable_key(item, f"{path}{i}.")
            if found:
                return found
        return ""
    if value is None or isinstance(value, (str, int, float, bool, Path)):
        return ""
    return f"key {path[:-1]!r}" if path else "a value"


#: Longest config folder name prefix in bytes: file systems cap a name at 255 bytes.
_MAX_PREFIX_BYTES = 200


def folder_name(name: Any, digest: str, fallback: str = "config") -> str:
    """``<safe name>-<digest>``: the one way a config (or launcher job) folder is named."""
    prefix = sanitize_name(name) if name not in (None, "") else fallback
    # The digest keeps a truncated name unique.
    prefix = prefix.encode()[:_MAX_PREFIX_BYTES].decode(errors="ignore") or fallback
    return f"{prefix}-{digest}"


def config_dirname(config: Mapping[str, Any]) -> str:
    """The folder of a config: its name plus :func:`config_hash`."""
    return folder_name(config.get("name"), config_hash(config))


def job_dirname(name: str, overrides: list[str]) -> str:
    """The folder of a Hydra launcher job, identified by its override list (not its composed config)."""
    digest = hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:8]
    return folder_name(name, digest, fallback="job")


def plan_dirs(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The folder name of each config; raises ConfigError on a duplicate name (before anything is written)."""
    dirs, seen = [], set()
    for cfg in configs:
        dirname = config_dirname(cfg)
        name = cfg.get("name")
        key = ("name", name) if name not in (None, "") else ("dir", dirname)
        if key in seen or ("dir", dirname) in seen:
            raise ConfigError(
                f"two configs share the name {name!r}: every config needs a unique 'name' "
                "(give each variation of a sweep its own name)"
            )
        seen.add(key)
        seen.add(("dir", dirname))
        dirs.append(dirname)
    return dirs
