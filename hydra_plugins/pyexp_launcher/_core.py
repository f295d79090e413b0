"""The pyexp launcher's work: Hydra jobs as pyexp Tasks, cached in a pyexp run folder.

Layout (the same RunStore as ``@pyexp.experiment``)::

    <output_dir>/<name>/<timestamp>/
        runs.json                       shape (n,), axis "job", the job folders in launch order
        <overrides>-<hash>/             e.g. "lr=0.1,model=mlp-1a2b3c4d"
            config.json  result.pkl (what the app returned)  outcome.json  log.out
            hydra_job.pkl               the rest of Hydra's JobReturn (status, cfg, hydra cfg, working dir)

A job's identity is its override list (``pyexp.*`` overrides left out): the folder
name hashes it, so a continued run finds the jobs it already has without
composing their configs. Hydra's sweeper has composed every job once already to
validate the batch; we compose each distinct group-choice combination once more and
let the worker apply the job's value overrides (see ``_job``), instead of a second
full compose per job as the basic launcher does. ``result.pkl`` is exactly the pickled
return value of the app, so ``pickle.load`` reads it; ``launch`` hands Hydra the JobReturn
rebuilt from ``hydra_job.pkl`` and that value. Runs whose ``result.pkl`` held the whole
JobReturn (older launchers) still load and continue. Every file goes through :mod:`pyexp.store` and every job through
:func:`pyexp.scheduler.execute`, exactly as for ``@pyexp.experiment``. Hydra's own job folder (``hydra.sweep.dir/subdir``, with ``.hydra/``)
is created exactly as by the basic launcher.

``+pyexp.continue=<ts>`` (or ``hydra.launcher.continue_run``) reuses the finished
jobs of run ``<ts>`` (``latest``/``true`` for the most recent one): config file edits
made since are not detected, as with ``--continue``; start a fresh run for those.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf

from ._job import HydraJob, base_for, read_job_return, unwrap

log = logging.getLogger(__name__)

#: Resolvers every process gets from Hydra/OmegaConf itself; the others are shipped to workers.
_BUILTIN_RESOLVERS = ("now", "hydra", "oc.")


@dataclass
class Sweep:
    """What ``setup`` decided and Hydra handed over; ``launch`` may be called once per batch with it."""

    hydra_context: Any
    task_function: Any
    config: DictConfig
    executor: str
    jobs: int | None
    store: Any  # pyexp.store.RunStore
    continue_run: str | None
    capture: bool
    resolvers: dict[str, Any] = field(default_factory=dict)
    slurm: dict[str, Any] = field(default_factory=dict)  # SlurmExecutor options (executor=slurm)
    run: Any = None  # pyexp.store.Run, opened on the first launch
    dirs: list[str] = field(default_factory=list)  # runs.json order
    values: list[dict[str, Any]] = field(default_factory=list)  # per dir: name + overrides
    known: set[str] = field(default_factory=set)
    bases: dict[tuple[str, ...], Any] = field(default_factory=dict)  # group choices -> composed config
    grid: dict[str, Any] | None = None  # from hydra/sweeper=pyexp: shape, axes, axis_values, jobs


def setup(params: dict[str, Any], config: DictConfig, hydra_context: Any, task_function: Any) -> Sweep:
    """Merge launcher fields with the app's ``pyexp`` node and capture custom resolvers."""
    from pyexp.settings import launcher_settings
    from pyexp.store import RunStore

    node = config.get("pyexp") if "pyexp" in config else None
    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=True)
    # Nested launcher fields (hydra.launcher.slurm) arrive as OmegaConf nodes.
    params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in params.items()}
    s = launcher_settings(params, node)
    name = s.get("name") or str(config.hydra.job.name)
    return Sweep(
        hydra_context=hydra_context, task_function=task_function, config=config,
        executor=str(s.get("executor") or "subprocess"), jobs=s["jobs"],
        store=RunStore(Path(str(s.get("output_dir") or "out")).expanduser().resolve(), name),
        continue_run=s.get("continue"), capture=bool(s.get("capture", True)), resolvers=_custom_resolvers(),
        slurm=s.get("slurm") or {},
    )


def _custom_resolvers() -> dict[str, Any]:
    """Resolvers the app registered itself: a fresh worker interpreter needs them too."""
    from omegaconf.basecontainer import BaseContainer

    found = {}
    for name, fn in getattr(BaseContainer, "_resolvers", {}).items():
        if not name.startswith(_BUILTIN_RESOLVERS):
            found[name] = fn
    return found


