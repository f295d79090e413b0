"""The default executor's fork-server: what a config inherits, what it does not, and failing over."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

STATE_SCRIPT = '''
import json, os, pathlib, sys, threading, time
import pyexp

HERE = pathlib.Path(__file__).parent
with open(HERE / "imports.txt", "a") as f:  # once per interpreter that imports this module
    f.write(f"{os.getpid()} {__name__}\\n")
SET_AFTER_IMPORT = None

class Point:  # a class of the script, returned inside a result
    def __init__(self, x):
        self.x = x

@pyexp.experiment(name="state", executor=os.environ.get("EXECUTOR", "subprocess"))
def exp(config):
    fds = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
           if os.path.exists(f"/proc/self/fd/{fd}")}
    import numpy as np
    return {
        "module": __name__,
        "set_after_import": SET_AFTER_IMPORT,
        "threads": sorted(t.name for t in threading.enumerate()),
        "parent_file_open": str(HERE / "held-open.txt") in fds,
        "preloaded": "json.tool" in sys.modules,
        "numpy_random": float(np.random.random()),
        "point": Point(config.i),
        "pid": os.getpid(),
        "ppid": os.getppid(),
    }

@exp.configs
def configs():
    return [{"name": f"c{i}", "i": i} for i in range(3)]

@exp.report
def report(results, report_dir):
    for r in results:
        value = dict(r.result)
        value["point"] = value["point"].x
        print("RESULT", json.dumps(value), flush=True)

if __name__ == "__main__":
    import numpy
    SET_AFTER_IMPORT = "parent only"
    held = open(HERE / "held-open.txt", "w")  # the parent's open file
    threading.Thread(target=time.sleep, args=(30,), name="parent-thread", daemon=True).start()
    exp.run(**json.loads(os.environ.get("RUN_KW", "{}")))
'''


def _results(stdout: str) -> list[dict]:
    return [json.loads(line[len("RESULT "):]) for line in stdout.splitlines() if line.startswith("RESULT ")]


def test_a_config_starts_from_the_imported_module_not_from_the_parent(script):
    s = script(STATE_SCRIPT)
    proc = s.run("--no-stash")
    results = _results(proc.stdout)
    assert len(results) == 3
    # The module was imported twice in all: by the script itself and once by the fork-server,
    # the second time as __mp_main__ so its `if __name__ == "__main__":` block did not run.
    imports = (s.dir / "imports.txt").read_text().split()
    assert imports[1::2] == ["__main__", "__mp_main__"], imports
    server = int(imports[2])
    for r in results:
        assert r["module"] == "__mp_main__"  # the function was looked up by name, not copied
        assert r["set_after_import"] is None
        assert "parent-thread" not in r["threads"]
        assert not r["parent_file_open"]
        assert r["ppid"] == server  # forked by the one fork-server
        assert r["point"] == results.index(r)  # a class of the script comes back in the result
    assert len({r["pid"] for r in results}) == 3
    # Each config draws its own random numbers, as a fresh interpreter would.
    assert len({r["numpy_random"] for r in results}) == 3


def test_the_fork_server_is_a_fresh_interpreter_per_run_and_per_continue(script):
    s = script(STATE_SCRIPT)
    s.run("--no-stash")
    (run,) = s.runs("state")
    for folder in run.iterdir():
        if (folder / "result.pkl").exists():
            (folder / "result.pkl").unlink()
    proc = s.run("--continue")
    assert len(_results(proc.stdout)) == 3
    imports = (s.dir / "imports.txt").read_text().split()
    assert imports[1::2] == ["__main__", "__mp_main__"] * 2, imports


@pytest.mark.parametrize("how", ["decorator", "flag", "hydra", "run"])
def test_preload_imports_modules_in_the_fork_server_before_forking(script, how):
    source = STATE_SCRIPT
    args, env = ["--no-stash"], {}
    if how == "decorator":
        source = source.replace('@pyexp.experiment(name="state", ', '@pyexp.experiment(name="state", preload=["json.tool"], ')
    elif how == "flag":
        args += ["--preload", "csv,json.tool"]
    elif how == "hydra":
        args += ["pyexp.preload=[json.tool]"]
    else:
        env["RUN_KW"] = json.dumps({"preload": ["json.tool"]})
    s = script(source)
    results = _results(s.run(*args, env=env).stdout)
    assert len(results) == 3 and all(r["preloaded"] for r in results)


def test_without_preload_a_lazy_import_is_not_there(script):
    s = script(STATE_SCRIPT)
    assert not any(r["preloaded"] for r in _results(s.run("--no-stash").stdout))


def test_a_mistyped_preload_is_one_line_and_writes_nothing(script):
    s = script(STATE_SCRIPT)
    proc = s.run("--no-stash", "--preload", "jsonn.tool", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyexp: error: preload:") and "jsonn" in lines[0], proc.stderr
    assert s.runs("state") == []


FALLBACK_SCRIPT = '''
import os, pathlib
import pyexp

HERE = pathlib.Path(__file__).parent
BIG = "x" * 10

if __name__ == "__main__":
    # Defined only when run as a script: the fork-server cannot find it by name.
    @pyexp.experiment(name="fallback")
    def exp(config):
        return {"module": __name__, "value": config.i * 2, "pid": os.getpid()}

    @exp.configs
    def configs():
        return [{"name": f"c{i}", "i": i} for i in range(2)]

    @exp.report
    def report(results, report_dir):
        print("RESULT", [(r.result["module"], r.result["value"]) for r in results], [r.error for r in results])

    exp.run()
'''


def test_a_function_the_fork_server_cannot_find_by_name_travels_by_value(script):
    s = script(FALLBACK_SCRIPT)
    proc = s.run("--no-stash")
    assert "RESULT [('__main__', 0), ('__main__', 2)] [None, None]" in proc.stdout, proc.stdout


UNGUARDED_SCRIPT = '''
import pathlib
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="unguarded")
def exp(config):
    return config.i + 1

@exp.configs
def configs():
    return [{"name": f"c{i}", "i": i} for i in range(2)]

@exp.report
def report(results, report_dir):
    print("RESULT", [r.result for r in results], [r.error for r in results])

exp.run()  # no `if __name__ == "__main__":` guard
'''


def test_a_script_that_calls_run_unguarded_still_runs_once(script):
    s = script(UNGUARDED_SCRIPT)
    proc = s.run("--no-stash")
    assert proc.stdout.count("RESULT [1, 2] [None, None]") == 1, proc.stdout
    assert len(s.runs("unguarded")) == 1


LAMBDA_SCRIPT = '''
import pyexp
from pyexp import SubprocessExecutor

if __name__ == "__main__":
    scale = 3
    runner = pyexp.experiment(name="lam")(lambda config: config.i * scale)
    results = runner.run(configs=lambda: [{"name": f"c{i}", "i": i} for i in range(3)],
                         executor=SubprocessExecutor(preload=["csv"]), stash=False, argv=[])
    print("RESULT", [r.result for r in results])
'''


def test_a_lambda_runs_by_value_and_the_executor_takes_preload(script):
    s = script(LAMBDA_SCRIPT)
    assert "RESULT [0, 3, 6]" in s.run().stdout


KILL_SERVER_SCRIPT = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="failover")
def exp(config):
    if config.name == "c1":
        marker = HERE / "server.pid"
        if not marker.exists():
            marker.write_text(str(os.getppid()))
            time.sleep(60)  # the test kills our fork-server meanwhile
    return os.getppid()

@exp.configs
def configs():
    return [{"name": f"c{i}"} for i in range(4)]

@exp.report
def report(results, report_dir):
    print("RESULT", [r.result for r in results], [r.error for r in results])

if __name__ == "__main__":
    exp.run()
'''


def test_a_dead_fork_server_is_replaced_and_the_run_says_so(script):
    import subprocess
    import sys

    from pyexp_testing import clean_env

    s = script(KILL_SERVER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(s.path), "--no-stash"], cwd=s.dir, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = s.dir / "server.pid"
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "config c1 never started"
        time.sleep(0.02)
    first = int(marker.read_text())
    os.kill(first, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"fork-server (pid {first}) died (killed by SIGKILL (signal 9)); starting a fresh one" in err, err
    (line,) = [l for l in out.splitlines() if l.startswith("RESULT ")]
    parents = eval(line.split(" ", 1)[1].rsplit(" [", 1)[0])
    assert line.endswith("[None, None, None, None]"), line
    assert parents[0] == first and parents[1] != first and parents[2] == parents[3] == parents[1]


def test_spawn_is_the_old_one_interpreter_per_config(script):
    s = script(STATE_SCRIPT)
    results = _results(s.run("--no-stash", "--executor", "spawn").stdout)
    assert [r["module"] for r in results] == ["__main__"] * 3  # by value, in a fresh interpreter
    assert len({r["ppid"] for r in results}) == 1 and results[0]["ppid"] != results[0]["pid"]
    imports = (s.dir / "imports.txt").read_text().split()
    assert imports[1::2] == ["__main__"], imports  # no fork-server imported the module


def test_spawn_executor_is_public():
    from pyexp import SpawnExecutor, get_executor

    assert isinstance(get_executor("spawn"), SpawnExecutor)


CUDA_SCRIPT = '''
import os
import torch  # the stand-in below, whose CUDA is "initialised" by importing it
import pyexp

@pyexp.experiment(name="cuda")
def exp(config):
    return os.getppid()

@exp.configs
def configs():
    return [{"name": f"c{i}"} for i in range(2)]

@exp.report
def report(results, report_dir):
    print("RESULT", [r.result for r in results], [r.error for r in results], os.getpid())

if __name__ == "__main__":
    exp.run()
'''

# torch is not installed here; this stand-in has only what pyexp looks at.
FAKE_TORCH = '''
class cuda:
    @staticmethod
    def is_initialized():
        return True
'''


def test_a_module_that_initialises_cuda_at_import_runs_with_spawn(script):
    s = script(CUDA_SCRIPT)
    (s.dir / "torch.py").write_text(FAKE_TORCH)
    proc = s.run("--no-stash")
    assert "initialised CUDA" in proc.stderr and "executor 'spawn'" in proc.stderr, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    parents, errors, me = line[len("RESULT "):].rsplit(" ", 1)[0], line, line.rsplit(" ", 1)[1]
    assert "[None, None]" in errors
    assert parents.startswith(f"[{me}, {me}]")  # each config a child of pyexp itself (spawned)


def test_preload_with_fork_imports_in_pyexp_before_forking(script):
    s = script(STATE_SCRIPT)
    results = _results(s.run("--no-stash", "--executor", "fork", "--preload", "json.tool").stdout)
    assert len(results) == 3 and all(r["preloaded"] for r in results)
    assert all(r["set_after_import"] == "parent only" for r in results)  # fork: the parent's state
