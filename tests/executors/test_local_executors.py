"""inline / subprocess / fork: crash isolation, error records, output capture, custom executors."""

from __future__ import annotations

import pytest

ISOLATED = ["subprocess", "fork", "spawn"]

FAULTS_SCRIPT = '''
import os, sys, threading
import pyexp

@pyexp.experiment(name="faults", executor=os.environ["EXECUTOR"])
def exp(config):
    kind = config.kind
    print("start", kind)
    if kind == "ok":
        return {"fine": True}
    if kind == "raise":
        raise KeyError("missing thing")
    if kind == "segfault":
        import ctypes
        ctypes.string_at(0)
    if kind == "exit3":
        sys.stdout.flush()
        os._exit(3)
    if kind == "unpicklable":
        return threading.Lock()
    if kind == "plain":
        return 42
    if kind == "memory":
        raise MemoryError("pretend we ran out")
    if kind == "sysexit":
        sys.exit(4)

@exp.configs
def configs():
    kinds = os.environ["KINDS"].split(",")
    return [{"name": k, "kind": k} for k in kinds]

@exp.report
def report(results, report_dir):
    for r in results:
        print("RESULT", r.name, "|", repr(r.result), "|", r.error)

if __name__ == "__main__":
    exp.run()
'''


def _results(stdout: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            name, result, error = line[len("RESULT "):].split(" | ")
            found[name] = (result, error)
    return found


@pytest.mark.parametrize("executor", ISOLATED)
def test_every_fault_becomes_an_error_result_and_the_rest_go_on(script, executor):
    s = script(FAULTS_SCRIPT)
    kinds = "ok,raise,segfault,exit3,unpicklable,plain,memory,sysexit"
    proc = s.run(env={"EXECUTOR": executor, "KINDS": kinds})
    r = _results(proc.stdout)
    assert r["ok"] == ("{'fine': True}", "None")
    assert r["plain"] == ("42", "None")
    assert r["raise"] == ("None", "KeyError: 'missing thing'")
    assert r["segfault"] == ("None", "killed by SIGSEGV (signal 11)")
    assert r["exit3"] == ("None", "worker exited with code 3 before reporting a result")
    assert r["unpicklable"][1].startswith("result of type lock could not be pickled: TypeError")
    assert r["memory"] == ("None", "MemoryError: pretend we ran out")
    assert r["sysexit"] == ("None", "SystemExit: 4")
    (run,) = s.runs("faults")
    logs = {p.parent.name.split("-")[0]: p.read_text() for p in run.glob("*/log.out")}
    assert "start segfault" in logs["segfault"]
    assert "KeyError: 'missing thing'" in logs["raise"]  # the traceback is in the log


def test_inline_reports_exceptions_as_errors_too(script):
    s = script(FAULTS_SCRIPT)
    proc = s.run(env={"EXECUTOR": "inline", "KINDS": "ok,raise,plain"})
    r = _results(proc.stdout)
    assert r["raise"] == ("None", "KeyError: 'missing thing'")
    assert r["plain"] == ("42", "None")


@pytest.mark.parametrize("executor", ISOLATED)
def test_huge_output_does_not_deadlock(script, executor):
    s = script('''
        import os, sys
        import pyexp
        @pyexp.experiment(name="loud", executor=os.environ["EXECUTOR"])
        def exp(config):
            line = "x" * 1023 + "\\n"
            for _ in range(100 * 1024):  # 100 MB
                sys.stdout.write(line)
            return "done"
        @exp.configs
        def configs():
            return [{"name": "loud"}]
        @exp.report
        def report(results, report_dir):
            print("RESULT", results[0].result, len(results[0].log))
        if __name__ == "__main__":
            exp.run()
    ''')
    proc = s.run(env={"EXECUTOR": executor}, timeout=180)
    assert "RESULT done 104857600" in proc.stdout


def test_custom_executor_from_the_spec(script):
    s = script('''
        import pickle
        import pyexp
        from pyexp import Executor

        class MyExecutor(Executor):
            def run(self, fn, config, result_path):
                print("custom running", config.name)
                result = fn(config)
                with open(result_path, "wb") as f:
                    pickle.dump(result, f)
                return result

        @pyexp.experiment(name="custom")
        def exp(config):
            return {"v": config.v}

        @exp.configs
        def configs():
            return [{"name": "one", "v": 1}, {"name": "two", "v": 2}]

        @exp.report
        def report(results, report_dir):
            print("RESULT", [r.result for r in results])

        if __name__ == "__main__":
            exp.run(executor=MyExecutor())
    ''')
    proc = s.run()
    assert "RESULT [{'v': 1}, {'v': 2}]" in proc.stdout
    (run,) = s.runs("custom")
    assert any("custom running one" in p.read_text() for p in run.glob("*/log.out"))


def test_get_executor_names_and_errors():
    from pyexp import ForkExecutor, InlineExecutor, SubprocessExecutor, get_executor
    from pyexp.errors import ExecutorError

    assert isinstance(get_executor("inline"), InlineExecutor)
    assert isinstance(get_executor("fork"), ForkExecutor)
    assert isinstance(get_executor(None), SubprocessExecutor)
    executor = InlineExecutor()
    assert get_executor(executor) is executor
    with pytest.raises(ExecutorError) as info:
        get_executor("threads")
    message = str(info.value)
    assert "'threads'" in message and "subprocess" in message and "fork" in message


def _double(config):
    return config["v"] * 2


def _boom(config):
    raise ValueError(f"no {config['v']}")


@pytest.mark.parametrize("name", ["inline", "subprocess", "fork", "spawn"])
def test_builtin_executors_honour_the_spec_run_contract(tmp_path, name):
    from pyexp import Config, get_executor
    from pyexp.errors import ExecutorError

    executor = get_executor(name)
    result_path = tmp_path / "one" / "result.pkl"
    result_path.parent.mkdir()
    assert executor.run(_double, Config(name="one", v=21), result_path) == 42
    assert result_path.exists()
    if name != "inline":  # inline calls the function directly: its exception propagates as is
        with pytest.raises(ExecutorError, match="ValueError: no 3"):
            executor.run(_boom, Config(name="two", v=3), tmp_path / "two" / "result.pkl")
