"""``hydra/launcher=pyexp``: run a plain ``@hydra.main`` multirun on pyexp's executors and run store.

    python app.py -m hydra/launcher=pyexp hydra.launcher.executor=fork hydra.launcher.jobs=2 x=1,2,3
    python app.py -m hydra/launcher=pyexp x=1,2,3,4 +pyexp.continue=latest   # only x=4 runs

This module imports only Hydra; the work happens in ``_core`` once a sweep starts.
"""

# No `from __future__ import annotations`: Hydra executes this module without registering it
# in sys.modules while scanning plugins, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SlurmConf:
    # Partition to submit to.
    partition: Optional[str] = None
    # Time limit per job: minutes, or Slurm's "hours:minutes:seconds".
    time: Optional[Any] = None
    # CPUs per job.
    cpus_per_task: Optional[int] = None
    # GPUs per job: a count, or "type:count".
    gpus_per_node: Optional[Any] = None
    # Memory per job: "16G", or megabytes.
    mem: Optional[Any] = None
    # Account to charge.
    account: Optional[str] = None
    # Quality of service.
    qos: Optional[str] = None
    # Node features required.
    constraint: Optional[str] = None
    # Shell lines run in the job first (module load ..., source venv/bin/activate).
    setup: Optional[List[str]] = None
    # Other sbatch options, e.g. {mail-type: END}.
    additional_parameters: Optional[Dict[str, Any]] = None
    # Requeue a preempted or timed-out job; it resumes from its @chkpt checkpoints.
    requeue: bool = False


@dataclass
class PyexpLauncherConf:
    _target_: str = "hydra_plugins.pyexp_launcher.pyexp_launcher.PyexpLauncher"
    # Where each job runs: subprocess (fresh interpreter), fork (POSIX, fastest isolated),
    # inline (this process, no isolation), ray, ray:<address>, ray://host:port or slurm.
    executor: str = "subprocess"
    # How many jobs run at the same time (null: one locally; on Slurm, as many as the cluster allows).
    jobs: Optional[int] = None
    # Root of pyexp's run store; a relative path is taken from the directory Hydra started in.
    output_dir: str = "out"
    # Folder under output_dir holding the runs (null: hydra.job.name).
    name: Optional[str] = None
    # "latest" or a run timestamp: keep that run's finished jobs and run only new or failed ones
    # (same as +pyexp.continue=...). null starts a new timestamped run.
    continue_run: Optional[str] = None
    # true: a job's stdout/stderr only go to <job folder>/log.out; false: also to this terminal.
    capture: bool = True
    # Options of executor=slurm (hydra.launcher.slurm.partition=gpu); null leaves Slurm's default.
    slurm: SlurmConf = field(default_factory=lambda: SlurmConf())


ConfigStore.instance().store(group="hydra/launcher", name="pyexp", node=PyexpLauncherConf, provider="pyexp")


class PyexpLauncher(Launcher):
    """A Hydra launcher that hands every job to a pyexp executor and caches it in a pyexp run."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None
        self.sweep: Any = None  # _core.Sweep: everything launch() needs, handed down explicitly

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from . import _core

        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.sweep = _core.setup(self.params, config, hydra_context, task_function)

    def describe_grid(self, grid: Dict[str, Any]) -> None:
        """Record the sweep as a grid: called by ``hydra/sweeper=pyexp`` before its first batch.

        ``grid`` holds ``shape``, ``axes``, ``axis_values`` and ``jobs`` (each job's
        overrides, row-major). Once the run holds exactly those jobs, its ``runs.json``
        has that shape and those axes instead of one flat ``job`` axis.
        """
        self.sweep.grid = dict(grid)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from . import _core

        return _core.launch(self.sweep, job_overrides, initial_job_idx)
