"""RunStore: every on-disk path of an experiment's runs, and nothing else.

Layout::

    <output_dir>/<experiment name>/
        <YYYY-MM-DD_HH-MM-SS>[_N]/        one run (``_N`` only when two start in one second)
            runs.json                     shape, axes and the config folders, row-major
            <config name>-<hash>/
                config.json  result.pkl  log.out  ...user artifacts...
                .previous-attempts/<n>/   what --rerun set aside
            report/
        runs.json  <config name>-<hash>/  report/   the run without timestamp (timestamp=False)

``runs.json`` is written last and atomically: a folder without it is a run
whose config generation never finished, and is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

from .errors import ConfigError, RunNotFoundError, StoreError
from .executors.outcome import atomic_write_bytes, read_status

TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"
RUNS_FILE = "runs.json"
CONFIG_FILE = "config.json"
REPORT_DIR = "report"
HASH_EXCLUDED_KEYS = ("out", "hydra", "pyexp")

_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?$")


def sanitize_name(name: str) -> str:
    """A config name made safe as one directory name: ``/\\:*?"<>|`` and control chars become ``_``."""
    safe = _UNSAFE.sub("_", str(name))
    if safe in ("", ".", ".."):
        safe = safe.replace(".", "_") or "_"
    return safe


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON serialisable")


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 8-hex-digit hash of the task config: sorted JSON without ``out``, ``hydra``, ``pyexp``."""
    body = {k: v for k, v in config.items() if k not in HASH_EXCLUDED_KEYS}
    try:
        text = json.dumps(body, sort_keys=True, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"config {config.get('name')!r}: {_unjsonable_key(body)} holds a value that cannot be "
            f"stored in config.json ({exc}); use numbers, strings, bools, None, lists and dicts"
        ) from None
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _unjsonable_key(value: Any, path: str = "") -> str:
    """Dotted path of the first value json.dumps would reject (for the error message)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"key {path + str(key)!r}"
            found = _unjsonable_key(item, f"{path}{key}.")
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            found = _unjsonable_key(item, f"{path}{i}.")
            if found:
                return found
        return ""
    if value is None or isinstance(value, (str, int, float, bool, Path)):
        return ""
    return f"key {path[:-1]!r}" if path else "a value"


#: Longest config folder name prefix in bytes: file systems cap a name at 255 bytes.
_MAX_PREFIX_BYTES = 200


def config_dirname(config: Mapping[str, Any]) -> str:
    name = config.get("name")
    prefix = sanitize_name(name) if name not in (None, "") else "config"
    # The hash keeps a truncated name unique.
    prefix = prefix.encode()[:_MAX_PREFIX_BYTES].decode(errors="ignore") or "config"
    return f"{prefix}-{config_hash(config)}"


