"""The worker side of the pyexp launcher: one Hydra job as a pyexp Task's ``fn``.

The parent composes each distinct group-choice combination once (:func:`base_for`); the
worker applies the job's value overrides to that base exactly as Hydra's config loader
does after composition, then runs Hydra's ``run_job``.
"""

from __future__ import annotations

import logging
import os
from copy import copy, deepcopy
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

from pyexp.store import atomic_write_bytes, hydra_job_path

log = logging.getLogger(__name__)


class HydraJob:
    """A Task's ``fn``: build this job's config from its shared base and run Hydra's ``run_job``.

    Runs in the worker (the fork child, the subprocess, a Ray worker or inline), so
    everything it holds is cloudpickled for the subprocess and Ray executors.
    """

    def __init__(self, sweep: Any, overrides: list[str], idx: int, out: Path, base: Any,
                 value_overrides: list[Any], app_overrides: list[Any]):
        self.hydra_context = sweep.hydra_context
        self.task_function = sweep.task_function
        self.master = sweep.config
        self.overrides = overrides
        self.idx = idx
        self.out = out
        self.base = base  # composed for this job's group choices, shared by the jobs that made them
        self.value_overrides = value_overrides
        self.app_overrides = app_overrides
        self.resolvers = sweep.resolvers
        self.singletons: Any = None  # Hydra's singletons, captured only when pickled for another process
        self.pid = os.getpid()

    def __call__(self, _config: Any) -> JobReturn:
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
        hydra_job_path(self.out).unlink(missing_ok=True)  # never read a previous attempt's
        ret = run_job(
            hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
        )
        # result.pkl is what the app returned, like every pyexp result; the rest of the
        # JobReturn, which the launcher hands back to Hydra, goes beside it.
        write_job_return(self.out, ret)
        if ret.status == JobStatus.FAILED:
            raise ret._return_value  # the config fails with the app's own error and traceback
        return ret._return_value

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


def write_job_return(out: Path, ret: JobReturn) -> None:
    """Store ``ret`` without its return value (that is result.pkl); a failure keeps its exception."""
    import cloudpickle

    from pyexp.outcome import describe_exception

    meta = copy(ret)
    meta._return_value = ret._return_value if ret.status == JobStatus.FAILED else None
    try:
        data = cloudpickle.dumps(meta)
    except Exception:  # noqa: BLE001 - an unpicklable exception still reports its text
        meta._return_value = RuntimeError(describe_exception(ret._return_value))
        data = cloudpickle.dumps(meta)
    atomic_write_bytes(hydra_job_path(out), data)


def read_job_return(out: Path, value: Any = None) -> JobReturn | None:
    """The JobReturn a worker stored for ``out`` (``value`` as its return value), None if absent."""
    import pickle

    try:
        with open(hydra_job_path(out), "rb") as f:
            ret = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None
    if not isinstance(ret, JobReturn):
        return None
    if ret.status == JobStatus.COMPLETED:
        ret._return_value = value
    return ret


class Returned:
    """How the oldest runs' result.pkl wrapped a JobReturn (those runs still load)."""

    __slots__ = ("job_return",)

    def __setstate__(self, state: JobReturn) -> None:
        self.job_return = state


def unwrap(value: Any) -> Any:
    return value.job_return if isinstance(value, Returned) else value


def _write_config(out: Path, sweep_config: DictConfig) -> None:
    """The job's composed config (without ``hydra``), interpolations as written, as config.json."""
    from pyexp.store import Run

    task = OmegaConf.to_container(sweep_config, resolve=False)
    assert isinstance(task, dict)
    task.pop("hydra", None)
    Run(out.parent).write_config(out.name, task)


def base_for(sweep: Any, overrides: list[str]) -> tuple[DictConfig, list[Any], list[Any]]:
    """The composed config of this job's group choices (cached), and its value/app overrides.

    Hydra composes from the group overrides alone and applies the value overrides
    after composition; we do the same, but compose each group combination once.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    loader = sweep.hydra_context.config_loader
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups, values = [], []
    for override in parsed:
        is_group = loader.repository.group_exists(override.key_or_group)
        if is_group and not isinstance(override.value(), dict):
            groups.append(override.input_line)
        else:
            values.append(override)
    key = tuple(groups)
    base = sweep.bases.get(key)
    if base is None:
        master = sweep.config
        base = loader.load_configuration(
            config_name=master.hydra.job.config_name,
            overrides=list(OmegaConf.to_container(master.hydra.overrides.hydra)) + groups, run_mode=RunMode.RUN,
        )
        sweep.bases[key] = base
    app = [o for o in parsed if not o.is_hydra_override()]
    return base, values, app
