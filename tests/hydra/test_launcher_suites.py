"""Hydra's own launcher test suites, run against ``hydra/launcher=pyexp`` on each local executor."""

from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

from hydra_plugins.pyexp_launcher.pyexp_launcher import PyexpLauncher

# Hydra's suite apps leave version_base unset on purpose; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change working directory")


def test_discovered_by_hydra() -> None:
    names = [plugin.__name__ for plugin in Plugins.instance().discover(Launcher)]
    assert PyexpLauncher.__name__ in names


EXECUTORS = [
    pytest.param("pyexp", ["hydra.launcher.executor=inline"], id="inline"),
    pytest.param("pyexp", ["hydra.launcher.executor=fork", "hydra.launcher.jobs=2"], id="fork"),
    pytest.param("pyexp", ["hydra.launcher.executor=subprocess", "hydra.launcher.jobs=2"], id="subprocess",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("launcher_name, overrides", EXECUTORS)
class TestPyexpLauncher(LauncherTestSuite):
    pass


@pytest.mark.parametrize(
    "launcher_name, overrides",
    [pytest.param("pyexp", ["hydra.sweeper.max_batch_size=2", "hydra.launcher.executor=fork"], id="fork")],
)
class TestPyexpLauncherBatched(BatchedSweeperTestSuite):
    pass


@pytest.mark.slow
@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [pytest.param({}, ["-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork"], id="fork")],
)
class TestPyexpLauncherIntegration(IntegrationTestSuite):
    pass
