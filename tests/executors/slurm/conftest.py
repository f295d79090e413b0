"""A real single-node Slurm for the Slurm tests: started once per session, stopped at the end.

The tests are skipped (with the install command) where Slurm's daemons or clients are missing.
All of them share one xdist group, so one worker owns the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from slurm_cluster import missing, single_node_cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{"SLURM_CONF": ...}`` of a running cluster; also set in os.environ for the children."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    root: Path = tmp_path_factory.mktemp("slurm")
    with single_node_cluster(root) as env:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
