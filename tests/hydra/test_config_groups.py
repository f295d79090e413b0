"""YAML config groups: Hydra composes the base once per group choice; overrides and sweeps on top."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest

from pyexp.config.hydra_bridge import generate
from pyexp.errors import OverrideError

FILES = {
    "config.yaml": "defaults:\n  - model: mlp\n  - _self_\nname: exp\nlr: 0.001\nseed: 0\n"
                   "optimizer:\n  lr: ${lr}\n",
    "model/mlp.yaml": "type: MLP\nwidth: 64\n",
    "model/transformer.yaml": "type: Transformer\nwidth: 512\n",
    "model/cnn.yaml": "type: CNN\nwidth: 32\n",
    "strict.yaml": "name: strict\nseed: ???\n",
}


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    root = tmp_path / "conf"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def compose_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record every real hydra.compose call (a spy: Hydra still composes)."""
    calls: list[list[str]] = []
    real = hydra.compose

    def spy(*args, **kwargs):
        calls.append(list(kwargs.get("overrides") or []))
        return real(*args, **kwargs)

    monkeypatch.setattr(hydra, "compose", spy)
    return calls


def test_composes_once_per_group_choice_not_per_config(conf: Path, compose_calls) -> None:
    t = generate(None, overrides=["model=mlp,transformer", "lr=range(0,50)"], multirun=True,
                 config_dir=conf, config_name="config")
    assert t.shape == (1, 2, 50) and t.axes == ("configs", "model", "lr")
    assert compose_calls == [["model=mlp"], ["model=transformer"]]
    first = t.flat[1]
    assert first.name == "exp_model=mlp_lr=1" and first.model.type == "MLP"
    # Value overrides land before interpolations resolve, so ${lr} follows them.
    assert first.optimizer.lr == 1 and "hydra" not in first
    assert t.sel(model="transformer").shape == (1, 50)


def test_configs_function_gets_the_composed_base(conf: Path, compose_calls) -> None:
    seen = []

    def configs(base):
        seen.append(base.model.type)
        return [dict(base, name=f"s{s}", seed=s) for s in range(3)]

    t = generate(configs, overrides=["model=glob(*)", "+extra=1"], multirun=True,
                 config_dir=conf, config_name="config")
    assert sorted(seen) == ["CNN", "MLP", "Transformer"]  # glob() lists the group's options
    assert len(compose_calls) == 3
    assert t.shape == (3, 3) and t.axes[1:] == ("model",)
    assert [c.name for c in t][:3] == ["s0_model=cnn", "s0_model=mlp", "s0_model=transformer"]
    assert all(c.extra == 1 for c in t)


def test_group_override_without_sweep_picks_one_option(conf: Path) -> None:
    t = generate(None, overrides=["model=transformer", "seed=3"], multirun=False,
                 config_dir=conf, config_name="config")
    (cfg,) = t
    assert (cfg.name, cfg.model.type, cfg.seed) == ("exp", "Transformer", 3)


def test_composition_errors_name_the_fix(conf: Path) -> None:
    with pytest.raises(OverrideError, match="'seed' is mandatory.*seed=<value>"):
        generate(None, overrides=[], multirun=False, config_dir=conf, config_name="strict")
    (cfg,) = generate(None, overrides=["seed=1"], multirun=False, config_dir=conf, config_name="strict")
    assert cfg.seed == 1 and cfg.name == "strict"
    with pytest.raises(OverrideError, match="model=nope"):
        generate(None, overrides=["model=nope"], multirun=False, config_dir=conf, config_name="config")
    with pytest.raises(OverrideError, match="add -m"):
        generate(None, overrides=["model=mlp,cnn"], multirun=False, config_dir=conf, config_name="config")


SCRIPT = """
import json
import pyexp

@pyexp.experiment(name="groups", executor="inline", config_path="conf", config_name="config")
def exp(config):
    return {"type": config.model.type, "lr": config.lr}

@exp.report
def report(results, report_dir):
    print("REPORT " + json.dumps({"shape": list(results.shape), "axes": list(results.axes),
                                  "types": [r.result["type"] for r in results],
                                  "cnn": [r.name for r in results.sel(model="cnn")]}))

if __name__ == "__main__":
    exp.run()
"""


def test_experiment_script_sweeps_groups_from_the_command_line(script, conf: Path) -> None:
    s = script(SCRIPT)
    proc = s.run("-m", "model=mlp,cnn", "lr=0.1,0.2")
    info = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT "))[7:])
    assert info["shape"] == [1, 2, 2] and info["axes"] == ["configs", "model", "lr"]
    assert info["types"] == ["MLP", "MLP", "CNN", "CNN"]
    assert info["cnn"] == ["exp_model=cnn_lr=0.1", "exp_model=cnn_lr=0.2"]


def test_composing_leaves_hydras_process_state_alone(conf: Path) -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.version import VersionBase

    before = VersionBase.instance().getbase()
    generate(None, overrides=["model=cnn"], multirun=False, config_dir=conf, config_name="config")
    assert VersionBase.instance().getbase() is before  # a later @hydra.main keeps its defaults
    assert not GlobalHydra.instance().is_initialized()


def test_pyexp_node_of_the_primary_config_holds_runner_settings(conf: Path) -> None:
    from pyexp.settings import config_settings

    (conf / "config.yaml").write_text(FILES["config.yaml"] + "pyexp:\n  executor: fork\n  jobs: 2\n"
                                      "  continue: 2024-01-25_14-30-00\n")
    assert config_settings(conf, "config") == {"executor": "fork", "jobs": 2, "continue": "2024-01-25_14-30-00"}
    (cfg,) = generate(None, overrides=[], multirun=False, config_dir=conf, config_name="config")
    assert "pyexp" not in cfg
    (conf / "config.yaml").write_text("pyexp:\n  jobz: 2\n")
    with pytest.raises(OverrideError, match="config.yaml.*jobz.*valid keys"):
        config_settings(conf, "config")


def test_interpolations_follow_overrides_also_through_configs_base(conf: Path) -> None:
    def configs(base):
        return [dict(base, name="a"), dict(base, name="b", lr=9.0)]

    t = generate(configs, overrides=["lr=0.1,0.2", "~seed"], multirun=True, config_dir=conf, config_name="config")
    assert t.shape == (2, 2)
    assert [(c.name, c.lr, c.optimizer.lr) for c in t] == [
        ("a_lr=0.1", 0.1, 0.1), ("a_lr=0.2", 0.2, 0.2),
        ("b_lr=0.1", 0.1, 0.1), ("b_lr=0.2", 0.2, 0.2),  # the command line beats configs()
    ]
    assert all("seed" not in c for c in t)
