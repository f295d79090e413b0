"""Faults inside one config become that config's error result; the sweep goes on."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest

from pyexp_testing import ScriptAt as Script, assert_all_dead, outcome_of, read_pids

SCRIPT = '''
import ctypes, os, pathlib, subprocess, sys, threading
import pyexp

HERE = pathlib.Path(__file__).parent
FAULTS = os.environ.get("FAULTS", "").split(",")

@pyexp.experiment(name="f")
def exp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    fault = config.name if config.name in FAULTS and not os.environ.get("FIXED") else None
    if fault == "exception":
        raise ValueError("boom")
    if fault == "segfault":
        ctypes.string_at(0)
    if fault == "exit3":
        os._exit(3)
    if fault == "memory":
        return bytearray(1 << 60)
    if fault == "realmemory":  # really run out: address space capped 300 MB above what we use
        import resource
        used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (used + (300 << 20), resource.RLIM_INFINITY))
        hog = []
        while True:
            hog.append(bytearray(8 << 20))
    if fault == "sigkill":  # as the kernel's OOM killer would
        os.kill(os.getpid(), 9)
    if fault == "unpicklable":
        return {"lock": threading.Lock()}
    if fault == "sysexit":
        sys.exit(0)
    if fault == "grandchild":
        child = subprocess.Popen(["sleep", "120"])
        (HERE / "grandchild.pid").write_text(str(child.pid))
    if fault == "stdout":
        line = "x" * 1023 + "\\n"
        chunk = line * 1024
        for _ in range(100):  # 100 MB
            sys.stdout.write(chunk)
        sys.stdout.flush()
    return {"name": config.name}

@exp.configs
def configs():
    names = ["before", "exception", "segfault", "exit3", "memory", "realmemory", "sigkill", "unpicklable",
             "sysexit", "grandchild", "stdout", "after"]
    return [{"name": n} for n in names]

if __name__ == "__main__":
    exp.run()
'''

ALL = ["exception", "segfault", "exit3", "memory", "realmemory", "sigkill", "unpicklable", "sysexit",
       "grandchild", "stdout"]
# In-process execution has no isolation: only faults that raise can be survived there.
INLINE = ["exception", "memory", "unpicklable", "sysexit"]

EXPECTED = {
    "exception": "ValueError: boom",
    "segfault": "killed by SIGSEGV (signal 11)",
    "exit3": "worker exited with code 3 before reporting a result",
    "memory": "MemoryError",
    "realmemory": "MemoryError",
    "sigkill": "killed by SIGKILL (signal 9)",
    "unpicklable": "could not be pickled",
    "sysexit": "SystemExit: 0",
}


def _calls(s: Script) -> Counter:
    path = s.dir / "calls.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def _outcomes(s: Script) -> dict:
    (run,) = s.runs("f")
    return {name: outcome_of(folder) for name, folder in s.config_dirs(run).items()}


@pytest.mark.parametrize("executor,capture", [("fork", True), ("subprocess", True), ("subprocess", False),
                                              ("inline", True)])
def test_each_fault_is_an_error_result_and_continue_reruns_only_those(tmp_path, executor, capture):
    faults = INLINE if executor == "inline" else ALL
    s = Script(tmp_path, SCRIPT)
    env = {"FAULTS": ",".join(faults)}
    args = ["--executor", executor, "--no-stash", "-j", "2"] + ([] if capture else ["-s"])
    # "after" is left pending by the filter, to be picked up by --continue.
    proc = s.run(*args, "--filter", "^(?!after$)", env=env, timeout=180,
                 **({} if capture else {"stdout": subprocess.DEVNULL}))
    assert proc.returncode == 0, proc.stderr
    outcomes = _outcomes(s)
    assert outcomes["before"].ok and outcomes["after"] is None
    for fault in faults:
        outcome = outcomes[fault]
        if fault in EXPECTED:
            assert not outcome.ok and EXPECTED[fault] in outcome.error, (fault, outcome.error)
        else:
            assert outcome.ok, (fault, outcome.error)
    if "grandchild" in faults:
        # The left-behind grandchild did not hang the sweep, and it was killed.
        assert_all_dead(read_pids(s.dir / "grandchild.pid"), timeout=5, what="the grandchild")
    if "stdout" in faults:
        (run,) = s.runs("f")
        (log,) = run.glob("stdout-*/log.out")
        assert log.stat().st_size >= 100 * 1024 * 1024

    # --continue --skip-failed keeps the failures and runs only what is pending.
    proc = s.run(*args, "--continue", "--skip-failed", env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(s)
    assert all(n == 1 for n in calls.values()), calls
    outcomes = _outcomes(s)
    assert outcomes["after"].ok
    assert all(not outcomes[f].ok for f in faults if f in EXPECTED)

    # --continue re-runs the failed configs (now fixed) and nothing that succeeded.
    proc = s.run(*args, "--continue", env={**env, "FIXED": "1"}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(s)
    for name, count in calls.items():
        assert count == (2 if name in EXPECTED and name in faults else 1), (name, calls)
    assert all(outcome.ok for outcome in _outcomes(s).values())


LOUD_SCRIPT = '''
import pathlib, sys
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="loud")
def exp(config):
    for _ in range(200):
        sys.stdout.write("y" * 10000 + "\\n")  # 2 MB: far more than a pipe holds
    sys.stdout.flush()
    (HERE / f"finished-{config.name}").touch()
    return config.name

@exp.configs
def configs():
    return [{"name": "a"}, {"name": "b"}]

if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("executor", ["fork", "subprocess", "inline"])
def test_live_output_into_a_closed_pipe_does_not_hang_the_sweep(tmp_path, executor):
    """``python main.py -s | head -1``: once head exits, nobody reads pyexp's stdout."""
    import sys

    from pyexp_testing import clean_env

    s = Script(tmp_path, LOUD_SCRIPT)
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, str(s.path), "-s", "--executor", executor, "--no-stash"],
                            cwd=s.dir, env=clean_env(), stdin=subprocess.DEVNULL, stdout=reader.stdin,
                            stderr=subprocess.PIPE, start_new_session=True)
    reader.stdin.close()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the sweep hung on a closed output pipe")
    finally:
        reader.wait(timeout=10)
        proc.stderr.close()
    (run,) = s.runs("loud")
    for name, folder in s.config_dirs(run).items():
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok, (name, outcome)
        assert (folder / "log.out").stat().st_size >= 2_000_000  # the log still has everything
