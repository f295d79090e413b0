"""The pyexp launcher's work: Hydra jobs as pyexp Tasks, cached in a pyexp run folder.

Layout (the same RunStore as ``@pyexp.experiment``)::

    <output_dir>/<name>/<timestamp>/
        runs.json                       shape (n,), axis "job", the job folders in launch order
        <overrides>-<hash>/             e.g. "lr=0.1,model=mlp-1a2b3c4d"
            config.json  result.pkl  log.out

A job's identity is its override list (``pyexp.*`` overrides left out): the folder
name hashes it, so a continued run finds the jobs it already has without
composing their configs. Each job's config is composed in the worker (Hydra's
``load_sweep_config``, ~60 ms), so with ``jobs > 1`` that cost runs in parallel too;
``result.pkl`` holds the job's ``JobReturn``. Hydra's own job folder
(``hydra.sweep.dir/subdir``, with ``.hydra/``) is created exactly as by the basic launcher.

``+pyexp.continue=<ts>`` (or ``hydra.launcher.continue_run``) reuses the finished
jobs of run ``<ts>`` (``latest``/``true`` for the most recent one): config file edits
made since are not detected, as with ``--continue``; start a fresh run for those.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import queue
import threading
import time
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

if TYPE_CHECKING:
    from .pyexp_launcher import PyexpLauncher

log = logging.getLogger(__name__)

#: Launcher fields that a ``pyexp`` node in the app's config (``+pyexp.<key>=v``) may set.
_NODE_KEYS = {"executor": "executor", "jobs": "jobs", "output_dir": "output_dir", "name": "name",
              "continue": "continue_run", "capture": "capture"}

#: Resolvers every process gets from Hydra/OmegaConf itself; the others are shipped to workers.
_BUILTIN_RESOLVERS = ("now", "hydra", "oc.")


@dataclass
class State:
    """What ``setup`` decided; ``launch`` may be called once per batch with the same state."""

    executor: str
    jobs: int
    store: Any  # pyexp.store.RunStore
    continue_run: str | None
    capture: bool
    resolvers: dict[str, Any] = field(default_factory=dict)
    run: Any = None  # pyexp.store.Run, opened on the first launch
    dirs: list[str] = field(default_factory=list)  # runs.json order
    values: list[dict[str, Any]] = field(default_factory=list)  # per dir: name + overrides
    known: set[str] = field(default_factory=set)
    bases: dict[tuple[str, ...], Any] = field(default_factory=dict)  # group choices -> composed config


def setup(params: dict[str, Any], config: DictConfig) -> State:
    """Merge launcher fields with the app's ``pyexp`` node and capture custom resolvers."""
    from pyexp.errors import OverrideError

    settings = dict(params)
    node = config.get("pyexp") if "pyexp" in config else None
    if node is not None:
        node = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        if not isinstance(node, dict):
            raise OverrideError("pyexp: expected a node like +pyexp.continue=<timestamp>, got a value")
        for key, value in node.items():
            if key not in _NODE_KEYS:
                raise OverrideError(
                    f"pyexp.{key} is not a setting of the pyexp launcher; valid keys: "
                    f"{', '.join(sorted(_NODE_KEYS))}"
                )
            settings[_NODE_KEYS[key]] = value
    cont = settings.get("continue_run")
    if cont is True or (isinstance(cont, str) and cont.lower() in ("true", "latest")):
        cont = "latest"
    elif cont is False or cont in ("", None):
        cont = None
    else:
        cont = str(cont)
    jobs = settings.get("jobs") or 1
    if not isinstance(jobs, int) or jobs < 1:
        raise OverrideError(f"hydra.launcher.jobs must be a positive integer, got {jobs!r}")
    output_dir = Path(str(settings.get("output_dir") or "out")).expanduser()
    name = settings.get("name") or str(config.hydra.job.name)
    from pyexp.store import RunStore

    return State(
        executor=str(settings.get("executor") or "subprocess"), jobs=jobs,
        store=RunStore(output_dir.resolve(), name),
        continue_run=cont, capture=bool(settings.get("capture", True)), resolvers=_custom_resolvers(),
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
    """``(name, folder)`` of a job: its overrides joined like override_dirname, plus their hash."""
    from pyexp.store import sanitize_name

    own = [o for o in filter_overrides(overrides) if not _is_pyexp(o)]
    name = ",".join(own) or fallback
    digest = hashlib.sha256(json.dumps(own).encode()).hexdigest()[:8]
    return name, f"{sanitize_name(name).encode()[:200].decode(errors='ignore') or 'job'}-{digest}"


def _is_pyexp(override: str) -> bool:
    return override.lstrip("+~").startswith(("pyexp.", "pyexp="))


class HydraJob:
    """A Task's ``fn``: compose this job's config and run it with Hydra's ``run_job``.

    Runs in the worker (the fork child, the subprocess, a Ray worker or inline), so
    everything it holds is cloudpickled for the subprocess and Ray executors.
    """

    def __init__(self, launcher: PyexpLauncher, overrides: list[str], idx: int, out: Path, base: Any,
                 value_overrides: list[Any], app_overrides: list[Any]):
        self.hydra_context = launcher.hydra_context
        self.task_function = launcher.task_function
        self.master = launcher.config
        self.overrides = overrides
        self.idx = idx
        self.out = out
        self.base = base  # composed for this job's group choices, shared by the jobs that made them
        self.value_overrides = value_overrides
        self.app_overrides = app_overrides
        self.resolvers = launcher._state.resolvers
        self.singletons: Any = None  # Hydra's singletons, captured only when pickled for another process
        self.pid = os.getpid()

    def __call__(self, _config: Any) -> "Returned":
        from hydra.core.utils import run_job

        in_parent = os.getpid() == self.pid
        if not in_parent:
            self._enter_worker()
        setup_globals()
        sweep_config = self._sweep_config(copy=in_parent)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = self.idx
            sweep_config.hydra.job.num = self.idx
            sweep_config.pop("pyexp", None)  # launcher settings are not the app's config
        _write_config(self.out, sweep_config)
        return Returned(run_job(
            hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
        ))

    def _sweep_config(self, copy: bool) -> DictConfig:
        """What Hydra's ``load_sweep_config`` returns, from the shared base instead of a new compose.

        The same steps as Hydra's ``_load_configuration_impl`` after composition: value
        overrides applied by Hydra's own function, the task override list in order, and
        ``override_dirname`` from all of the job's app overrides.
        """
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        # A forked child or an unpickled copy owns its base; only in-process runs must copy it.
        cfg = deepcopy(self.base) if copy else self.base
        ConfigLoaderImpl._apply_overrides_to_config(self.value_overrides, cfg)
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in self.app_overrides]
            dirname_cfg = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=self.app_overrides, kv_sep=dirname_cfg.kv_sep, item_sep=dirname_cfg.item_sep,
                exclude_keys=dirname_cfg.exclude_keys,
            )
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)
        return cfg

    def _enter_worker(self) -> None:
        """In another process: restore Hydra's singletons and the app's resolvers."""
        from hydra.core.singleton import Singleton
        from omegaconf.basecontainer import BaseContainer

        resolvers = getattr(BaseContainer, "_resolvers", None)
        if resolvers is not None:
            for name, fn in self.resolvers.items():
                resolvers.setdefault(name, fn)
        if self.singletons is not None:  # a forked child inherited them already
            Singleton.set_state(self.singletons)

    def __getstate__(self) -> dict[str, Any]:
        from hydra.core.singleton import Singleton

        state = dict(self.__dict__)
        state["singletons"] = Singleton.get_state()  # ConfigStore, JobRuntime... for a fresh interpreter
        # Unpicklable resolvers would sink the whole job; the worker then lacks just those.
        import cloudpickle

        ok = {}
        for name, fn in state["resolvers"].items():
            try:
                cloudpickle.dumps(fn)
                ok[name] = fn
            except Exception:  # noqa: BLE001
                log.warning(f"pyexp launcher: resolver {name!r} cannot be sent to the workers")
        state["resolvers"] = ok
        return state


