"""Hydra's own sweeper test suites, run against ``hydra/sweeper=pyexp`` with the basic and the pyexp launcher."""

from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)

from hydra_plugins.pyexp_sweeper.pyexp_sweeper import PyexpSweeper

# Hydra's suite apps leave version_base unset on purpose; the warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change working directory")


def test_discovered_by_hydra() -> None:
    assert PyexpSweeper.__name__ in [plugin.__name__ for plugin in Plugins.instance().discover(Sweeper)]


LAUNCHERS = [
    pytest.param("basic", ["hydra/sweeper=pyexp"], id="basic"),
    pytest.param("pyexp", ["hydra/sweeper=pyexp", "hydra.launcher.executor=fork"], id="pyexp-fork"),
]


@pytest.mark.parametrize("launcher_name, overrides", LAUNCHERS)
class TestPyexpSweeper(LauncherTestSuite):
    pass


@pytest.mark.parametrize(
    "launcher_name, overrides",
    [pytest.param(name, [*flags, "hydra.sweeper.max_batch_size=2"], id=p_id)
     for (name, flags), p_id in ((p.values, p.id) for p in LAUNCHERS)],
)
class TestPyexpSweeperBatched(BatchedSweeperTestSuite):
    pass


@pytest.mark.slow
@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [pytest.param({}, ["-m", "hydra/sweeper=pyexp"], id="basic"),
     pytest.param({}, ["-m", "hydra/sweeper=pyexp", "hydra/launcher=pyexp", "hydra.launcher.executor=fork"],
                  id="pyexp-fork")],
)
class TestPyexpSweeperIntegration(IntegrationTestSuite):
    pass
