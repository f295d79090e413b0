"""run() from an imported module, a notebook kernel or pytest; --continue/--report never start afresh;
``out`` as second parameter; retry=N."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyexp_testing import clean_env, count_calls

EXP_MODULE = """
import pathlib
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="imp", executor="inline")
def imp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    return config.x * 2

@imp.configs
def configs():
    return [{"name": "a", "x": 1}, {"name": "b", "x": 2}]

@imp.report
def report(results, report_dir):
    print("REPORT", [r.result for r in results])
"""

MAIN = """
import exp_module

exp_module.imp.run()
"""


@pytest.fixture
def project(script):
    script(EXP_MODULE, name="exp_module.py")
    return script(MAIN, name="main.py")


def run_dirs(folder: Path) -> list[Path]:
    root = folder / "out" / "imp"
    return sorted(p for p in root.iterdir() if (p / "runs.json").exists()) if root.exists() else []


def test_flags_reach_an_experiment_imported_by_the_script(project):
    project.run()
    assert count_calls(project.dir) == {"a": 1, "b": 1}
    (run,) = run_dirs(project.dir)

    report = project.run("--report")
    assert "REPORT [2, 4]" in report.stdout
    listing = project.run("--list")
    assert run.name in listing.stdout
    project.run("--continue")
    project.run(f"--report={run.name}")
    project.run("+pyexp.continue=latest")
    assert run_dirs(project.dir) == [run]  # none of these started a fresh run
    assert count_calls(project.dir) == {"a": 1, "b": 1}
    project.run("--name", "renamed", "--executor", "inline")
    assert (project.dir / "out" / "renamed").is_dir()


@pytest.mark.parametrize("args", [["--continue"], ["--report"], ["--continue=2024-01-25_14-30-00"],
                                  ["+pyexp.continue=latest"], ["pyexp.report=true"]])
def test_continue_or_report_without_a_run_is_a_one_line_error(project, args):
    proc = project.run(*args, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyexp: error: no run")
    assert run_dirs(project.dir) == [] and count_calls(project.dir) == {}


def test_an_unknown_timestamp_never_starts_a_fresh_run(project):
    project.run()
    for args in (["--continue=2024-01-25_14-30-00"], ["--report=2024-01-25_14-30-00"]):
        proc = project.run(*args, check=False)
        assert proc.returncode == 1 and "'2024-01-25_14-30-00'" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert len(run_dirs(project.dir)) == 1 and count_calls(project.dir) == {"a": 1, "b": 1}


def test_a_notebook_kernel_s_arguments_are_not_pyexp_s(project):
    """A real Jupyter kernel (argv: ipykernel_launcher.py -f kernel.json) runs the experiment afresh."""
    manager = pytest.importorskip("jupyter_client.manager")
    km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(project.dir), env=clean_env())
    outputs: list[str] = []
    try:
        reply = kc.execute_interactive(
            "import sys; print('ARGV', sys.argv[1:2]); import exp_module; exp_module.imp.run()", timeout=120,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")),
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "ARGV ['-f']" in "".join(outputs) and "REPORT [2, 4]" in "".join(outputs)
    assert len(run_dirs(project.dir)) == 1


def test_pytest_s_arguments_are_not_pyexp_s(project):
    (project.dir / "test_inner.py").write_text(textwrap.dedent("""
        import exp_module

        def test_runs():
            exp_module.imp.run()
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "test_inner.py"],
                          cwd=project.dir, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert count_calls(project.dir) == {"a": 1, "b": 1}


