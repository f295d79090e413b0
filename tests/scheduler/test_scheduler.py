"""The scheduler's contract, seen from a user's script: N configs in flight with ``-j N`` and a
progress bar that counts passed, failed and cached configs. Ctrl-C is in ``test_interrupt.py``."""

from __future__ import annotations

import pytest

SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent
WANT = int(os.environ["WANT"])  # how many configs must run at once before any may finish


def running() -> int:
    return len(list(HERE.glob("start-*"))) - len(list(HERE.glob("end-*")))


@pyexp.experiment(name="sched", executor="subprocess")
def exp(config):
    (HERE / f"start-{config.name}").touch()
    with open(HERE / "seen.txt", "a") as f:
        f.write(f"{running()}\\n")
    deadline = time.time() + 60
    while running() < WANT and len(list(HERE.glob("start-*"))) < len(configs()):
        if time.time() > deadline:
            raise TimeoutError(f"only {running()} configs ran at once")
        time.sleep(0.01)
    time.sleep(0.2)  # a slower config: the scheduler must not start another meanwhile
    (HERE / f"end-{config.name}").touch()
    if config.name == "bad":
        raise ValueError("bad config")
    return config.name


@exp.configs
def configs():
    return [{"name": n} for n in os.environ["NAMES"].split(",")]


@exp.report
def report(results, report_dir):
    print("RESULT", sorted(str(r.result) for r in results))


if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("jobs", [1, 3])
def test_jobs_keeps_exactly_n_configs_in_flight(script, jobs: int) -> None:
    s = script(SCRIPT)
    names = [f"c{i}" for i in range(2 * jobs + 1)]
    proc = s.run("-j", str(jobs), env={"WANT": str(jobs), "NAMES": ",".join(names)}, timeout=240)
    assert f"RESULT {sorted(names)}" in proc.stdout
    seen = [int(n) for n in (s.dir / "seen.txt").read_text().split()]
    assert len(seen) == len(names)
    assert max(seen) == jobs, seen  # N at once (every config waited for that), never more


def test_progress_counts_passed_failed_and_cached_and_names_the_failure(script) -> None:
    s = script(SCRIPT)
    env = {"WANT": "1", "NAMES": "a,bad,b"}
    first = s.run(env=env)
    assert "passed=2 failed=1 cached=0" in first.stderr, first.stderr
    assert "FAILED bad: ValueError: bad config" in first.stderr
    assert "/bad-" in first.stderr and "log.out" in first.stderr  # where its output went

    again = s.run("--continue", env=env)
    assert "passed=0 failed=1 cached=2" in again.stderr, again.stderr


def test_no_capture_turns_the_bar_into_one_line_per_failure(script) -> None:
    s = script(SCRIPT)
    proc = s.run("-s", env={"WANT": "1", "NAMES": "a,bad"})
    assert "passed=" not in proc.stderr
    assert "pyexp: bad failed: ValueError: bad config" in proc.stderr
