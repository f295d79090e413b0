"""ExperimentRunner: settings priority and the three phases (configs -> execution -> report)."""

from __future__ import annotations

import functools
import gc
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ._caller import defining_file, reads_sys_argv, refuse_run_in_fork_server, second_parameter, wants_report_dir
from ._entry import user_errors
from ._executor_choice import build_executor, jobs_setting
from ._resume import continue_command, print_detached, stored_run
from .cli import parse_cli
from .errors import ConfigError
from .executors.base import Executor
from .executors.task import Task
from .history import code_for_execution, is_stale_header, record_code, say_stale
from .result import Result, as_config, config_names, load_results
from .settings import DEFAULTS, RUN_ALIASES, check_options, normalise
from .store import TIMESTAMP_FORMAT, Run, RunStore, plan_dirs, result_stamp


@dataclass
class Description:
    """How to run something that is not a plain function: what a class's ``__pyexp_describe__`` returns.

    The runner calls that one hook and takes these fields as they are (see
    :class:`pyexp.Experiment`); it never hands itself to the class.
    """

    task_fn: Callable[..., Any]  # what a Task calls with the config
    make_result: Callable[..., Any]  # what the report gets per config: (name, config, out, outcome=)
    with_logger: bool = False  # call task_fn(config, logger)
    settings: dict[str, Any] = field(default_factory=dict)  # decorator-level settings (lowest priority)
    configs_fn: Callable[..., Any] | None = None
    report_fn: Callable[..., Any] | None = None


