"""Results across runs: today's code, every run's results, one config's history, and reuse.

A run records the experiment's code when it starts (``runs.json`` -> ``"code"``: fingerprint,
per-file hashes, where imports were looked up); every outcome records the fingerprint it was
computed with. Comparing the two tells which results are stale.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError, PyexpError
from .fingerprint import CodeState, compute, now_of
from .store import Run, RunStore

#: The axis of ``experiment.results(timestamp="all")`` and of ``history()``.
RESULTS_AXIS = "result"


def recorded_code(run: Run) -> CodeState | None:
    """The code ``run`` started with, as its ``runs.json`` recorded it (None for older runs)."""
    return CodeState.from_json(run.manifest().meta.get("code"))


def latest_code(store: RunStore) -> CodeState | None:
    """The code the store's latest run recorded (a seed that spares re-reading unchanged files)."""
    for run in reversed(store.runs()):
        try:
            return recorded_code(run)
        except PyexpError:
            continue
    return None


def current_code(run: Run | None, file: Path | None, memo: dict[Any, CodeState] | None = None) -> CodeState | None:
    """The experiment's code as it is on disk today, found the way ``run`` recorded it.

    Using the run's recorded import folders makes the answer the same whether it is asked
    by the experiment's script, a notebook or ``python -m pyexp``. Without a record, the
    experiment's ``file`` is fingerprinted with today's ``sys.path``.
    """
    recorded = recorded_code(run) if run is not None else None
    if recorded is not None and os.path.isfile(os.path.join(recorded.root, recorded.file)):
        key: Any = (recorded.root, recorded.file, recorded.search)
        if memo is None or key not in memo:
            state = now_of(recorded)
            if memo is None:
                return state
            memo[key] = state
        return memo[key]
    if file is None or not file.is_file():
        return None
    if memo is not None and file in memo:
        return memo[file]
    state = compute(file, latest_code(RunStore(run.path.parent.parent, run.path.parent.name)) if run else None)
    if memo is not None:
        memo[file] = state
    return state


def record_code(file: Path, commit: str | None, store: RunStore) -> CodeState | None:
    """Phase 1: the code a fresh run starts with, or None without a file (an interactive session)."""
    if not file.is_file():
        return None
    # The latest run recorded each file's stat: only files changed since are read again.
    return compute(file, latest_code(store), commit=commit)


def code_for_execution(run: Run, file: Path, snapshot_changes: bool) -> dict[str, Any] | None:
    """Today's code (fingerprint, commit) for the outcomes of this execution, computed once.

    A fresh run recorded it in phase 1. A continued run whose code changed since it started
    gets a git snapshot of its own (with ``snapshot_changes``), so each result's commit names
    the code that computed it.
    """
    recorded = recorded_code(run)
    now = current_code(run, file)
    if now is None:
        return None
    if recorded is not None and recorded.fingerprint == now.fingerprint:
        return {"fingerprint": now.fingerprint, "commit": recorded.commit}
    commit = None
    if snapshot_changes:
        from .gitstate import snapshot

        store_root = run.path.parent
        commit = snapshot(file.parent, f"{store_root.name}/{run.timestamp}+{now.fingerprint}",
                          exclude=[store_root.parent])
    return {"fingerprint": now.fingerprint, "commit": commit}


def is_stale_header(outcome: Any, fingerprint: str | None) -> bool:
    """Whether a finished outcome records code other than ``fingerprint`` (None: unknown, never stale)."""
    code = getattr(outcome, "code", None)
    return fingerprint is not None and (not isinstance(code, dict) or code.get("fingerprint") != fingerprint)


def say_stale(stale: int, done: int, rerun: bool) -> None:
    """Tell the user how many finished results came from other code (and whether they run again)."""
    if not stale:
        return
    import sys

    if rerun:
        print(f"pyexp: running {stale} of {done} results again: they come from different code", file=sys.stderr)
    else:
        print(f"pyexp: {stale_message(stale, done)}", file=sys.stderr)


