"""The Runs tab's data: one row per config below the served folder (no panel import here).

A row holds the config's run (its timestamp folder), its status (done / failed / pending /
running, with the error), every config value that differs between the configs shown, the
scalars the experiment returned and the last / min / max of each logged scalar. Configs of an
experiment run come from its ``runs.json`` (so failed and pending ones are listed too); folders
a Logger wrote outside an experiment run are listed with their logs only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PyexpError
from ..result import Result
from ..store import CLAIM_FILE, CONFIG_FILE, RUNS_FILE, Run, result_path, result_stamp
from .data import flatten_config, varying_keys

#: Columns every table has, before the config, result and logged-scalar columns.
FIXED_COLUMNS = ("run", "config", "status")
#: A result.pkl larger than this is not unpickled for the table (it is not a dict of scalars).
MAX_RESULT_BYTES = 1 << 20
STATUSES = ("done", "failed", "pending", "running")


@dataclass
class RunRow:
    """One config: where it is, how it ended, what it returned."""

    name: str  # its folder relative to the served folder ("/"-separated)
    run: str  # the folder of its run (timestamp), relative to the served folder
    config_name: str
    status: str  # one of STATUSES, or "" for a log folder outside any experiment run
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


def _manifest_folders(root: Path) -> list[Path]:
    """Run folders (holding runs.json) below ``root``; config folders are not descended into."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if RUNS_FILE in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


class RunsIndex:
    """Every config below ``root`` with its status, re-read cheaply as runs progress.

    Statuses are re-read on every :meth:`rows` call (a header read each); a result is unpickled
    once per version of its file.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._results: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._configs: dict[str, tuple[str, dict[str, Any]]] = {}

    def rows(self, log_runs: list[str]) -> list[RunRow]:
        """Rows for every config of every run below the folder, plus ``log_runs`` not among them."""
        locked = _locked_inodes()
        rows: list[RunRow] = []
        seen: set[str] = set()
        for folder in _manifest_folders(self.root):
            try:
                dirs = Run(folder).manifest().dirs
            except (PyexpError, OSError):
                continue
            run = folder.relative_to(self.root).as_posix()
            for dirname in dirs:
                path = folder / dirname
                name = path.relative_to(self.root).as_posix()
                seen.add(name)
                rows.append(self._row(name, run, path, locked, experiment=True))
        for name in log_runs:
            if name not in seen:
                run = name.rpartition("/")[0]
                rows.append(self._row(name, run, self.root / name, locked, experiment=False))
        return rows

    def _row(self, name: str, run: str, path: Path, locked: set[tuple[int, int]],
             experiment: bool) -> RunRow:
        config_name, config = self._config(name, path)
        outcome = Result(config_name, lambda: {}, path)
        status, error = outcome.status, outcome.error
        if status == "pending":
            error = None  # nothing went wrong: it has not run (yet)
            if _claimed(path, locked):
                status = "running"
            elif not experiment:
                status = ""
        result = self._result(name, outcome) if status == "done" else {}
        return RunRow(name, run, config_name, status, error, config, result)

    def _config(self, name: str, path: Path) -> tuple[str, dict[str, Any]]:
        cached = self._configs.get(name)
        if cached is None:
            try:
                with open(path / CONFIG_FILE, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = {}
            data = data if isinstance(data, dict) else {}
            flat = flatten_config(data)
            flat.pop("out", None)
            label = str(flat.pop("name", path.name))
            cached = self._configs[name] = (label, flat)
        return cached

    def _result(self, name: str, outcome: Any) -> dict[str, Any]:
        stamp = result_stamp(outcome.out)
        cached = self._results.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        scalars: dict[str, Any] = {}
        try:
            small = os.stat(result_path(outcome.out)).st_size <= MAX_RESULT_BYTES
            value = outcome.result if small else None
        except Exception:  # noqa: BLE001 - gone meanwhile, or its classes no longer import
            value = None
        if isinstance(value, dict):
            for key, item in flatten_config(value).items():
                if _is_scalar(item):
                    scalars[key] = item
        elif _is_scalar(value) and value is not None:
            scalars["value"] = value
        self._results[name] = (stamp, scalars)
        return scalars


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, (int, float)):
        return True
    try:  # numpy scalars and 0-d arrays
        import numpy as np

        return isinstance(value, np.generic) and value.ndim == 0 and value.dtype.kind in "biuf"
    except ImportError:  # pragma: no cover - numpy comes with the viewer extra
        return False


def _locked_inodes() -> set[tuple[int, int]]:
    """(device, inode) of every file someone holds a lock on (Linux; empty elsewhere)."""
    locked: set[tuple[int, int]] = set()
    try:
        with open("/proc/locks", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return locked
    for line in lines:
        parts = line.split()
        for part in parts:
            if part.count(":") == 2 and not part.endswith(":"):
                major, minor, inode = part.split(":")
                try:
                    locked.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
                except ValueError:
                    pass
                break
    return locked


def _claimed(path: Path, locked: set[tuple[int, int]]) -> bool:
    """Whether a pyexp process holds this config's claim (it is running right now)."""
    try:
        st = os.stat(path / CLAIM_FILE)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in locked


