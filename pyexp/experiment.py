"""``@pyexp.experiment`` and the class-based :class:`Experiment`: the top floor of pyexp.

A decorated function and a subclass of :class:`Experiment` run through the same
:class:`~pyexp.runner.ExperimentRunner`: same CLI, phases, folders and executors. A class
describes itself to the runner through one hook, ``__pyexp_describe__`` (the runner never
rewires anything): each config gets a fresh instance; what it stores on ``self`` is its
result, and the report receives the instances.
"""

from __future__ import annotations

import functools
import inspect
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, overload

from .errors import ConfigError

if TYPE_CHECKING:
    from .runner import ExperimentRunner

__all__ = ["Experiment", "experiment"]


@overload
def experiment(fn: Callable[..., Any]) -> ExperimentRunner: ...


@overload
def experiment(
    fn: None = None, *, name: str | None = None, output_dir: str | Path | None = None,
    executor: Any = None, stash: bool | None = None, viewer: bool | None = None,
    viewer_port: int | None = None, jobs: int | None = None, retry: int | None = None,
    config_path: str | None = None, config_name: str | None = None, preload: list[str] | None = None,
    timestamp: bool | str | None = None, rerun: bool | None = None,
) -> Callable[[Callable[..., Any]], ExperimentRunner]: ...


