"""The disk fills up while a result is written: that config fails clearly, the others are intact."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pyexp_testing import ScriptAt as Script, outcome_of

SCRIPT = '''
import os, pathlib, resource
import pyexp

HERE = pathlib.Path(__file__).parent

@pyexp.experiment(name="full")
def exp(config):
    with open(HERE / "calls.txt", "a") as f:
        f.write(config.name + "\\n")
    if config.name == "big" and not os.environ.get("FIXED"):
        if os.environ.get("LIMIT"):  # this process may not write files past LIMIT bytes
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(os.environ["LIMIT"]), hard))
        return b"x" * (8 << 20)
    return {"name": config.name, "payload": "y" * 1000}

@exp.configs
def configs():
    return [{"name": "first"}, {"name": "big"}, {"name": "last"}]

if __name__ == "__main__":
    exp.run()
'''


def _check(s: Script, output_dir: Path, expected: str, stored: bool) -> None:
    (run,) = sorted(p.parent for p in (output_dir / "full").glob("*/runs.json"))
    dirs = s.config_dirs(run)
    for name in ("first", "last"):
        outcome = outcome_of(dirs[name])
        assert outcome.ok and outcome.result["name"] == name, (name, outcome)
    big = outcome_of(dirs["big"])
    if stored:
        assert big is not None and not big.ok and expected in big.error, big
    else:  # the runner itself could not write: the config stays pending for --continue
        assert big is None


@pytest.mark.parametrize("executor", ["fork", "subprocess"])
def test_file_size_limit_hit_while_storing_a_result(tmp_path, executor):
    s = Script(tmp_path, SCRIPT)
    proc = s.run("--executor", executor, "--no-stash", env={"LIMIT": str(64 << 10)})
    assert proc.returncode == 0, proc.stderr
    _check(s, s.dir / "out", "could not store the result", stored=True)
    assert "File too large" in outcome_of(next(s.runs("full")[0].glob("big-*"))).error
    proc = s.run("--executor", executor, "--continue", env={"FIXED": "1"})
    assert proc.returncode == 0, proc.stderr
    assert (s.dir / "calls.txt").read_text().split() == ["first", "big", "last", "big"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MB tmpfs (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("executor", ["fork", "subprocess", "inline"])
def test_disk_full_while_storing_a_result(tmp_path, small_disk, executor):
    s = Script(tmp_path, SCRIPT)
    proc = s.run("--executor", executor, "--no-stash", "--output-dir", str(small_disk))
    assert proc.returncode == 0, proc.stderr
    # In a child the failure is stored as a small error record; inline, nothing can be stored.
    _check(s, small_disk, "No space left on device", stored=executor != "inline")
    if executor == "inline":
        assert "No space left on device" in proc.stderr and "pending" in proc.stderr
    assert not list(small_disk.rglob("*.tmp")), "temp files left on the full disk"
    proc = s.run("--executor", executor, "--continue", "--output-dir", str(small_disk), env={"FIXED": "1"})
    assert proc.returncode == 0, proc.stderr
    assert (s.dir / "calls.txt").read_text().split() == ["first", "big", "last", "big"]
