"""Bad input from the user: each is one clear line on stderr, and nothing is written outside out/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyexp_testing import ScriptAt as Script, one_line_error, outcome_of

SCRIPT = '''
import os, pathlib
import pyexp
from pyexp import load_config

HERE = pathlib.Path(__file__).parent
CASE = os.environ.get("CASE", "good")

@pyexp.experiment(name="b", executor="inline")
def exp(config):
    return config.get("lr", 0)

@exp.configs
def configs():
    if CASE == "good":
        return [{"name": "one", "lr": 0.1}, {"name": "two", "lr": 0.2}]
    if CASE == "yaml":
        return [load_config(HERE / os.environ["YAML"])]
    if CASE == "int":
        return 42
    if CASE == "ints":
        return [{"name": "ok"}, 7]
    if CASE == "empty":
        return []
    if CASE == "none":
        return None
    if CASE == "duplicate":
        return [{"name": "same", "lr": 1}, {"name": "same", "lr": 2}]
    if CASE == "object":
        return [{"name": "obj", "opt": {"fn": object()}}]
    if CASE == "out":
        return [{"name": "x", "out": "/tmp/elsewhere"}]
    if CASE == "hostile":
        return [{"name": n} for n in ["../x", "../../escape", "/abs/path", "..", ".", "a/../../b",
                                      "new\\nline", "-dash", "'; echo foo", "C:\\\\win", "x" * 300,
                                      "ünïcødé" * 40]]

if __name__ == "__main__":
    exp.run()
'''

YAML = {
    "missing_import.yaml": "imports:\n  - nowhere.yaml\nlr: 1\n",
    "cycle_a.yaml": "imports: [cycle_b.yaml]\nlr: 1\n",
    "cycle_b.yaml": "imports: [cycle_a.yaml]\n",
    "syntax.yaml": "lr: [1, 2\nname: : x\n",
}


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` except inside the project's out/ folder."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.relative_to(root).parts[1:2] != ("out",)}


@pytest.fixture
def s(tmp_path: Path) -> Script:
    (tmp_path / "proj").mkdir()
    script = Script(tmp_path / "proj", SCRIPT)
    for name, text in YAML.items():
        (script.dir / name).write_text(text)
    return script


def _fails(s: Script, *args: str, code: int = 1, **env: str) -> str:
    before = _tree(s.dir.parent)
    proc = s.run(*args, "--no-stash", env=env)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    line = one_line_error(proc.stderr)
    assert _tree(s.dir.parent) == before, "files written outside out/"
    leftovers = list(s.out("b").iterdir()) if s.out("b").exists() else []
    assert not leftovers, f"a failed start left {leftovers} behind"
    return line


@pytest.mark.parametrize("args,expected", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--jobs", "many"], "argument -j/--jobs: invalid int value: 'many'"),
    (["--capture=maybe"], "argument --capture: invalid choice"),
])
def test_bad_flags(s, args, expected):
    line = _fails(s, *args)
    assert expected in line and "--help" in line


@pytest.mark.parametrize("override,expected", [
    ("lr=[1,2", "lr=[1,2"),
    ("=3", "=3"),
    ("lr==", "lr=="),
])
def test_bad_override_syntax(s, override, expected):
    line = _fails(s, override)
    assert line.startswith("pyexp: error: ") and expected in line


@pytest.mark.parametrize("case,env,expected", [
    ("good", {}, None),
    ("yaml", {"YAML": "missing_import.yaml"}, "nowhere.yaml not found (imported by"),
    ("yaml", {"YAML": "cycle_a.yaml"}, "cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml"),
    ("yaml", {"YAML": "syntax.yaml"}, "syntax.yaml:2: invalid YAML"),
    ("yaml", {"YAML": "absent.yaml"}, "absent.yaml"),
    ("int", {}, "must return a list of config dicts"),
    ("ints", {}, "every config must be a dict"),
    ("empty", {}, "returned no configs"),
    ("none", {}, "got NoneType"),
    ("duplicate", {}, "two configs share the name 'same'"),
    ("object", {}, "'opt.fn'"),
    ("out", {}, "reserves"),
])
def test_bad_configs_are_one_line_errors_before_anything_is_written(s, case, env, expected):
    if expected is None:  # the control: the same script with good configs runs
        assert s.run("--no-stash", env={"CASE": case}).returncode == 0
        return
    line = _fails(s, CASE=case, **env)
    assert line.startswith("pyexp: error: ") and expected in line, line


def test_unknown_executor_fails_before_phase_one(s):
    line = _fails(s, "--executor", "warp-drive", CASE="good")
    assert line.startswith("pyexp: error: unknown executor 'warp-drive'") and "subprocess" in line


@pytest.mark.parametrize("args,expected", [
    (["--filter", "(unclosed"], "--filter '(unclosed' is not a valid regular expression"),
    (["--continue=2001-01-01_00-00-00"], "no run '2001-01-01_00-00-00'"),
    (["--report"], "no runs of this experiment"),
])
def test_bad_run_selection(s, args, expected):
    line = _fails(s, *args, CASE="good")
    assert expected in line, line


def test_output_dir_that_is_a_file(s):
    (s.dir / "afile").write_text("x")
    proc = s.run("--output-dir", str(s.dir / "afile"), "--no-stash")
    assert proc.returncode == 1
    line = one_line_error(proc.stderr)
    assert str(s.dir / "afile") in line and "--output-dir" in line


def test_hostile_config_names_stay_inside_the_run_folder(s):
    before = _tree(s.dir.parent)
    proc = s.run("--no-stash", env={"CASE": "hostile"})
    assert proc.returncode == 0, proc.stderr
    assert _tree(s.dir.parent) == before
    (run,) = s.runs("b")
    dirs = json.loads((run / "runs.json").read_text())["runs"]
    assert len(dirs) == 12
    for d in dirs:
        folder = run / d
        assert folder.parent == run and folder.resolve().parent == run.resolve(), d
        assert len(d.encode()) <= 255 and "/" not in d and "\n" not in d
        assert outcome_of(folder).ok
    # Under out/ there is only this run: its runs.json, report/ and one folder per config.
    assert {p.name for p in run.iterdir()} <= {"runs.json", "report", *dirs}
    assert list(s.dir.joinpath("out").rglob("*")) == [p for p in s.dir.joinpath("out").rglob("*")
                                                       if p == run.parent or run in (p, *p.parents)]
    names = sorted(json.loads((run / d / "config.json").read_text())["name"] for d in dirs)
    assert "../x" in names and "x" * 300 in names  # the names themselves are kept as given
