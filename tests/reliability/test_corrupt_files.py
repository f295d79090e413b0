"""Damaged result.pkl, config.json and runs.json: a clear one-line error, never a wrong value."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pyexp.store import RESULT_FILE
from pyexp_testing import ScriptAt as Script, one_line_error, outcome_of

SCRIPT = '''
import pathlib
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="d", executor="inline")
def exp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    return {"value": config.name * 1000}

@exp.configs
def configs():
    return [{"name": n} for n in ("a", "b", "c", "d")]

@exp.report
def report(results, report_dir):
    for r in results:
        print("RESULT", r.name, "ok" if r.error is None else "error", r.error)

if __name__ == "__main__":
    exp.run()
'''


def _made(tmp_path: Path) -> tuple[Script, Path, dict[str, Path]]:
    s = Script(tmp_path, SCRIPT)
    proc = s.run("--no-stash")
    assert proc.returncode == 0, proc.stderr
    (run,) = s.runs("d")
    return s, run, s.config_dirs(run)


def _calls(s: Script) -> Counter:
    return Counter((s.dir / "calls.txt").read_text().split())


def _report(stdout: str) -> dict[str, str]:
    return {l.split()[1]: l.split(" ", 2)[2] for l in stdout.splitlines() if l.startswith("RESULT ")}


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 2],
    "header only": lambda data: data[:60],
    "empty": lambda data: b"",
    "garbage": lambda data: b"\x00\xffnot a pickle at all" * 10,
    "trailing junk": lambda data: data + b"junk",
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_result_is_reported_and_rerun_by_continue(tmp_path, damage):
    s, run, dirs = _made(tmp_path)
    path = dirs["b"] / RESULT_FILE
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    proc = s.run("--report")
    assert proc.returncode == 0, proc.stderr
    report = _report(proc.stdout)
    assert report["a"].startswith("ok") and report["c"].startswith("ok")
    assert report["b"].startswith("error") and str(path) in report["b"] and "--continue" in report["b"]
    assert "\n" not in report["b"]
    proc = s.run("--continue")
    assert proc.returncode == 0, proc.stderr
    assert all(v.startswith("ok") for v in _report(proc.stdout).values())
    assert _calls(s) == Counter({"a": 1, "b": 2, "c": 1, "d": 1})
    assert outcome_of(dirs["b"]).result == {"value": "b" * 1000}


def test_a_flipped_byte_in_a_result_is_caught_by_its_checksum(tmp_path):
    s, run, dirs = _made(tmp_path)
    path = dirs["c"] / RESULT_FILE
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01  # inside the repeated value: unpickles fine, but to the wrong value
    path.write_bytes(bytes(data))
    loader = Script(tmp_path, '''
        import sys
        sys.path.insert(0, ".")
        from main import exp
        r = exp.results()[2]
        print("VALUE", r.result)
        print("ERROR", r.error)
    ''', name="load.py")
    proc = loader.run()
    assert proc.returncode == 0, proc.stderr
    assert "VALUE None" in proc.stdout
    assert f"ERROR {path}: stored result is damaged (CRC-32 mismatch)" in proc.stdout


@pytest.mark.parametrize("mode", ["--continue", "--report"])
@pytest.mark.parametrize("damage", ["truncated", "not an object", "missing"])
def test_a_damaged_config_json_is_a_one_line_error(tmp_path, mode, damage):
    s, run, dirs = _made(tmp_path)
    path = dirs["c"] / "config.json"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:10])
    elif damage == "not an object":
        path.write_text("[1, 2]")
    else:
        path.unlink()
    proc = s.run(mode)
    assert proc.returncode == 1
    line = one_line_error(proc.stderr)
    assert line.startswith("pyexp: error: ") and str(path) in line and "fresh run" in line
    assert _calls(s) == Counter("abcd")  # nothing ran


@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong shape", "escaping entry"])
def test_a_damaged_runs_json_is_a_one_line_error(tmp_path, damage):
    s, run, dirs = _made(tmp_path)
    path = run / "runs.json"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:25])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong shape":
        path.write_text(json.dumps({"shape": "x", "runs": 3}))
    else:  # an entry pointing outside the run must not be read from or written to
        escape = tmp_path / "escape"
        escape.mkdir()
        (escape / "config.json").write_text(json.dumps({"name": "evil"}))
        record = json.loads(path.read_text())
        record["runs"][0] = "../../../escape"
        path.write_text(json.dumps(record))
    for mode in (f"--continue={run.name}", "--report", "--continue"):
        proc = s.run(mode)
        assert proc.returncode == 1, (mode, proc.stderr)
        line = one_line_error(proc.stderr)
        assert line.startswith("pyexp: error: ") and str(path) in line and "fresh run" in line
    proc = s.run("--list")
    assert proc.returncode == 0 and f"{run.name}" in proc.stdout and "unreadable" in proc.stdout
    if damage == "escaping entry":
        assert sorted(p.name for p in (tmp_path / "escape").iterdir()) == ["config.json"]
    # A fresh run is not disturbed by the broken one.
    assert s.run("--no-stash").returncode == 0
    assert _calls(s) == Counter("abcd" * 2)


def test_an_intact_result_whose_class_is_gone_says_so(tmp_path):
    (tmp_path / "shapes.py").write_text("class Square:\n    side = 2\n")
    s = Script(tmp_path, '''
        import pyexp

        @pyexp.experiment(name="g", executor="subprocess")
        def exp(config):
            from shapes import Square
            return Square()

        @exp.configs
        def configs():
            return [{"name": "sq"}]

        @exp.report
        def report(results, report_dir):
            r = results[0]
            if __import__("os").environ.get("STRICT"):
                return r.result  # not caught: the CLI reports it
            print("BEFORE", r.status, "|", r.error)
            try:
                value = r.result  # never a silent None while r.error is None
            except pyexp.StoreError as exc:
                value = f"raised {exc}"
            print("RESULT", value, "|", r.error)

        if __name__ == "__main__":
            exp.run()
    ''')
    assert s.run("--no-stash").returncode == 0
    (tmp_path / "shapes.py").rename(tmp_path / "renamed.py")
    proc = s.run("--report")
    assert proc.returncode == 0, proc.stderr
    assert "BEFORE done | None" in proc.stdout  # the bytes are whole: unpickling is lazy
    message = "intact but cannot be loaded (ModuleNotFoundError: No module named 'shapes')"
    result_line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    raised, error = result_line.split(" | ")
    assert raised.startswith("RESULT raised") and message in raised
    assert message in error  # from the first load on, r.error says why
    # A report that does not catch it fails with that one line, naming the fix.
    proc = s.run("--report", env={"STRICT": "1"})
    assert proc.returncode == 1
    assert message in one_line_error(proc.stderr)


def test_a_flipped_byte_is_found_when_the_run_opens(tmp_path):
    """Same size, one bit changed: --list counts it failed and --continue runs it again."""
    s, run, dirs = _made(tmp_path)
    path = dirs["a"] / RESULT_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    listing = s.run("--list")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith(run.name)).split()
    assert row[-4:] == ["4", "3", "1", "0"]  # configs, done, failed, pending
    proc = s.run("--continue")
    assert proc.returncode == 0, proc.stderr
    assert _calls(s) == Counter({"a": 2, "b": 1, "c": 1, "d": 1})
    assert outcome_of(dirs["a"]).result == {"value": "a" * 1000}
