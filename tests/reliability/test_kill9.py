"""``kill -9`` of the runner at random moments, then ``--continue``, until the run is complete.

Every config must end with exactly one valid result, a config whose result was stored is
never run again, no child outlives its killed runner, and no file is ever half-written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest

from pyexp_testing import ScriptAt as Script, assert_all_dead, outcome_of, parent_of, read_pids, wait_until

N_CONFIGS = 50
KILLS = 5  # per test; after that the run may finish

SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="k")
def exp(config):
    with open(HERE / "pids.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    token = f"{os.getpid()}-{time.time_ns()}"
    with open(HERE / "starts.txt", "a") as f:
        f.write(f"{config.name} {token}\\n")
    time.sleep(config.ms / 1000)  # a few configs outlast the 0.2 s a child needs to notice a dead runner
    print("finished", config.name, flush=True)
    return {"token": token, "i": config.i}

@exp.configs
def configs():
    return [{"name": f"c{i:02d}", "i": i, "ms": 400 if i % 7 == 3 else 5 + (i * 7) % 25} for i in range(N_CONFIGS)]

if __name__ == "__main__":
    exp.run()
'''.replace("N_CONFIGS", str(N_CONFIGS))


def _starts(s: Script) -> list[tuple[str, str]]:
    path = s.dir / "starts.txt"
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []


def _check_files_parse(run) -> None:
    """Whatever a kill left behind: runs.json and every config.json present must parse."""
    json.loads((run / "runs.json").read_text())
    for cfg in run.glob("*/config.json"):
        json.loads(cfg.read_text())


def _kill_at_random_moment(proc: subprocess.Popen, s: Script, rng: random.Random, max_delay: float) -> bool:
    """SIGKILL the runner at a random time (maybe while it generates configs or starts up), or,
    more often, once a random number of further configs has started. False if it finished first."""
    if rng.random() < 0.25:
        delay = rng.uniform(0.05, max_delay)
    else:
        target = len(_starts(s)) + rng.randint(1, N_CONFIGS // 3)
        deadline = time.monotonic() + 60
        while len(_starts(s)) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        delay = rng.uniform(0, 0.03)  # land anywhere: in the function, writing, between configs
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return True


@pytest.mark.parametrize("executor,seed,max_delay,live", [
    ("fork", 1, 0.6, False), ("fork", 2, 0.6, False), ("fork", 3, 0.6, False),
    ("subprocess", 4, 1.0, False), ("inline", 5, 0.6, False),
    # -s: children print into a pipe the killed runner no longer reads.
    ("fork", 6, 0.6, True), ("subprocess", 7, 1.0, True),
])
def test_kill9_then_continue_loses_nothing_and_reruns_nothing(tmp_path, executor, seed, max_delay, live):
    rng = random.Random(seed)
    s = Script(tmp_path, SCRIPT)
    frozen: dict[str, str] = {}  # config -> token of its stored result, as seen after a kill
    frozen_at: dict[str, int] = {}  # config -> number of start lines when it was first seen done
    kills = 0
    timestamp = None
    for attempt in range(12):
        args = ["--executor", executor, "-j", "2", "--no-stash"] + (["-s"] if live else [])
        if timestamp:
            args.append(f"--continue={timestamp}")
        proc = s.start(*args, stderr=subprocess.PIPE)
        if attempt < KILLS and _kill_at_random_moment(proc, s, rng, max_delay):
            kills += 1
        proc.wait(timeout=120)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err
        # No child outlives its runner (it would race the --continue that takes its config over).
        assert_all_dead(read_pids(s.dir / "pids.txt"))
        runs = s.runs("k")
        assert len(runs) <= 1
        if not runs:
            continue  # killed during config generation: nothing usable, start afresh
        timestamp = runs[0].name
        _check_files_parse(runs[0])
        seen_starts = len(_starts(s))
        for name, folder in s.config_dirs(runs[0]).items():
            outcome = outcome_of(folder)
            if outcome is None:
                assert name not in frozen, f"{name}: its stored result disappeared"
                continue
            assert outcome.ok, outcome.error
            token = outcome.result["token"]
            assert frozen.setdefault(name, token) == token, f"{name} ran again after completing"
            frozen_at.setdefault(name, seen_starts)
    else:
        pytest.fail("the run never completed")

    (run,) = s.runs("k")
    starts = _starts(s)
    folders = s.config_dirs(run)
    assert sorted(folders) == [f"c{i:02d}" for i in range(N_CONFIGS)]
    for name, folder in folders.items():
        assert len(list(folder.glob("result.pkl"))) == 1
        assert not list(folder.glob(".result.pkl.*.tmp")), f"{name}: temp file left behind"
        outcome = outcome_of(folder)
        assert outcome is not None and outcome.ok, (name, outcome)
        mine = [token for n, token in starts if n == name]
        # The stored result comes from the last start: nothing ran after it completed.
        assert outcome.result["token"] == mine[-1], (name, mine)
        if name in frozen:
            assert outcome.result["token"] == frozen[name]
            later = [n for n, _ in starts[frozen_at[name]:] if n == name]
            assert not later, f"{name} started again after its result was stored"
    assert_all_dead(read_pids(s.dir / "pids.txt"))
    print(f"FAULTS kill9 executor={executor} seed={seed}: {kills} kills, "
          f"{len(starts) - N_CONFIGS} interrupted runs redone, 0 results lost")


ORPHAN_SCRIPT = '''
import os, pathlib, sys, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="o")
def exp(config):
    parent = os.getppid()
    (HERE / "started").write_text(str(os.getpid()))
    mode = os.environ.get("MODE")
    if mode == "wait":
        while os.getppid() == parent:  # the runner is killed now
            time.sleep(0.001)
    sys.stderr = open(os.devnull, "w")  # only the output pipe breaks, not the error report
    try:
        print("the runner is gone; this goes into a pipe nobody reads", flush=True)
        # The runner is killed while we print: the pipe breaks before anyone sees it gone.
        while mode == "print" and time.monotonic() < float(os.environ["UNTIL"]):
            print("still printing", flush=True)
    except BrokenPipeError:
        raise RuntimeError("my output went nowhere")
    return "done"

@exp.configs
def configs():
    return [{"name": "only"}]

if __name__ == "__main__":
    exp.run()
'''


@pytest.mark.parametrize("mode", ["wait", "print"])
@pytest.mark.parametrize("executor", ["fork", "subprocess", "spawn"])
def test_a_child_whose_runner_died_does_not_store_a_failure_it_caused(tmp_path, executor, mode):
    s = Script(tmp_path, ORPHAN_SCRIPT)
    proc = s.start("--executor", executor, "-s", "--no-stash",
                   env={"MODE": mode, "UNTIL": str(time.monotonic() + 60)})
    pid = int(wait_until(lambda: (s.dir / "started").exists() and (s.dir / "started").read_text(), 30,
                         "the config to start"))
    server = parent_of(pid) if mode == "print" else proc.pid
    if server != proc.pid:
        # A fork-server between runner and config kills the config when the runner dies. On a
        # busy machine it may run too late: the config sees its output pipe break first.
        os.kill(server, signal.SIGSTOP)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
        assert_all_dead([pid])
    finally:
        if server != proc.pid:
            os.kill(server, signal.SIGCONT)
    (run,) = s.runs("o")
    (folder,) = s.config_dirs(run).values()
    outcome = outcome_of(folder)
    # Either it finished (ok) or it stays pending; a BrokenPipeError is not the config's failure.
    assert outcome is None or outcome.ok, outcome.error
    done = s.run("--executor", executor, "--continue")
    assert done.returncode == 0 and outcome_of(folder).ok


PHASE1_SCRIPT = '''
import pyexp

@pyexp.experiment(name="g", executor="inline")
def exp(config):
    return config.i

@exp.configs
def configs():
    return [{"name": f"c{i}", "i": i, "pad": "p" * 200} for i in range(3000)]

if __name__ == "__main__":
    exp.run()
'''


def test_kill9_while_generating_configs_never_leaves_a_run_that_looks_complete(tmp_path):
    rng = random.Random(21)
    s = Script(tmp_path, PHASE1_SCRIPT)
    root = s.out("g")
    for _ in range(3):
        proc = s.start("--no-stash", "--filter", "^$")
        wait_until(lambda: len(list(root.glob("*/*/config.json"))) > rng.randint(1, 1000) or proc.poll() is not None,
                   60, "phase 1 to write configs")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
    for folder in root.iterdir():
        # Killed before runs.json: ignored. Whatever it holds was written whole.
        assert not (folder / "runs.json").exists()
        for cfg in folder.glob("*/config.json"):
            json.loads(cfg.read_text())
    listing = s.run("--list")
    assert listing.returncode == 0 and "no runs" in listing.stdout
    proc = s.run("--continue")
    assert proc.returncode == 1 and "no runs of this experiment" in proc.stderr
    assert s.run("--no-stash", "--filter", "^c1$").returncode == 0
    assert len(s.runs("g")) == 1