def stale_message(stale: int, done: int) -> str:
    """The sentence ``--continue`` and ``--list`` print."""
    return (f"{stale} of {done} results come from different code: run with --rerun-stale to redo them"
            if stale else "")


def bind(results: Any, run: Run, code_now: str | None) -> Any:
    """Tell each Result of ``run`` its run's timestamp and today's code fingerprint."""
    from .result import Result

    for r in results:
        target = r if isinstance(r, Result) else getattr(r, "_pyexp_result", None)
        if isinstance(target, Result):
            target.run = run.timestamp
            target._code_now = code_now
        if not isinstance(r, Result) and isinstance(target, Result):
            # A class-based experiment's instance: the user's own attributes of these names win.
            for name in ("stale", "reused", "code"):
                if name not in r.__dict__:
                    r.__dict__[name] = getattr(target, name)
    return results


def load_all(store: RunStore, load: Callable[[Run], Any], file: Path | None) -> Any:
    """Every run's results, oldest run first, as one 1-D Tensor along :data:`RESULTS_AXIS`.

    ``load(run)`` gives one run's results (a Tensor); each element's ``run`` is its timestamp.
    """
    from .tensor import Tensor

    memo: dict[Any, CodeState] = {}
    flat: list[Any] = []
    for run in store.runs():
        code = current_code(run, file, memo)
        flat.extend(bind(load(run), run, code.fingerprint if code else None))
    return Tensor(flat, shape=(len(flat),), axes=(RESULTS_AXIS,))


def history(all_results: Any, name_or_query: str | Mapping[str, Any]) -> Any:
    """One config's results across runs, newest run first, as a 1-D Tensor.

    Args:
        all_results: What :func:`load_all` returned.
        name_or_query: A config name (glob patterns allowed, as in ``results["exp_*"]``) or a
            dict query on config values (``{"learning_rate": 0.1}``).

    Raises:
        NoMatchError: No run has a config of that name or matching that query.
    """
    from .store import _sort_key
    from .tensor import Tensor

    if not isinstance(name_or_query, (str, Mapping)):
        raise ConfigError(f"history() takes a config name or a dict query, got {type(name_or_query).__name__}")
    if len(all_results) == 0:
        return Tensor([], shape=(0,), axes=(RESULTS_AXIS,))
    picked = all_results[name_or_query]
    items = list(picked) if hasattr(picked, "flat") else [picked]
    items.sort(key=lambda r: _sort_key(str(getattr(r, "run", "") or "")), reverse=True)
    return Tensor(items, shape=(len(items),), axes=(RESULTS_AXIS,))


def _reusable(runs: list[Run], dirname: str, fingerprint: str) -> tuple[Run, Any, str] | None:
    """The newest earlier result of config folder ``dirname`` computed by code ``fingerprint``:
    ``(its run, its outcome, "<timestamp>/<dirname>" of the run that computed it)``."""
    for run in runs:
        outcome = run.outcome(dirname)
        if outcome is None or not outcome.ok or is_stale_header(outcome, fingerprint):
            continue
        return run, outcome, outcome.reused_from or f"{run.timestamp}/{dirname}"
    return None


def reuse_finished(run: Run, todo: list[Any], fingerprint: str | None) -> tuple[list[Any], int]:
    """``--reuse``: link results of identical configs (same folder name, so same name and config hash)
    computed by identical code in earlier runs; return the tasks still to run and how many were reused."""
    from .store import link_result

    if fingerprint is None or not todo:
        return todo, 0
    store = RunStore(run.path.parent.parent, run.path.parent.name)
    earlier = [r for r in reversed(store.runs()) if r.path != run.path]
    left, reused = [], 0
    for task in todo:
        dirname = task.out.name
        found = _reusable(earlier, dirname, fingerprint)
        if found is None or not link_result(found[0].config_dir(dirname), task.out, found[1], found[2]):
            left.append(task)
        else:
            run.forget(dirname)
            reused += 1
    if reused:
        import sys

        print(f"pyexp: reused {reused} finished result(s) of identical configs and code from earlier runs",
              file=sys.stderr)
    return left, reused