class Returned:
    """A job's JobReturn as stored in result.pkl.

    Not a dataclass on purpose: ``Outcome.to_record`` uses ``dataclasses.asdict``, which
    would turn a bare JobReturn (a dataclass) into a dict.
    """

    __slots__ = ("job_return",)

    def __init__(self, job_return: JobReturn):
        self.job_return = job_return

    def __getstate__(self) -> JobReturn:
        return self.job_return

    def __setstate__(self, state: JobReturn) -> None:
        self.job_return = state


def _unwrap(value: Any) -> Any:
    return value.job_return if isinstance(value, Returned) else value


def _write_config(out: Path, sweep_config: DictConfig) -> None:
    """The job's composed config (without ``hydra``), interpolations as written, as config.json."""
    from pyexp.executors.outcome import atomic_write_bytes
    from pyexp.store import CONFIG_FILE, dump_json

    task = OmegaConf.to_container(sweep_config, resolve=False)
    assert isinstance(task, dict)
    task.pop("hydra", None)
    task["out"] = str(out)
    atomic_write_bytes(out / CONFIG_FILE, dump_json(task))


def _open_run(state: State) -> None:
    if state.continue_run is None:
        state.run = state.store.create_run()
        return
    state.run = state.store.get(state.continue_run)
    manifest = state.run.manifest()
    state.dirs = list(manifest.dirs)
    state.values = list((manifest.meta.get("axis_values") or {}).get("job") or
                        [{"name": d} for d in state.dirs])
    state.known = set(state.dirs)


