"""RunStore: every on-disk path of an experiment's runs, and nothing else.

Layout::

    <output_dir>/<experiment name>/
        <YYYY-MM-DD_HH-MM-SS>[_N]/        one run (``_N`` only when two start in one second)
            runs.json                     shape, axes and the config folders, row-major
            <config name>-<hash>/
                config.json                  the frozen config (``out`` included)
                result.pkl                   pickle of the return value (success only)
                outcome.json                 how the config ended (see pyexp.outcome)
                log.out                      captured stdout/stderr (every attempt's, with retry=N)
                .checkpoints/                @chkpt states (see pyexp.checkpoint.files)
                .claim                       lock held while a process runs the config
                .pyexp  events.pb ...        the Logger's files (see pyexp.log)
                ...user artifacts...
            report/                          the report function's folder
        runs.json  <config name>-<hash>/  report/   the run without timestamp (timestamp=False)

A config run again with ``--rerun`` first moves its result, outcome, log, checkpoints and
event log to ``<config name>-<hash>/.previous-attempts/<n>/``.

``runs.json`` is written last and atomically: a folder without it is a run
whose config generation never finished, and is ignored. This module is the only
place that spells these names; everything else asks it (``result_path(folder)``...). The names
and helpers of one config folder are kept in ``folder.py``, the ``.claim`` lock in ``claim.py``;
this module re-exports both, so ``pyexp.store`` stays the one place to ask.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .claim import Claim
from .._files import atomic_write_bytes, dump_json, read_json
from .folder import (ATTEMPT_LOG, CHECKPOINT_DIR, CLAIM_FILE, CONFIG_FILE, HYDRA_JOB_FILE, LOG_FILE, LOG_MARKER,
                      OUTCOME_FILE, PAYLOAD_FILE, RESULT_FILE, SLURM_DIR, SLURM_JOB_FILE, SLURM_PAYLOAD_FILE,
                      checkpoint_dir, drop_partial_writes, forget_outcome, has_log, hydra_job_path,
                      join_attempt_logs, keep_attempt_log, link_result, load_result, log_path, outcome_path,
                      publish_outcome, read_outcome, result_path, result_stamp, status_of)
from .._naming import (HASH_EXCLUDED_KEYS, config_dirname, config_hash, folder_name, job_dirname, plan_dirs,
                      sanitize_name)
from ..errors import RunNotFoundError, StoreError
from ..outcome import Outcome

TIMESTAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"
RUNS_FILE = "runs.json"
REPORT_DIR = "report"

__all__ = ["ATTEMPT_LOG", "CHECKPOINT_DIR", "CLAIM_FILE", "CONFIG_FILE", "HYDRA_JOB_FILE", "LOG_FILE", "LOG_MARKER",
           "OUTCOME_FILE", "PAYLOAD_FILE", "REPORT_DIR", "RESULT_FILE", "RUNS_FILE", "SLURM_DIR", "SLURM_JOB_FILE",
           "SLURM_PAYLOAD_FILE", "Claim", "Manifest", "Run",
           "RunStore", "atomic_write_bytes", "checkpoint_dir", "config_dirname", "config_hash", "drop_partial_writes",
           "dump_json", "forget_outcome", "has_log", "hydra_job_path", "join_attempt_logs", "keep_attempt_log",
           "load_result", "log_path", "outcome_path", "plan_dirs",
           "publish_outcome", "read_json", "read_outcome", "result_path", "result_stamp", "sanitize_name",
           "status_of"]


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?$")


@dataclass
class Manifest:
    """The content of ``runs.json``."""

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    dirs: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


class Run:
    """One run folder: timestamped, or the experiment's folder itself (``timestamp=False``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.timestamp = self.path.name
        # runs.json and config.json never change once written: each is read and checked at
        # most once per process, though phases 2 and 3 both need them.
        self._configs: dict[str, dict[str, Any]] = {}
        self._manifest: Manifest | None = None
        self._configs_checked = False
        self._outcomes: dict[str, Outcome | None] = {}

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
            sizes = [self.write_config(dirname, cfg) for cfg, dirname in zip(configs, dirs)]
            # Names and file sizes beside the folders let --continue and the report check every
            # config.json with one stat and read only the configs they actually use.
            names = [str(cfg.get("name", dirname)) for cfg, dirname in zip(configs, dirs)]
            self.write_manifest(dirs, shape, axes, {"names": names, "config_sizes": sizes, **(meta or {})})
        except OSError as exc:
            # Without runs.json the folder is ignored, so a retry starts clean.
            raise StoreError(
                f"{self.path}: cannot write the run's configs ({exc.strerror or exc}); "
                "free some space or choose another --output-dir, then start a fresh run"
            ) from None
        return [self.config_dir(d) for d in dirs]

    def write_config(self, dirname: str, config: Mapping[str, Any]) -> int:
        """Publish ``<dirname>/config.json`` (``out`` set to the folder); returns its size."""
        folder = self.config_dir(dirname)
        folder.mkdir(parents=True, exist_ok=True)
        data = dump_json({**config, "out": str(folder)})
        atomic_write_bytes(folder / CONFIG_FILE, data)
        self._configs.pop(dirname, None)
        return len(data)

    def write_manifest(self, dirs: list[str], shape: tuple[int, ...], axes: tuple[str, ...],
                       meta: dict[str, Any] | None = None) -> None:
        """Publish ``runs.json``: the run's shape, axes and config folders (row-major), plus ``meta``."""
        record = {"format": 1, "shape": list(shape), "axes": list(axes), "runs": list(dirs), **(meta or {})}
        atomic_write_bytes(self.runs_file, dump_json(record))
        # This process goes on with the sweep it wrote, even if another invocation of a run
        # without timestamp (same folder) replaces runs.json meanwhile.
        self._manifest = self._parse_manifest(record)

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

    def outcome(self, dirname: str) -> Outcome | None:
        """The verified outcome of ``dirname`` (None: pending), read once per process.

        Size and CRC of ``result.pkl`` are checked here, when the run is opened, so a
        damaged result is that config's error before anyone touches its value.
        """
        if dirname not in self._outcomes:
            self._outcomes[dirname] = read_outcome(os.path.join(self.path, dirname))
        return self._outcomes[dirname]

    def load_result(self, dirname: str) -> Any:
        """The stored return value of ``dirname`` (StoreError if it cannot be unpickled here)."""
        return load_result(self.config_dir(dirname))

    def set_aside(self, dirname: str) -> Path | None:
        """Move a config's outcome, output, checkpoints and log to ``.previous-attempts/<n>/``.

        ``--rerun`` does this before running a config again: the config is pending, and its
        earlier attempt stays beside it (never deleted). Returns that folder, or None if the
        config had nothing to set aside.
        """
        from ..log.attempts import archive_previous_attempt, new_attempt_dir

        folder = self.config_dir(dirname)
        names = (RESULT_FILE, OUTCOME_FILE, LOG_FILE, CHECKPOINT_DIR)
        found = [folder / name for name in names if (folder / name).exists()]
        try:
            target = archive_previous_attempt(folder)  # the event log, if there is one
            if found and target is None:
                target = new_attempt_dir(folder)
            # outcome.json first: a config without it is pending, whatever else is left.
            for path in sorted(found, key=lambda p: p.name != OUTCOME_FILE):
                os.replace(path, target / path.name)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot set its earlier attempt aside to run it again "
                             f"({exc.strerror or exc}); make the folder writable") from None
        self.forget(dirname)
        return target

    def forget(self, dirname: str) -> None:
        """Drop the cached outcome of ``dirname`` (it is about to run again)."""
        self._outcomes.pop(dirname, None)

    def status(self, dirname: str) -> str:
        """``"done"``, ``"failed"`` or ``"pending"``."""
        return status_of(self.outcome(dirname))






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

    def flat_run(self, create: bool = False) -> Run:
        """The run without timestamp (``timestamp=False``): config folders right in :attr:`root`.

        Its ``runs.json`` (in :attr:`root`) records the sweep of the latest invocation.
        ``create`` makes :attr:`root` if needed.
        """
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the output folder ({exc.strerror or exc}); "
                             "choose a writable --output-dir") from None
        return Run(self.root)

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
        if run.exists() and run.path.resolve().parent != self.root.resolve():
            self._check_same_experiment(run)  # a path to a run folder rather than a timestamp
        if not run.exists():
            known = ", ".join(r.timestamp for r in self.runs()[-5:]) or "none"
            raise RunNotFoundError(
                f"no run {timestamp!r} in {self.root} (latest runs: {known}); use --list to see them all"
            )
        return run


    def _check_same_experiment(self, run: Run) -> None:
        other = run.manifest().meta.get("experiment") or run.path.parent.name
        if other != self.root.name:
            raise RunNotFoundError(
                f"{run.runs_file}: a run of experiment {other!r}, not of {self.root.name!r} ({self.root}); "
                "give a timestamp of this experiment (see --list)"
            )


def _sort_key(stamp: str) -> tuple[str, int]:
    return stamp[:19], int(stamp[20:] or 0)
