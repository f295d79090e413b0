"""Ctrl-C with the default one job at a time (issue 14 §1), and with two, for every local executor.

Three configs that each sleep 5 s; Ctrl-C once the first one runs. Delivered as a terminal does
(SIGINT to the whole foreground process group) and to the pyexp process alone. Expected: the running
configs stop, the exact continue command is printed, exit 130, and nothing on screen disagrees
with what is stored: an interrupted config is pending (no outcome), neither failed nor done.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import pytest

from pyexp_testing import ScriptAt as Script, clean_env, outcome_of, wait_until

SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="sleepy")
def exp(config):
    (HERE / f"started-{config.name}").touch()
    time.sleep(0 if os.environ.get("FAST") else 5)
    return config.name

@exp.configs
def configs():
    return [{"name": f"c{i}"} for i in range(3)]

if __name__ == "__main__":
    exp.run()
'''


def _started(s: Script) -> list[str]:
    return sorted(p.name[len("started-"):] for p in s.dir.glob("started-*"))


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("target", ["group", "pyexp"])
@pytest.mark.parametrize("executor", ["subprocess", "fork", "inline"])
def test_ctrl_c_stops_the_run_and_leaves_interrupted_configs_pending(tmp_path, executor, target, jobs):
    s = Script(tmp_path, SCRIPT)
    err = open(s.dir / "stderr.txt", "w+")
    proc = s.start("--executor", executor, "-j", jobs, "--no-stash", stderr=err)
    running = 1 if executor == "inline" else int(jobs)  # inline runs one at a time whatever -j says
    wait_until(lambda: len(_started(s)) >= running, 60, "the first configs to start")
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    else:
        os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    err.close()
    stderr = (s.dir / "stderr.txt").read_text()
    started = _started(s)
    assert len(started) == running, (started, stderr)  # nothing new started after Ctrl-C

    (run,) = s.runs("sleepy")
    command = shlex.join(["python", str(s.path), "--executor", executor, "-j", jobs, "--no-stash",
                          f"--continue={run.name}"])
    assert stderr.strip().splitlines()[-1].strip() == command, stderr
    for wrong in ("FAILED", "KeyboardInterrupt", "Traceback", "cancelled"):
        assert wrong not in stderr, stderr
    # What is stored agrees: every config is pending, none failed, none done.
    for name, folder in s.config_dirs(run).items():
        assert outcome_of(folder) is None, (name, outcome_of(folder))

    listing = s.run("--list")
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith(run.name)]
    assert row.split()[-3:] == ["0", "0", "3"], listing.stdout  # done, failed, pending

    # The printed command finishes the run.
    argv = shlex.split(command)
    done = subprocess.run([sys.executable, *argv[1:]], cwd=s.dir, env=clean_env(FAST="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok and outcome.result == name