def job_identity(overrides: Sequence[str], fallback: str) -> tuple[str, str]:
    """``(name, folder)`` of a job: its overrides joined like override_dirname, and the store's folder."""
    from pyexp.store import job_dirname

    own = [o for o in filter_overrides(overrides) if not _is_pyexp(o)]
    name = ",".join(own) or fallback
    return name, job_dirname(name, own)


def _is_pyexp(override: str) -> bool:
    return override.lstrip("+~").startswith(("pyexp.", "pyexp="))


def _open_run(state: Sweep) -> None:
    if state.continue_run is None:
        state.run = state.store.create_run()
        return
    state.run = state.store.get(state.continue_run)
    manifest = state.run.manifest()
    state.dirs = list(manifest.dirs)
    # "jobs" holds each job's values whatever the layout; older runs kept them as the "job" axis.
    values = manifest.meta.get("jobs") or (manifest.meta.get("axis_values") or {}).get("job")
    if isinstance(values, list) and len(values) == len(state.dirs):
        state.values = list(values)
    else:
        state.values = [{"name": d} for d in state.dirs]
    state.known = set(state.dirs)


def _write_manifest(state: Sweep) -> None:
    layout = _layout(state)
    state.run.write_manifest(layout.pop("runs"), layout.pop("shape"), layout.pop("axes"), {
        **layout, "names": [v.get("name", d) for v, d in zip(state.values, state.dirs)],
        "experiment": state.store.root.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": sys.argv, "launcher": "hydra/launcher=pyexp", "jobs": state.values,
    })


def _layout(state: Sweep) -> dict[str, Any]:
    """The sweeper's grid when the run holds exactly its jobs, else one ``job`` axis in launch order."""
    grid = state.grid
    if grid is not None:
        fallback = str(state.config.hydra.job.name)
        dirs = [job_identity(job, fallback)[1] for job in grid["jobs"]]
        if len(dirs) == len(state.dirs) and set(dirs) == set(state.dirs):
            values = grid["axis_values"] or {"job": [state.values[state.dirs.index(dirs[0])]]}
            return {"shape": tuple(grid["shape"]) or (1,), "axes": tuple(grid["axes"]) or ("job",), "runs": dirs,
                    "axis_values": values}
    return {"shape": (len(state.dirs),), "axes": ("job",), "runs": state.dirs, "axis_values": {"job": state.values}}


def _override_values(app_overrides: list[Any]) -> dict[str, Any]:
    """``{key: value}`` of a job's overrides, so ``sel(lr=0.1)`` finds jobs on a flat ``job`` axis."""
    values = {}
    for override in app_overrides:
        if override.value_type is not None and override.key_or_group not in ("name", "overrides"):
            values[override.key_or_group] = override.value()
    return values


def launch(state: Sweep, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    from pyexp.executors.base import get_executor
    from pyexp.executors.task import Task

    config = state.config
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    if state.run is None:
        if state.continue_run is None and state.executor == "slurm":
            # e.g. Slurm refusing the partition: reported before the run folder exists.
            get_executor("slurm", state.slurm).validate(len(job_overrides), state.jobs)
        _open_run(state)
    at_once = state.jobs or ("all" if state.executor == "slurm" else 1)
    log.info(f"Launching {len(job_overrides)} jobs with pyexp ({state.executor}, {at_once} at a time) "
             f"into {state.run.path}")

    results: list[JobReturn | None] = [None] * len(job_overrides)
    todo: list[tuple[int, Task, list[str]]] = []
    fallback = str(config.hydra.job.name)
    for n, overrides in enumerate(job_overrides):
        idx = initial_job_idx + n
        overrides = list(overrides)
        name, dirname = job_identity(overrides, fallback)
        if dirname in state.known:
            cached = _cached(state, dirname, overrides)
            if cached is not None:
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))} (cached in {dirname})")
                results[n] = cached
                continue
        base, values, app = base_for(state, overrides)
        if dirname not in state.known:
            state.known.add(dirname)
            state.dirs.append(dirname)
            state.values.append({"name": name, "overrides": [o for o in overrides if not _is_pyexp(o)],
                                 **_override_values(app)})
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        out = state.run.config_dir(dirname)
        # A placeholder until the worker writes the composed config: the job is listed even if it dies.
        state.run.write_config(dirname, {"name": name, "overrides": overrides})
        task = Task(fn=HydraJob(state, overrides, idx, out, base, values, app),
                    config={"name": name, "out": out}, name=name, out=out, capture=state.capture)
        todo.append((n, task, overrides))
    _write_manifest(state)

    if todo:
        # Workers pickle their results with cloudpickle: importing it once here saves every
        # forked child its ~35 ms import.
        import cloudpickle  # noqa: F401

        executor = get_executor(state.executor, state.slurm if state.executor == "slurm" else None)
        # Forked children would otherwise run the collector over the parent's objects and copy
        # most of its heap page by page; frozen objects are left alone.
        gc.freeze()
        try:
            for n, task, overrides, outcome in _run_all(executor, todo, state.jobs):
                results[n] = _job_return(task, overrides, outcome, config)
                state.run.forget(task.out.name)  # a later batch reads its new outcome
        finally:
            gc.unfreeze()
            executor.close()
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [r for r in results if r is not None]

