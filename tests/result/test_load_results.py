"""pyexp.load_results(path): any pyexp run folder as a Tensor of Result, the Hydra launcher's included."""

from __future__ import annotations

import pytest

import pyexp
from pyexp.errors import PyexpError, RunNotFoundError

EXPERIMENT = """
import pyexp

@pyexp.experiment(name="grid", executor="inline")
def grid(config):
    return config.lr * 100 + config.epochs

@grid.configs
def configs():
    cfgs = pyexp.sweep([{"name": "exp", "mlp": {"width": 8}}],
                       [{"name": "lr0.1", "lr": 0.1}, {"name": "lr0.01", "lr": 0.01}])
    return pyexp.sweep(cfgs, [{"name": "e10", "epochs": 10}, {"name": "e100", "epochs": 100}])

if __name__ == "__main__":
    grid.run()
"""

HYDRA_APP = """
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    return cfg.x * 10 + cfg.y

if __name__ == "__main__":
    main()
"""


def test_an_experiment_run_loads_with_its_shape_axes_and_values(script):
    main = script(EXPERIMENT)
    main.run()
    (run,) = main.runs("grid")
    for path in (run, str(run), run.parent):  # a run folder, as str, or the experiment folder (latest run)
        results = pyexp.load_results(path)
        assert results.shape == (1, 2, 2)
        assert [r.result for r in results] == [20.0, 110.0, 11.0, 101.0]
    assert results.sel(lr=0.01, epochs=100)[0].result == 101.0  # the configs axis (size 1) stays
    assert results["exp_lr0.1_e10"].result == 20.0
    assert [r.name for r in results[{"config": {"mlp": {"width": 8}, "epochs": 10}}]] == [
        "exp_lr0.1_e10", "exp_lr0.01_e10"]
    assert results[0, 1, 0].out.parent == run


def test_a_launcher_run_without_the_sweeper_selects_on_its_job_axis(script, tmp_path):
    app = script(HYDRA_APP, name="app.py")
    app.run("-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork", "+x=1,2", "+y=0,5")
    results = pyexp.load_results(tmp_path / "out" / "app")
    assert (results.shape, results.axes) == ((4,), ("job",))
    picked = results.sel(x=2)  # the job axis keeps each job's override values
    assert [r.name for r in picked] == ["+x=2,+y=0", "+x=2,+y=5"]
    assert results.sel(x=1, y=5).name == "+x=1,+y=5"
    assert results["+x=1,+y=0"].config.x == 1
    assert [r.config.y for r in results[{"config.x": 2}]] == [0, 5]


def test_a_path_that_is_no_run_is_a_one_line_runtime_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"does not exist; pass a run folder") as caught:
        pyexp.load_results(tmp_path / "nope")
    assert isinstance(caught.value, RunNotFoundError) and isinstance(caught.value, PyexpError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFoundError, match=r"holds no runs.json and no finished runs") as caught:
        pyexp.load_results(tmp_path / "empty")
    assert "\n" not in str(caught.value)