def test_python_c_ignores_its_arguments(project):
    proc = subprocess.run([sys.executable, "-c", "import exp_module; exp_module.imp.run()", "--continue"],
                          cwd=project.dir, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert count_calls(project.dir) == {"a": 1, "b": 1}  # a fresh run: -c code has no command line of its own


SECOND_PARAMETER = """
import pathlib
import pyexp
from pyexp import Logger

@pyexp.experiment(name="outs")
def with_out(config, out):
    (out / "artifact.txt").write_text("made")
    return [type(out).__name__, out == config.out]

@pyexp.experiment(name="logs")
def with_logger(config, log):
    log.add_scalar("loss", 0.5)
    return type(log).__name__

if __name__ == "__main__":
    for exp in (with_out, with_logger):
        exp.configs(lambda: [{"name": "only"}])
        exp.run(executor="{executor}")
        r = exp.results()[0]
        print(exp.default_name, r.result, r.error, (r.out / "artifact.txt").exists(), r.logger is not None)
"""


@pytest.mark.parametrize("executor", ["inline", "subprocess"])
def test_a_second_parameter_named_out_is_the_config_folder(script, executor):
    main = script(SECOND_PARAMETER.replace("{executor}", executor))
    lines = main.run().stdout.strip().splitlines()
    assert "outs ['PosixPath', True] None True False" in lines
    assert "logs Logger None False True" in lines


RETRY = """
import pathlib, sys
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="flaky", executor="{executor}", retry={retry})
def flaky(config):
    tries = HERE / f"tries-{{config.name}}"
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    print(f"attempt {{n}} of {{config.name}}")
    if n <= config.failures:
        raise RuntimeError(f"flaky failure {{n}}")
    return n

@flaky.configs
def configs():
    return [{{"name": "once", "failures": 1}}, {{"name": "thrice", "failures": 3}}, {{"name": "never", "failures": 0}}]

@flaky.report
def report(results, report_dir):
    for r in results:
        print("RESULT", r.name, r.result, r.error)

if __name__ == "__main__":
    flaky.run()
"""


def _results(stdout: str) -> dict[str, str]:
    return {line.split()[1]: line.split(" ", 2)[2] for line in stdout.splitlines() if line.startswith("RESULT ")}


@pytest.mark.parametrize("executor", ["inline", "fork"])
def test_retry_runs_a_failed_config_again_and_keeps_every_attempt_s_error(script, executor):
    main = script(RETRY.format(executor=executor, retry=2))
    results = _results(main.run().stdout)
    assert results == {"once": "2 None", "thrice": "None RuntimeError: flaky failure 3", "never": "1 None"}
    assert (main.dir / "tries-thrice").read_text() == "3"  # 1 + retry=2 attempts, then it counts as failed
    run = main.runs("flaky")[0]
    dirs = json.loads((run / "runs.json").read_text())["runs"]
    log = (run / next(d for d in dirs if d.startswith("thrice")) / "log.out").read_text()
    for n in (1, 2, 3):
        assert f"attempt {n} of thrice" in log and f"RuntimeError: flaky failure {n}" in log


@pytest.mark.parametrize("spelling", [["--retry", "3"], ["pyexp.retry=3"]])
def test_retry_from_the_command_line_beats_the_decorator(script, spelling):
    main = script(RETRY.format(executor="inline", retry=0))
    assert _results(main.run(*spelling).stdout)["thrice"] == "4 None"


def test_retry_given_to_run(script):
    main = script(RETRY.format(executor="inline", retry=0).replace("flaky.run()", "flaky.run(retry=1)"))
    results = _results(main.run().stdout)
    assert results["once"] == "2 None" and results["thrice"].startswith("None RuntimeError: flaky failure 2")


@pytest.mark.parametrize("spelling", [["--retry", "0"], ["pyexp.retry=0"]])
def test_retry_zero_from_the_command_line_turns_the_decorator_s_retries_off(script, spelling):
    main = script(RETRY.format(executor="inline", retry=2))
    results = _results(main.run(*spelling).stdout)
    assert results["once"] == "None RuntimeError: flaky failure 1"


@pytest.mark.parametrize("spelling", [["--retry", "-1"], ["pyexp.retry=-1"]])
def test_a_negative_retry_is_a_one_line_error(script, spelling):
    main = script(RETRY.format(executor="inline", retry=0))
    proc = main.run(*spelling, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("pyexp: error:") and "retry" in proc.stderr
