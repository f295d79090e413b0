"""Every spelling of the Slurm settings, and the mistakes caught before anything is written.

No cluster needed: these run everywhere (a missing sbatch is one of the cases).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyexp
from pyexp.settings import config_settings, split_settings
from pyexp.errors import ConfigError, ExecutorError, OverrideError, PyexpError
from pyexp_testing import clean_env
from slurm_helpers import waiting_script


def test_slurm_executor_is_public_and_takes_every_option() -> None:
    ex = pyexp.SlurmExecutor(partition="gpu", time="1:30:00", cpus_per_task=4, gpus_per_node=2, mem="16G",
                             account="lab", qos="high", constraint="a100", setup=["module load cuda"],
                             additional_parameters={"mail-type": "END"}, requeue=True)
    assert ex.options["time"] == "1:30:00" and ex.options["requeue"] is True
    assert isinstance(pyexp.get_executor("slurm"), pyexp.SlurmExecutor)
    assert pyexp.get_executor("slurm", {"partition": "debug"}).options["partition"] == "debug"
    # Command-line options replace those of an executor given in code, key by key.
    assert pyexp.get_executor(ex, {"time": 5}).options["partition"] == "gpu"
    assert pyexp.get_executor(ex, {"time": 5}).options["time"] == 5


@pytest.mark.parametrize("key, value, words", [
    ("time", "soon", "pyexp.slurm.time"), ("cpus_per_task", 0, "pyexp.slurm.cpus_per_task"),
    ("mem", "lots", "pyexp.slurm.mem"), ("setup", "module load x", "pyexp.slurm.setup"),
    ("partition", "", "pyexp.slurm.partition"),
])
def test_a_bad_option_value_names_the_option(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        pyexp.SlurmExecutor(**{key: value})


def test_overrides_and_yaml_spell_the_slurm_options(tmp_path: Path) -> None:
    settings, rest = split_settings(["pyexp.slurm.partition=gpu", "+pyexp.slurm.time=60", "lr=0.1",
                                     "pyexp.slurm.setup=[a,b]", "pyexp.slurm.requeue=true", "pyexp.detach=true"])
    assert settings == {"slurm": {"partition": "gpu", "time": 60, "setup": ["a", "b"], "requeue": True},
                        "detach": True}
    assert rest == ["lr=0.1"]
    with pytest.raises(OverrideError, match="pyexp.slurm.partitoin"):
        split_settings(["pyexp.slurm.partitoin=gpu"])
    (tmp_path / "config.yaml").write_text("pyexp:\n  executor: slurm\n  slurm:\n    partition: gpu\n    time: 30\n")
    assert config_settings(tmp_path, "config") == {"executor": "slurm", "slurm": {"partition": "gpu", "time": 30}}


def _bare_path(folder: Path) -> str:
    bare = folder / "bin"
    bare.mkdir()
    os.symlink(sys.executable, bare / "python")
    return str(bare)


def test_no_sbatch_on_path_is_one_error_line_and_writes_no_run(script) -> None:
    s = script(waiting_script(2, wait=False))
    proc = subprocess.run([sys.executable, str(s.path), "--executor", "slurm"], cwd=s.dir,
                          env=clean_env(PATH=_bare_path(s.dir)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("pyexp: error:") and "sbatch" in line and "slurm" in line
    assert not (s.dir / "out").exists()


def test_bad_slurm_settings_on_the_command_line_write_no_run(script) -> None:
    s = script(waiting_script(2, wait=False))
    for args, words in [(["pyexp.slurm.time=soon"], "pyexp.slurm.time"),
                        (["--detach"], "--detach"),
                        (["pyexp.slurm.nodes=2"], "pyexp.slurm.nodes")]:
        executor = [] if args == ["--detach"] else ["--executor", "slurm"]
        proc = s.run(*executor, *args, check=False)
        assert proc.returncode == 1, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("pyexp: error:") and words in line, line
    assert not (s.dir / "out").exists()


def test_errors_are_pyexp_errors() -> None:
    assert issubclass(ExecutorError, PyexpError) and issubclass(ConfigError, ValueError)