def plan_dirs(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The folder name of each config; raises ConfigError on a duplicate name (before anything is written)."""
    dirs, seen = [], set()
    for cfg in configs:
        dirname = config_dirname(cfg)
        name = cfg.get("name")
        key = ("name", name) if name not in (None, "") else ("dir", dirname)
        if key in seen or ("dir", dirname) in seen:
            raise ConfigError(
                f"two configs share the name {name!r}: every config needs a unique 'name' "
                "(give each variation of a sweep its own name)"
            )
        seen.add(key)
        seen.add(("dir", dirname))
        dirs.append(dirname)
    return dirs


def dump_json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False).encode()


def read_json(path: Path | str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{path}: corrupt JSON ({exc}); restore it or start a fresh run without --continue"
        ) from exc


@dataclass
class Manifest:
    """The content of ``runs.json``."""

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    dirs: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


class Run:
    """One timestamped run folder."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.timestamp = self.path.name
        # runs.json and config.json never change once written: each is read and checked at
        # most once per process, though phases 2 and 3 both need them.
        self._configs: dict[str, dict[str, Any]] = {}
        self._manifest: Manifest | None = None
        self._configs_checked = False

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def runs_file(self) -> Path:
        return self.path / RUNS_FILE

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    def config_dir(self, dirname: str) -> Path:
        return self.path / dirname

    def exists(self) -> bool:
        return self.runs_file.is_file()

    def write(self, configs: Iterable[Mapping[str, Any]], shape: tuple[int, ...],
              axes: tuple[str, ...], meta: dict[str, Any] | None = None) -> list[Path]:
        """Phase 1: one folder + ``config.json`` per config, then ``runs.json``. Returns the folders."""
        configs = list(configs)
        dirs = plan_dirs(configs)
        try:
            sizes = []
            for cfg, dirname in zip(configs, dirs):
                folder = self.config_dir(dirname)
                folder.mkdir(parents=True, exist_ok=True)
                body = dict(cfg)
                body["out"] = str(folder)
                data = dump_json(body)
                atomic_write_bytes(folder / CONFIG_FILE, data)
                sizes.append(len(data))
            # Names and file sizes beside the folders let --continue and the report check every
            # config.json with one stat and read only the configs they actually use.
            names = [str(cfg.get("name", dirname)) for cfg, dirname in zip(configs, dirs)]
            record = {"format": 1, "shape": list(shape), "axes": list(axes), "runs": dirs, "names": names,
                      "config_sizes": sizes, **(meta or {})}
            atomic_write_bytes(self.runs_file, dump_json(record))
            # This process goes on with the sweep it wrote, even if another invocation of a
            # run without timestamp (same folder) replaces runs.json meanwhile.
            self._manifest = self._parse_manifest(record)
        except OSError as exc:
            # Without runs.json the folder is ignored, so a retry starts clean.
            raise StoreError(
                f"{self.path}: cannot write the run's configs ({exc.strerror or exc}); "
                "free some space or choose another --output-dir, then start a fresh run"
            ) from None
        return [self.config_dir(d) for d in dirs]

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = self._read_manifest()
        return self._manifest

    def _read_manifest(self) -> Manifest:
        try:
            data = read_json(self.runs_file)
        except FileNotFoundError:
            raise RunNotFoundError(
                f"{self.runs_file} does not exist: this run never finished generating its configs; "
                "start a fresh run"
            ) from None
        return self._parse_manifest(data)

    def _parse_manifest(self, data: Any) -> Manifest:
        try:
            shape = tuple(int(n) for n in data["shape"])
            dirs = [str(d) for d in data["runs"]]
            axes = tuple(data.get("axes") or [f"axis{i}" for i in range(len(shape))])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.runs_file}: malformed ({exc!r}); start a fresh run") from exc
        for d in dirs:
            # Each entry names a folder inside this run; anything else would read or write elsewhere.
            if d in ("", ".", "..") or "/" in d or "\\" in d or "\x00" in d:
                raise StoreError(f"{self.runs_file}: malformed (config folder {d!r} is not a plain folder "
                                 "name); start a fresh run")
        meta = {k: v for k, v in data.items() if k not in ("shape", "runs", "axes")}
        return Manifest(shape, axes, dirs, meta)

    def read_config(self, dirname: str) -> dict[str, Any]:
        """The frozen config of ``dirname`` with ``out`` as a Path. Shared: do not mutate it."""
        cfg = self._configs.get(dirname)
        if cfg is not None:
            return cfg
        folder = self.config_dir(dirname)
        path = os.path.join(self.path, dirname, CONFIG_FILE)  # str joins: this runs per config
        try:
            cfg = read_json(path)
        except FileNotFoundError:
            raise StoreError(f"{path} is missing; start a fresh run (its config cannot be recovered)") from None
        if not isinstance(cfg, dict):
            raise StoreError(f"{path}: expected a JSON object; start a fresh run")
        cfg["out"] = folder
        self._configs[dirname] = cfg
        return cfg

    def check_configs(self) -> None:
        """Raise StoreError for a config.json that is missing or not the size phase 1 wrote."""
        if not self._configs_checked:
            self._check_configs(self.manifest())
            self._configs_checked = True

    def _check_configs(self, manifest: Manifest) -> None:
        sizes = manifest.meta.get("config_sizes")
        if not isinstance(sizes, list) or len(sizes) != len(manifest.dirs):
            for dirname in manifest.dirs:  # a run without sizes: parse them all
                self.read_config(dirname)
            return
        for dirname, size in zip(manifest.dirs, sizes):
            path = os.path.join(self.path, dirname, CONFIG_FILE)
            try:
                found = os.stat(path).st_size
            except FileNotFoundError:
                raise StoreError(f"{path} is missing; start a fresh run (its config cannot be recovered)") from None
            if found != size:
                raise StoreError(f"{path}: changed or damaged since the run started ({found} bytes, "
                                 f"written {size}); restore it or start a fresh run")

    def set_aside(self, dirname: str) -> Path | None:
        """Move a config's result, output, checkpoints and log to ``.previous-attempts/<n>/``.

        ``--rerun`` does this before running a config again: the config is pending, and its
        earlier attempt stays beside it (never deleted). Returns that folder, or None if the
        config had nothing to set aside.
        """
        from ._chkpt_scope import CHECKPOINT_DIR
        from .executors.base import LOG_FILE, RESULT_FILE
        from .log.attempts import archive_previous_attempt, new_attempt_dir

        folder = self.config_dir(dirname)
        found = [folder / name for name in (RESULT_FILE, LOG_FILE, CHECKPOINT_DIR) if (folder / name).exists()]
        try:
            target = archive_previous_attempt(folder)  # the event log, if there is one
            if found and target is None:
                target = new_attempt_dir(folder)
            for path in found:
                os.replace(path, target / path.name)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot set its earlier attempt aside to run it again "
                             f"({exc.strerror or exc}); make the folder writable") from None
        return target

    def status(self, dirname: str) -> str:
        """``"done"``, ``"failed"`` or ``"pending"`` (missing or unreadable result)."""
        from .executors.base import RESULT_FILE

        try:
            found = read_status(os.path.join(self.path, dirname, RESULT_FILE))
        except StoreError:
            return "pending"
        if found is None:
            return "pending"
        return "done" if found[0] == "ok" else "failed"


