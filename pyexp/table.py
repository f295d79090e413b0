"""One row per config: the table behind ``to_pandas()``, ``to_parquet()`` and ``python -m pyexp export``.

Columns, in this order:

- ``run`` (the run's timestamp, when known), ``name``, ``status``, ``error``, ``stale``,
  ``reused``, ``code`` (the code fingerprint the result was computed with);
- ``config.<key>`` for every config value, nested keys dotted (``config.optimizer.lr``);
- ``result`` (a scalar return value) or ``result.<key>`` (the scalar entries of a dict);
- ``log.<tag>``: the last value of each scalar the config logged;
- ``out``: the config's folder.

Results come from the scalar summary recorded with each outcome (:mod:`pyexp.summary`), so
no ``result.pkl`` is unpickled; only results stored without a summary (by an older pyexp)
are loaded to summarise them. A result that cannot be read keeps its row, with the reason in
``error``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Sequence

from ._tensor_lookup import flatten
from .errors import ConfigError, LogError, MissingExtraError, PyexpError

FORMATS = ("parquet", "csv", "jsonl")
_LEADING = ("run", "name", "status", "error", "stale", "reused", "code")
_GROUPS = ("config.", "result", "log.")


def last_logged(reader: Any) -> dict[str, Any]:
    """``log.<tag>`` -> last value of every scalar tag ``reader`` (a LogReader) holds."""
    return {f"log.{tag}": reader[tag][1] for tag in sorted(reader.scalar_tags)}


def result_row(r: Any, logs: bool = True) -> dict[str, Any]:
    """The row of one :class:`~pyexp.result.Result` (see the module docstring for the columns)."""
    row: dict[str, Any] = {"name": r.name}
    if getattr(r, "run", None) is not None:
        row["run"] = r.run
    row["status"] = r.status
    row["error"] = r.error
    row["stale"] = r.stale
    row["reused"] = r.reused
    row["code"] = r.code.fingerprint if r.code is not None else None
    try:
        config = r.config
    except PyexpError as exc:
        config = {}
        row["error"] = row["error"] or str(exc)
    row.update(flatten({k: v for k, v in config.items() if k not in ("out", "name")}, "config."))
    row.update(r.scalars)
    if logs:
        try:
            recorded = r.logged
            if recorded is not None:
                row.update({f"log.{tag}": recorded[tag] for tag in sorted(recorded)})
            elif (reader := r.logger) is not None:
                row.update(last_logged(reader))
        except (LogError, OSError) as exc:
            row["error"] = row["error"] or f"{r.out}: cannot read the log ({exc})"
    row["out"] = str(r.out)
    return row


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column of ``rows`` in table order: leading ones, then config, result, log, the rest."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    leading = [c for c in _LEADING if c in seen]

    def group(c: str) -> int:
        for i, prefix in enumerate(_GROUPS):
            if c == prefix or c.startswith(prefix if prefix.endswith(".") else prefix + "."):
                return i
        return len(_GROUPS)

    rest = [c for c in seen if c not in _LEADING]
    # Stable within a group: config keys keep the order of the configs that introduced them.
    return leading + sorted(rest, key=lambda c: (group(c), c == "out"))


def to_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of ``rows`` with the columns in table order."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingExtraError("pandas", "export", "a results table") from None
    return pd.DataFrame(list(rows), columns=columns(rows))


def _cell(value: Any) -> Any:
    """A value fit for a CSV/Parquet column: scalars as they are, anything else as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _by_column(rows: Sequence[Mapping[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    """The table as one list per column, each list of one Parquet type."""
    data: dict[str, list[Any]] = {c: [None] * len(rows) for c in names}
    for i, row in enumerate(rows):
        for column, value in row.items():
            data[column][i] = value
    for column, values in data.items():
        kinds = set(map(type, values)) - {type(None)}
        if len(kinds) <= 1 and kinds <= {bool, int, float, str}:
            continue
        if kinds == {int, float}:
            data[column] = [None if v is None else float(v) for v in values]
            continue
        # One column holds one type in Parquet: a key that is a number in one config and a
        # string in another (or a list) becomes JSON text rather than failing the export.
        data[column] = [v if v is None or type(v) is str else json.dumps(_cell(v)) if not isinstance(_cell(v), str)
                        else _cell(v) for v in values]
    return data


def write(rows: Sequence[Mapping[str, Any]], path: str | Path, fmt: str) -> None:
    """Write ``rows`` to ``path`` as ``parquet``, ``csv`` or ``jsonl`` (one JSON object per line)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    names = columns(rows)
    path = Path(path)
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingExtraError("pyarrow", "export", "Parquet export") from None
        table = pa.table(_by_column(rows, names))
        pq.write_table(table, str(path))
    elif fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(names)
            for row in rows:
                out.writerow(["" if (v := _cell(row.get(c))) is None else v for c in names])
    else:
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                record = {c: _json_value(row[c]) for c in names if c in row}
                f.write(json.dumps(record, default=str) + "\n")


def _json_value(value: Any) -> Any:
    # Strict JSON has no NaN or infinity; null is what readers in other languages understand.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows_of(elements: Iterable[Any], logs: bool = True) -> list[dict[str, Any]]:
    """The rows of a Tensor's elements: Results (or class-based experiment instances), plain
    configs (``name`` and their flattened keys), or anything with ``name``/``config``/``result``."""
    rows = []
    for x in elements:
        if _is_result(x):
            rows.append(result_row(x, logs))
        elif _is_result(x.__dict__.get("_pyexp_result") if hasattr(x, "__dict__") else None):
            rows.append(result_row(x.__dict__["_pyexp_result"], logs))  # a class-based experiment
        elif isinstance(x, Mapping):
            rows.append({"name": x.get("name"), **{k: v for k, v in flatten(x, "").items() if k != "name"}})
        else:
            rows.append(_generic_row(x))
    return rows


def _is_result(x: Any) -> bool:
    """A :class:`pyexp.result.Result` (recognised by type name: tables sit below results)."""
    return any(klass.__name__ == "Result" and klass.__module__ == "pyexp.result" for klass in type(x).__mro__)


def _generic_row(x: Any) -> dict[str, Any]:
    """A row for a Result-like object: its name, config, error and result, as far as it has them."""
    row: dict[str, Any] = {"name": getattr(x, "name", None)}
    config = getattr(x, "config", None)
    if isinstance(config, Mapping):
        row.update(flatten({k: v for k, v in config.items() if k not in ("out", "name")}, "config."))
    row["error"] = getattr(x, "error", None)
    result = getattr(x, "result", None)
    if isinstance(result, Mapping):
        row.update(flatten(result, "result."))
    elif result is not None:
        row["result"] = result
    return row