class ExperimentRunner:
    """An experiment function plus its configs and report; created by ``@pyexp.experiment``.

    Calling the runner calls the function itself; :meth:`run` runs the whole pipeline.
    """

    def __init__(self, fn: Callable[..., Any], **settings: Any):
        check_options(settings, f"@experiment({getattr(fn, '__name__', fn)!r})")
        self.fn = fn
        self._settings = {k: v for k, v in settings.items() if v is not None}
        self._configs_fn: Callable[..., Any] | None = None
        self._report_fn: Callable[..., Any] | None = None
        self.file = defining_file(fn)
        second = second_parameter(fn) if not isinstance(fn, type) else None
        self.with_logger = second is not None and second != "out"
        self.with_out = second == "out"
        # A class's __dict__ (its methods) must not land on the runner.
        functools.update_wrapper(self, fn, updated=() if isinstance(fn, type) else functools.WRAPPER_UPDATES)
        self._task_fn: Callable[..., Any] = fn  # what a Task calls with the config
        self._make_result: Callable[..., Any] = Result  # what the report gets per config
        if isinstance(fn, type):
            self._adopt(fn)

    def _adopt(self, cls: type) -> None:
        """Take a class's own description of how it runs (its ``__pyexp_describe__`` hook)."""
        describe = getattr(cls, "__pyexp_describe__", None)
        if describe is None:
            raise ConfigError(f"{cls.__name__} is a class but not a subclass of pyexp.Experiment; "
                              "subclass Experiment or decorate a function with @pyexp.experiment")
        d: Description = describe()
        self._task_fn, self._make_result, self.with_logger = d.task_fn, d.make_result, d.with_logger
        self.with_out = False
        self._settings = {**d.settings, **self._settings}
        self._configs_fn = d.configs_fn or self._configs_fn
        self._report_fn = d.report_fn or self._report_fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pyexp experiment {self.default_name!r} from {self.file}>"

    @property
    def default_name(self) -> str:
        return self._settings.get("name") or self.fn.__name__

    def configs(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register the function that returns this experiment's configs."""
        self._configs_fn = fn
        return fn

    def report(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register ``report(results, report_dir)``, run after the experiments.

        A report with one parameter, ``report(results)`` (the earlier API), gets only the results.
        """
        self._report_fn = fn
        return fn

    # -- public entry points -------------------------------------------------------------

    def run(self, configs: Callable[..., Any] | None = None, report: Callable[..., Any] | None = None,
            *, argv: list[str] | None = None, **settings: Any) -> Any:
        """Generate configs (fresh runs), run what is not cached, then report.

        Settings (``name``, ``output_dir``, ``executor``, ``jobs``, ``retry``, ``capture``,
        ``filter``, ``stash``, ``viewer``, ``viewer_port``, ``skip_failed``,
        ``continue_``/``report_only``, and the earlier API's ``timestamp``/``rerun``) override
        the decorator's; command-line flags override both. The command line is
        ``argv`` if given, else ``sys.argv`` when Python was started on a script (whichever
        module defines the experiment); in a notebook kernel, the interactive interpreter,
        ``python -c`` or under pytest, ``sys.argv`` belongs to someone else and is ignored.

        Returns:
            The report function's return value, or the results Tensor without a report.
        """
        refuse_run_in_fork_server()
        cli_mode = argv is not None or reads_sys_argv()
        # Phase 2 handles its own Ctrl-C (and says how to continue); user_errors covers the rest.
        with user_errors(enabled=cli_mode):
            return self._run(configs, report, argv if argv is not None else sys.argv[1:], cli_mode, settings)

    def results(self, timestamp: str | bool | None = None, output_dir: str | Path | None = None) -> Any:
        """Load the results of a previous run as a Tensor of Result.

        Args:
            timestamp: A run's timestamp, None / ``"latest"`` for the latest run, or ``"all"``
                for every run: then a 1-D Tensor (axis ``"result"``) of all runs' results,
                oldest run first, each with ``r.run`` set to its run's timestamp. False (or
                the experiment's ``timestamp=False``): the run without timestamp (earlier API).
            output_dir: Where the runs are stored, if not the experiment's default.
        """
        from .history import bind, current_code, load_all

        settings = {**DEFAULTS, **self._settings}
        if output_dir is not None:
            settings["output_dir"] = output_dir
        store = self._store(settings)
        if timestamp is False or (timestamp is None and settings["timestamp"] is False):
            return load_results(stored_run(store, None, True), self._make_result)  # earlier API
        if timestamp == "all":
            return load_all(store, lambda run: load_results(run, self._make_result), self.file)
        run = store.get(timestamp)
        code = current_code(run, self.file)
        return bind(load_results(run, self._make_result), run, code.fingerprint if code else None)

    def history(self, name_or_query: str | dict[str, Any], output_dir: str | Path | None = None) -> Any:
        """One config's results across all runs, newest run first, as a 1-D Tensor of Result.

        Args:
            name_or_query: The config's name (glob patterns allowed) or a dict query on its
                config values, e.g. ``{"learning_rate": 0.1}``.
            output_dir: Where the runs are stored, if not the experiment's default.
        """
        from .history import history

        return history(self.results("all", output_dir), name_or_query)

    # -- the pipeline --------------------------------------------------------------------

    def _resolve(self, cli_mode: bool, argv: list[str], settings: dict[str, Any]) -> dict[str, Any]:
        for alias, key in RUN_ALIASES.items():
            if alias in settings:
                settings[key] = settings.pop(alias)
        check_options(settings, "run()", extra=())
        given = {k: v for k, v in settings.items() if v is not None}
        cli = parse_cli(argv, prog=Path(sys.argv[0]).name) if cli_mode else {"overrides": []}
        layers = [self._settings, self._yaml_settings(), given, cli]
        resolved = {k: v for layer in [DEFAULTS, *layers] for k, v in layer.items()}
        # Slurm options merge key by key: pyexp.slurm.time=60 keeps the decorator's partition.
        resolved["slurm"] = {k: v for layer in layers for k, v in (layer.get("slurm") or {}).items()}
        resolved["jobs_given"] = any("jobs" in layer for layer in layers)
        retry = resolved["retry"]
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ConfigError(f"retry must be a whole number of extra attempts (0 or more), got {retry!r}; "
                              "e.g. --retry 2")
        if resolved["filter"]:
            try:
                re.compile(resolved["filter"])
            except re.error as exc:
                raise ConfigError(f"--filter {resolved['filter']!r} is not a valid regular expression: {exc}") from None
        return normalise(resolved)

    def _config_dir(self) -> Path | None:
        path = self._settings.get("config_path")
        return (self.file.parent / path).resolve() if path else None

    def _yaml_settings(self) -> dict[str, Any]:
        """Runner settings from a ``pyexp:`` node in the primary YAML config, if there is one."""
        config_dir = self._config_dir()
        if config_dir is None:
            return {}
        from .settings import config_settings

        return config_settings(config_dir, self._settings.get("config_name"))

    def _store(self, s: dict[str, Any]) -> RunStore:
        out = Path(s["output_dir"]) if s["output_dir"] else self.file.parent / "out"
        return RunStore(out.resolve(), s["name"] or self.fn.__name__)

    def _run(self, configs_fn: Any, report_fn: Any, argv: list[str], cli_mode: bool,
             settings: dict[str, Any]) -> Any:
        s = self._resolve(cli_mode, argv, dict(settings))
        store = self._store(s)
        configs_fn = configs_fn or self._configs_fn
        report_fn = report_fn or self._report_fn
        if s["list"]:
            from .cli import print_runs

            print_runs(store, experiment_file=self.file)
            return None
        flat = s["timestamp"] is False
        if s["report"] is not None:
            run = stored_run(store, s["report"], flat)
        elif s["continue"] is not None:
            run = stored_run(store, s["continue"], flat)
            if s["overrides"]:
                print(f"pyexp: warning: overrides {' '.join(s['overrides'])} are ignored with "
                      "--continue (the run's configs are frozen in its config.json files)", file=sys.stderr)
        # An unknown executor is reported before phase 1 writes anything.
        executor = build_executor(s) if s["report"] is None else None
        try:
            if s["report"] is None and s["continue"] is None:
                run = self._phase_configs(store, configs_fn, s, executor)
            viewer = self._start_viewer(store, s) if s["viewer"] else None
            try:
                if executor is not None:
                    executor, running = None, executor
                    if self._phase_execute(run, s, cli_mode, running, argv):
                        return None  # detached: the configs run on; --continue picks them up
                return self._phase_report(run, report_fn)
            finally:
                if viewer is not None:
                    _stop_viewer(viewer, s["viewer_port"])
        finally:
            if executor is not None:
                executor.close()

    def _phase_configs(self, store: RunStore, configs_fn: Any, s: dict[str, Any],
                       executor: Executor | None = None) -> Run:
        from .config.generate import generate

        config_dir = self._config_dir()
        where = f"{getattr(configs_fn, '__qualname__', 'configs')}() in {self.file}"
        tensor = generate(configs_fn, overrides=s["overrides"], multirun=s["multirun"],
                          config_dir=config_dir, config_name=self._settings.get("config_name"), where=where)
        configs = list(tensor)
        plan_dirs(configs)  # duplicate names and non-JSON values fail before any folder exists
        if executor is not None:  # e.g. Slurm refusing the partition: also before any folder exists
            executor.validate(len(configs), jobs_setting(s))
        flat = s["timestamp"] is False
        run = store.flat_run(create=True) if flat else store.create_run()
        try:
            commit = self._snapshot(store, run, s)
            meta = {"experiment": store.root.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "argv": sys.argv, "git_commit": commit}
            code = record_code(self.file, commit, store)
            if code is not None:
                meta["code"] = code.to_json()
            axis_values = getattr(tensor, "axis_values", None)
            if axis_values:
                meta["axis_values"] = axis_values
            run.write(configs, tuple(tensor.shape), tuple(tensor.axes), meta)
        except BaseException:
            if not flat:  # the folder without timestamp holds earlier invocations' results
                shutil.rmtree(run.path, ignore_errors=True)  # a run without runs.json is useless
            raise
        return run

    def _snapshot(self, store: RunStore, run: Run, s: dict[str, Any]) -> str | None:
        if not s["stash"]:
            return None
        from .gitstate import snapshot

        # A run without timestamp is snapshotted per invocation, under the time it started.
        label = run.timestamp if run.path != store.root else f"no-timestamp/{time.strftime(TIMESTAMP_FORMAT)}"
        # The run store itself is no source code, whether or not .gitignore says so.
        return snapshot(self.file.parent, f"{store.root.name}/{label}", exclude=[store.root.parent])

    def _phase_execute(self, run: Run, s: dict[str, Any], cli_mode: bool, executor: Executor,
                       argv: list[str]) -> bool:
        """Phase 2; True if the configs were left running (``--detach``)."""
        from .scheduler import execute

        manifest = run.manifest()
        pattern = re.compile(s["filter"]) if s["filter"] else None
        stamps: dict[Path, Any] = {}
        run.check_configs()
        code = code_for_execution(run, self.file, s["stash"] and s["continue"] is not None)
        # Thousands of small outcome records would trigger many useless collections.
        collect = gc.isenabled()
        gc.disable()
        try:
            todo, cached, done, stale = self._plan(run, manifest, s, pattern, code, stamps)
        finally:
            if collect:
                gc.enable()
        say_stale(stale, done, s["rerun_stale"])
        if s["reuse"] and s["continue"] is None:
            from .history import reuse_finished

            todo, reused = reuse_finished(run, todo, code["fingerprint"] if code else None)
            cached += reused
        started = time.monotonic()
        command = continue_command([sys.argv[0], *(argv if cli_mode else [])],
                                   None if s["timestamp"] is False else run.timestamp)
        try:
            counts = execute(todo, executor, jobs=jobs_setting(s), progress=s["capture"] and not s["detach"],
                             cached=cached, stamps=stamps, continue_hint=command, retry=s["retry"],
                             detach=bool(s["detach"] and todo))
        except KeyboardInterrupt:
            print(f"\npyexp: interrupted; finished configs are saved. Continue with:\n    {command}",
                  file=sys.stderr, flush=True)
            if cli_mode:
                raise SystemExit(130) from None
            raise
        finally:
            executor.close()
        if counts.detached:
            print_detached(counts, command, run)
            return True
        print(f"pyexp: {counts} in {time.monotonic() - started:.1f}s -> {run.path}", file=sys.stderr)
        return False

    def _plan(self, run: Run, manifest: Any, s: dict[str, Any], pattern: Any, code: dict[str, Any] | None,
              stamps: dict[Path, Any]) -> tuple[list[Task], int, int, int]:
        """The tasks to run, and how many configs are cached, finished, and finished by other code."""
        fingerprint = code["fingerprint"] if code else None
        todo: list[Task] = []
        cached = done = stale = 0
        for dirname, name in zip(manifest.dirs, config_names(run)):
            if pattern is not None and not pattern.search(name):
                continue
            folder = run.config_dir(dirname)
            if s["rerun"]:
                run.set_aside(dirname)  # run again from scratch; the earlier attempt stays beside
            # Stamp before status: a result another process writes in between is noticed later.
            stamps[folder] = result_stamp(folder)
            status = run.status(dirname)
            if status == "done":
                done += 1
                is_stale = is_stale_header(run.outcome(dirname), fingerprint)
                stale += is_stale
                if not (is_stale and s["rerun_stale"]):
                    cached += 1
                    continue
            elif status == "failed" and s["skip_failed"]:
                cached += 1
                continue
            run.forget(dirname)  # it runs now: phase 3 reads its new outcome
            todo.append(Task(fn=self._task_fn, config=as_config(run.read_config(dirname)), name=name, out=folder,
                             capture=s["capture"], with_logger=self.with_logger, with_out=self.with_out,
                             git_commit=code.get("commit") if code else manifest.meta.get("git_commit"),
                             code=code))
        return todo, cached, done, stale

    def _phase_report(self, run: Run, report_fn: Any) -> Any:
        from .history import bind, current_code

        code = current_code(run, self.file)
        results = bind(load_results(run, self._make_result), run, code.fingerprint if code else None)
        if report_fn is None:
            return results
        if not wants_report_dir(report_fn):  # the earlier API's report(results)
            return report_fn(results)
        run.report_dir.mkdir(exist_ok=True)
        return report_fn(results, run.report_dir)

    def _start_viewer(self, store: RunStore, s: dict[str, Any]) -> Any:
        from .viewer import start_background

        proc = start_background(store.root, port=int(s["viewer_port"]))
        print(f"pyexp: viewer at http://127.0.0.1:{s['viewer_port']}", file=sys.stderr)
        return proc


def _stop_viewer(proc: Any, port: int) -> None:
    """Keep the viewer up for an interactive user until Ctrl-C; otherwise stop it with the run."""
    if sys.stdin is not None and sys.stdin.isatty():
        print(f"pyexp: viewer still serving at http://127.0.0.1:{port}; press Ctrl-C to stop it",
              file=sys.stderr)
        try:
            proc.wait()
        except KeyboardInterrupt:
            pass
    proc.terminate()
    proc.wait()