CLAIM_FILE = ".claim"


class Claim:
    """The right to run one config now: an exclusive ``flock`` on ``<config folder>/.claim``.

    Two processes continuing the same run each claim a config before running it, so
    every config runs once. The lock lives on the open file, which the child running
    the config inherits: it stays held until both this process and that child are
    gone, and the kernel drops it when they die, so a killed run leaves no stale claim.
    Without ``fcntl`` (Windows) claims always succeed.
    """

    #: Descriptors of the claims this process holds; a forked child closes all but its own.
    open_fds: ClassVar[set[int]] = set()

    def __init__(self, folder: Path, fd: int | None):
        self.folder = folder
        self.fd = fd

    @classmethod
    def acquire(cls, folder: Path) -> "Claim | None":
        """Claim ``folder``, or None if another process (or its child) holds it."""
        try:
            import fcntl
        except ImportError:
            return cls(folder, None)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / CLAIM_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only a hint for humans; the lock is what counts
        cls.open_fds.add(fd)
        return cls(folder, fd)

    @staticmethod
    def holder(folder: Path) -> str:
        """The pid that last claimed ``folder`` (a hint for messages), or "?"."""
        try:
            return (folder / CLAIM_FILE).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            Claim.open_fds.discard(self.fd)
            os.close(self.fd)
            self.fd = None


def result_stamp(folder: Path) -> tuple[int, int, int, int] | None:
    """Identity of the folder's result file (changes whenever a new result replaces it), or None."""
    from .executors.base import RESULT_FILE

    try:
        st = os.stat(os.path.join(folder, RESULT_FILE))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


class RunStore:
    """All runs of one experiment: ``<output_dir>/<name>/``."""

    def __init__(self, output_dir: Path | str, name: str):
        self.root = Path(output_dir) / sanitize_name(name)

    def create_run(self, now: float | None = None) -> Run:
        """A new, unique timestamped folder (``_1``, ``_2``... when one exists for this second)."""
        stamp = time.strftime(TIMESTAMP_FORMAT, time.localtime(now))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for n in range(10_000):
                path = self.root / (stamp if n == 0 else f"{stamp}_{n}")
                try:
                    os.mkdir(path)
                except FileExistsError:
                    continue
                return Run(path)
        except OSError as exc:
            raise StoreError(
                f"{self.root}: cannot create a run folder ({exc.strerror or exc}); "
                "choose a writable --output-dir"
            ) from None
        raise StoreError(f"{self.root}: cannot create a unique run folder for {stamp}")

    def flat_run(self) -> Run:
        """The run without timestamp (``timestamp=False``): config folders right in :attr:`root`.

        Its ``runs.json`` (in :attr:`root`) records the sweep of the latest invocation.
        """
        return Run(self.root)

    def create_flat_run(self) -> Run:
        """:meth:`flat_run`, creating :attr:`root` if needed."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the output folder ({exc.strerror or exc}); "
                             "choose a writable --output-dir") from None
        return self.flat_run()

    def runs(self) -> list[Run]:
        """Complete runs (with ``runs.json``), oldest first."""
        if not self.root.is_dir():
            return []
        found = [Run(p) for p in self.root.iterdir() if _TIMESTAMP.match(p.name)]
        return sorted((r for r in found if r.exists()), key=lambda r: _sort_key(r.timestamp))

    def get(self, timestamp: str | None = None) -> Run:
        """The run with ``timestamp``, or the latest one for None / ``"latest"``."""
        if timestamp in (None, "", "latest", True):
            runs = self.runs()
            if not runs:
                raise RunNotFoundError(
                    f"no runs of this experiment in {self.root}; run it once without --continue/--report"
                )
            return runs[-1]
        run = Run(self.root / str(timestamp))
        if not run.exists():
            known = ", ".join(r.timestamp for r in self.runs()[-5:]) or "none"
            raise RunNotFoundError(
                f"no run {timestamp!r} in {self.root} (latest runs: {known}); use --list to see them all"
            )
        return run


def _sort_key(stamp: str) -> tuple[str, int]:
    return stamp[:19], int(stamp[20:] or 0)
