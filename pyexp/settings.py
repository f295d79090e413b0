"""Every runner setting and every way to spell it: the one table to extend.

A setting has one key (``DEFAULTS``) and these spellings, highest priority first:

======================  =====================================================================
command-line flag       ``--jobs 4`` (:func:`add_flags`; parsed by :mod:`pyexp.cli`)
Hydra-style override    ``pyexp.jobs=4`` / ``+pyexp.continue=<ts>`` (:func:`split_settings`)
``run()`` keyword       ``exp.run(jobs=4)`` (``continue_=`` / ``report_only=`` for the keywords)
decorator keyword       ``@pyexp.experiment(jobs=4)`` or ``class E(Experiment, jobs=4)``
YAML ``pyexp:`` node    ``pyexp: {jobs: 4}`` in the primary config file (:func:`config_settings`)
Hydra launcher          ``hydra.launcher.jobs=4`` (its config dataclass; :func:`launcher_settings`)
======================  =====================================================================

To add a setting: give it a default in ``DEFAULTS``, a flag in :func:`add_flags`, and its
type in ``_STR_KEYS`` / ``_INT_KEYS`` (anything else is a switch); every spelling then knows it.

Runner settings as overrides (the ``pyexp`` node)
-------------------------------------------------
Every runner flag also has a Hydra spelling; ``pyexp.<key>=v``, ``+pyexp.<key>=v``
and ``++pyexp.<key>=v`` all mean the same. An explicit flag beats its override.

=============================  ===========================================
flag                           Hydra override
=============================  ===========================================
``--name NAME``                ``pyexp.name=NAME``
``--executor fork``            ``pyexp.executor=fork`` (``'ray://h:1'`` quoted)
``--output-dir DIR``           ``pyexp.output_dir=DIR``
``--continue``                 ``+pyexp.continue=true`` (or ``=latest``)
``--continue=TS``              ``+pyexp.continue=TS`` (kept as the exact string)
``--report`` / ``--report=TS`` ``pyexp.report=true`` / ``pyexp.report=TS``
``--list``                     ``pyexp.list=true``
``--filter REGEX``             ``pyexp.filter='REGEX'`` (quote ``,=()[]{}``)
``-s`` / ``--capture=no``      ``pyexp.capture=false`` (``no``/``yes`` work too)
``--viewer``                   ``pyexp.viewer=true``
``--viewer-port 8080``         ``pyexp.viewer_port=8080``
``--no-stash``                 ``pyexp.stash=false``
``-j 4`` / ``--jobs 4``        ``pyexp.jobs=4``
``-m`` / ``--multirun``        ``pyexp.multirun=true``
``--skip-failed``              ``pyexp.skip_failed=true``
``--preload a,b``              ``pyexp.preload=[a,b]`` (or ``=a``)
``--rerun-stale``              ``pyexp.rerun_stale=true``
``--reuse``                    ``pyexp.reuse=true``
``--retry 2``                  ``pyexp.retry=2``
``--timestamp TS``             ``pyexp.timestamp=TS`` (earlier API)
``--no-timestamp``             ``pyexp.timestamp=false`` (earlier API)
``--rerun``                    ``pyexp.rerun=true`` (earlier API)
``--detach``                   ``pyexp.detach=true``
(Slurm options, no flag)       ``pyexp.slurm.partition=gpu``, ``pyexp.slurm.time=60``...
=============================  ===========================================

The Slurm options (``SlurmExecutor``'s arguments) are one setting, ``slurm``, a mapping merged
key by key across the spellings: ``pyexp.slurm.<key>=v``, ``pyexp.slurm={partition: gpu}``,
YAML ``pyexp: {slurm: {partition: gpu}}``, ``@experiment(slurm={...})``, and the launcher's
``hydra.launcher.slurm.<key>``.

The same keys may sit in a ``pyexp:`` node of the primary YAML config
(:func:`config_settings`); that node never reaches a config.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, ConfigFileError, OverrideError

#: Runner settings and their defaults, in priority order CLI > run() > decorator > YAML > these.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "output_dir": None,
    "executor": "subprocess",
    "continue": None,
    "report": None,
    "list": False,
    "filter": None,
    "capture": True,
    "viewer": False,
    "viewer_port": 8765,
    "stash": True,
    "jobs": 1,
    "multirun": False,
    "skip_failed": False,
    "preload": None,
    "rerun_stale": False,
    "reuse": False,
    "retry": 0,
    # The earlier API's spellings (see _earlier_api): True: a new timestamped run; False: no
    # timestamp level; "<TS>": that run (continued, reported with --report, rerun with --rerun).
    "timestamp": True,
    "rerun": False,
    "detach": False,
    "slurm": None,  # SlurmExecutor options ({"partition": ..., "time": ...}), merged key by key
}

#: Settings whose value is a string; ``continue``/``report``/``timestamp`` also take true. Others are ints
#: (``_INT_KEYS``, each with its least value: ``retry`` counts extra attempts) or switches.
_STR_KEYS = {"name", "executor", "output_dir", "continue", "report", "filter", "timestamp"}
_INT_KEYS = {"jobs": 1, "viewer_port": 1, "retry": 0}
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}

#: Options of the decorator / class keywords that are not runner settings.
CONFIG_OPTIONS = ("config_path", "config_name")

#: ``run()`` keywords spelled differently because ``continue`` is a Python keyword.
RUN_ALIASES = {"continue_": "continue", "report_only": "report"}


def check_options(options: Mapping[str, Any], where: str, extra: tuple[str, ...] = CONFIG_OPTIONS) -> None:
    """Raise ConfigError naming ``where`` for an option that is no setting."""
    unknown = set(options) - set(DEFAULTS) - set(extra)
    if unknown:
        raise ConfigError(f"{where}: unknown experiment option(s) {', '.join(sorted(unknown))}; "
                          f"valid: {', '.join(sorted(DEFAULTS))}")


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """``continue``/``report``: True means "latest", False none, anything else a timestamp string.

    The earlier API's ``timestamp``/``rerun`` are checked and folded in (:func:`_earlier_api`).
    """
    for key in ("continue", "report"):
        value = settings.get(key)
        if value is True:
            settings[key] = "latest"
        elif value is False:
            settings[key] = None
        elif value is not None:
            settings[key] = str(value)
    if "timestamp" in settings:
        _earlier_api(settings)
    return settings


def _earlier_api(s: dict[str, Any]) -> None:
    """``timestamp="<TS>"`` is ``continue`` (``report`` with --report) of that run; check they agree.

    ``timestamp`` stays True (timestamped runs) or False (config folders right under the
    experiment's folder); ``rerun`` contradicts ``report``.
    """
    ts = s["timestamp"]
    if ts is None:
        ts = True
    elif isinstance(ts, str) and ts.lower() in _BOOL_WORDS:
        ts = _BOOL_WORDS[ts.lower()]
    if not isinstance(ts, (bool, str)) or ts == "":
        raise ConfigError(f"timestamp={ts!r}: give True, False or the timestamp of a run "
                          "(a folder name such as 2024-01-25_14-30-00)")
    if s.get("rerun") and s.get("report") is not None:
        raise ConfigError("--rerun and --report contradict each other: --rerun runs the configs "
                          "again, --report only rebuilds the report; drop one of them")
    if isinstance(ts, str):
        key = "report" if s.get("report") is not None else "continue"
        if s.get(key) not in (None, "latest", ts):
            raise ConfigError(f"--timestamp {ts} and --{key} {s[key]} name different runs; give one of them")
        s[key] = ts
    elif ts is False:
        for key in ("continue", "report"):
            if s.get(key) not in (None, "latest"):
                raise ConfigError(f"--{key} {s[key]} names a timestamped run, but timestamp=False "
                                  "(--no-timestamp) has none; drop the timestamp or --no-timestamp")
    s["timestamp"] = ts


def add_flags(p: argparse.ArgumentParser) -> None:
    """The command-line spelling of every setting (``dest`` is the setting's key)."""
    p.add_argument("--name", help="experiment name (folder under the output dir)")
    p.add_argument("--executor", help="subprocess (default), fork, spawn, inline, ray, ray:<address>, "
                   "ray://host:port, slurm (options: pyexp.slurm.<key>=value)")
    p.add_argument("--preload", action="append", metavar="MOD[,MOD]",
                   help="modules the fork-server imports once before forking the configs")
    p.add_argument("--output-dir", dest="output_dir", metavar="DIR", help="where runs are stored")
    p.add_argument("--continue", dest="continue", nargs="?", const="latest", metavar="TIMESTAMP",
                   help="continue the latest run, or the run TIMESTAMP: run what is pending or failed")
    p.add_argument("--report", nargs="?", const="latest", metavar="TIMESTAMP",
                   help="only build the report of the latest run, or of TIMESTAMP")
    p.add_argument("--list", action="store_true", help="list previous runs with their status")
    p.add_argument("--filter", metavar="REGEX", help="only run configs whose names match REGEX")
    p.add_argument("-s", dest="capture", action="store_false", help="show live output (same as --capture=no)")
    p.add_argument("--capture", choices=["no", "yes"], help="--capture=no shows live output")
    p.add_argument("--viewer", action="store_true", help="start the web viewer before the experiments")
    p.add_argument("--viewer-port", dest="viewer_port", type=int, metavar="PORT", help="viewer port (8765)")
    p.add_argument("--no-stash", dest="stash", action="store_false", help="do not snapshot the git state")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="run N configs at once (default 1)")
    p.add_argument("-m", "--multirun", action="store_true", help="let overrides sweep (lr=0.1,0.01)")
    p.add_argument("--skip-failed", dest="skip_failed", action="store_true",
                   help="with --continue: keep failed configs as they are (their error stays in the "
                   "results) and run only pending ones; without it --continue re-runs failed and "
                   "pending configs, never finished ones")
    p.add_argument("--rerun-stale", dest="rerun_stale", action="store_true",
                   help="with --continue: also run again the finished configs whose result was "
                   "computed by different code than today's")
    p.add_argument("--reuse", action="store_true",
                   help="fresh runs: link the finished result of an identical config computed by "
                   "identical code in an earlier run instead of running it again")
    p.add_argument("--retry", type=int, metavar="N",
                   help="run a failed config up to N more times before it counts as failed (default 0)")
    # The earlier API's spellings.
    p.add_argument("--timestamp", metavar="TIMESTAMP",
                   help="the run TIMESTAMP: continue it (with --report: report it; with --rerun: "
                   "run all its configs again)")
    p.add_argument("--no-timestamp", dest="timestamp", action="store_false",
                   help="no timestamp folder: out/NAME/<config>-<hash>/; configs with a result are skipped")
    p.add_argument("--rerun", action="store_true",
                   help="run every config again; each earlier attempt is kept in <config>/.previous-attempts/")
    p.add_argument("--detach", action="store_true",
                   help="submit the pending configs (--executor slurm), print how to come back, and exit; "
                   "--continue later waits for them and resubmits those that ended without a result")


#: Fields of the Hydra launcher's config (``hydra.launcher.<field>``) and the setting each spells.
LAUNCHER_FIELDS = {"executor": "executor", "jobs": "jobs", "output_dir": "output_dir", "name": "name",
                   "continue_run": "continue", "capture": "capture", "slurm": "slurm"}


def launcher_settings(fields: Mapping[str, Any], node: Any = None) -> dict[str, Any]:
    """Settings of a ``hydra/launcher=pyexp`` sweep, keyed like DEFAULTS.

    Args:
        fields: The launcher's config fields (``hydra.launcher.jobs=2``...).
        node: The app config's ``pyexp`` node (``+pyexp.continue=<ts>``), which wins.

    Raises:
        OverrideError: A key the launcher does not know, or a bad ``jobs``.
    """
    settings = {LAUNCHER_FIELDS[k]: v for k, v in fields.items() if k in LAUNCHER_FIELDS}
    if node is not None:
        if not isinstance(node, dict):
            raise OverrideError("pyexp: expected a node like +pyexp.continue=<timestamp>, got a value")
        valid = sorted(LAUNCHER_FIELDS.values())
        for key, value in node.items():
            if key not in valid:
                raise OverrideError(f"pyexp.{key} is not a setting of the pyexp launcher; valid keys: "
                                    f"{', '.join(valid)}")
            settings[key] = value
    cont = settings.get("continue")
    if isinstance(cont, str) and cont.lower() in ("true", "latest"):
        settings["continue"] = "latest"
    elif cont in ("", None):
        settings["continue"] = None
    jobs = settings.get("jobs")  # None: one at a time locally, no cap on Slurm
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise OverrideError(f"hydra.launcher.jobs must be a positive integer, got {jobs!r}")
    settings["jobs"] = jobs
    slurm = settings.get("slurm") or {}
    if not isinstance(slurm, Mapping):
        raise OverrideError(f"hydra.launcher.slurm must be a mapping of Slurm options, got {slurm!r}")
    # The launcher's dataclass lists every option; unset ones (null, false) keep Slurm's defaults.
    settings["slurm"] = {_check_slurm_key(str(k), "hydra.launcher.slurm"): v for k, v in slurm.items()
                         if v is not None and v is not False}
    return normalise(settings)


def _setting_keys() -> list[str]:
    return sorted(DEFAULTS)


def split_settings(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take the runner settings (``pyexp.<key>=v``) out of ``overrides``.

    Args:
        overrides: Hydra overrides in command-line order.

    Returns:
        ``(settings, remaining)``: settings keyed like ``pyexp.cli.DEFAULTS`` (note the
        key ``"continue"``), and the config overrides left, in their order.

    Raises:
        OverrideError: An override does not parse, names an unknown ``pyexp.<key>``,
            sweeps or deletes a setting, or gives a value of the wrong type.
    """
    settings: dict[str, Any] = {}
    remaining: list[str] = []
    from .config.overrides import parse_overrides

    for text, override in zip(overrides, parse_overrides(overrides)):
        key = override.key_or_group
        if key != "pyexp" and not key.startswith("pyexp."):
            remaining.append(text)
            continue
        if override.is_delete() or override.is_sweep_override() or override.package is not None:
            raise OverrideError(
                f"{text}: runner settings take one value, e.g. pyexp.executor=fork; "
                "they cannot be swept, deleted or given a package"
            )
        value = override.value()
        if key == "pyexp":
            if not isinstance(value, dict):
                raise OverrideError(f"{text}: use pyexp.<setting>=value, e.g. pyexp.executor=fork")
            for sub, sub_value in value.items():
                settings[_check_key(str(sub), text)] = _typed(str(sub), sub_value, str(sub_value), text)
            continue
        name = key[len("pyexp."):]
        if name.startswith("slurm."):
            option = _check_slurm_key(name[len("slurm."):], text)
            settings.setdefault("slurm", {})[option] = value
            continue
        name = _check_key(name, text)
        if name == "slurm":
            settings["slurm"] = {**settings.get("slurm", {}), **_typed(name, value, "", text)}
            continue
        settings[name] = _typed(name, value, override.get_value_string(), text)
    return settings, remaining


def _check_key(name: str, text: str) -> str:
    valid = _setting_keys()
    if name not in valid:
        raise OverrideError(
            f"{text}: unknown runner setting pyexp.{name}; valid keys: {', '.join(valid)}"
        )
    return name


def _check_slurm_key(option: str, text: str) -> str:
    from .executors.slurm import OPTIONS

    if option not in OPTIONS:
        raise OverrideError(f"{text}: unknown Slurm option pyexp.slurm.{option}; valid: {', '.join(OPTIONS)}")
    return option


def _typed(name: str, value: Any, raw: str, text: str) -> Any:
    """Coerce a parsed override value to the type of setting ``name``."""
    if name == "slurm":  # a mapping of SlurmExecutor options; their values are checked by it
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise OverrideError(f"{text}: pyexp.slurm takes a mapping of Slurm options, e.g. "
                                "pyexp.slurm.partition=gpu or pyexp: {slurm: {partition: gpu, time: 60}}")
        return {_check_slurm_key(str(k), text): v for k, v in value.items()}
    if name == "timestamp" and (isinstance(value, bool) or str(value).lower() in _BOOL_WORDS):
        return value if isinstance(value, bool) else _BOOL_WORDS[str(value).lower()]
    if name in _STR_KEYS:
        if name in ("continue", "report"):
            if value is True or (isinstance(value, str) and value.lower() == "latest"):
                return "latest"
            if value is False or value is None:
                return None
        if isinstance(value, str):
            return value
        if value is None:
            return None
        if isinstance(value, (int, float)):
            # 2026 or 1e-3 as typed, never a re-formatted number.
            return raw.strip().strip("'\"")
        raise OverrideError(f"{text}: pyexp.{name} takes a string, got {type(value).__name__}")
    if name == "preload":  # pyexp.preload=sklearn.datasets or pyexp.preload=[a,b]
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, str) for v in items):
            return preload_names(items)
        raise OverrideError(f"{text}: pyexp.preload takes module names, e.g. pyexp.preload=[numpy,scipy]")
    if name in _INT_KEYS:
        least = _INT_KEYS[name]
        if isinstance(value, int) and not isinstance(value, bool) and value >= least:
            return value
        what = "a whole number (0 or more)" if least == 0 else "a positive integer"
        raise OverrideError(f"{text}: pyexp.{name} takes {what}, got {raw!r}")
    # The remaining settings are switches.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.lower()]
    raise OverrideError(f"{text}: pyexp.{name} takes true or false, got {raw!r}")


def preload_names(value: str | list[str] | tuple[str, ...], check: bool = False) -> list[str]:
    """The module names of a ``preload`` setting (a list, or ``"a,b"``).

    Raises:
        ConfigError: with ``check``, a name that is no module name or whose top package is missing.
    """
    items = [value] if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"preload: expected module names, got {item!r}; e.g. preload=[\"sklearn.datasets\"]")
        names += [n.strip() for n in item.split(",") if n.strip()]
    if check:
        import importlib.util

        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ConfigError(f"preload: {name!r} is not a module name; give dotted names like sklearn.datasets")
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:  # the top package only: finding it imports nothing
                raise ConfigError(f"preload: no module named {top!r} (in {name!r}); fix the name in "
                                  "preload=/--preload or install the package")
    return names


def config_settings(config_dir: Path, config_name: str | None) -> dict[str, Any]:
    """Runner settings from the ``pyexp:`` node of the primary YAML config (no Hydra compose).

    ``conf/config.yaml`` may hold ``pyexp: {executor: fork, jobs: 4}``; the keys and their
    types are those of the ``pyexp.<key>=v`` overrides. Only the primary file is read, so the
    node cannot come from a config group.

    Raises:
        OverrideError: Unknown key or a value of the wrong type (the message names the file).
    """
    if config_name is None:
        return {}
    stem = config_name[:-5] if config_name.endswith(".yaml") else config_name
    path = Path(config_dir) / f"{stem}.yaml"
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigFileError(f"{path}: cannot read it ({exc})") from None
    node = data.get("pyexp") if isinstance(data, dict) else None
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise OverrideError(f"{path}: 'pyexp' must be a mapping of runner settings, e.g. pyexp: {{jobs: 2}}")
    where = f"pyexp node of {path}"
    return {_check_key(str(k), where): _typed(str(k), v, str(v), where) for k, v in node.items()}
