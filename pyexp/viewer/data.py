"""The viewer's data layer: runs below a folder, their configs, and chart-ready series.

Nothing here imports panel, bokeh or plotly, so it is unit-tested without a server. Every path
the viewer opens goes through :func:`resolve_run`, which refuses anything that resolves outside
the served folder (``..``, absolute names, symlinks pointing out).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ViewerError
from ..store import CONFIG_FILE

#: Files a LogReader opens directly inside a run folder; each must resolve inside the root.
_RUN_FILES = (".pyexp", "events.pb", "scalars.jsonl", "text.jsonl")


# --------------------------------------------------------------------------- paths
def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_run(root: Path, name: str) -> Path:
    """The folder of run ``name`` below ``root``, refusing anything that leaves ``root``.

    Raises:
        ViewerError: ``name`` is absolute, climbs out with ``..``, or resolves (through a
            symlink, also of one of its log files) outside ``root``, or is not a run.
    """
    root = Path(root).resolve()
    if not name or "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")):
        raise ViewerError(f"refused run {name!r}: run names are relative to {root}")
    path = (root / name).resolve()
    if path == root or not _inside(path, root):
        raise ViewerError(f"refused run {name!r}: it is outside the served folder {root}")
    for file in _RUN_FILES:
        target = path / file
        if target.is_symlink() and not _inside(target.resolve(), root):
            raise ViewerError(f"refused run {name!r}: {file} points outside {root}")
    if not any((path / f).is_file() for f in _RUN_FILES):
        raise ViewerError(f"no run {name!r} in {root} (no .pyexp marker or log files)")
    return path


# --------------------------------------------------------------------------- configs
def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys; lists become their JSON text."""
    flat: dict[str, Any] = {}
    if not isinstance(config, dict):
        return flat
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, dotted + "."))
        elif isinstance(value, (list, tuple)):
            flat[dotted] = json.dumps(value, default=str)
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[dotted] = value
        else:
            flat[dotted] = str(value)
    return flat


def load_run_config(root: Path, run_dir: Path) -> dict[str, Any]:
    """The flattened ``config.json`` nearest above ``run_dir`` (within ``root``); {} if none/bad."""
    root = Path(root).resolve()
    here = run_dir
    while _inside(here, root):
        path = here / CONFIG_FILE
        if path.is_file() and _inside(path.resolve(), root):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                return {}
            flat = flatten_config(data)
            flat.pop("out", None)  # an absolute path, the same information as the run name
            return flat
        if here == root:
            break
        here = here.parent
    return {}


_CLAUSE = re.compile(r"^\s*(?P<key>[^=!<>~\s]+)\s*(?P<op>!=|>=|<=|=|<|>|~)\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Clause:
    """One ``key op value`` condition on a run's flattened config."""

    key: str
    op: str
    value: Any

    def matches(self, config: dict[str, Any]) -> bool:
        if self.key not in config:
            return self.op == "!="
        have = config[self.key]
        if self.op == "~":
            return re.search(self.value, str(have)) is not None
        if self.op in ("=", "!="):
            equal = have == self.value or str(have) == str(self.value)
            return equal if self.op == "=" else not equal
        try:
            a, b = float(have), float(self.value)
        except (TypeError, ValueError):
            return False
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[self.op]


def parse_config_query(text: str) -> list[Clause]:
    """Parse ``"lr=0.01, model.depth>=2, opt~adam"`` into clauses (all must hold).

    Operators: ``= != < > <= >=`` and ``~`` (regex search). Keys are dotted config paths, with
    or without a leading ``config.``. Values are read as JSON when they parse (``0.01``,
    ``true``, ``"x"``), else as plain text.

    Raises:
        ViewerError: a clause is not ``key op value`` or a ``~`` pattern is not a valid regex.
    """
    clauses = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text or ""))):
        m = _CLAUSE.match(part)
        if not m:
            raise ViewerError(f"config filter {part!r}: write key=value, key>number or "
                              "key~regex (e.g. lr=0.01, model.depth>=2)")
        key = m["key"].removeprefix("config.")
        raw = m["value"]
        if m["op"] == "~":
            try:
                re.compile(raw)
            except re.error as exc:
                raise ViewerError(f"config filter {part!r}: bad regex ({exc})") from None
            value: Any = raw
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        clauses.append(Clause(key, m["op"], value))
    return clauses


def filter_runs(runs: list[str], configs: dict[str, dict[str, Any]], name_regex: str = "",
                config_query: str = "") -> list[str]:
    """Runs whose name matches ``name_regex`` (search) and whose config satisfies the query.

    Raises:
        ViewerError: the regex or the query is malformed.
    """
    try:
        pattern = re.compile(name_regex or "")
    except re.error as exc:
        raise ViewerError(f"run filter {name_regex!r}: bad regex ({exc})") from None
    clauses = parse_config_query(config_query)
    return [r for r in runs if pattern.search(r)
            and all(c.matches(configs.get(r, {})) for c in clauses)]


def varying_keys(configs: dict[str, dict[str, Any]]) -> list[str]:
    """Config keys whose value differs between runs (the useful ones to colour by)."""
    values: dict[str, set[str]] = {}
    for config in configs.values():
        for key, value in config.items():
            values.setdefault(key, set()).add(json.dumps(value, default=str))
    n = len(configs)
    return sorted(k for k, v in values.items()
                  if len(v) > 1 or sum(k in c for c in configs.values()) < n)


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")


def run_colors(runs: list[str], configs: dict[str, dict[str, Any]],
               color_by: str = "run") -> dict[str, str]:
    """A colour per run: by run (stable order) or by the value of config key ``color_by``."""
    if color_by in ("", "run"):
        return {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}
    keyed = {r: json.dumps(configs.get(r, {}).get(color_by), default=str) for r in runs}
    distinct = sorted(set(keyed.values()), key=_natural)
    slot = {v: i for i, v in enumerate(distinct)}
    return {r: PALETTE[slot[keyed[r]] % len(PALETTE)] for r in runs}


def _natural(text: str) -> tuple[Any, ...]:
    try:
        return (0, float(json.loads(text)), text)
    except (TypeError, ValueError):
        return (1, 0.0, text)


# --------------------------------------------------------------------------- reading logs
def scalar_arrays(reader: Any, tag: str) -> tuple[Any, Any, Any]:
    """Scalar ``tag`` of a LogReader as numpy ``(steps int64, values float64, wall times float64)``.

    The one place the viewer turns what LogReader holds into arrays.
    """
    import numpy as np

    steps, values, walls = reader.scalar_columns(tag)
    return (np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64),
            np.asarray(walls, dtype=np.float64))


def group_tags(tags: list[str] | set[str]) -> dict[str, list[str]]:
    """Tags grouped by the prefix before their first "/" (no prefix: group "")."""
    groups: dict[str, list[str]] = {}
    for tag in sorted(tags):
        groups.setdefault(tag.split("/", 1)[0] if "/" in tag else "", []).append(tag)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] != "", kv[0])))


def value_at(pairs: list[tuple[int, Any]], iteration: int) -> tuple[int, Any] | None:
    """The last ``(it, value)`` logged at or before ``iteration`` (None if none)."""
    best = None
    for it, value in pairs:
        if it <= iteration and (best is None or it >= best[0]):
            best = (it, value)
    return best
