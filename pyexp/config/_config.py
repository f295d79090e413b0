"""Config: a plain ``dict`` whose keys can also be read and written as attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Leaves that are never copied: checking the exact type first keeps copying
# a 10 000-config sweep cheap.
_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


class Config(dict):
    """A dict with attribute access; nested dicts (also inside lists/tuples) become Config.

    ``cfg["lr"]`` and ``cfg.lr`` read the same value, ``cfg.lr = 0.1`` writes it,
    ``del cfg.lr`` removes it. A Config is a real ``dict``: it pickles, deep-copies
    and ``json.dumps`` like one. Building a Config copies every nested container
    (dicts, lists, tuples); leaf values are shared.

    Keys that are also dict methods (``items``, ``keys``, ``values``, ``get``,
    ``copy``, ``update``, ``pop``...) read as the method: use ``cfg["items"]``.

    Args:
        mapping: A mapping (or iterable of key/value pairs) to copy.
        **kwargs: More keys, applied after ``mapping``.
    """

    __slots__ = ()

    def __init__(self, mapping: Any = None, /, **kwargs: Any) -> None:
        super().__init__()
        if mapping is not None:
            items = mapping.items() if isinstance(mapping, Mapping) else mapping
            for key, value in items:
                dict.__setitem__(self, key, _copy(value))
        for key, value in kwargs.items():
            dict.__setitem__(self, key, _copy(value))

    def __getattr__(self, key: str) -> Any:
        # Private/dunder lookups come from pickle, copy, hasattr(…, "__array__") and
        # friends: fail fast and plainly, never look them up as config keys.
        if key[:1] == "_":
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(_missing_message(self, key)) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key[:1] == "_":
            raise AttributeError(f"cannot set private attribute {key!r} on a Config; use cfg[{key!r}] = ...")
        dict.__setitem__(self, key, _copy(value))

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(_missing_message(self, key)) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, _copy(value))

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {k for k in self if isinstance(k, str) and k.isidentifier()})

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Like ``dict.update``; nested dicts become Config."""
        for key, value in dict(*args, **kwargs).items():
            dict.__setitem__(self, key, _copy(value))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Like ``dict.setdefault``; a dict default becomes Config."""
        if key not in self:
            dict.__setitem__(self, key, _copy(default))
        return self[key]

    def copy(self) -> Config:
        """A copy whose nested containers are copies too (leaf values are shared)."""
        return _copy(self)

    def __copy__(self) -> Config:
        return _copy(self)

    def __or__(self, other: Any) -> Config:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = _copy(self)
        new.update(other)
        return new

    def __ror__(self, other: Any) -> Config:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = Config(other)
        new.update(self)
        return new

    def __ior__(self, other: Any) -> Config:
        self.update(other)
        return self

    def __reduce__(self) -> Any:
        return (Config, (dict(self),))

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__reduce__()

    def to_dict(self) -> dict[Any, Any]:
        """The same data as plain nested ``dict``s and ``list``s (tuples stay tuples)."""
        return _plain(self)

    def __repr__(self) -> str:
        return f"Config({_plain(self)!r})"


def _missing_message(cfg: Config, key: str) -> str:
    import difflib

    keys = [k for k in cfg if isinstance(k, str)]
    message = f"config has no key {key!r}"
    close = difflib.get_close_matches(key, keys, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    shown = ", ".join(repr(k) for k in keys[:30]) + (", ..." if len(keys) > 30 else "")
    return message + f"; its keys are: {shown or '(none)'}"


def _copy(value: Any) -> Any:
    """Copy containers (dict -> Config, list, tuple); leave every other value as is."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is Config or kind is dict or isinstance(value, Mapping):
        # Leaves are tested inline: this loop is most of the cost of a big sweep.
        new = dict.__new__(Config)
        dict.__init__(new, {k: v if type(v) in _ATOMS else _copy(v) for k, v in value.items()})
        return new
    if kind is list:
        return [v if type(v) in _ATOMS else _copy(v) for v in value]
    if kind is tuple:
        return tuple([v if type(v) in _ATOMS else _copy(v) for v in value])
    return value


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    if kind is tuple:
        return tuple(_plain(v) for v in value)
    return value
