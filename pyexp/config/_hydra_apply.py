"""Apply parsed Hydra value overrides to plain config dicts (no OmegaConf per config).

The semantics follow Hydra's ``ConfigLoaderImpl._apply_overrides_to_config`` where
they make sense for plain dicts, with one deliberate difference: ``key=value`` on a
key the config lacks adds it (pyexp configs come from Python code, not a schema).

=============  ===============================================================
``key=v``      set (nested dicts are created; a dict value merges into a dict)
``+key=v``     add; error if the key already holds a value (use ``++`` or drop +)
``++key=v``    add or replace
``~key``       delete; error if missing.  ``~key=v`` deletes only if it equals v
=============  ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import OverrideError
from ._config import Config

SET, ADD, FORCE_ADD, DELETE = "set", "add", "force_add", "delete"

_MISSING = object()


def kind_of(override: Any) -> str:
    """SET/ADD/FORCE_ADD/DELETE for a parsed Hydra ``Override``."""
    if override.is_delete():
        return DELETE
    if override.is_add():
        return ADD
    if override.is_force_add():
        return FORCE_ADD
    return SET


def apply_value(config: Config, kind: str, key: str, value: Any, spelled: str, where: str,
                lenient: bool = False) -> None:
    """Apply one override to ``config`` in place (``spelled`` is the override as typed).

    ``lenient`` re-applies an override the config's base already received: ``+`` then
    acts like ``++`` and deleting a missing key is a no-op.
    """
    if lenient and kind == ADD:
        kind = FORCE_ADD
    parts = key.split(".")
    node: Any = config
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
        if child is _MISSING or child is None:
            if kind == DELETE and lenient:
                return
            if kind == DELETE:
                raise OverrideError(
                    f"{spelled}: cannot delete {key!r} from {where}: it does not exist"
                )
            child = Config()
            dict.__setitem__(node, part, child)
        elif not isinstance(child, Mapping):
            raise OverrideError(
                f"{spelled}: {'.'.join(parts[:depth + 1])!r} in {where} holds "
                f"{type(child).__name__} {child!r}, not a dict, so {key!r} cannot be set below it"
            )
        node = child
    last = parts[-1]
    current = node.get(last, _MISSING)
    if kind == DELETE:
        if current is _MISSING and lenient:
            return
        if current is _MISSING:
            raise OverrideError(f"{spelled}: cannot delete {key!r} from {where}: it does not exist")
        if value is not None and value != current and not lenient:
            raise OverrideError(
                f"{spelled}: not deleted, {key!r} in {where} is {current!r}, not {value!r}; "
                f"use ~{key} to delete whatever it holds"
            )
        del node[last]
        return
    if kind == ADD and current is not _MISSING and current is not None and not isinstance(value, (dict, list)):
        raise OverrideError(
            f"{spelled}: {where} already has {key!r} (= {current!r}); "
            f"drop the '+' to change it ({spelled[1:]}) or use '++' to add-or-change it (+{spelled})"
        )
    if isinstance(value, Mapping) and isinstance(current, Mapping):
        dict.__setitem__(node, last, _merged(current, value))
    else:
        dict.__setitem__(node, last, Config({"v": value})["v"] if isinstance(value, (dict, list)) else value)


def _merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    out = Config(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            dict.__setitem__(out, k, _merged(out[k], v))
        else:
            out[k] = v
    return out
