"""Element lookups behind Tensor's queries: names, glob matches, dotted paths, equality.

Split from :mod:`pyexp.tensor` along the seam between the grid (shape, axes, indexing) and
what a query asks of one element (``results["exp_*"]``, ``results[{"config.lr": 0.1}]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MISSING = object()


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return out[::-1]


def _name_of(x: Any) -> Any:
    if isinstance(x, Mapping):
        return x.get("name", MISSING)
    try:
        return getattr(x, "name")
    except AttributeError:
        return MISSING


def _matches_glob(x: Any, pattern: re.Pattern[str]) -> bool:
    name = _name_of(x)
    return name is not MISSING and name is not None and pattern.match(str(name)) is not None


def _resolve(obj: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(obj, dict) or isinstance(obj, Mapping):
            obj = obj.get(part, MISSING)
        elif isinstance(obj, (list, tuple)) and part.lstrip("-").isdigit():
            i = int(part)
            obj = obj[i] if -len(obj) <= i < len(obj) else MISSING
        else:
            obj = getattr(obj, part, MISSING)
        if obj is MISSING:
            return MISSING
    return obj


def _column(data: list[Any], path: list[str]) -> list[Any]:
    """``_resolve_element`` of one path on every element, inlined for dict nodes (the hot loop of dict filters)."""
    tail = path[1:]
    leading_config = path[0] == "config"
    out = []
    append = out.append
    for x in data:
        if isinstance(x, dict):
            node: Any = x
            for part in tail if leading_config and "config" not in x else path:
                node = node.get(part, MISSING) if isinstance(node, dict) else _resolve(node, [part])
                if node is MISSING:
                    break
            append(node)
        else:
            append(_resolve_element(x, path, tail))
    return out


def _resolve_element(x: Any, path: list[str], tail: list[str] | None = None) -> Any:
    """Resolve on the element; plain configs also accept a leading ``config.``, results accept a missing one.

    ``tail`` is ``path[1:]`` precomputed by callers that resolve one path on many elements.
    """
    if isinstance(x, dict):
        if path[0] == "config" and "config" not in x:
            return _resolve(x, path[1:] if tail is None else tail)
        return _resolve(x, path)
    got = _resolve(x, path)
    if got is MISSING and path[0] != "config":
        config = getattr(x, "config", MISSING)
        if isinstance(config, Mapping):
            return _resolve(config, path)
    return got


def _equal(got: Any, expected: Any) -> bool:
    if got is expected:
        return True
    # JSON round trips (runs.json, config.json) turn tuples into lists.
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(_equal(a, b) for a, b in zip(got, expected))
    try:
        return bool(got == expected)
    except Exception:
        return False


def _flatten(config: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _describe(x: Any) -> str:
    if isinstance(x, Mapping):
        return f"a dict with keys {list(x)[:20]}"
    config = getattr(x, "config", None)
    if isinstance(config, Mapping):
        return f"a {type(x).__name__} whose config has keys {list(config)[:20]}"
    return f"a {type(x).__name__}"
