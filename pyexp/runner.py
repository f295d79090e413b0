"""ExperimentRunner: settings priority and the three phases (configs -> execution -> report)."""

from __future__ import annotations

import functools
import inspect
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .cli import DEFAULTS, parse_cli
from .errors import ConfigError, PyexpError, RunNotFoundError
from .executors.base import Executor, Task, get_executor
from .result import Result
from .store import TIMESTAMP_FORMAT, Run, RunStore, plan_dirs, result_stamp


class ExperimentRunner:
    """An experiment function plus its configs and report; created by ``@pyexp.experiment``.

    Calling the runner calls the function itself; :meth:`run` runs the whole pipeline.
    """

    def __init__(self, fn: Callable[..., Any], **settings: Any):
        unknown = set(settings) - set(DEFAULTS) - {"config_path", "config_name"}
        if unknown:
            raise ConfigError(f"unknown experiment option(s): {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(sorted(DEFAULTS))}")
        self.fn = fn
        self._settings = {k: v for k, v in settings.items() if v is not None}
        self._configs_fn: Callable[..., Any] | None = None
        self._report_fn: Callable[..., Any] | None = None
        self.file = _defining_file(fn)
        self.with_logger = _wants_logger(fn)
        # A class's __dict__ (its methods) must not land on the runner.
        functools.update_wrapper(self, fn, updated=() if isinstance(fn, type) else functools.WRAPPER_UPDATES)
        self._task_fn: Callable[..., Any] = fn  # what a Task calls with the config
        self._make_result: Callable[..., Any] = Result  # what the report gets per config
        if isinstance(fn, type):
            from .checkpoint import bind_class

            bind_class(self, fn)

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

        Settings (``name``, ``output_dir``, ``executor``, ``jobs``, ``capture``, ``filter``,
        ``stash``, ``viewer``, ``viewer_port``, ``skip_failed``, ``continue_``/``report_only``)
        override the decorator's; command-line flags override both. The command line is read
        from ``sys.argv`` when this experiment's file is the script being run, or from ``argv``.

        Returns:
            The report function's return value, or the results Tensor without a report.
        """
        cli_mode = argv is not None or _is_main_script(self.file)
        try:
            return self._run(configs, report, argv if argv is not None else sys.argv[1:], cli_mode, settings)
        except PyexpError as exc:
            if not cli_mode or os.environ.get("PYEXP_DEBUG"):
                raise
            print(f"pyexp: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            # Phase 2 handles its own Ctrl-C (and says how to continue); this is phase 1 or 3.
            if not cli_mode or os.environ.get("PYEXP_DEBUG"):
                raise
            print("\npyexp: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    def results(self, timestamp: str | bool | None = None, output_dir: str | Path | None = None) -> Any:
        """Load the results of a previous run (the latest by default) as a Tensor of Result.

        ``timestamp=False`` (or the experiment's ``timestamp=False``) loads the run without
        timestamp: the sweep its latest invocation ran.
        """
        settings = {**DEFAULTS, **self._settings}
        if output_dir is not None:
            settings["output_dir"] = output_dir
        mode = False if timestamp is False else settings["timestamp"]
        which = None if isinstance(timestamp, bool) else timestamp
        run = _stored_run(self._store(settings), which, mode)
        return load_results(run, self._make_result)

    # -- the pipeline --------------------------------------------------------------------

    def _resolve(self, cli_mode: bool, argv: list[str], settings: dict[str, Any]) -> dict[str, Any]:
        if "continue_" in settings:
            settings["continue"] = settings.pop("continue_")
        if "report_only" in settings:
            settings["report"] = settings.pop("report_only")
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown run() option(s): {', '.join(sorted(unknown))}; "
                              f"valid: {', '.join(sorted(DEFAULTS))}")
        given = {k: v for k, v in settings.items() if v is not None}
        cli = parse_cli(argv, prog=Path(sys.argv[0]).name) if cli_mode else {"overrides": []}
        resolved = {**DEFAULTS, **self._settings, **self._yaml_settings(), **given, **cli}
        if resolved["filter"]:
            try:
                re.compile(resolved["filter"])
            except re.error as exc:
                raise ConfigError(f"--filter {resolved['filter']!r} is not a valid regular expression: {exc}") from None
        for key in ("continue", "report"):
            if resolved[key] is True:
                resolved[key] = "latest"
            elif resolved[key] is False:
                resolved[key] = None
            elif resolved[key] is not None:
                resolved[key] = str(resolved[key])
        return _apply_timestamp(resolved)

    def _config_dir(self) -> Path | None:
        path = self._settings.get("config_path")
        return (self.file.parent / path).resolve() if path else None

    def _yaml_settings(self) -> dict[str, Any]:
        """Runner settings from a ``pyexp:`` node in the primary YAML config, if there is one."""
        config_dir = self._config_dir()
        if config_dir is None:
            return {}
        from .config.hydra_bridge import config_settings

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
            from .listing import print_runs

            print_runs(store)
            return None
        if s["report"] is not None:
            run = _stored_run(store, s["report"], s["timestamp"])
        elif s["continue"] is not None:
            run = _stored_run(store, s["continue"], s["timestamp"])
            if s["overrides"]:
                print(f"pyexp: warning: overrides {' '.join(s['overrides'])} are ignored with "
                      "--continue (the run's configs are frozen in its config.json files)", file=sys.stderr)
        # An unknown executor is reported before phase 1 writes anything.
        executor = get_executor(s["executor"]) if s["report"] is None else None
        try:
            if s["report"] is None and s["continue"] is None:
                run = self._phase_configs(store, configs_fn, s)
            viewer = self._start_viewer(store, s) if s["viewer"] else None
            try:
                if executor is not None:
                    executor, running = None, executor
                    self._phase_execute(run, s, cli_mode, running, argv)
                return self._phase_report(run, report_fn)
            finally:
                if viewer is not None:
                    _stop_viewer(viewer, s["viewer_port"])
        finally:
            if executor is not None:
                executor.close()

    def _phase_configs(self, store: RunStore, configs_fn: Any, s: dict[str, Any]) -> Run:
        from .generate import generate

        config_dir = self._config_dir()
        where = f"{getattr(configs_fn, '__qualname__', 'configs')}() in {self.file}"
        tensor = generate(configs_fn, overrides=s["overrides"], multirun=s["multirun"],
                          config_dir=config_dir, config_name=self._settings.get("config_name"), where=where)
        configs = list(tensor)
        plan_dirs(configs)  # duplicate names and non-JSON values fail before any folder exists
        flat = s["timestamp"] is False
        run = store.create_flat_run() if flat else store.create_run()
        try:
            meta = {"experiment": store.root.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "argv": sys.argv, "git_commit": self._snapshot(store, run, s)}
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
                       argv: list[str]) -> None:
        from .scheduler import execute

        manifest = run.manifest()
        pattern = re.compile(s["filter"]) if s["filter"] else None
        todo, cached, stamps = [], 0, {}
        run.check_configs()
        for dirname, name in zip(manifest.dirs, _names(run, manifest)):
            if pattern is not None and not pattern.search(name):
                continue
            folder = run.config_dir(dirname)
            if s["rerun"]:
                run.set_aside(dirname)  # run again from scratch; the earlier attempt stays beside
            # Stamp before status: a result another process writes in between is noticed later.
            stamps[folder] = result_stamp(folder)
            status = run.status(dirname)
            if status == "done" or (status == "failed" and s["skip_failed"]):
                cached += 1
                continue
            todo.append(Task(fn=self._task_fn, config=_as_config(run.read_config(dirname)), name=name, out=folder,
                             capture=s["capture"], with_logger=self.with_logger,
                             git_commit=manifest.meta.get("git_commit")))
        started = time.monotonic()
        command = continue_command([sys.argv[0], *(argv if cli_mode else [])],
                                   None if s["timestamp"] is False else run.timestamp)
        try:
            counts = execute(todo, executor, jobs=int(s["jobs"]), progress=s["capture"], cached=cached,
                             stamps=stamps, continue_hint=command)
        except KeyboardInterrupt:
            print(f"\npyexp: interrupted; finished configs are saved. Continue with:\n    {command}",
                  file=sys.stderr, flush=True)
            if cli_mode:
                raise SystemExit(130) from None
            raise
        finally:
            executor.close()
        print(f"pyexp: {counts} in {time.monotonic() - started:.1f}s -> {run.path}", file=sys.stderr)

    def _phase_report(self, run: Run, report_fn: Any) -> Any:
        results = load_results(run, self._make_result)
        if report_fn is None:
            return results
        if not _wants_report_dir(report_fn):  # the earlier API's report(results)
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


#: Flags that do not carry over to the command that continues a run (flag -> takes a value).
_NOT_CONTINUED = {"--continue": None, "--report": None, "-m": False, "--multirun": False, "--list": False,
                  "--timestamp": None, "--rerun": False}


def continue_command(argv: list[str], timestamp: str | None) -> str:
    """The shell command that continues run ``timestamp``: ``argv`` without overrides/--continue.

    With ``timestamp`` None (a run without timestamp) it is ``argv`` without ``--rerun``:
    the same sweep again, whose finished configs are skipped.
    """
    script = argv[0] if argv and argv[0] else "main.py"
    if timestamp is None:
        return shlex.join(["python", script, *(a for a in argv[1:] if a != "--rerun")])
    kept, rest = [], list(argv[1:])
    while rest:
        arg = rest.pop(0)
        flag = arg.split("=", 1)[0]
        if flag in _NOT_CONTINUED:
            # --continue/--report take an optional timestamp as the next word.
            if "=" not in arg and _NOT_CONTINUED[flag] is None and rest and re.match(r"^\d{4}-", rest[0]):
                rest.pop(0)
            continue
        if not arg.startswith("-") and "=" in arg:
            continue  # an override: the run's configs are frozen
        kept.append(arg)
    return shlex.join(["python", script, *kept, f"--continue={timestamp}"])


def _stored_run(store: RunStore, which: str | None, timestamp: Any) -> Run:
    """The run ``which`` names (a timestamp or "latest"), or the run without timestamp."""
    if timestamp is not False or which not in (None, "latest"):
        return store.get(which)
    run = store.flat_run()
    if not run.exists():
        raise RunNotFoundError(f"no run without timestamp in {store.root} ({run.runs_file} does not "
                               "exist); run the experiment once with timestamp=False / --no-timestamp")
    return run


def _apply_timestamp(s: dict[str, Any]) -> dict[str, Any]:
    """Turn the earlier API's ``timestamp``/``rerun`` into ``continue``/``report``; check they agree.

    ``timestamp`` stays True (timestamped runs) or False (no timestamp level); a timestamp
    string names the run to continue, or to report with ``--report``.
    """
    ts = s["timestamp"]
    if isinstance(ts, str) and ts.lower() in ("true", "false"):  # pyexp.timestamp=false, YAML strings
        ts = ts.lower() == "true"
    if ts is None:
        ts = True
    if not isinstance(ts, (bool, str)):
        raise ConfigError(f"timestamp={ts!r}: give True, False or the timestamp of a run "
                          "(a folder name such as 2024-01-25_14-30-00)")
    if s["rerun"] and s["report"] is not None:
        raise ConfigError("--rerun and --report contradict each other: --rerun runs the configs "
                          "again, --report only rebuilds the report; drop one of them")
    if isinstance(ts, str):
        key = "report" if s["report"] is not None else "continue"
        if s[key] not in (None, "latest", ts):
            raise ConfigError(f"--timestamp {ts} and --{key} {s[key]} name different runs; give one of them")
        s[key] = ts
    elif ts is False:
        for key in ("continue", "report"):
            if s[key] not in (None, "latest"):
                raise ConfigError(f"--{key} {s[key]} names a timestamped run, but timestamp=False "
                                  "(--no-timestamp) has none; drop the timestamp or --no-timestamp")
    s["timestamp"] = ts
    return s


def _names(run: Run, manifest: Any) -> list[str]:
    """Config names in manifest order (from runs.json, or each config.json for older runs)."""
    names = manifest.meta.get("names")
    if isinstance(names, list) and len(names) == len(manifest.dirs):
        return [str(n) for n in names]
    return [str(run.read_config(d).get("name", d)) for d in manifest.dirs]


def _load_config(run: Run, dirname: str) -> Any:
    return _as_config(run.read_config(dirname))


def _as_config(data: dict[str, Any]) -> Any:
    from .config import Config

    return Config(data)


def load_results(run: Run, make: Callable[..., Any] = Result) -> Any:
    """All results of ``run`` as a Tensor of Result with the run's shape and axes."""
    from .tensor import Tensor

    manifest = run.manifest()
    run.check_configs()
    results = []
    for dirname, name in zip(manifest.dirs, _names(run, manifest)):
        # A loader, not the config: a report that never looks at configs never reads config.json.
        config = functools.partial(_load_config, run, dirname)
        results.append(make(name, config, run.config_dir(dirname)))
    extra = {"axis_values": manifest.meta["axis_values"]} if manifest.meta.get("axis_values") else {}
    return Tensor(results, shape=manifest.shape, axes=manifest.axes, **extra)


def _defining_file(fn: Callable[..., Any]) -> Path:
    try:
        return Path(inspect.getfile(fn)).resolve()
    except (TypeError, OSError):
        return Path.cwd() / "<interactive>"


def _wants_logger(fn: Callable[..., Any]) -> bool:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def _wants_report_dir(fn: Callable[..., Any]) -> bool:
    """False for ``report(results)`` (the earlier API), True for ``report(results, report_dir)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) != 1


def _is_main_script(file: Path) -> bool:
    """True when ``file`` is the script Python was started with (so sys.argv is ours to read)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    return main_file is not None and Path(main_file).resolve() == file
