"""The pyexp sweeper's work: Hydra override sweeps as a grid with named axes, recorded in runs.json.

Jobs are the cartesian product of the overrides in command-line order, exactly the jobs
and override lists of Hydra's basic sweeper; each swept key adds one axis named after it
(``lr``; ``lr_2`` if swept twice), with one ``{"name": "lr=0.1", "lr": 0.1}`` per value.

Where the grid is recorded depends on the launcher:

* ``hydra/launcher=pyexp`` owns a pyexp run folder (``out/<name>/<timestamp>/``); the
  sweeper hands it the grid (``describe_grid``) and the launcher's ``runs.json`` records it.
* Any other launcher (the basic one included): Hydra's sweep folder becomes the run folder::

      <hydra.sweep.dir>/                   e.g. multirun/2024-01-25/14-30-00
          multirun.yaml                    Hydra's, as with the basic sweeper
          runs.json                        shape, axes, axis values, job folders row-major
          <hydra.sweep.subdir>/            Hydra's job folder (0, 1, ...): .hydra/, the app's files,
              config.json  result.pkl  outcome.json  log.out     and these, written when it returns

  ``result.pkl`` is the pickled return value and ``outcome.json`` says how the job ended.
  A job folder that is not directly inside the sweep folder (a nested ``subdir``) gets a
  ``job<N>`` folder there for these files instead.

Unlike the basic sweeper, a failed job does not stop the batches after it: every job
runs, ``runs.json`` is written, and then the first failure is raised as Hydra would.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

SWEEPER = "hydra/sweeper=pyexp"


@dataclass
class Grid:
    """The jobs of a sweep, row-major, and the named axes they span."""

    shape: tuple[int, ...]
    axes: list[str]
    axis_values: dict[str, list[dict[str, Any]]]
    jobs: list[list[str]]  # each job's override lines, as the launcher receives them

    def record(self) -> dict[str, Any]:
        """What ``runs.json`` keeps of the grid (the launcher hook receives the same)."""
        return {"shape": list(self.shape), "axes": list(self.axes), "axis_values": self.axis_values,
                "jobs": [list(j) for j in self.jobs]}


def plan(lines: Sequence[str], config_loader: Any) -> Grid:
    """The grid of ``lines`` (``key=a,b`` sweeps, plain ``key=v`` overrides), parsed by Hydra's grammar."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    from pyexp.config.hydra_bridge import sweep_axis

    parser = OverridesParser.create(config_loader=config_loader)
    # One entry per key, later ones replacing earlier ones in place, as the basic sweeper does.
    per_key: dict[str, tuple[list[str], Any]] = {}
    for override in parser.parse_overrides(list(lines)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            has_value = override.value_type is not None
            per_key[key] = ([f"{key}={override.get_value_element_as_str()}" if has_value else key], None)
            continue
        if not override.is_discrete_sweep():
            raise HydraException(
                f"{override.input_line}: the pyexp sweeper runs a grid of listed values; interval() cannot "
                "be enumerated: list the values (lr=0.1,0.01) or use range(start,stop,step)"
            )
        raws = list(override.sweep_iterator())  # once: shuffle() must give the lines and values one order
        if not raws:
            raise HydraException(f"{override.input_line} sweeps over no values; nothing would run")
        spelled = [Override._get_value_element_as_str(r) for r in raws]
        name = override.key_or_group + (f"@{override.package}" if override.package else "")
        per_key[key] = ([f"{key}={s}" for s in spelled], (name, spelled, [Override._convert_value(r) for r in raws]))
    axes: list[str] = []
    axis_values: dict[str, list[dict[str, Any]]] = {}
    for _, swept in per_key.values():
        if swept is not None:
            axis, entries = sweep_axis(*swept, axes)
            axes.append(axis)
            axis_values[axis] = entries
    jobs = [list(combo) for combo in itertools.product(*(job_lines for job_lines, _ in per_key.values()))]
    shape = tuple(len(v) for v in axis_values.values())
    return Grid(shape, axes, axis_values, jobs)


def sweep(sweeper: Sweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run every job of the grid in batches; record the grid; then raise the first failure, if any.

    ``sweeper`` is the public module's PyexpSweeper (typed by Hydra's base class, so this module
    does not import the one that imports it).
    """
    config, launcher, context = sweeper.config, sweeper.launcher, sweeper.hydra_context
    assert config is not None and launcher is not None and context is not None
    lines = [f"{k}={v}" for k, v in sweeper.params.items()] + list(arguments)
    grid = plan(lines, context.config_loader)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")

    describe = getattr(launcher, "describe_grid", None)  # hydra/launcher=pyexp records the grid itself
    recorder = None if callable(describe) else Recorder(sweep_dir, grid, str(config.hydra.job.name))
    if callable(describe):
        describe(grid.record())
    log.info(f"pyexp sweeper: {len(grid.jobs)} jobs, shape {grid.shape}, axes {grid.axes}")

    returns: list[Sequence[JobReturn]] = []
    start = 0
    try:
        for batch in _batches(grid.jobs, sweeper.max_batch_size):
            sweeper.validate_batch_is_legal(batch)
            results = launcher.launch(batch, initial_job_idx=start)
            if recorder is not None:
                recorder.add(start, results)
            returns.append(results)
            start += len(batch)
    finally:
        if recorder is not None:
            recorder.write()
    for batch_results in returns:
        for ret in batch_results:
            _ = ret.return_value  # raises the job's exception, as the basic sweeper does
    return returns


def _batches(jobs: list[list[str]], size: int | None) -> Iterator[list[list[str]]]:
    if size is not None and size != -1 and size < 1:
        raise HydraException(f"hydra.sweeper.max_batch_size must be a positive integer or null, got {size}")
    step = len(jobs) if size in (None, -1) else size
    for i in range(0, len(jobs), max(step, 1)):
        yield jobs[i:i + step]


@dataclass
class Recorder:
    """Turns the JobReturns of a non-pyexp launcher into a pyexp run in Hydra's sweep folder."""

    sweep_dir: Path
    grid: Grid
    task_name: str
    dirs: dict[int, str] = field(default_factory=dict)  # job index -> folder in sweep_dir
    names: dict[int, str] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)  # config.json sizes, for the run's integrity check

    def add(self, start: int, results: Sequence[JobReturn]) -> None:
        from hydra_plugins.pyexp_launcher._core import job_identity

        for n, ret in enumerate(results):
            idx = start + n
            folder = self._folder(idx, ret)
            self.dirs[idx] = folder.name
            self.names[idx] = job_identity(list(ret.overrides or self.grid.jobs[idx]), self.task_name)[0]
            self.sizes[idx] = _write_job(folder, ret)

    def _folder(self, idx: int, ret: JobReturn) -> Path:
        job_dir = _job_dir(ret)
        if job_dir is not None and job_dir.parent.resolve() == self.sweep_dir.resolve():
            return job_dir
        # runs.json lists plain folder names: a nested job folder gets a sibling for pyexp's files.
        folder = self.sweep_dir / f"job{idx}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write(self) -> None:
        """``runs.json``: the grid once every job returned, else a flat ``job`` axis of those that did."""
        from pyexp.store import Run

        done = sorted(self.dirs)
        if not done:
            return
        if len(done) == len(self.grid.jobs):
            shape, axes = self.grid.shape or (1,), self.grid.axes or ["job"]
            values = self.grid.axis_values or {"job": [{"name": self.names[0]}]}
        else:
            shape, axes = (len(done),), ["job"]
            values = {"job": [self._job_values(i) for i in done]}
        Run(self.sweep_dir).write_manifest([self.dirs[i] for i in done], tuple(shape), tuple(axes), {
            "axis_values": values, "names": [self.names[i] for i in done],
            "config_sizes": [self.sizes[i] for i in done], "experiment": self.task_name,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "sweeper": SWEEPER,
        })
        log.info(f"pyexp sweeper: results in {self.sweep_dir} (pyexp.load_results({str(self.sweep_dir)!r}))")

    def _job_values(self, idx: int) -> dict[str, Any]:
        """One job's entry on a flat axis: its name plus the value it took on every grid axis."""
        values: dict[str, Any] = {"name": self.names[idx]}
        rest = idx
        for axis, size in reversed(list(zip(self.grid.axes, self.grid.shape))):
            rest, i = divmod(rest, size)
            values.update({k: v for k, v in self.grid.axis_values[axis][i].items() if k != "name"})
        return values


