"""The Ray executor against a real Ray head on 127.0.0.1: local, ray://, ray:auto, faults, caching.

One head per module (2 CPUs, private temp dir and ports); experiment scripts run as a user would
run them, in their own Python process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyexp_testing import RayHead, alive, pids_mentioning, ray_env, wait_until

# One head per module: with `pytest -n 2 --dist loadgroup` all of these run on one xdist worker.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group(name="ray")]


@pytest.fixture(scope="module")
def head():
    pytest.importorskip("ray")
    h = RayHead()
    try:
        yield h
    finally:
        h.stop()


def _env(head: RayHead | None = None, **extra: str) -> dict[str, str]:
    """Extra variables for Script.run (which strips RAY_*): auth off, the head's temp dir."""
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    if head is not None:
        env["RAY_TMPDIR"] = str(head.temp_dir)
    env.update(extra)
    return env


def _results(stdout: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            name, result, error = line[len("RESULT "):].split(" | ")
            found[name] = (result, error)
    return found


def _calls(folder: Path) -> list[str]:
    calls = folder / "calls.txt"
    return sorted(calls.read_text().split()) if calls.exists() else []


def _logs(run: Path) -> dict[str, str]:
    return {p.parent.name.rsplit("-", 1)[0]: p.read_text() for p in run.glob("*/log.out")}


FAULTS = '''
    import os, sys
    import pyexp
    import helpers  # lives next to this script: must import on the Ray workers too

    @pyexp.experiment(name="faults")
    def exp(config):
        print("start", config.kind)
        print("to stderr", config.kind, file=sys.stderr)
        if config.kind == "segfault":
            import ctypes
            ctypes.string_at(0)
        if config.kind == "raise":
            raise KeyError("missing thing")
        if config.kind == "killworker":  # the Ray worker that started this process dies
            import signal, time
            (config.out / "pid").write_text(str(os.getpid()))
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)
        (config.out / "artifact.txt").write_text("made by " + config.kind)
        return {"double": helpers.double(21), "helpers_file": helpers.__file__, "cwd": os.getcwd(),
                "listing": sorted(os.listdir("."))}

    @exp.configs
    def configs():
        hostile = {"name": "we'ird \\"name\\"; echo $HOME\\nsecond line", "kind": "hostile"}
        return [{"name": k, "kind": k} for k in ("ok", "segfault", "raise", "killworker")] + [hostile]

    @exp.report
    def report(results, report_dir):
        for r in results:
            print("RESULT", r.config.kind, "|", repr(r.result), "|", r.error)

    if __name__ == "__main__":
        exp.run()
'''


def test_ray_client_syncs_the_working_dir_and_isolates_crashes(head, script):
    s = script(FAULTS)
    (s.dir / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    proc = s.run("--executor", head.client, env=_env(head), timeout=180)
    r = _results(proc.stdout)
    assert r["segfault"] == ("None", "killed by SIGSEGV (signal 11)")
    assert r["raise"] == ("None", "KeyError: 'missing thing'")
    assert r["killworker"][1].startswith("the Ray worker running this config died (WorkerCrashedError"), r
    ok = eval(r["ok"][0])  # noqa: S307 - our own repr of a small dict
    assert r["ok"][1] == "None" and ok["double"] == 42
    # helpers.py came from Ray's uploaded copy of the working dir, not from the script's folder.
    assert Path(ok["helpers_file"]).parent != s.dir and Path(ok["helpers_file"]).name == "helpers.py"
    assert Path(ok["cwd"]) != s.dir
    # The run folders (out/) were not uploaded; __pycache__ may appear there once a config imports helpers.
    assert [name for name in ok["listing"] if name != "__pycache__"] == ["helpers.py", "main.py"]
    assert r["hostile"][1] == "None" and eval(r["hostile"][0])["double"] == 42  # noqa: S307
    (run,) = s.runs("faults")
    logs = _logs(run)
    assert "start ok" in logs["ok"] and "to stderr ok" in logs["ok"]
    assert "start segfault" in logs["segfault"]
    assert "KeyError: 'missing thing'" in logs["raise"]  # the traceback is in the log
    (ok_dir,) = run.glob("ok-*")
    assert (ok_dir / "artifact.txt").read_text() == "made by ok"
    assert not list(run.glob("*/.pyexp-ray-probe"))
    (orphan,) = run.glob("killworker-*/pid")  # ...and the config's process died with its worker
    wait_until(lambda: not alive(int(orphan.read_text())), 30, "the orphaned config to exit")


COUNTED = '''
    import os, pathlib
    import pyexp

    HERE = pathlib.Path(__file__).parent

    @pyexp.experiment(name="counted")
    def exp(config):
        with open(HERE / "calls.txt", "a") as f:
            f.write(config.name + "\\n")
        return config.name.upper()

    @exp.configs
    def configs():
        return [{"name": n} for n in ("a", "b", "c", "d")]

    @exp.report
    def report(results, report_dir):
        print("RESULT", [r.result for r in results], [r.error for r in results])

    if __name__ == "__main__":
        exp.run()
'''


def test_runs_continue_across_executors_without_rerunning(head, script):
    s = script(COUNTED)
    env = _env(head, RAY_ADDRESS=head.address)
    s.run("--executor", "subprocess", "--filter", "^a$", env=env)
    assert _calls(s.dir) == ["a"]
    s.run("--continue", "--executor", "ray:auto", "--filter", "^[ab]$", env=env, timeout=180)
    assert _calls(s.dir) == ["a", "b"]
    s.run("--continue", "--executor", "subprocess", "--filter", "^[abc]$", env=env)
    assert _calls(s.dir) == ["a", "b", "c"]
    proc = s.run("--continue", "--executor", f"ray:{head.address}", env=env, timeout=180)
    assert _calls(s.dir) == ["a", "b", "c", "d"]
    assert "RESULT ['A', 'B', 'C', 'D'] [None, None, None, None]" in proc.stdout
    proc = s.run("--continue", "--executor", "subprocess", env=env)
    assert _calls(s.dir) == ["a", "b", "c", "d"]  # everything cached, whoever ran it
    assert "RESULT ['A', 'B', 'C', 'D']" in proc.stdout


def test_local_ray_runs_configs_in_parallel_and_is_shut_down(script, tmp_path):
    s = script('''
        import os, time, pathlib
        import pyexp

        HERE = pathlib.Path(__file__).parent

        @pyexp.experiment(name="par", executor="ray")
        def exp(config):
            print("live line from", config.name)
            (HERE / f"started-{config.name}").touch()
            other = HERE / ("started-" + ("b" if config.name == "a" else "a"))
            deadline = time.time() + 60
            while not other.exists():  # both must run at once to finish
                if time.time() > deadline:
                    raise TimeoutError("the other config never started")
                time.sleep(0.02)
            return config.name

        @exp.configs
        def configs():
            return [{"name": "a"}, {"name": "b"}]

        @exp.report
        def report(results, report_dir):
            print("RESULT", [r.result for r in results], [r.error for r in results])

        if __name__ == "__main__":
            exp.run()
    ''')
    ray_tmp = Path(__import__("tempfile").mkdtemp(prefix="pxl-", dir="/tmp"))
    try:
        # No RAY_ADDRESS and an empty RAY_TMPDIR: ray.init() finds no cluster and starts one.
        proc = s.run("-s", env=_env(RAY_TMPDIR=str(ray_tmp)), timeout=180)
        assert "RESULT ['a', 'b'] [None, None]" in proc.stdout
        assert "live line from a" in proc.stdout  # -s shows the output as well
        assert list(ray_tmp.glob("ray/session_*")), "pyexp did not start a Ray of its own"
        (run,) = s.runs("par")
        assert "live line from b" in _logs(run)["b"]
        # close() shut down the Ray that pyexp started: none of its processes are left.
        wait_until(lambda: not pids_mentioning(str(ray_tmp)), 30, "the local Ray to stop")
    finally:
        for pid in pids_mentioning(str(ray_tmp)):
            os.kill(pid, signal.SIGKILL)
        __import__("shutil").rmtree(ray_tmp, ignore_errors=True)


def test_remote_node_results_and_files_come_back_to_the_driver(head, script):
    # PYEXP_RAY_FORCE_REMOTE makes the workers act as if the driver's folders were not visible,
    # as on a real remote cluster: the config runs in a scratch folder that is shipped back.
    s = script('''
        import os
        import pyexp
        from pyexp import RayExecutor

        @pyexp.experiment(name="remote")
        def exp(config, logger):
            if config.name == "resume":  # fails once, leaving state behind for --continue
                state = config.out / "state" / "step.txt"
                if not state.exists():
                    state.parent.mkdir()
                    state.write_text("step 1 done")
                    raise RuntimeError("interrupted after step 1")
                return {"resumed from": state.read_text()}
            logger.add_scalar("loss", 0.5)
            (config.out / "model.txt").write_text("weights")
            (config.out / "sub").mkdir()
            (config.out / "sub" / "metrics.json").write_text("{}")
            print("out is", config.out)
            return {"out": str(config.out), "env": os.environ.get("PYEXP_RAY_FORCE_REMOTE")}

        @exp.configs
        def configs():
            return [{"name": "one"}, {"name": "resume"}]

        @exp.report
        def report(results, report_dir):
            r = results[0]
            print("RESULT", r.name, "|", r.result["out"], "|", r.error)
            print("ENV", r.result["env"])
            print("LOSS", r.logger.load_scalars("loss"))
            print("RESUME", results[1].result, "|", results[1].error)

        if __name__ == "__main__":
            exp.run(executor=RayExecutor(
                address=os.environ["HEAD"], runtime_env={"env_vars": {"PYEXP_RAY_FORCE_REMOTE": "1"}}))
    ''')
    proc = s.run(env=_env(head, HEAD=head.client), timeout=180)
    out, error = _results(proc.stdout)["one"]
    (run,) = s.runs("remote")
    (one,) = run.glob("one-*")
    assert error == "None"
    assert Path(out) != one  # it really ran somewhere else...
    assert (one / "model.txt").read_text() == "weights"  # ...and its files came back
    assert (one / "sub" / "metrics.json").read_text() == "{}"
    assert "ENV 1" in proc.stdout  # runtime_env env_vars reach the experiment
    assert "LOSS [(0, 0.5)]" in proc.stdout  # the event log came back too
    assert f"out is {out}" in (one / "log.out").read_text()
    # What a failed attempt left in its folder goes back to the worker on --continue.
    assert "RESUME None | RuntimeError: interrupted after step 1" in proc.stdout
    proc = s.run("--continue", env=_env(head, HEAD=head.client), timeout=180)
    assert "RESUME {'resumed from': 'step 1 done'} | None" in proc.stdout


def test_a_module_missing_on_the_worker_is_named_in_the_error(head, script):
    s = script('''
        import os
        import pyexp
        from pyexp import RayExecutor
        import helpers

        @pyexp.experiment(name="missing")
        def exp(config):
            return helpers.double(1)

        @exp.configs
        def configs():
            return [{"name": "one"}]

        @exp.report
        def report(results, report_dir):
            print("RESULT", results[0].name, "|", results[0].result, "|", results[0].error)

        if __name__ == "__main__":
            exp.run(executor=RayExecutor(address=os.environ["HEAD"], runtime_env={"excludes": ["helpers.py"]}))
    ''')
    (s.dir / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    proc = s.run(env=_env(head, HEAD=head.client), timeout=180)
    result, error = _results(proc.stdout)["one"]
    assert result == "None"
    assert error.startswith(
        "ModuleNotFoundError: No module named 'helpers' (while loading the experiment on a Ray worker"
    ), error


def test_parallelism_follows_the_cluster_and_the_per_config_resources(head):
    code = (
        "import os\n"
        "from pyexp import RayExecutor\n"
        "for kw in ({}, {'num_cpus': 2}, {'num_cpus': 0.5}, {'num_gpus': 1}):\n"
        "    ex = RayExecutor(address=os.environ['HEAD'], **kw)\n"
        "    print('SLOTS', kw, ex.max_workers, flush=True)\n"
        "    ex.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=ray_env(HEAD=head.address, RAY_TMPDIR=str(head.temp_dir)),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    slots = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("SLOTS")]
    assert slots == ["2", "1", "4", "1"]
    assert "num_gpus=1 but the Ray cluster has 0 GPU(s)" in proc.stderr


def test_ctrl_c_cancels_the_ray_tasks(head, script):
    s = script('''
        import os, time, pathlib
        import pyexp

        HERE = pathlib.Path(__file__).parent

        @pyexp.experiment(name="slow", executor="ray:auto")
        def exp(config):
            (HERE / f"pid-{config.name}").write_text(str(os.getpid()))
            time.sleep(120)

        @exp.configs
        def configs():
            return [{"name": "x"}, {"name": "y"}]

        if __name__ == "__main__":
            exp.run()
    ''')
    proc = subprocess.Popen(
        [sys.executable, str(s.path)], cwd=s.dir, env=ray_env(**_env(head, RAY_ADDRESS=head.address)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: (s.dir / "pid-x").exists() and (s.dir / "pid-y").exists()
                   and (s.dir / "pid-y").read_text() and (s.dir / "pid-x").read_text(), 90, "both configs to start")
        pids = [int((s.dir / f"pid-{n}").read_text()) for n in "xy"]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "--continue=" in err
    wait_until(lambda: not any(alive(p) for p in pids), 30, "the cancelled configs to exit")
    (run,) = s.runs("slow")
    assert not list(run.glob("*/result.pkl"))  # cancelled configs stay pending for --continue


def test_unreachable_cluster_fails_fast_and_is_not_needed_when_all_is_cached(script):
    from pyexp_testing import free_ports

    s = script(COUNTED)
    nobody = f"ray:127.0.0.1:{free_ports(1)[0]}"
    proc = s.run("--executor", nobody, env=_env(), check=False, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pyexp: error: executor='{nobody}': cannot connect to a Ray cluster"), proc.stderr
    s.run("--continue", "--executor", "subprocess", env=_env())
    assert _calls(s.dir) == ["a", "b", "c", "d"]
    proc = s.run("--continue", "--executor", nobody, env=_env(), timeout=60)
    assert "RESULT ['A', 'B', 'C', 'D']" in proc.stdout
    assert _calls(s.dir) == ["a", "b", "c", "d"]


def test_missing_ray_names_the_extra(script):
    s = script(COUNTED)
    blocker = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ImportError('No module named ray (blocked)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pyexp\n"
        "assert 'ray' not in sys.modules\n"
        "sys.argv = ['main.py', '--executor', 'ray']\n"
        "runpy.run_path('main.py', run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", blocker], cwd=s.dir, env=ray_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "pyexp: error: executor='ray' needs the 'ray' package: pip install \"pyexp[ray]\""
    )
    assert _calls(s.dir) == []


def test_import_pyexp_does_not_import_ray():
    code = "import sys, pyexp; pyexp.get_executor; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'ray')))"
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], env=ray_env(), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert json.loads(out) == []
