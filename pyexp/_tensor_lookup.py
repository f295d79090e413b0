"""Element lookups behind Tensor's queries: names, glob matches, dotted paths, equality.

Split from :mod:`pyexp.tensor` along the seam between the grid (shape, axes, indexing) and
what a query asks of one element (``results["exp_*"]``, ``results[{"config.lr": 0.1}]``,
``"config.mlp.width"`` on a Result, a Config or a plain dict), and the errors for a query
that matches nothing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from .errors import NoMatchError

MISSING = object()

# A leading ``config.`` / ``cfg.`` names the element's config: on a Result it is an attribute,
# on a plain config it is the element itself.
_CONFIG_PREFIXES = ("config", "cfg")


def name_of(x: Any) -> Any:
    """The element's ``name`` (key or attribute), or MISSING."""
    if isinstance(x, Mapping):
        return x.get("name", MISSING)
    try:
        return getattr(x, "name")
    except AttributeError:
        return MISSING


def glob_mask(data: list[Any], pattern: str) -> list[bool]:
    """Which elements' names match the glob ``pattern`` (``fnmatch`` syntax, case-sensitive)."""
    compiled = re.compile(fnmatch.translate(pattern), re.DOTALL)
    out = []
    for x in data:
        name = name_of(x)
        out.append(name is not MISSING and name is not None and compiled.match(str(name)) is not None)
    return out


def dict_mask(data: list[Any], query: Mapping[Any, Any]) -> list[bool]:
    """Which elements satisfy every ``dotted.path: value`` constraint of ``query``.

    A value may be a callable (a predicate on the found value) or a dict (a recursive
    subset). Raises:
        NoMatchError: No element has one of the query's paths (the message lists the
            paths the elements do have and the closest ones).
    """
    keep = [True] * len(data)
    for key, expected in flatten(query).items():
        column = _column(data, key.split("."))
        if data and all(v is MISSING for v in column):
            raise NoMatchError(_missing_key_message(data[0], key, query))
        for i, got in enumerate(column):
            if keep[i] and (got is MISSING or not matches(got, expected)):
                keep[i] = False
    return keep


def matches(got: Any, expected: Any) -> bool:
    """One constraint: a predicate, an (empty) dict subset, or equality tolerant of JSON round trips."""
    if isinstance(expected, Mapping):
        return isinstance(got, Mapping) and all(k in got and matches(got[k], v) for k, v in expected.items())
    if callable(expected):
        return bool(expected(got))
    return equal(got, expected)


def equal(got: Any, expected: Any) -> bool:
    """``got == expected``, with lists and tuples alike (runs.json and config.json turn tuples into lists)."""
    if got is expected:
        return True
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(equal(a, b) for a, b in zip(got, expected))
    try:
        return bool(got == expected)
    except Exception:  # an exotic __eq__ (numpy arrays, ...) that cannot say yes or no
        return False


def resolve_element(x: Any, path: list[str]) -> Any:
    """Resolve a dotted path on an element.

    A plain config accepts a leading ``config.``/``cfg.`` (it *is* the config); a Result
    accepts a path without it (``"learning_rate"`` falls back to ``config.learning_rate``).
    """
    if isinstance(x, Mapping):
        if path[0] in _CONFIG_PREFIXES and path[0] not in x:
            return _resolve(x, path[1:])
        return _resolve(x, path)
    got = _resolve(x, path)
    if got is MISSING and path[0] not in _CONFIG_PREFIXES:
        config = getattr(x, "config", MISSING)
        if isinstance(config, Mapping):
            return _resolve(config, path)
    return got


def flatten(config: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": leaf}`` (empty dicts are leaves).

    Queries go through it too: ``{"mlp": {"width": 32}}`` means ``{"mlp.width": 32}``, and an
    empty dict value matches any dict at that path.
    """
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def no_name_match(data: list[Any], pattern: str) -> NoMatchError:
    """The error for a glob that matched nothing, with the closest names when some are close."""
    names = [str(n) for n in (name_of(x) for x in data) if n is not MISSING and n is not None]
    hint = _closest(pattern, names)
    if not hint:
        shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
        hint = f"; the names are {shown}" if names else "; the Tensor is empty"
    return NoMatchError(f"no element's name matches {pattern!r}{hint}")


def no_dict_match(data: list[Any], query: Mapping[Any, Any]) -> NoMatchError:
    """The error for a dict query that matched nothing: which values each key does take."""
    parts = []
    for key, expected in flatten(query).items():
        if callable(expected) and not isinstance(expected, Mapping):
            continue
        seen: list[Any] = []
        for got in _column(data, key.split(".")):
            if got is not MISSING and not any(equal(got, s) for s in seen):
                seen.append(got)
        shown = ", ".join(repr(v) for v in seen[:8]) + (", ..." if len(seen) > 8 else "")
        parts.append(f"{key} takes {shown}")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return NoMatchError(f"no element matches {dict(query)!r}{detail}")


def _closest(word: str, candidates: list[str]) -> str:
    import difflib  # only when a query failed: not on the import path of every report

    close = difflib.get_close_matches(word, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _missing_key_message(first: Any, key: str, query: Mapping[Any, Any]) -> str:
    head = key.split(".")[0]
    if isinstance(first, Mapping):
        config, where = first, "the configs"
    else:
        config = getattr(first, "config", None)
        where = f"the {type(first).__name__}s' configs"
    if not isinstance(config, Mapping):
        return f"no element has {key!r} (query {dict(query)!r}); the first element is a {type(first).__name__}"
    prefix = f"{head}." if head in _CONFIG_PREFIXES else ""
    keys = [prefix + k for k in flatten(config) if k != "out"]
    shown = ", ".join(repr(k) for k in keys[:20]) + (", ..." if len(keys) > 20 else "")
    return f"no element has {key!r} (query {dict(query)!r}); {where} have {shown}{_closest(key, keys)}"


def _resolve(obj: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(obj, Mapping):
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
    """``resolve_element`` of one path on every element, inlined for dict nodes (the hot loop of dict filters)."""
    tail = path[1:]
    leading_config = path[0] in _CONFIG_PREFIXES
    out = []
    append = out.append
    for x in data:
        if isinstance(x, dict):
            node: Any = x
            for part in tail if leading_config and path[0] not in x else path:
                node = node.get(part, MISSING) if isinstance(node, dict) else _resolve(node, [part])
                if node is MISSING:
                    break
            append(node)
        else:
            append(resolve_element(x, path))
    return out