def _run_all(executor: Any, todo: list[tuple[int, Any, list[str]]], jobs: int | None) -> Any:
    """Run the tasks through pyexp's scheduler; yield ``(n, task, overrides, outcome)`` in input order.

    The scheduler claims each job (two continued sweeps never run one twice) and stops running
    jobs on Ctrl-C. A job another process ran meanwhile is read back from its result file.
    """
    from pyexp.outcome import Outcome
    from pyexp.scheduler import execute
    from pyexp.store import load_result, read_outcome

    outcomes: dict[int, Any] = {}
    execute([task for _, task, _ in todo], executor, jobs=jobs, progress=False, cached=0,
            on_done=lambda task, outcome: outcomes.__setitem__(id(task), outcome))
    for n, task, overrides in todo:
        outcome = outcomes.get(id(task)) or read_outcome(task.out)
        outcome = outcome or Outcome("error", error="the job left no result")
        if outcome.ok and outcome.result is None:  # run in another process: read its value back
            try:
                outcome.result = load_result(task.out)
            except Exception as exc:  # noqa: BLE001 - reported as this job's failure
                outcome = Outcome.from_exception(exc)
        yield n, task, overrides, outcome


def _job_return(task: Any, overrides: list[str], outcome: Any, config: DictConfig) -> JobReturn:
    """The JobReturn Hydra gets for a job that ran: the worker's (``hydra_job.pkl``) with its value."""
    from pyexp.errors import ExecutorError

    legacy = unwrap(outcome.result) if outcome.ok else None
    if isinstance(legacy, JobReturn):  # run by a launcher that stored the whole JobReturn
        return legacy
    ret = read_job_return(task.out, outcome.result)
    if outcome.ok:
        return ret or _rebuilt(task.out, overrides, config, outcome.result)
    log.error(f"pyexp: job {task.name} failed: {outcome.error} (log: {task.log_path})")
    if ret is not None and ret.status == JobStatus.FAILED:  # the app raised: Hydra gets its exception
        return ret
    ret = _rebuilt(task.out, overrides, config, None)
    ret.status = JobStatus.FAILED
    ret._return_value = ExecutorError(f"job {task.name!r} failed: {outcome.error}; its output is in {task.log_path}")
    return ret


def _rebuilt(out: Path, overrides: list[str], config: DictConfig, value: Any) -> JobReturn:
    """A completed JobReturn from the job's config.json, when the worker left no ``hydra_job.pkl``."""
    from pyexp.store import CONFIG_FILE, read_json

    try:
        cfg = read_json(out / CONFIG_FILE)
        cfg.pop("out", None)
    except Exception:  # noqa: BLE001 - a job that died before writing its config
        cfg = {}
    ret = JobReturn(overrides=overrides, cfg=OmegaConf.create(cfg), hydra_cfg=config,
                    working_dir=os.getcwd(), task_name=str(config.hydra.job.name), status=JobStatus.COMPLETED)
    ret._return_value = value
    return ret


def _cached(state: Sweep, dirname: str, overrides: list[str]) -> JobReturn | None:
    """The JobReturn of a finished job, or None if it must run (failed, pending, unreadable)."""
    from pyexp.errors import StoreError

    if state.run.status(dirname) != "done":
        return None
    try:
        value = unwrap(state.run.load_result(dirname))
    except StoreError:
        return None
    if isinstance(value, JobReturn):  # a run folder from before result.pkl held just the value
        return value if value.status == JobStatus.COMPLETED else None
    out = state.run.config_dir(dirname)
    ret = read_job_return(out, value)
    if ret is None:
        return _rebuilt(out, overrides, state.config, value)
    return ret if ret.status == JobStatus.COMPLETED else None
