"""An experiment with a ``logger`` parameter: config + git commit at iteration 0, scalars, --no-stash."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from pyexp_testing import clean_env

SCRIPT = '''
import json, os
import pyexp
from pyexp import Logger

@pyexp.experiment(name="logged", executor=os.environ.get("EXECUTOR", "subprocess"))
def exp(config, logger: Logger):
    for it in range(config.steps):
        logger.set_global_it(it)
        logger.add_scalar("loss", 1.0 / (it + 1))
    logger.add_text("done", config.name)
    return {"steps": config.steps}

@exp.configs
def configs():
    return [{"name": "a", "steps": 5, "lr": 0.5}, {"name": "b", "steps": 3, "lr": 0.25}]

@exp.report
def report(results, report_dir):
    for r in results:
        it, config_yaml = r.logger["config"]
        commit = r.logger["git_commit"][1] if "git_commit" in r.logger else None
        print("LOG", r.name, json.dumps({"config_it": it, "config": config_yaml, "commit": commit,
                                         "loss": r.logger.load_scalars("loss"),
                                         "done": r.logger["done"]}))

if __name__ == "__main__":
    exp.run()
'''

PLAIN = '''
import pyexp

@pyexp.experiment(name="plain", executor="inline")
def exp(config):
    return 1

@exp.configs
def configs():
    return [{"name": "a"}]

@exp.report
def report(results, report_dir):
    print("LOGGER", results[0].logger)

if __name__ == "__main__":
    exp.run()
'''


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=clean_env(), check=True,
                          capture_output=True, text=True).stdout


def logs(stdout: str) -> dict[str, dict]:
    return {line.split()[1]: json.loads(line.split(" ", 2)[2])
            for line in stdout.splitlines() if line.startswith("LOG ")}


@pytest.mark.parametrize("executor", ["subprocess", "fork", "inline"])
def test_logger_parameter_records_config_commit_and_scalars(script, executor: str) -> None:
    s = script(SCRIPT)
    git(s.dir, "init", "-q")
    git(s.dir, "-c", "user.name=T", "-c", "user.email=t@e.x", "commit", "-q", "--allow-empty",
        "-m", "start")
    (s.dir / ".gitignore").write_text("out/\n")
    (s.dir / "untracked_helper.py").write_text("HELPER = 1\n")
    status = git(s.dir, "status", "--porcelain")

    got = logs(s.run(env={"EXECUTOR": executor}).stdout)

    assert set(got) == {"a", "b"}
    for name, steps in (("a", 5), ("b", 3)):
        log = got[name]
        assert log["config_it"] == 0
        assert f"steps: {steps}" in log["config"] and f"name: {name}" in log["config"]
        assert [tuple(p) for p in log["loss"]] == [(i, pytest.approx(1.0 / (i + 1)))
                                                   for i in range(steps)]
        assert log["done"] == [steps - 1, name]
    commit = got["a"]["commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and got["b"]["commit"] == commit
    refs = git(s.dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/pyexp/")
    assert re.fullmatch(rf"refs/pyexp/logged/\S+ {commit}\n", refs)
    assert git(s.dir, "show", f"{commit}:untracked_helper.py") == "HELPER = 1\n"
    assert "out/" not in git(s.dir, "ls-tree", "-r", "--name-only", commit)
    assert git(s.dir, "status", "--porcelain") == status  # the user's tree is untouched


def test_no_stash_logs_no_commit(script) -> None:
    s = script(SCRIPT)
    git(s.dir, "init", "-q")
    got = logs(s.run("--no-stash", env={"EXECUTOR": "inline"}).stdout)
    assert got["a"]["commit"] is None and "steps: 5" in got["a"]["config"]
    assert git(s.dir, "for-each-ref", "refs/pyexp/") == ""


def test_without_logger_parameter_there_is_no_log(script) -> None:
    s = script(PLAIN)
    out = s.run().stdout
    assert "LOGGER None" in out
    run_dirs = [p for p in (s.dir / "out" / "plain").rglob("*") if p.name == ".pyexp"]
    assert run_dirs == []
