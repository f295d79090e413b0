"""The three phases, caching, resume and layout, through real scripts run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyexp_testing import clean_env, count_calls

EXECUTORS = ["inline", "subprocess", "fork"]

SWEEP_SCRIPT = '''
import os, pathlib
import pyexp
from pyexp import sweep

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="t", executor=os.environ.get("EXECUTOR", "subprocess"))
def exp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    print("running", config.name)
    if (HERE / ("fail-" + config.name)).exists():
        raise ValueError("asked to fail " + config.name)
    return {"double": config.x * 2, "y": config.y}

@exp.configs
def configs():
    (HERE / "configs-called").touch()
    with open(HERE / "configs-calls.txt", "a") as f:
        f.write("1\\n")
    return sweep([{"name": "a", "x": 1}, {"name": "b", "x": 2}],
                 [{"name": "p", "y": 10}, {"name": "q", "y": 20}])

@exp.report
def report(results, report_dir):
    for r in results:
        print("RESULT", r.name, r.result, r.error)
    print("SHAPE", results.shape)
    (report_dir / "done.txt").write_text("ok")
    return "report-value"

if __name__ == "__main__":
    exp.run()
'''


def _results(stdout: str) -> dict[str, str]:
    return {line.split()[1]: line.split(" ", 2)[2] for line in stdout.splitlines() if line.startswith("RESULT ")}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_fresh_run_writes_the_layout_and_reports(script, executor):
    s = script(SWEEP_SCRIPT)
    proc = s.run(env={"EXECUTOR": executor})
    results = _results(proc.stdout)
    assert results == {
        "a_p": "{'double': 2, 'y': 10} None", "a_q": "{'double': 2, 'y': 20} None",
        "b_p": "{'double': 4, 'y': 10} None", "b_q": "{'double': 4, 'y': 20} None",
    }
    assert "SHAPE (2, 2)" in proc.stdout
    (run,) = s.runs("t")
    manifest = json.loads((run / "runs.json").read_text())
    assert manifest["shape"] == [2, 2]
    assert len(manifest["runs"]) == 4
    for dirname in manifest["runs"]:
        folder = run / dirname
        assert dirname.split("-")[0] in {"a_p", "a_q", "b_p", "b_q"}
        config = json.loads((folder / "config.json").read_text())
        assert config["out"] == str(folder)
        assert (folder / "result.pkl").exists()
        assert f"running {config['name']}" in (folder / "log.out").read_text()
    assert (run / "report" / "done.txt").read_text() == "ok"
    # Captured by default: the experiment's prints are in log.out, not on the terminal.
    assert "running a_p" not in proc.stdout


@pytest.mark.parametrize("executor", EXECUTORS)
def test_continue_reruns_only_failed_and_never_calls_configs(script, executor):
    s = script(SWEEP_SCRIPT)
    (s.dir / "fail-b_q").touch()
    proc = s.run(env={"EXECUTOR": executor})
    assert "ValueError: asked to fail b_q" in _results(proc.stdout)["b_q"]
    assert count_calls(s.dir) == {"a_p": 1, "a_q": 1, "b_p": 1, "b_q": 1}
    (s.dir / "fail-b_q").unlink()
    proc = s.run("--continue", env={"EXECUTOR": executor})
    assert _results(proc.stdout)["b_q"] == "{'double': 4, 'y': 20} None"
    assert count_calls(s.dir) == {"a_p": 1, "a_q": 1, "b_p": 1, "b_q": 2}
    assert (s.dir / "configs-calls.txt").read_text() == "1\n"
    assert len(s.runs("t")) == 1


def test_report_runs_nothing_and_skip_failed_keeps_failures(script):
    s = script(SWEEP_SCRIPT)
    (s.dir / "fail-a_p").touch()
    s.run()
    (s.dir / "fail-a_p").unlink()
    proc = s.run("--report")
    assert "asked to fail a_p" in _results(proc.stdout)["a_p"]
    proc = s.run("--continue", "--skip-failed")
    assert "asked to fail a_p" in _results(proc.stdout)["a_p"]
    assert count_calls(s.dir)["a_p"] == 1
    assert (s.dir / "configs-calls.txt").read_text() == "1\n"


def test_continue_and_report_select_a_timestamp(script):
    s = script(SWEEP_SCRIPT)
    s.run()
    s.run()
    first, second = s.runs("t")
    assert first.name != second.name
    proc = s.run(f"--report={first.name}")
    assert "SHAPE (2, 2)" in proc.stdout
    proc = s.run("--continue", first.name)
    assert count_calls(s.dir)["a_p"] == 2
    proc = s.run("--report=1999-01-01_00-00-00", check=False)
    assert proc.returncode == 1
    assert "no run '1999-01-01_00-00-00'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_filter_runs_only_matching_configs(script):
    s = script(SWEEP_SCRIPT)
    proc = s.run("--filter", "^a_")
    assert count_calls(s.dir) == {"a_p": 1, "a_q": 1}
    assert "pending" in _results(proc.stdout)["b_p"]
    s.run("--continue")
    assert count_calls(s.dir) == {"a_p": 1, "a_q": 1, "b_p": 1, "b_q": 1}


def test_list_shows_status_counts(script):
    s = script(SWEEP_SCRIPT)
    (s.dir / "fail-a_p").touch()
    s.run("--filter", "a_")
    proc = s.run("--list")
    (line,) = [l for l in proc.stdout.splitlines() if l[:4].isdigit()]
    assert line.split()[-4:] == ["4", "1", "1", "2"]
    assert count_calls(s.dir) == {"a_p": 1, "a_q": 1}


def test_no_capture_streams_output_live(script):
    s = script(SWEEP_SCRIPT)
    proc = s.run("-s")
    assert "running a_p" in proc.stdout
    (run,) = s.runs("t")
    assert any("running a_p" in p.read_text() for p in run.glob("*/log.out"))
    proc = s.run("--capture=no", "--executor", "fork")
    assert "running b_q" in proc.stdout


def test_output_dir_and_name_priority(script, tmp_path):
    s = script(SWEEP_SCRIPT.replace('exp.run()', 'exp.run(output_dir=os.environ["RUN_OUT"])')
               .replace('name="t",', f'name="t", output_dir={str(tmp_path / "deco")!r},'))
    s.run(env={"RUN_OUT": str(tmp_path / "from_run")})
    assert (tmp_path / "from_run" / "t").is_dir() and not (tmp_path / "deco").exists()
    s.run("--output-dir", str(tmp_path / "cli"), "--name", "renamed", env={"RUN_OUT": str(tmp_path / "from_run")})
    assert len(list((tmp_path / "cli" / "renamed").glob("*/runs.json"))) == 1


def test_default_output_dir_is_next_to_the_file_not_the_cwd(script, tmp_path):
    s = script(SWEEP_SCRIPT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, str(s.path)], cwd=elsewhere, env=clean_env(), check=True,
                   capture_output=True, timeout=120)
    assert len(s.runs("t")) == 1 and not (elsewhere / "out").exists()


def test_concurrent_fresh_runs_get_distinct_folders(script):
    s = script(SWEEP_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(s.path), "--executor", "inline"], cwd=s.dir,
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    runs = s.runs("t")
    assert len(runs) == 3
    assert all(len(list(r.glob("*/result.pkl"))) == 4 for r in runs)


def test_results_loads_a_previous_run_from_another_script(script):
    s = script(SWEEP_SCRIPT)
    s.run()
    loader = script('''
        import sys
        sys.path.insert(0, ".")
        from main import exp
        results = exp.results()
        print(results.shape, sorted(r.name for r in results))
        print(results[{"config.x": 2}].shape, results["*_q"].shape)
        print(results[1, 0].result, results[1, 0].out.name.startswith("b_p-"))
        print(exp.results(timestamp="latest")[0, 0].config.out == exp.results()[0, 0].out)
    ''', name="load.py")
    proc = loader.run()
    lines = proc.stdout.splitlines()
    assert lines[0] == "(2, 2) ['a_p', 'a_q', 'b_p', 'b_q']"
    assert lines[1] == "(1, 2) (2, 1)"
    assert lines[2] == "{'double': 4, 'y': 10} True"
    assert lines[3] == "True"


def test_run_returns_the_report_value_and_alternative_api(script):
    s = script('''
        import pyexp
        @pyexp.experiment(executor="inline")
        def exp(config):
            return config.v + 1
        def my_configs():
            return [{"name": "one", "v": 1}, {"name": "two", "v": 2}]
        def my_report(results, report_dir):
            return [r.result for r in results]
        value = exp.run(configs=my_configs, report=my_report)
        print("VALUE", value)
        plain = exp.run(configs=my_configs)
        print("PLAIN", type(plain).__name__, plain.shape)
    ''')
    proc = s.run()
    assert "VALUE [2, 3]" in proc.stdout
    assert "PLAIN Tensor (2,)" in proc.stdout