# --------------------------------------------------------------------------- the table
def stat_columns(tag: str) -> tuple[str, str, str]:
    """Column names of a logged scalar's last, min and max value."""
    return f"{tag} (last)", f"{tag} (min)", f"{tag} (max)"


def table(rows: list[RunRow], stats: dict[str, dict[str, Any] | None]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and the records of the Runs table.

    Args:
        rows: The configs to show.
        stats: Per run name, the ``ScalarStats`` of each logged tag (None: not read yet).

    Returns:
        ``(columns, records)``: the fixed columns, the config keys whose values differ between
        ``rows``, ``result.<key>`` per returned scalar, then last/min/max per logged tag. Each
        record also carries ``name`` (the run's folder) and ``error``.
    """
    keys = varying_keys({row.name: row.config for row in rows}) if len(rows) > 1 else []
    results = sorted({key for row in rows for key in row.result})
    tags = sorted({tag for row in rows for tag in (stats.get(row.name) or {})})
    columns = [*FIXED_COLUMNS, *keys, *(f"result.{k}" for k in results)]
    for tag in tags:
        columns += stat_columns(tag)
    records = []
    for row in rows:
        record: dict[str, Any] = dict.fromkeys(columns)
        record.update(name=row.name, run=row.run, config=row.config_name, status=row.status,
                      error=row.error or "")
        for key in keys:
            record[key] = _cell(row.config.get(key))
        for key in results:
            record[f"result.{key}"] = _cell(row.result.get(key))
        for tag, st in (stats.get(row.name) or {}).items():
            last, low, high = stat_columns(tag)
            record[last], record[low], record[high] = _cell(st.last), _cell(st.min), _cell(st.max)
        records.append(record)
    return columns, records


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else None
    try:
        return value.item()  # numpy scalar
    except AttributeError:
        return str(value)


def to_csv(columns: list[str], records: list[dict[str, Any]]) -> str:
    """The table as CSV text: the shown columns, plus each run's folder and error."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = [*columns, "error", "folder"]
    writer.writerow(header)
    for record in records:
        writer.writerow(["" if record.get(c) is None else record.get(c)
                         for c in (*columns, "error")] + [record["name"]])
    return out.getvalue()


def numeric_columns(columns: list[str], records: list[dict[str, Any]]) -> list[str]:
    """Columns whose values are all numbers (or missing), at least one present."""
    found = []
    for column in columns:
        values = [r.get(column) for r in records if r.get(column) is not None]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            found.append(column)
    return found


def parallel_coordinates(keys: list[str], metric: str, records: list[dict[str, Any]],
                         *, colorscale: str = "Viridis") -> dict[str, Any]:
    """A Plotly parallel-coordinates figure: one axis per config key, the metric last.

    Numbers keep their scale; text and booleans become evenly spaced categories. Rows
    without a value for the metric are left out.
    """
    rows = [r for r in records if isinstance(r.get(metric), (int, float))
            and not isinstance(r.get(metric), bool)]
    dimensions = []
    for key in [*keys, metric]:
        values = [r.get(key) for r in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            dimensions.append({"label": key, "values": [float(v) for v in values]})
            continue
        labels = sorted({json.dumps(v) if not isinstance(v, str) else v for v in values})
        code = {label: i for i, label in enumerate(labels)}
        dimensions.append({"label": key, "tickvals": list(range(len(labels))), "ticktext": labels,
                           "values": [code[json.dumps(v) if not isinstance(v, str) else v]
                                      for v in values]})
    metric_values = [float(r[metric]) for r in rows]
    trace = {"type": "parcoords", "dimensions": dimensions,
             "line": {"color": metric_values, "colorscale": colorscale, "showscale": True,
                      "colorbar": {"title": {"text": metric}}},
             "meta": {"runs": [r["name"] for r in rows]}}
    layout = {"margin": {"l": 70, "r": 70, "t": 90, "b": 30}, "paper_bgcolor": "white",
              "title": {"text": f"configs against {metric}", "font": {"size": 14},
                        "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top"}}
    return {"data": [trace], "layout": layout}
