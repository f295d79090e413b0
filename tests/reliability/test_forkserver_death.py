"""The default executor's fork-server when pyexp dies, and when the fork-server itself is killed."""

from __future__ import annotations

import os
import signal

import pytest

from pyexp_testing import ScriptAt as Script, alive, assert_all_dead, outcome_of, wait_until

SCRIPT = '''
import os, pathlib, subprocess, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="d")
def exp(config):
    if not os.environ.get("FAST"):
        helper = subprocess.Popen(["sleep", "120"])  # a program the config started
        with open(HERE / f"pids-{config.name}.txt", "w") as f:
            f.write(f"{os.getpid()} {helper.pid} {os.getppid()}")
        time.sleep(120)
    return config.name

@exp.configs
def configs():
    return [{"name": f"c{i}"} for i in range(3)]

if __name__ == "__main__":
    exp.run()
'''


def _running(s: Script, n: int) -> list[list[int]]:
    def read() -> list[list[int]]:
        found = [p.read_text().split() for p in s.dir.glob("pids-*.txt")]
        return [[int(x) for x in f] for f in found if len(f) == 3]

    return wait_until(lambda: len(read()) >= n and read(), 60, f"{n} configs to start")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_when_pyexp_dies_its_fork_server_and_configs_die_with_it(tmp_path, signum):
    s = Script(tmp_path, SCRIPT)
    proc = s.start("-j", "2", "--no-stash")
    running = _running(s, 2)
    server = running[0][2]
    assert all(r[2] == server for r in running)  # both forked by the one fork-server
    os.kill(proc.pid, signum)
    proc.wait(timeout=10)
    proc.stderr.close()
    assert_all_dead([pid for r in running for pid in r], timeout=2.0, what="fork-server and configs")
    (run,) = s.runs("d")
    assert all(outcome_of(folder) is None for folder in s.config_dirs(run).values())  # all pending
    done = s.run("--continue", env={"FAST": "1"})
    assert done.returncode == 0, done.stderr
    assert all(outcome_of(folder).ok for folder in s.config_dirs(run).values())


def test_a_config_whose_fork_server_dies_is_killed_with_everything_it_started(tmp_path):
    s = Script(tmp_path, SCRIPT)
    proc = s.start("--no-stash")
    ((child, helper, server),) = _running(s, 1)
    os.kill(server, signal.SIGKILL)
    assert_all_dead([child, helper], timeout=2.0)
    # The run goes on with a fresh fork-server (which runs c0 again); stop it there.
    wait_until(lambda: any(int(p.read_text().split()[2]) != server for p in s.dir.glob("pids-*.txt")
                           if len(p.read_text().split()) == 3), 60, "a fresh fork-server")
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert "died (killed by SIGKILL (signal 9)); starting a fresh one" in proc.stderr.read().decode()
    assert not alive(server)
