"""``hydra/sweeper=pyexp`` driving a plain ``@hydra.main`` app, run in a subprocess as a user runs it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import pyexp
from pyexp.errors import ConfigError

APP = """
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path={config_path!r}, config_name={config_name!r})
def main(cfg: DictConfig) -> dict:
    print(f"job lr={{cfg.lr}} seed={{cfg.seed}}")
    if cfg.seed == 2 and cfg.lr == 0.01:
        raise ValueError("seed 2 diverged")
    return {{"score": cfg.lr * 10 + cfg.seed, "db": cfg.get("db", {{}}).get("driver")}}


if __name__ == "__main__":
    main()
"""

GROUPS = {
    "conf/config.yaml": "defaults:\n  - db: mysql\n  - _self_\nlr: 0.1\nseed: 0\n",
    "conf/db/mysql.yaml": "driver: mysql\n",
    "conf/db/postgres.yaml": "driver: postgres\n",
}


@pytest.fixture
def app(script, tmp_path: Path):
    for rel, text in GROUPS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return script(APP.format(config_path="conf", config_name="config"), name="app.py")


def sweep_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in (tmp_path / "multirun").glob("*/*/runs.json"))


def test_basic_launcher_records_the_grid_in_the_sweep_folder(app, tmp_path: Path) -> None:
    proc = app.run("-m", "hydra/sweeper=pyexp", "lr=0.1,0.01", "seed=range(3)", check=False)
    assert proc.returncode != 0 and "seed 2 diverged" in proc.stderr  # the failure is raised, as Hydra does
    (folder,) = sweep_dirs(tmp_path)
    record = json.loads((folder / "runs.json").read_text())
    assert (record["shape"], record["axes"]) == ([2, 3], ["lr", "seed"])
    assert record["axis_values"]["lr"] == [{"name": "lr=0.1", "lr": 0.1}, {"name": "lr=0.01", "lr": 0.01}]
    assert record["runs"] == ["0", "1", "2", "3", "4", "5"]  # Hydra's own job folders

    results = pyexp.load_results(folder)
    assert (results.shape, results.axes) == ((2, 3), ("lr", "seed"))
    # Every job ran although one failed; the failure is kept with its error.
    assert [r.result["score"] for r in results.sel(lr=0.1)] == [1.0, 2.0, 3.0]
    failed = results.sel(lr=0.01, seed=2)
    assert failed.result is None and failed.error == "ValueError: seed 2 diverged"
    assert "Traceback" in failed.traceback
    assert results["lr=0.1,seed=1"].result["score"] == 2.0  # one match: the Result itself
    assert results[{"config.seed": 1, "cfg.lr": 0.01}].result["score"] == 1.1
    assert [r.name for r in results["lr=0.01,*"]] == ["lr=0.01,seed=0", "lr=0.01,seed=1", "lr=0.01,seed=2"]
    assert results[0].config.db.driver == "mysql" and results[0].out == folder / "0"
    # result.pkl is the app's return value, readable without pyexp.
    with open(folder / "0" / "result.pkl", "rb") as f:
        assert pickle.load(f) == {"score": 1.0, "db": "mysql"}
    assert (folder / "0" / "outcome.json").is_file() and not (folder / "5" / "result.pkl").exists()
    assert (folder / "0" / ".hydra" / "overrides.yaml").is_file()  # Hydra's folder is left as Hydra makes it


def test_pyexp_launcher_records_the_grid_in_its_run(app, tmp_path: Path) -> None:
    app.run("-m", "hydra/sweeper=pyexp", "hydra/launcher=pyexp", "hydra.launcher.executor=fork",
            "hydra.sweeper.max_batch_size=2", "db=mysql,postgres", "seed=0,1", "lr=0.5")
    (run,) = sorted((tmp_path / "out" / "app").glob("*/runs.json"))
    record = json.loads(run.read_text())
    assert (record["shape"], record["axes"]) == ([2, 2], ["db", "seed"])  # a plain override adds no axis
    assert record["launcher"] == "hydra/launcher=pyexp"
    assert not sweep_dirs(tmp_path)  # the launcher's run folder is the one place results live

    results = pyexp.load_results(tmp_path / "out" / "app")  # an experiment folder: its latest run
    assert (results.shape, results.axes) == ((2, 2), ("db", "seed"))
    postgres = results.sel(db="postgres")
    assert [r.config.db.driver for r in postgres] == ["postgres", "postgres"]
    assert results.sel(db="mysql", seed=1).config.seed == 1
    assert results[{"config": {"db": {"driver": "postgres"}, "seed": 0}}].name == "db=postgres,seed=0,lr=0.5"


def test_params_and_repeated_keys_follow_the_basic_sweeper(app, tmp_path: Path) -> None:
    # hydra.sweeper.params come first; a key given twice keeps its first place and its last value.
    app.run("-m", "hydra/sweeper=pyexp", "+hydra.sweeper.params.seed='0,1'", "lr=0.2,0.3", "seed=1,0")
    (folder,) = sweep_dirs(tmp_path)
    results = pyexp.load_results(folder)
    assert (results.shape, results.axes) == ((2, 2), ("seed", "lr"))
    assert [(r.config.seed, r.config.lr) for r in results] == [(1, 0.2), (1, 0.3), (0, 0.2), (0, 0.3)]
    assert results.sel(seed=0, lr=0.3).result["score"] == 3.0


def test_an_interval_sweep_is_refused_with_a_hint(app, tmp_path: Path) -> None:
    proc = app.run("-m", "hydra/sweeper=pyexp", "lr=interval(0,1)", check=False)
    assert proc.returncode != 0 and "interval() cannot be enumerated" in proc.stderr
    assert not sweep_dirs(tmp_path)


def test_sel_on_a_key_no_axis_has_names_the_axes(app, tmp_path: Path) -> None:
    app.run("-m", "hydra/sweeper=pyexp", "seed=0,1")
    results = pyexp.load_results(sweep_dirs(tmp_path)[0])
    with pytest.raises(ConfigError, match=r"no axis 'lr'.*\['seed'\]"):
        results.sel(lr=0.1)
