"""The earlier README's command lines, run on a script written as its users wrote them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from pyexp import Result
from pyexp_testing import clean_env, count_calls

# The earlier Quick Start, with a marker line per call so the test can count what ran, a
# config that fails while the file `fail-slow` exists, and a report that says which run it saw.
SCRIPT = '''
import os
import re
import pathlib
import pyexp
from pyexp import Config

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="mnist")
def experiment(config: Config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    print(f"training {config.name}")
    if config.name == "slow" and (HERE / "fail-slow").exists():
        raise RuntimeError("slow diverged")
    attempt = sum(1 for line in open(HERE / "calls.txt") if line.strip() == config.name)
    return {"accuracy": 0.95, "attempt": attempt}

@experiment.configs
def configs():
    names = os.environ.get("SWEEP", "fast,slow").split(",")
    lrs = {"fast": 0.01, "slow": 0.001, "medium": 0.005}
    return [{"name": n, "learning_rate": lrs[n], "epochs": 10} for n in names]

@experiment.report
def report(results):
    for r in results:
        if r.get("__error__"):
            print(f"{r['name']} failed: {r['type']}: {r['message']}")
        else:
            print(f"{r['name']}: {r['accuracy']} attempt {r['attempt']} in {r['out'].parent.name}")

if __name__ == "__main__":
    experiment.run()
'''


def _timestamps(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "runs.json").exists())


def test_python_main_py_makes_a_new_timestamped_run_each_time(script):
    s = script(SCRIPT)
    s.run()
    s.run()
    runs = _timestamps(s.dir / "out" / "mnist")
    assert len(runs) == 2
    assert count_calls(s.dir) == {"fast": 2, "slow": 2}


def test_timestamp_continues_that_run(script):
    s = script(SCRIPT)
    (s.dir / "fail-slow").touch()
    first = s.run().stdout
    assert "slow failed: RuntimeError: slow diverged" in first
    (s.dir / "fail-slow").unlink()
    s.run()  # a newer run: --timestamp must pick the older one, not the latest
    ts = _timestamps(s.dir / "out" / "mnist")[0]
    calls_before = count_calls(s.dir)
    out = s.run("--timestamp", ts).stdout.splitlines()
    assert out == [f"fast: 0.95 attempt 1 in {ts}", f"slow: 0.95 attempt 3 in {ts}"]
    calls = count_calls(s.dir)
    assert calls == {"fast": calls_before["fast"], "slow": calls_before["slow"] + 1}


def test_timestamp_report_reports_that_run_and_runs_nothing(script):
    s = script(SCRIPT)
    s.run()
    s.run()
    ts = _timestamps(s.dir / "out" / "mnist")[0]
    calls = count_calls(s.dir)
    out = s.run("--timestamp", ts, "--report").stdout.splitlines()
    assert out == [f"fast: 0.95 attempt 1 in {ts}", f"slow: 0.95 attempt 1 in {ts}"]
    assert count_calls(s.dir) == calls


def test_timestamp_rerun_runs_every_config_again_and_keeps_the_old_results(script):
    s = script(SCRIPT)
    s.run()
    ts = _timestamps(s.dir / "out" / "mnist")[0]
    out = s.run("--timestamp", ts, "--rerun").stdout.splitlines()
    assert out == [f"fast: 0.95 attempt 2 in {ts}", f"slow: 0.95 attempt 2 in {ts}"]
    assert count_calls(s.dir) == {"fast": 2, "slow": 2}
    assert _timestamps(s.dir / "out" / "mnist") == [ts]  # the same run, not a new one
    for folder in (s.dir / "out" / "mnist" / ts).glob("*-*"):
        previous = folder / ".previous-attempts" / "1"
        old = Result(folder.name, {}, previous)
        assert old.result["attempt"] == 1  # the earlier attempt's result, still readable
        assert "training" in (previous / "log.out").read_text()
    # --rerun and --report contradict: one line, exit 1, nothing run.
    proc = s.run("--timestamp", ts, "--rerun", "--report", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("pyexp: error: --rerun and --report")
    unknown = s.run("--timestamp", "2001-01-01_00-00-00", check=False)
    assert unknown.returncode == 1 and "no run '2001-01-01_00-00-00'" in unknown.stderr
    assert count_calls(s.dir) == {"fast": 2, "slow": 2}


def test_no_timestamp_caches_by_config_and_reports_this_invocation(script):
    s = script(SCRIPT)
    root = s.dir / "out" / "mnist"
    s.run("--no-timestamp")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert [re.fullmatch(r"(fast|slow)-[0-9a-f]{8}", f) is not None for f in folders] == [True, True]
    assert all((root / f / "result.pkl").exists() for f in folders)
    assert (root / "runs.json").exists() and not _timestamps(root)
    # Again with one new config: the cached one is skipped, the new one runs, and the
    # report covers exactly this invocation's configs.
    out = s.run("--no-timestamp", env={"SWEEP": "fast,medium"}).stdout.splitlines()
    assert out == ["fast: 0.95 attempt 1 in mnist", "medium: 0.95 attempt 1 in mnist"]
    assert count_calls(s.dir) == {"fast": 1, "slow": 1, "medium": 1}
    assert json.loads((root / "runs.json").read_text())["shape"] == [2]
    # --rerun runs this invocation's configs again, whatever is stored.
    out = s.run("--no-timestamp", "--rerun").stdout.splitlines()
    assert out == ["fast: 0.95 attempt 2 in mnist", "slow: 0.95 attempt 2 in mnist"]
    # --report (and --list) see the latest invocation's sweep.
    assert s.run("--no-timestamp", "--report").stdout.splitlines() == out
    listing = s.run("--list").stdout
    assert "(no timestamp)" in listing and "      2      2      0       0" in listing


FLAT_API = '''
import sys
import pyexp

@pyexp.experiment(name="{name}", executor="inline"{decorator})
def experiment(config):
    return config.x

@experiment.configs
def configs():
    return [{{"name": "a", "x": 1}}, {{"name": "b", "x": 2}}]

if __name__ == "__main__":
    results = experiment.run({run})
    print(sorted(r.result for r in results))
    print(sorted(r.result for r in experiment.results({results_arg})))
'''


def test_timestamp_false_in_decorator_and_run(script):
    for name, decorator, run, results_arg in [("dec", ", timestamp=False", "", ""),
                                              ("runarg", "", "timestamp=False", "timestamp=False")]:
        s = script(FLAT_API.format(name=name, decorator=decorator, run=run, results_arg=results_arg),
                   name=f"{name}.py")
        assert s.run().stdout.splitlines() == ["[1, 2]", "[1, 2]"]
        root = s.dir / "out" / name
        assert (root / "runs.json").exists() and not _timestamps(root)
        assert len([p for p in root.iterdir() if (p / "result.pkl").exists()]) == 2


def test_capture_executor_and_output_dir_flags(script):
    s = script(SCRIPT)
    live = s.run("-s").stdout
    assert "training fast" in live and "training slow" in live  # config output shown live
    quiet = s.run().stdout
    assert "training" not in quiet  # captured into log.out by default
    inline = s.run("--executor", "inline").stdout.splitlines()
    assert inline[0].startswith("fast: 0.95")
    s.run("--output-dir", "results/")
    assert len(_timestamps(s.dir / "results" / "mnist")) == 1
    assert len(_timestamps(s.dir / "out" / "mnist")) == 3


# Two invocations without timestamp, with different sweeps, overlapping in time: each reports
# its own configs although the second one replaced runs.json while the first was running.
OVERLAP = '''
import pathlib
import sys
import time
import pyexp

HERE = pathlib.Path(__file__).parent
WHO = sys.argv[1]

@pyexp.experiment(name="shared", executor="inline", timestamp=False)
def experiment(config):
    if WHO == "first":
        (HERE / "first-running").touch()
        deadline = time.monotonic() + 60
        while not (HERE / "second-done").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return config.x

@experiment.configs
def configs():
    xs = [1, 2] if WHO == "first" else [3, 4, 5]
    return [{"name": f"{WHO}{x}", "x": x} for x in xs]

@experiment.report
def report(results):
    print([r.name for r in results], list(results.shape))
    if WHO == "second":
        (HERE / "second-done").touch()

if __name__ == "__main__":
    experiment.run(argv=[])
'''


def test_overlapping_invocations_without_timestamp_each_report_their_own_sweep(script):
    s = script(OVERLAP)
    first = subprocess.Popen([sys.executable, str(s.path), "first"], cwd=s.dir, env=clean_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (s.dir / "first-running").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = s.run("second")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.splitlines() == ["['first1', 'first2'] [2]"]
    assert second.stdout.splitlines() == ["['second3', 'second4', 'second5'] [3]"]
    # runs.json is whole, the sweep of the invocation that wrote it last.
    manifest = json.loads((s.dir / "out" / "shared" / "runs.json").read_text())
    assert manifest["shape"] in ([2], [3]) and len(manifest["runs"]) == manifest["shape"][0]
    assert os.path.isdir(s.dir / "out" / "shared" / manifest["runs"][0])


LOGGING = '''
import pyexp

@pyexp.experiment(name="logged", executor="inline", timestamp=False)
def experiment(config, logger):
    for i in range(3):
        logger.set_global_it(i)
        logger.add_scalar("loss", config.x * i)
    return config.x

@experiment.configs
def configs():
    return [{"name": "a", "x": 1.0}, {"name": "b", "x": 2.0}]

if __name__ == "__main__":
    experiment.run()
'''


def test_logs_without_timestamp_show_in_log_reader_and_viewer(script):
    from pyexp import LogReader
    from pyexp.viewer.catalog import Catalog

    s = script(LOGGING)
    s.run()
    s.run("--rerun")  # the set-aside attempts are hidden, not listed as runs
    root = s.dir / "out" / "logged"
    runs = LogReader(root).runs
    assert sorted(r.split("-")[0] for r in runs) == ["a", "b"]
    assert Catalog(root).runs == runs
    b = LogReader(root).get_run(next(r for r in runs if r.startswith("b-")))
    assert b.load_scalars("loss") == [(0, 0.0), (1, 2.0), (2, 4.0)]
    # One attempt, one folder: its result and its event log were set aside together.
    previous = b.path / ".previous-attempts"
    assert [p.name for p in previous.iterdir()] == ["1"]
    assert (previous / "1" / "result.pkl").exists() and (previous / "1" / "events.pb").exists()


def test_timestamp_settings_have_hydra_spellings_and_conflicts_are_one_line_errors(script):
    s = script(SCRIPT)
    s.run("pyexp.timestamp=false")
    root = s.dir / "out" / "mnist"
    assert (root / "runs.json").exists() and not _timestamps(root)
    s.run()
    ts = _timestamps(root)[0]
    calls = count_calls(s.dir)
    out = s.run(f"+pyexp.timestamp={ts}", "pyexp.report=true").stdout.splitlines()
    assert out == [f"fast: 0.95 attempt 2 in {ts}", f"slow: 0.95 attempt 2 in {ts}"]
    assert count_calls(s.dir) == calls
    for args, says in [(["--timestamp", ts, "--continue", "2001-01-01_00-00-00"], "name different runs"),
                       (["--no-timestamp", "--report", ts], "timestamp=False"),
                       (["--timestamp", ts, "--rerun", "--report"], "--rerun and --report")]:
        proc = s.run(*args, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("pyexp: error: ") and says in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert count_calls(s.dir) == calls


BLOCKING = '''
import os
import pathlib
import time
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="long", executor="fork", stash=False)
def experiment(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    if config.name == "first" and (HERE / "block").exists():
        time.sleep(120)
    return sum(1 for line in open(HERE / "calls.txt") if line.strip() == config.name)

@experiment.configs
def configs():
    return [{"name": "first"}, {"name": "second"}]

@experiment.report
def report(results):
    print(" ".join(f"{r['name']}={r.result}" for r in results))

if __name__ == "__main__":
    experiment.run()
'''


def test_an_interrupted_rerun_keeps_every_old_result_and_is_finished_with_continue(script):
    import shlex
    import signal

    from pyexp_testing import wait_until

    s = script(BLOCKING)
    s.run()
    (ts,) = _timestamps(s.dir / "out" / "long")
    (s.dir / "block").touch()
    proc = subprocess.Popen([sys.executable, str(s.path), "--timestamp", ts, "--rerun"], cwd=s.dir,
                            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: count_calls(s.dir).get("first") == 2, 60, "the rerun of 'first' to start")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal delivers it
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    hint = err.strip().splitlines()[-1].strip()
    assert hint == shlex.join(["python", str(s.path), f"--continue={ts}"])
    # 'second' never started again: it is pending, and its first result waits beside it.
    second = next((s.dir / "out" / "long" / ts).glob("second-*"))
    assert Result("second", {}, second).status == "pending"
    assert Result("second", {}, second / ".previous-attempts" / "1").result == 1
    (s.dir / "block").unlink()
    done = subprocess.run([sys.executable, *shlex.split(hint)[1:]], cwd=s.dir, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["first=3", "second=2"]