def _write_manifest(state: State, launcher: PyexpLauncher) -> None:
    import sys

    from pyexp.executors.outcome import atomic_write_bytes
    from pyexp.store import dump_json

    record = {
        "format": 1, "shape": [len(state.dirs)], "axes": ["job"], "runs": state.dirs,
        "experiment": state.store.root.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": sys.argv, "launcher": "hydra/launcher=pyexp",
        "axis_values": {"job": state.values},
    }
    atomic_write_bytes(state.run.runs_file, dump_json(record))


def launch(launcher: PyexpLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    from pyexp.executors.base import Task, get_executor
    from pyexp.executors.outcome import atomic_write_bytes
    from pyexp.store import CONFIG_FILE, dump_json

    state: State = launcher._state
    config = launcher.config
    assert config is not None and launcher.hydra_context is not None
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    if state.run is None:
        _open_run(state)
    log.info(f"Launching {len(job_overrides)} jobs with pyexp ({state.executor}, {state.jobs} at a time) "
             f"into {state.run.path}")

    results: list[JobReturn | None] = [None] * len(job_overrides)
    todo: list[tuple[int, Task, list[str]]] = []
    fallback = str(config.hydra.job.name)
    for n, overrides in enumerate(job_overrides):
        idx = initial_job_idx + n
        overrides = list(overrides)
        name, dirname = job_identity(overrides, fallback)
        if dirname in state.known:
            cached = _cached(state, dirname)
            if cached is not None:
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))} (cached in {dirname})")
                results[n] = cached
                continue
        else:
            state.known.add(dirname)
            state.dirs.append(dirname)
            state.values.append({"name": name, "overrides": [o for o in overrides if not _is_pyexp(o)]})
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        out = state.run.config_dir(dirname)
        out.mkdir(parents=True, exist_ok=True)
        # A placeholder until the worker writes the composed config: the job is listed even if it dies.
        atomic_write_bytes(out / CONFIG_FILE, dump_json({"name": name, "overrides": overrides, "out": str(out)}))
        base, values, app = _base_for(launcher, overrides)
        task = Task(fn=HydraJob(launcher, overrides, idx, out, base, values, app),
                    config={"name": name, "out": out}, name=name, out=out, capture=state.capture)
        todo.append((n, task, overrides))
    _write_manifest(state, launcher)

    if todo:
        # Workers pickle their JobReturn with cloudpickle: importing it once here saves every
        # forked child its ~35 ms import.
        import cloudpickle  # noqa: F401

        executor = get_executor(state.executor)
        # Forked children would otherwise run the collector over the parent's objects and copy
        # most of its heap page by page; frozen objects are left alone.
        gc.freeze()
        try:
            for n, task, overrides, outcome in _run_all(executor, todo, state.jobs):
                results[n] = _job_return(task, overrides, outcome, config)
        finally:
            gc.unfreeze()
            executor.close()
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [r for r in results if r is not None]


