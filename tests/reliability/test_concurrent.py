"""Two runners continuing the same run at once: every config runs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest

from pyexp_testing import ScriptAt as Script, assert_all_dead, outcome_of, read_pids, wait_until

N = 40

SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="c")
def exp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(f"{config.name} {os.getpid()}\\n")
    if config.name == "long":
        with open(HERE / "pids.txt", "a") as f:
            f.write(f"{os.getpid()}\\n")
        # Runs until the test says so (or FAST is set): a config another runner must wait for.
        while not (HERE / "release").exists() and not os.environ.get("FAST"):
            time.sleep(0.01)
    time.sleep(config.ms / 1000)
    return os.getpid()

@exp.configs
def configs():
    return [{"name": "long", "ms": 0}] + [{"name": f"c{i:02d}", "ms": 5 + i % 4 * 10} for i in range(N)]

@exp.report
def report(results, report_dir):
    print("DONE", sum(r.error is None for r in results), "OF", len(results))

if __name__ == "__main__":
    exp.run()
'''.replace("range(N)", f"range({N})")


def _calls(s: Script) -> Counter:
    path = s.dir / "calls.txt"
    return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else Counter()


def _fresh_pending_run(s: Script) -> str:
    """Phase 1 only: a run whose configs are all pending."""
    proc = s.run("--filter", "^nothing$", "--no-stash")
    assert proc.returncode == 0, proc.stderr
    (run,) = s.runs("c")
    return run.name


def _all_done_once(s: Script, ts: str, reran: tuple[str, ...] = ()) -> None:
    calls = _calls(s)
    for name in ["long"] + [f"c{i:02d}" for i in range(N)]:
        assert calls[name] == (2 if name in reran else 1), (name, calls[name])
    (run,) = s.runs("c")
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok, (name, outcome)


@pytest.mark.parametrize("executors", [("fork", "fork"), ("subprocess", "fork"), ("inline", "fork")])
def test_two_runners_continuing_one_run_run_each_config_once(tmp_path, executors):
    s = Script(tmp_path, SCRIPT)
    ts = _fresh_pending_run(s)
    procs = [s.start("--executor", ex, "-j", "2", f"--continue={ts}", env={"FAST": "1"},
                     stdout=subprocess.PIPE) for ex in executors]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        # Each reports only once all configs are done, including those the other one ran.
        assert f"DONE {N + 1} OF {N + 1}" in out.decode()
    _all_done_once(s, ts)


def test_a_runner_waits_for_a_config_another_runner_is_running(tmp_path):
    s = Script(tmp_path, SCRIPT)
    ts = _fresh_pending_run(s)
    first = s.start("--executor", "fork", "--filter", "^long$", f"--continue={ts}")
    wait_until(lambda: read_pids(s.dir / "pids.txt"), 30, "the long config to start")
    second = s.start("--executor", "fork", "-j", "2", f"--continue={ts}", stdout=subprocess.PIPE,
                     stderr=open(s.dir / "second.err", "w"))
    wait_until(lambda: "being run by another pyexp process" in (s.dir / "second.err").read_text(), 30,
               "the second runner to notice the claimed config")
    wait_until(lambda: sum(_calls(s).values()) == N + 1, 60, "the second runner to run the rest")
    assert second.poll() is None  # still waiting for "long"
    (s.dir / "release").touch()
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, (s.dir / "second.err").read_text()
    assert f"DONE {N + 1} OF {N + 1}" in out.decode()
    assert first.wait(timeout=60) == 0
    first.stderr.close()
    _all_done_once(s, ts)


def test_a_claim_left_by_a_killed_runner_is_taken_over(tmp_path):
    s = Script(tmp_path, SCRIPT)
    ts = _fresh_pending_run(s)
    (run,) = s.runs("c")
    for folder in s.config_dirs(run).values():  # leftovers of a long-dead process
        (folder / ".claim").write_text("999999\n")
    first = s.start("--executor", "subprocess", "-j", "2", f"--continue={ts}")
    long_pid = wait_until(lambda: read_pids(s.dir / "pids.txt"), 30, "the long config to start")[0]
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    first.stderr.close()
    # Its child dies with it and its claim goes away: the next runner takes the config over.
    assert_all_dead([long_pid], timeout=5, what="the killed runner's child")
    # "long" and whatever ran beside it (-j 2) and was killed before storing its result.
    folders = s.config_dirs(run)
    unfinished = tuple(name for name in _calls(s) if outcome_of(folders[name]) is None)
    assert "long" in unfinished
    second = s.run("--executor", "fork", "-j", "2", f"--continue={ts}", env={"FAST": "1"}, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"DONE {N + 1} OF {N + 1}" in second.stdout
    _all_done_once(s, ts, reran=unfinished)


CHAOS_SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="x")
def exp(config):
    with open(HERE / "pids.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    token = f"{os.getpid()}-{time.time_ns()}"
    with open(HERE / "starts.txt", "a") as f:
        f.write(f"{config.name} {token}\\n")
    time.sleep(config.ms / 1000)
    return token

@exp.configs
def configs():
    return [{"name": f"c{i:02d}", "ms": 300 if i % 5 == 0 else 10 + i % 3 * 20} for i in range(40)]

if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("seed", [11, 12])
def test_several_runners_killed_and_restarted_at_random_still_run_each_config_once(tmp_path, seed):
    import random
    import time

    rng = random.Random(seed)
    s = Script(tmp_path, CHAOS_SCRIPT)
    assert s.run("--filter", "^$", "--no-stash").returncode == 0
    (run,) = s.runs("x")
    executors = ["fork", "subprocess", "inline"]

    def start(i: int) -> subprocess.Popen:
        return s.start("--executor", executors[i % 3], "-j", "2", f"--continue={run.name}",
                       stderr=subprocess.DEVNULL)

    procs = [start(i) for i in range(3)]
    kills = 0
    for round_ in range(8):
        time.sleep(rng.uniform(0.1, 0.5))
        victim = rng.randrange(3)
        if procs[victim].poll() is None:
            os.kill(procs[victim].pid, signal.SIGKILL)
            kills += 1
        procs[victim].wait(timeout=30)
        procs[victim] = start(round_)
    for proc in procs:
        assert proc.wait(timeout=120) in (0,), "a runner failed"
    assert_all_dead(read_pids(s.dir / "pids.txt"))
    starts = [line.split() for line in (s.dir / "starts.txt").read_text().splitlines()]
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok, (name, outcome)
        mine = [token for n, token in starts if n == name]
        assert outcome.result == mine[-1], f"{name} started again after its result was stored: {mine}"
    print(f"FAULTS chaos seed={seed}: {kills} kills of 3 concurrent runners, "
          f"{len(starts) - 40} interrupted runs redone, 0 results lost")
