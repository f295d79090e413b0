"""Ctrl-C during a run, delivered as a terminal does (SIGINT to the runner's process group)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from pyexp_testing import ScriptAt as Script, assert_all_dead, clean_env, outcome_of, read_pids, wait_until

SCRIPT = '''
import os, pathlib, signal, subprocess, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="i")
def exp(config):
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stubborn experiment
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    if config.slow and not os.environ.get("FAST"):
        helper = subprocess.Popen(["sleep", "120"])  # a program the experiment started
        with open(HERE / "pids.txt", "a") as f:
            f.write(f"{os.getpid()} {helper.pid}\\n")
        time.sleep(60)
    return config.name

@exp.configs
def configs():
    return [{"name": "quick1", "slow": False}, {"name": "quick2", "slow": False},
            {"name": "slow1", "slow": True}, {"name": "slow2", "slow": True},
            {"name": "slow3", "slow": True}]

if __name__ == "__main__":
    exp.run()
'''


def _calls(s: Script) -> list[str]:
    path = s.dir / "calls.txt"
    return path.read_text().split() if path.exists() else []


def _start(s: Script, executor: str, *more: str, **env: str) -> tuple[subprocess.Popen, object]:
    err = open(s.dir / "stderr.txt", "w+")
    proc = s.start("--executor", executor, "-j", "2", "--no-stash", *more, env=env, stderr=err)
    return proc, err


def _two_slow_running(s: Script, executor: str) -> list[int]:
    want = 2 if executor == "inline" else 4  # each slow config and the program it started
    return wait_until(lambda: len(read_pids(s.dir / "pids.txt")) >= want and read_pids(s.dir / "pids.txt"),
                      30, "the slow configs to start")


@pytest.mark.parametrize("executor", ["fork", "subprocess", "inline"])
def test_ctrl_c_stops_children_prints_the_continue_command_and_exits_130(tmp_path, executor):
    s = Script(tmp_path, SCRIPT)
    elsewhere = tmp_path / "results dir"
    # The command to continue keeps the flags that locate the run, drops the (frozen) overrides.
    proc, err = _start(s, executor, "--output-dir", str(elsewhere), "+tag=1")
    pids = _two_slow_running(s, executor)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    stderr = (s.dir / "stderr.txt").read_text()
    err.close()
    assert_all_dead(pids)
    (run,) = (elsewhere / "i").iterdir()
    command = shlex.join(["python", str(s.path), "--executor", executor, "-j", "2", "--no-stash",
                          "--output-dir", str(elsewhere), f"--continue={run.name}"])
    assert stderr.splitlines()[-1].strip() == command, stderr
    assert "Traceback" not in stderr

    # The printed command, run as printed, finishes the run without redoing finished configs.
    argv = shlex.split(stderr.splitlines()[-1].strip())
    assert argv[0] == "python"
    done = subprocess.run([sys.executable, *argv[1:]], cwd=s.dir, env=clean_env(FAST="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = _calls(s)
    assert calls.count("quick1") == 1 and calls.count("quick2") == 1, calls
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok and outcome.result == name
        assert json.loads((folder / "config.json").read_text())["tag"] == 1


@pytest.mark.parametrize("executor", ["fork", "subprocess"])
def test_second_ctrl_c_kills_everything_at_once(tmp_path, executor):
    s = Script(tmp_path, SCRIPT)
    proc, err = _start(s, executor, IGNORE_TERM="1")
    pids = _two_slow_running(s, executor)
    os.killpg(proc.pid, signal.SIGINT)
    # Children ignore SIGTERM, so without a second Ctrl-C the runner would wait out its grace period.
    wait_until(lambda: "interrupted" in (s.dir / "stderr.txt").read_text(), 10, "the first Ctrl-C message")
    pressed = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    from pyexp.scheduler import CANCEL_GRACE

    assert time.monotonic() - pressed < CANCEL_GRACE - 0.5
    assert_all_dead(pids, timeout=3)
    stderr = (s.dir / "stderr.txt").read_text()
    err.close()
    (run,) = s.runs("i")
    assert f"--continue={run.name}" in stderr
    # Nothing half-done was stored as a result.
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert (outcome is None) == name.startswith("slow"), (name, outcome)


def test_ctrl_c_with_stubborn_children_still_leaves_no_orphans(tmp_path):
    s = Script(tmp_path, SCRIPT)
    proc, err = _start(s, "subprocess", IGNORE_TERM="1")
    pids = _two_slow_running(s, "subprocess")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130  # SIGTERM ignored: SIGKILL after the grace period
    err.close()
    assert_all_dead(pids, timeout=3)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_runner_terminated_by_a_signal_leaves_no_orphans_and_can_continue(tmp_path, signum):
    s = Script(tmp_path, SCRIPT)
    proc, err = _start(s, "fork")
    pids = _two_slow_running(s, "fork")
    os.kill(proc.pid, signum)  # e.g. a batch scheduler's SIGTERM, or the terminal closing
    assert proc.wait(timeout=20) == -signum
    err.close()
    assert_all_dead(pids)
    (run,) = s.runs("i")
    done = s.run("--executor", "fork", f"--continue={run.name}", env={"FAST": "1"})
    assert done.returncode == 0, done.stderr
    calls = _calls(s)
    assert calls.count("quick1") == 1 and calls.count("quick2") == 1, calls
    assert all(outcome_of(folder).ok for folder in s.config_dirs(run).values())


PHASE1_SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="p1", executor="inline")
def exp(config):
    return 1

@exp.configs
def configs():
    (HERE / "in-configs").touch()
    if os.environ.get("SLOW_CONFIGS"):
        time.sleep(60)
    return [{"name": f"c{i}", "i": i} for i in range(20000)]  # phase 1 writes for a while

if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("where", ["configs()", "writing the run"])
def test_ctrl_c_while_generating_configs_leaves_no_half_made_run(tmp_path, where):
    s = Script(tmp_path, PHASE1_SCRIPT)
    err = open(s.dir / "stderr.txt", "w+")
    proc = s.start("--no-stash", env={"SLOW_CONFIGS": "1"} if where == "configs()" else {}, stderr=err)
    if where == "configs()":
        wait_until(lambda: (s.dir / "in-configs").exists(), 30, "configs() to be called")
    else:
        wait_until(lambda: len(list(s.out("p1").glob("*/*/config.json"))) > 10, 30, "phase 1 to write")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    err.close()
    stderr = (s.dir / "stderr.txt").read_text()
    assert stderr.strip().splitlines()[-1] == "pyexp: interrupted" and "Traceback" not in stderr, stderr
    assert not s.out("p1").exists() or not list(s.out("p1").iterdir())
