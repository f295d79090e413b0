"""merge(): apply an update to a config, with ``a.b`` paths and ``**key`` deep merges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ._config import Config, _copy

# One parsed update entry: (deep-merge?, path segments, the key as written, value).
_Op = tuple[bool, tuple[Any, ...], Any, Any]


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    """Return ``base`` updated by ``update``; neither input is changed.

    * ``"mlp.width": 64`` sets one nested value; missing parents are created and a
      parent that is not a dict is replaced by one (``merge({"a": 1}, {"a.b": 2})``
      gives ``{"a": {"b": 2}}``).
    * ``"mlp": {...}`` replaces the whole value of ``mlp``.
    * ``"**mlp": {...}`` (also ``"**a.b"``) deep-merges into the existing dict; its
      value must be a dict.

    Args:
        base: The config to start from.
        update: Keys to set, applied in order.

    Returns:
        A new Config; its nested containers are copies, never shared with the inputs.

    Raises:
        ConfigError: (a ValueError) ``update`` is not a dict, a key has an empty path
            segment, or a ``**`` key's value is not a dict.

    Example:
        >>> merge({"bsdf": {"type": "Diffuse", "roughness": 0.1}}, {"**bsdf": {"type": "Test"}})
        Config({'bsdf': {'type': 'Test', 'roughness': 0.1}})
    """
    return apply_ops(base, parse_update(update))


def parse_update(update: Mapping[str, Any]) -> list[_Op]:
    """Split every key of ``update`` once, so a sweep can apply it to many bases cheaply."""
    if not isinstance(update, Mapping):
        raise ConfigError(f"a config update must be a dict, got {type(update).__name__}: {update!r}")
    ops: list[_Op] = []
    for key, value in update.items():
        if isinstance(key, str):
            deep = key.startswith("**")
            path = key[2:] if deep else key
            parts = tuple(path.split(".")) if path else (path,)
            if any(p == "" for p in parts) and path:
                raise ConfigError(f"config key {key!r} has an empty path segment; write e.g. 'model.width'")
            if deep and not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key {key!r} deep-merges a dict, but its value is {value!r} "
                    f"({type(value).__name__}); give a dict, or drop the '**' to replace {path!r}"
                )
        else:
            deep, parts = False, (key,)
        ops.append((deep, parts, key, value))
    return ops


def apply_ops(base: Mapping[str, Any], ops: list[_Op]) -> Config:
    """Apply parsed update entries to a copy of ``base``."""
    result = _copy(base) if isinstance(base, Mapping) else _bad_base(base)
    for deep, parts, key, value in ops:
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                # A missing parent, or a leaf the dotted key reaches through: it becomes a dict,
                # as in the original pyexp (``{"a": 1}`` + ``{"a.b": 2}`` -> ``{"a": {"b": 2}}``).
                child = dict.__new__(Config)
                dict.__setitem__(node, part, child)
            node = child
        last = parts[-1]
        if deep:
            current = node.get(last)
            if isinstance(current, dict) and isinstance(value, Mapping):
                _deep_into(current, value, key)
                continue
        dict.__setitem__(node, last, _copy(value))
    return result


def _deep_into(target: dict[Any, Any], update: Mapping[Any, Any], where: Any) -> None:
    """Recursively merge ``update`` into ``target`` (a private copy, so mutating it is fine)."""
    for deep, parts, key, value in parse_update(update):
        node = target
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = dict.__new__(Config)
                dict.__setitem__(node, part, child)
            node = child
        current = node.get(parts[-1])
        if isinstance(current, dict) and isinstance(value, Mapping):
            _deep_into(current, value, key)
        else:
            dict.__setitem__(node, parts[-1], _copy(value))


def _bad_base(base: Any) -> Config:
    raise ConfigError(f"merge() needs a dict as base config, got {type(base).__name__}: {base!r}")