def _job_dir(ret: JobReturn) -> Path | None:
    """The job's output folder (Hydra's ``runtime.output_dir``; the working dir if it chdir'ed)."""
    output_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
    if output_dir:
        return Path(str(output_dir))
    return Path(ret.working_dir) if ret.working_dir else None


def _write_job(folder: Path, ret: JobReturn) -> int:
    """config.json, result.pkl + outcome.json, and log.out of one job; returns config.json's size."""
    from pyexp import store
    from pyexp.outcome import Outcome

    size = store.Run(folder.parent).write_config(folder.name, _plain(ret.cfg))
    if ret.status == JobStatus.COMPLETED:
        outcome = Outcome("ok", result=ret._return_value)  # an unpicklable value is stored as an error
    elif isinstance(ret._return_value, BaseException):
        outcome = Outcome.from_exception(ret._return_value)
    else:
        outcome = Outcome("error", error=f"job status {ret.status.name}")
    store.publish_outcome(folder, outcome)
    hydra_log = folder / f"{ret.task_name}.log"  # Hydra's job log, when job logging writes one
    if hydra_log.is_file() and not store.log_path(folder).exists():
        shutil.copyfile(hydra_log, store.log_path(folder))
    return size


def _plain(cfg: Any) -> dict[str, Any]:
    """The job's config as plain data, interpolations resolved where they can be outside the job."""
    if cfg is None:
        return {}
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - e.g. ${hydra:...} needs the job's HydraConfig: keep them as written
        plain = OmegaConf.to_container(cfg, resolve=False)
    return dict(plain) if isinstance(plain, dict) else {"value": plain}