def _base_for(launcher: PyexpLauncher, overrides: list[str]) -> tuple[DictConfig, list[Any], list[Any]]:
    """The composed config of this job's group choices (cached), and its value/app overrides.

    Hydra composes from the group overrides alone and applies the value overrides
    after composition; we do the same, but compose each group combination once.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    state: State = launcher._state
    loader = launcher.hydra_context.config_loader
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups, values = [], []
    for override in parsed:
        is_group = loader.repository.group_exists(override.key_or_group)
        if is_group and not isinstance(override.value(), dict):
            groups.append(override.input_line)
        else:
            values.append(override)
    key = tuple(groups)
    base = state.bases.get(key)
    if base is None:
        master = launcher.config
        base = loader.load_configuration(
            config_name=master.hydra.job.config_name,
            overrides=list(OmegaConf.to_container(master.hydra.overrides.hydra)) + groups, run_mode=RunMode.RUN,
        )
        state.bases[key] = base
    app = [o for o in parsed if not o.is_hydra_override()]
    return base, values, app


def _run_all(executor: Any, todo: list[tuple[int, Any, list[str]]], jobs: int) -> Any:
    """Keep up to ``jobs`` tasks in flight; yield ``(n, task, overrides, outcome)`` in input order."""
    done: queue.Queue = queue.Queue()
    finished: dict[int, Any] = {}
    running = 0
    pending = list(reversed(todo))
    started: list[Any] = []

    def wait(pos: int, job: Any) -> None:
        try:
            done.put((pos, job.wait()))
        except BaseException as exc:  # noqa: BLE001 - a broken executor must not hang the sweep
            from pyexp.executors.outcome import Outcome

            done.put((pos, Outcome.from_exception(exc)))

    try:
        while pending or running:
            while pending and running < jobs:
                n, task, overrides = pending.pop()
                pos = len(started)
                started.append((n, task, overrides))
                job = executor.submit(task)  # from this (main) thread: forking is safe here
                running += 1
                if jobs == 1:
                    wait(pos, job)
                else:
                    threading.Thread(target=wait, args=(pos, job), daemon=True, name="pyexp-job").start()
            pos, outcome = done.get()
            running -= 1
            finished[pos] = outcome
    except KeyboardInterrupt:
        raise
    for pos, (n, task, overrides) in enumerate(started):
        yield n, task, overrides, finished[pos]


def _job_return(task: Any, overrides: list[str], outcome: Any, config: DictConfig) -> JobReturn:
    from pyexp.errors import ExecutorError
    from pyexp.executors.outcome import Outcome, describe_exception, write_outcome

    ret = _unwrap(outcome.result) if outcome.ok else None
    if isinstance(ret, JobReturn):
        if ret.status == JobStatus.FAILED:
            # Stored as a failure so that a continued run runs it again.
            exc = ret._return_value
            failed = Outcome("error", result=outcome.result, error=describe_exception(exc), started=outcome.started,
                             finished=outcome.finished)
            try:
                write_outcome(task.result_path, failed)
            except Exception:  # noqa: BLE001 - an unpicklable exception: keep the message only
                failed.result = None
                write_outcome(task.result_path, failed)
            log.error(f"pyexp: job {task.name} failed: {describe_exception(exc)} (log: {task.log_path})")
        return ret
    error = outcome.error if not outcome.ok else f"returned {type(ret).__name__}, not a JobReturn"
    log.error(f"pyexp: job {task.name} failed: {error} (log: {task.log_path})")
    ret = JobReturn(overrides=overrides, cfg=OmegaConf.create({}), hydra_cfg=config,
                    working_dir=os.getcwd(), task_name=str(config.hydra.job.name), status=JobStatus.FAILED)
    ret._return_value = ExecutorError(f"job {task.name!r} failed: {error}; its output is in {task.log_path}")
    return ret


def _cached(state: State, dirname: str) -> JobReturn | None:
    """The stored JobReturn of a finished job, or None if it must run (failed, pending, unreadable)."""
    from pyexp.errors import StoreError
    from pyexp.executors.outcome import read_outcome

    try:
        outcome = read_outcome(state.run.config_dir(dirname) / "result.pkl")
    except StoreError:
        return None
    ret = _unwrap(outcome.result) if outcome is not None and outcome.ok else None
    if not isinstance(ret, JobReturn) or ret.status != JobStatus.COMPLETED:
        return None
    return ret
