"""Two runners continuing the same run at once: every config runs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest

from _faults import Script, assert_all_dead, outcome_of, read_pids, wait_until

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
    second = s.run("--executor", "fork", "-j", "2", f"--continue={ts}", env={"FAST": "1"}, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"DONE {N + 1} OF {N + 1}" in second.stdout
    _all_done_once(s, ts, reran=("long",))
