"""Argument mistakes, at every command-line entry point: one ``pyexp: error:`` line, exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyexp_testing import clean_env, one_line_error

APP = '''
import pyexp

@pyexp.experiment(name="args", stash=False)
def exp(config):
    return config["v"]

@exp.configs
def configs():
    return [{"name": "a", "v": 1}]

if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("args, named", [
    (["--no-such-flag"], "--no-such-flag"),
    (["-j", "many"], "many"),
    (["--jobs=many"], "many"),
])
def test_a_bad_argument_is_one_line_naming_it_and_exit_1(script, args, named):
    s = script(APP)
    proc = s.run(*args, check=False)
    assert proc.returncode == 1, proc.stderr
    line = one_line_error(proc.stderr)
    assert line.startswith("pyexp: error:") and named in line
    assert not s.runs("args")  # nothing ran, nothing was written


def test_a_near_miss_suggests_the_flag(script):
    proc = script(APP).run("--contineu", check=False)
    assert proc.returncode == 1
    assert "did you mean --continue?" in one_line_error(proc.stderr)


def test_help_still_exits_0(script):
    proc = script(APP).run("--help")
    assert "--continue" in proc.stdout and "--skip-failed" in proc.stdout


def test_pyexp_debug_shows_the_traceback(script):
    proc = script(APP).run("--no-such-flag", check=False, env={"PYEXP_DEBUG": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UsageError" in proc.stderr


@pytest.mark.parametrize("module", ["pyexp.viewer", "pyexp.log.tensorboard"])
def test_every_entry_point_reports_the_same_way(tmp_path, module):
    bad_flag = subprocess.run([sys.executable, "-m", module, str(tmp_path), "--no-such-flag"],
                              capture_output=True, text=True, env=clean_env(), timeout=60)
    assert bad_flag.returncode == 1
    assert one_line_error(bad_flag.stderr).startswith("pyexp: error:")
    missing = subprocess.run([sys.executable, "-m", module, str(tmp_path / "nope")],
                             capture_output=True, text=True, env=clean_env(), timeout=60)
    assert missing.returncode == 1
    assert one_line_error(missing.stderr).startswith("pyexp: error:")
    helped = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                            env=clean_env(), timeout=60)
    assert helped.returncode == 0 and "usage" in helped.stdout
