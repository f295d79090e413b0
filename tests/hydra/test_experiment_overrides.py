"""Command-line overrides, ``-m`` sweep axes and ``pyexp.<key>`` settings on a real experiment script."""

from __future__ import annotations

import json

EXPERIMENT = """
import json
import pyexp

@pyexp.experiment(name="exp", executor="inline")
def exp(config):
    return {"lr": config.lr, "seed": config.get("seed")}

@exp.configs
def configs():
    return [{"name": "base", "lr": 0.5, "opt": {"kind": "sgd", "momentum": 0.9}}]

@exp.report
def report(results, report_dir):
    info = {"shape": list(results.shape), "axes": list(results.axes), "names": [r.name for r in results],
            "configs": [dict(r.config, out=None) for r in results]}
    if "lr" in results.axes:
        info["sel"] = [r.name for r in results.sel(lr=0.1)] if results.sel(lr=0.1) is not None else None
    print("REPORT " + json.dumps(info, default=str))

if __name__ == "__main__":
    exp.run()
"""


def _report(proc) -> dict:
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_value_overrides_apply_to_every_config(script) -> None:
    s = script(EXPERIMENT)
    info = _report(s.run("lr=0.1", "new.key=3", "++opt.kind=adam", "~opt.momentum"))
    assert info["shape"] == [1] and info["names"] == ["base"]
    cfg = info["configs"][0]
    assert cfg["lr"] == 0.1 and cfg["new"] == {"key": 3} and cfg["opt"] == {"kind": "adam"}


def test_multirun_adds_one_named_axis_per_swept_key(script) -> None:
    s = script(EXPERIMENT)
    info = _report(s.run("-m", "lr=0.1,0.01", "+seed=range(3)"))
    assert info["shape"] == [1, 2, 3] and info["axes"] == ["configs", "lr", "seed"]
    assert info["names"][:2] == ["base_lr=0.1_seed=0", "base_lr=0.1_seed=1"]
    assert info["sel"] == ["base_lr=0.1_seed=0", "base_lr=0.1_seed=1", "base_lr=0.1_seed=2"]
    assert [c["seed"] for c in info["configs"]] == [0, 1, 2, 0, 1, 2]
    (run,) = s.runs("exp")
    # Folder names stay readable and safe (no sub-folders from the '=' or ',' spelling).
    assert sorted(p.name.rsplit("-", 1)[0] for p in run.iterdir() if p.is_dir() and p.name != "report")[:1] \
        == ["base_lr=0.01_seed=0"]


def test_sweep_errors_are_one_line_with_the_fix(script) -> None:
    s = script(EXPERIMENT)
    proc = s.run("lr=0.1,0.01", check=False)
    assert proc.returncode == 1 and "add -m" in proc.stderr and "Traceback" not in proc.stderr
    proc = s.run("-m", "lr=interval(0,1)", check=False)
    assert proc.returncode == 1 and "interval()" in proc.stderr
    proc = s.run("+lr=3", check=False)
    assert proc.returncode == 1 and "already has 'lr'" in proc.stderr and "++lr=3" in proc.stderr
    proc = s.run("pyexp.bogus=1", check=False)
    assert proc.returncode == 1 and "pyexp.bogus" in proc.stderr and "executor" in proc.stderr
    assert s.runs("exp") == []


def test_runner_settings_spelled_as_hydra_overrides(script, tmp_path) -> None:
    s = script(EXPERIMENT)
    s.run("+pyexp.name=spelled", "pyexp.executor=fork", "-m", "lr=0.1,0.2")
    (first,) = s.runs("spelled")
    info = _report(s.run("pyexp.name=spelled", "pyexp.report=true"))
    assert info["shape"] == [1, 2]  # report only: no new run
    assert s.runs("spelled") == [first]
    # A timestamp comes back as the exact string, even though Hydra types some values.
    proc = s.run("pyexp.name=spelled", f"+pyexp.continue={first.name}")
    assert "2 cached" in proc.stderr + proc.stdout
    proc = s.run("pyexp.name=spelled", "+pyexp.continue=1999-01-01_00-00-00", check=False)
    assert proc.returncode == 1 and "1999-01-01_00-00-00" in proc.stderr
    s.run("pyexp.output_dir=elsewhere", "pyexp.name=moved")
    assert (tmp_path / "elsewhere" / "moved").is_dir()