def experiment(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Turn ``fn(config[, logger])`` into an :class:`ExperimentRunner`.

    A second parameter named ``out`` receives the config's folder (a Path) instead of
    the Logger; any other name receives the Logger.

    Use bare (``@pyexp.experiment``) or with options: ``name``, ``output_dir``,
    ``executor`` (name or Executor), ``stash``, ``viewer``, ``viewer_port``, ``jobs``,
    ``retry`` (run a failed config up to N more times), ``preload`` (modules the fork-server
    imports before forking the configs), and ``config_path``/``config_name`` to compose a Hydra
    config from YAML groups.
    ``timestamp=False`` (earlier API) stores configs in ``out/<name>/<config>-<hash>/``
    without a timestamp level, skipping those with a result.
    """
    from .runner import ExperimentRunner  # here, so `import pyexp` does not load the runner

    if fn is not None:
        return ExperimentRunner(fn, **options)
    return lambda f: ExperimentRunner(f, **options)


#: Attributes pyexp sets on every instance; they are not part of the checkpointed state.
FRAMEWORK_ATTRS = frozenset({"cfg", "out", "name", "error", "status"})
_STATE_MARK = "pyexp_experiment"


class _ClassOrInstance:
    """``MyExperiment.results(...)`` loads a run; ``exp.results`` stays the instance's own attribute.

    A non-data descriptor: an attribute the instance sets shadows it, an unset one falls through
    to ``Experiment.__getattr__``.
    """

    def __init__(self, loader: Callable[..., Any]):
        self._loader = loader
        functools.update_wrapper(self, loader)

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return functools.partial(self._loader, owner)
        raise AttributeError(self._loader.__name__)


class _Derived:
    """A read-only view (``log``, ``config``...); a user attribute of the same name shadows it."""

    def __init__(self, fn: Callable[[Any], Any]):
        self._fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, instance: Any, owner: type) -> Any:
        return self if instance is None else self._fn(instance)


def _load_results(cls: type[Experiment], timestamp: str | None = None,
                  output_dir: str | Path | None = None) -> Any:
    """Load a previous run (the latest by default) as a Tensor of instances of this class."""
    from .runner import ExperimentRunner

    return ExperimentRunner(cls).results(timestamp=timestamp, output_dir=output_dir)


class Experiment:
    """Base class of a class-based experiment.

    Define ``experiment(self)`` (the work for one config), a static ``configs()`` and
    optionally a static ``report(results, out)``. While ``experiment`` runs, ``self.cfg``
    is the config (a :class:`~pyexp.Config`, ``self.cfg.out`` included) and ``self.out``
    its output folder. Whatever the experiment stores on ``self`` (declare it with an
    annotation, e.g. ``model: dict``) is saved when it finishes and by every
    :func:`chkpt` method.

    In the report, ``results`` is a Tensor of instances with the sweep's shape: each has
    its stored attributes plus ``name``, ``cfg`` (alias ``config``), ``out``, ``error``
    (None on success), ``status`` (``"done"``, ``"failed"`` or ``"pending"``), ``result``
    (what ``experiment()`` returned), ``log``, ``traceback`` and ``logger``. A config that failed carries the attributes of its last
    checkpoint, if it saved one; a declared attribute it never set reads as None.

    Run it with ``MyExperiment.run(...)`` or ``ExperimentRunner(MyExperiment, ...).run(...)``;
    ``MyExperiment.results(timestamp=None, output_dir=None)`` loads a previous run. Runner
    options can also be given as class keywords:
    ``class MyExperiment(Experiment, name="mnist", executor="fork")``.

    ``__init__`` takes no arguments when pyexp creates the instance: ``cfg`` and ``out``
    are already set when it runs.
    """

    cfg: Any
    out: Path
    name: str
    error: str | None
    status: str

    _pyexp_settings: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **settings: Any) -> None:
        super().__init_subclass__()
        if settings:
            from .settings import check_options

            check_options(settings, f"class {cls.__name__}")
        cls._pyexp_settings = {**cls._pyexp_settings, **settings}

    def __init__(self, cfg: Any = None, out: str | Path | None = None) -> None:
        # pyexp binds cfg/out before calling __init__(); these arguments are for using an
        # instance by hand (a notebook, a unit test), where @chkpt then saves under ``out``.
        if cfg is not None or out is not None:
            self._pyexp_bind(cfg if cfg is not None else {}, out)

    def experiment(self) -> Any:
        """The work for one config; store results on ``self``. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must define experiment(self)")

    @staticmethod
    def configs() -> Any:
        """Return the list of config dicts (or a ``sweep()`` result). Override this."""
        raise NotImplementedError

    @staticmethod
    def report(results: Any, out: Path) -> Any:
        """Build the report from a Tensor of finished instances. Override this (optional)."""
        raise NotImplementedError

    @classmethod
    def run(cls, *, argv: list[str] | None = None, **settings: Any) -> Any:
        """Run the pipeline (configs -> experiments -> report) like ``experiment.run()``.

        Returns:
            The report's return value, or the Tensor of instances without a report.
        """
        from .runner import ExperimentRunner

        return ExperimentRunner(cls).run(argv=argv, **settings)

    results = _ClassOrInstance(_load_results)

    @classmethod
    def __pyexp_describe__(cls) -> Any:
        """The one hook the runner calls: how to run this class (see ``runner.Description``)."""
        return _describe(cls)

    # -- what the report sees ------------------------------------------------------------

    @_Derived
    def config(self) -> Any:
        """The config (same as ``cfg``)."""
        return self.__dict__.get("cfg")

    @_Derived
    def result(self) -> Any:
        """What ``experiment()`` returned (None if it failed or has not run)."""
        return self.__dict__.get("_pyexp_value")

    @_Derived
    def log(self) -> str:
        """Captured stdout/stderr of the config's last run ("" if none)."""
        result = self.__dict__.get("_pyexp_result")
        return result.log if result is not None else ""

    @_Derived
    def traceback(self) -> str | None:
        """The formatted traceback of a failure, if there was one."""
        result = self.__dict__.get("_pyexp_result")
        return result.traceback if result is not None else None

    @_Derived
    def logger(self) -> Any:
        """Running: a ``Logger`` into ``out`` (made on first use). Report: a ``LogReader`` or None."""
        d = self.__dict__
        if "_pyexp_result" in d:
            return d["_pyexp_result"].logger
        if d.get("_pyexp_logger") is None:
            if d.get("out") is None:
                return None
            from .config import to_yaml
            from .log import Logger

            logger = Logger(d["out"])
            logger.set_global_it(0)  # iteration 0 records the config, as for @pyexp.experiment
            logger.add_text("config", to_yaml(d["cfg"]))
            d["_pyexp_logger"] = logger
        return d["_pyexp_logger"]

    # -- state ---------------------------------------------------------------------------

    def _pyexp_bind(self, cfg: Any, out: str | Path | None, name: str | None = None) -> None:
        from .config import Config

        cfg = cfg if isinstance(cfg, Config) else Config(cfg)
        if out is None and cfg.get("out") is not None:
            out = cfg["out"]
        d = self.__dict__
        d["cfg"] = cfg
        d["out"] = Path(out) if out is not None else None
        d["name"] = name if name is not None else str(cfg.get("name", ""))
        d["error"] = None
        d["status"] = "running"

    def _pyexp_state(self) -> dict[str, Any]:
        """The user's attributes: everything on ``self`` but pyexp's own."""
        return {k: v for k, v in self.__dict__.items()
                if k not in FRAMEWORK_ATTRS and not k.startswith("_pyexp")}

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: dunder probes (pickle, copy) fail plainly.
        if name.startswith("__") or name.startswith("_pyexp"):
            raise AttributeError(name)
        cls = type(self)
        if name in declared_attributes(cls):
            if self.__dict__.get("status") in ("done", "failed", "pending"):
                return None  # a report instance whose config never got that far
            raise AttributeError(f"{cls.__name__}.{name} is declared but not set yet: assign "
                                 f"self.{name} before reading it")
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_pyexp_result", "_pyexp_logger")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        d = self.__dict__
        if "status" not in d:
            return f"<{type(self).__name__} (unbound)>"
        state = d["status"] if d.get("error") is None else f"{d['status']}: {d['error']}"
        return f"<{type(self).__name__} {d.get('name')!r} {state}>"


def declared_attributes(cls: type) -> set[str]:
    """Attribute names annotated on ``cls`` and its bases below :class:`Experiment`."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is Experiment or klass is object:
            continue
        names.update(klass.__dict__.get("__annotations__", {}))
    return names


# -- runner hooks ----------------------------------------------------------------------------


class _ClassTask:
    """The task function of a class-based experiment: a fresh instance per config."""

    def __init__(self, cls: type[Experiment]):
        self.cls = cls
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__

    def __call__(self, config: Any) -> dict[str, Any]:
        exp = self.cls.__new__(self.cls)
        exp._pyexp_bind(config, config.get("out"))
        try:
            exp.__init__()
            value = exp.experiment()
        finally:
            logger = exp.__dict__.pop("_pyexp_logger", None)
            if logger is not None:
                logger.close()
        from .checkpoint import files as chkpt_files

        label = f"{self.cls.__name__}.experiment() (its final state)"
        from .summary import summarize

        state = exp._pyexp_state()
        # The attributes are pickled; their scalars go to tables without unpickling them.
        scalars = summarize({**state, "value": value} if value is not None else state)
        return {_STATE_MARK: 1, "state": chkpt_files.dump_state(state, label), "value": value, "summary": scalars}


def _is_static(cls: type, name: str) -> bool:
    return isinstance(inspect.getattr_static(cls, name), (staticmethod, classmethod))


def _describe(cls: type[Experiment]) -> Any:
    """The class's side of the runner hook: how the runner should run ``cls``."""
    from .runner import Description

    if cls.experiment is Experiment.experiment:
        raise ConfigError(f"{cls.__name__} must define experiment(self), the work done for one config")
    for name in ("configs", "report"):
        if getattr(cls, name) is not getattr(Experiment, name) and not _is_static(cls, name):
            raise ConfigError(f"{cls.__name__}.{name} must be a @staticmethod (it gets no instance); "
                              f"add @staticmethod above 'def {name}'")
    return Description(
        task_fn=_ClassTask(cls), make_result=functools.partial(load_instance, cls), with_logger=False,
        settings={k: v for k, v in cls._pyexp_settings.items() if v is not None},
        configs_fn=cls.configs if cls.configs is not Experiment.configs else None,
        report_fn=cls.report if cls.report is not Experiment.report else None,
    )


def load_instance(cls: type[Experiment], name: str, config: Any, out: Path, outcome: Any = None) -> Experiment:
    """What the report gets for one config: an instance of ``cls`` with its stored attributes."""
    from .checkpoint import files as chkpt_files
    from .errors import StoreError
    from .outcome import describe_exception
    from .result import Result
    from .store import result_path

    if callable(config) and not isinstance(config, Mapping):
        config = config()  # load_results passes a loader
    result = Result(name, config, out, outcome)
    exp = cls.__new__(cls)
    exp._pyexp_bind(config, out, name)
    state = None
    if result.status == "done":
        try:
            value = result.result
        except StoreError:
            value = None  # result.error now says why; the instance reports it as failed
    exp.__dict__.update(status=result.status, error=result.error, _pyexp_result=result)
    if result.status == "done":
        if isinstance(value, dict) and value.get(_STATE_MARK) == 1:
            exp.__dict__["_pyexp_value"] = value.get("value")
            try:
                # Popped so the pickled bytes are not kept alongside the objects they became.
                state = pickle.loads(value.pop("state"))
            except Exception as exc:  # noqa: BLE001 - e.g. a class the state refers to was renamed
                exp.__dict__.update(status="failed", error=f"{result_path(out)}: cannot load the stored "
                                    f"attributes ({describe_exception(exc)}); re-run this config")
    else:
        state = chkpt_files.latest_state(out)
    exp.__dict__.update(state or {})
    return exp
