"""LogReader never follows a JSONL pickle out of its run folder (the viewer unpickles what it reads)."""

from __future__ import annotations

import pickle

import pytest

from pyexp import Logger, LogReader
from pyexp.errors import LogError


def test_a_pickle_symlinked_outside_the_run_is_refused(tmp_path):
    run = tmp_path / "run"
    with Logger(run, use_protobuf=False) as logger:
        logger.set_global_it(0)
        logger.add_checkpoint("state", {"w": 1})
    reader = LogReader(run)
    assert reader.load_checkpoint("state", 0) == {"w": 1}

    outside = tmp_path / "elsewhere.cpkl"
    outside.write_bytes(pickle.dumps({"w": "from outside"}))
    (cpkl,) = run.glob("0/checkpoints/*.cpkl")
    cpkl.unlink()
    cpkl.symlink_to(outside)
    with pytest.raises(LogError, match="outside the run folder"):
        LogReader(run).load_checkpoint("state", 0)


def test_figures_too(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = tmp_path / "run"
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with Logger(run, use_protobuf=False) as logger:
        logger.set_global_it(0)
        logger.add_figure("curve", fig, interactive=True)
    plt.close(fig)
    assert LogReader(run).load_figure_png("curve", 0)
    (cpkl,) = run.glob("0/figures/*.cpkl")
    outside = tmp_path / "fig.cpkl"
    outside.write_bytes(cpkl.read_bytes())
    cpkl.unlink()
    cpkl.symlink_to(outside)
    reader = LogReader(run)
    with pytest.raises(LogError, match="outside the run folder"):
        reader.load_figure("curve", 0)
    with pytest.raises(LogError, match="outside the run folder"):
        reader.figure_interactive("curve", 0)
