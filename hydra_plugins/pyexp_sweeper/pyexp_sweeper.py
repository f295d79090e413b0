"""``hydra/sweeper=pyexp``: every swept override of a plain ``@hydra.main`` app becomes a named axis.

    python app.py -m hydra/sweeper=pyexp lr=0.1,0.01 seed='range(3)'          # shape (2, 3)
    python app.py -m hydra/sweeper=pyexp hydra/launcher=pyexp lr=0.1,0.01    # pyexp's executors too

The run folder's ``runs.json`` records the shape, the axes and each axis's values, so
``pyexp.load_results(folder).sel(lr=0.1)`` works. This module imports only Hydra; the
work happens in ``_core`` once a sweep starts.
"""

# No `from __future__ import annotations`: Hydra executes this module without registering it
# in sys.modules while scanning plugins, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class PyexpSweeperConf:
    _target_: str = "hydra_plugins.pyexp_sweeper.pyexp_sweeper.PyexpSweeper"
    # Jobs handed to the launcher at a time (null: all at once), as in Hydra's basic sweeper.
    max_batch_size: Optional[int] = None
    # Overrides swept as if typed first on the command line, e.g. {lr: "0.1,0.01"}
    # (from the command line: +hydra.sweeper.params.lr='0.1,0.01').
    params: Dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="pyexp", node=PyexpSweeperConf, provider="pyexp")


class PyexpSweeper(Sweeper):
    """A Hydra sweeper that runs the cartesian product of the swept overrides as a named grid."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None) -> None:
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher: Optional[Launcher] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from . import _core

        return _core.sweep(self, arguments)
