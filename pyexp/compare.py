"""Compare two runs of one experiment, and show how its code changed since a run.

Both read only what the runs stored: ``runs.json``, each ``config.json`` and the outcome
records (scalar summaries and code fingerprints). No result is unpickled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .store import Run
from .table import flatten

#: Printed when the two runs have nothing to report for a section.
_NONE = "  (none)"


def _configs(run: Run) -> dict[str, dict[str, Any]]:
    """name -> flattened config of every config in ``run`` (without ``out``)."""
    from .result import config_names

    manifest = run.manifest()
    run.check_configs()
    found = {}
    for dirname, name in zip(manifest.dirs, config_names(run)):
        config = {k: v for k, v in run.read_config(dirname).items() if k != "out"}
        found[name] = {"dir": dirname, "config": flatten(config, "")}
    return found


def _outcome(run: Run, dirname: str) -> tuple[str, dict[str, Any]]:
    outcome = run.outcome(dirname)
    if outcome is None:
        return "pending", {}
    if not outcome.ok:
        return "failed", {}
    summary = outcome.summary
    return "done", dict(summary.get("scalars") or {}) if isinstance(summary, dict) else {}


def _difference(a: Any, b: Any) -> Any:
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return b - a
    return None


def compare_runs(a: Run, b: Run) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b``.

    Returns:
        ``{"experiment", "a", "b", "added": [names], "removed": [names],
        "changed": [{"name", "changes": {key: [old, new]}}],
        "results": [{"name", "status": [a, b], "scalars": {column: {"a", "b", "diff"}}}]}``:
        ``changed`` lists configs of the same name whose values differ (a key missing on one
        side is null there); ``results`` covers every config in both runs, with ``diff`` = b - a
        for numbers (null otherwise, or when a side lacks the value).
    """
    left, right = _configs(a), _configs(b)
    changed, results = [], []
    for name in (n for n in left if n in right):
        ca, cb = left[name]["config"], right[name]["config"]
        changes = {k: [ca.get(k), cb.get(k)] for k in sorted(ca.keys() | cb.keys()) if ca.get(k) != cb.get(k)
                   or (k in ca) != (k in cb)}
        if changes:
            changed.append({"name": name, "changes": changes})
        status_a, sa = _outcome(a, left[name]["dir"])
        status_b, sb = _outcome(b, right[name]["dir"])
        scalars = {}
        for column in sorted(sa.keys() | sb.keys()):
            va, vb = sa.get(column), sb.get(column)
            scalars[column] = {"a": va, "b": vb, "diff": _difference(va, vb)}
        results.append({"name": name, "status": [status_a, status_b], "scalars": scalars})
    return {"experiment": a.path.parent.name, "a": a.timestamp, "b": b.timestamp,
            "added": [n for n in right if n not in left], "removed": [n for n in left if n not in right],
            "changed": changed, "results": results}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return "-" if value is None else str(value)


def _signed(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:+.6g}" if isinstance(value, float) else f"{value:+d}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(row, widths))).rstrip() for row in rows]


def format_comparison(found: dict[str, Any]) -> str:
    """:func:`compare_runs`' answer as text for a terminal."""
    lines = [f"{found['experiment']}: {found['a']} -> {found['b']}", ""]
    lines.append(f"added configs ({len(found['added'])}):")
    lines += [f"  + {n}" for n in found["added"]] or [_NONE]
    lines.append(f"removed configs ({len(found['removed'])}):")
    lines += [f"  - {n}" for n in found["removed"]] or [_NONE]
    lines.append(f"changed configs ({len(found['changed'])}):")
    for item in found["changed"]:
        what = "; ".join(f"{k}: {_show(old)} -> {_show(new)}" for k, (old, new) in item["changes"].items())
        lines.append(f"  ~ {item['name']}: {what}")
    if not found["changed"]:
        lines.append(_NONE)
    lines.append(f"results of the {len(found['results'])} configs in both runs (diff = {found['b']} - {found['a']}):")
    rows = [["config", "result", found["a"], found["b"], "diff"]]
    for item in found["results"]:
        if item["status"] != ["done", "done"]:
            rows.append([item["name"], "status", item["status"][0], item["status"][1], ""])
        for column, v in item["scalars"].items():
            rows.append([item["name"], column, _show(v["a"]), _show(v["b"]), _signed(v["diff"])])
    lines += _table(rows) if len(rows) > 1 else [_NONE]
    return "\n".join(lines)


def diff_code(run: Run) -> dict[str, Any]:
    """Which source files changed since ``run`` recorded its code (and, with a snapshot, which
    files of the whole work tree changed since that commit).

    Returns:
        ``{"run", "fingerprint": [then, now], "commit", "sources": {"changed", "added",
        "removed"}, "worktree": [[status, path], ...] | None}``.

    Raises:
        StoreError: The run recorded neither its code nor a snapshot.
    """
    from .errors import StoreError
    from .fingerprint import diff, now_of
    from .history import recorded_code

    meta = run.manifest().meta
    recorded = recorded_code(run)
    commit = recorded.commit if recorded is not None else meta.get("git_commit")
    if recorded is None and not commit:
        raise StoreError(f"{run.runs_file}: this run recorded neither its code nor a git snapshot "
                         "(it predates code fingerprints, or ran with --no-stash outside git)")
    found: dict[str, Any] = {"run": run.timestamp, "commit": commit, "fingerprint": None, "sources": None,
                             "worktree": None}
    if recorded is not None:
        now = now_of(recorded)
        found["fingerprint"] = [recorded.fingerprint, now.fingerprint]
        changes = diff(recorded, now)
        found["sources"] = {"changed": changes.changed, "added": changes.added, "removed": changes.removed}
    if commit:
        from .gitstate import changed_since

        where = Path(recorded.root) if recorded is not None else run.path
        found["worktree"] = [list(p) for p in changed_since(where, commit, exclude=[run.path.parent.parent])]
    return found


def format_diff_code(found: dict[str, Any]) -> str:
    """:func:`diff_code`'s answer as text for a terminal."""
    head = f"run {found['run']}"
    if found["commit"]:
        head += f", git snapshot {found['commit'][:12]}"
    lines = [head]
    if found["sources"] is not None:
        then, now = found["fingerprint"]
        src = found["sources"]
        lines.append(f"experiment sources: fingerprint {then} then, {now} now")
        if then == now:
            lines.append("  unchanged: results of this run come from today's code")
        lines += [f"  M  {p}" for p in src["changed"]]
        lines += [f"  A  {p}  (imported now, not then)" for p in src["added"]]
        lines += [f"  D  {p}  (imported then, not now)" for p in src["removed"]]
    if found["worktree"] is not None:
        lines.append(f"work tree since the snapshot ({len(found['worktree'])} files changed):")
        lines += [f"  {status:<2} {path}" for status, path in found["worktree"]] or ["  (no changes)"]
    return "\n".join(lines)
