"""Scalar summaries: the numbers and short strings of a result, stored as JSON beside it.

When a config finishes, its return value is summarised here and the summary is recorded with
its outcome. Tables (``to_pandas``, ``python -m pyexp export``, ``compare``) read the summary
and never unpickle a result, so a sweep whose results hold models or arrays exports as fast
as one that returns a few floats.

A summary is ``{"scalars": {column: value}, "complete": bool}``: a scalar return value is the
column ``result``; a dict's scalar entries are ``result.<key>`` (nested dicts dotted,
``result.val.acc``); ``complete`` is False when some part of the result is not a scalar (it
then lives only in ``result.pkl``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Longer strings are not scalars for a table (they stay in result.pkl).
MAX_STRING = 200
#: A dict with more entries than this is data, not a row of a table.
MAX_KEYS = 1000
RESULT_COLUMN = "result"


def scalar(value: Any) -> tuple[bool, Any]:
    """``(True, plain value)`` when ``value`` is a JSON-storable scalar (numpy scalars included)."""
    if value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, (int, float)):
        if isinstance(value, int) and abs(value) >= 2**63:
            return False, None  # parquet and pandas hold 64-bit integers
        return True, int(value) if isinstance(value, int) else float(value)
    if isinstance(value, str):
        return (True, value) if len(value) <= MAX_STRING else (False, None)
    # numpy (and friends) scalars and 0-d arrays: a `.item()` that gives back a Python scalar.
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        try:
            item = value.item()
        except Exception:  # noqa: BLE001 - anything odd is simply not a scalar
            return False, None
        if isinstance(item, (bool, int, float, str)) or item is None:
            return scalar(item)
    return False, None


#: The mark of a class-based experiment's stored state (see pyexp.checkpoint), which carries
#: the summary of the instance's attributes computed before they were pickled.
_EXPERIMENT_STATE = "pyexp_experiment"


def summarize(value: Any) -> dict[str, Any]:
    """The scalar summary of a result value (see the module docstring)."""
    if isinstance(value, dict) and value.get(_EXPERIMENT_STATE) == 1 and isinstance(value.get("summary"), dict):
        return value["summary"]
    ok, plain = scalar(value)
    if ok:
        return {"scalars": {RESULT_COLUMN: plain}, "complete": True}
    if not isinstance(value, Mapping) or len(value) > MAX_KEYS:
        return {"scalars": {}, "complete": False}
    scalars: dict[str, Any] = {}
    complete = _flatten(value, RESULT_COLUMN + ".", scalars, 0)
    return {"scalars": scalars, "complete": complete}


def _flatten(mapping: Mapping[Any, Any], prefix: str, out: dict[str, Any], depth: int) -> bool:
    complete = True
    for key, item in mapping.items():
        column = f"{prefix}{key}"
        ok, plain = scalar(item)
        if ok:
            out[column] = plain
        elif isinstance(item, Mapping) and depth < 4 and len(out) + len(item) <= MAX_KEYS:
            complete = _flatten(item, column + ".", out, depth + 1) and complete
        else:
            complete = False
    return complete


def track_last_scalars(logger: Any) -> dict[str, float]:
    """Keep the last value of every scalar ``logger`` is given, in the returned dict.

    Tables show the last value of each logged scalar; recording it with the outcome spares
    them reading every config's whole log. Costs one dict store per ``add_scalar``.
    """
    last: dict[str, float] = {}
    log = logger.add_scalar

    def add_scalar(tag: str, value: float) -> None:
        log(tag, value)  # validates: only what was logged is kept
        last[tag] = float(value)

    add_scalar.__doc__ = log.__doc__
    logger.add_scalar = add_scalar
    return last
