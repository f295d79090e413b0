"""``hydra/launcher=pyexp`` driving a plain ``@hydra.main`` app, run as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyexp.store import read_outcome, status_of


from pyexp_testing import clean_env

APP = """
import hydra
from omegaconf import DictConfig

CALLS = {calls!r}


@hydra.main(version_base=None, config_path=None)
def main(cfg: DictConfig) -> int:
    with open(CALLS, "a") as f:
        f.write(f"{{cfg.x}} {{'pyexp' in cfg}}\\n")
    if cfg.x == cfg.get("crash_at"):
        import ctypes

        ctypes.string_at(0)
    print(f"job x={{cfg.x}}")
    return cfg.x * 10


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def app(script, tmp_path: Path):
    calls = tmp_path / "calls.txt"
    made = script(APP.format(calls=str(calls)), name="app.py")
    made.calls = lambda: [line.split()[0] for line in calls.read_text().splitlines()] if calls.exists() else []
    made.pyexp_flags = lambda: [line.split()[1] for line in calls.read_text().splitlines()]
    return made


def _runs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "out" / "app"
    return sorted(p for p in root.iterdir() if (p / "runs.json").exists()) if root.exists() else []


def _statuses(run: Path) -> dict[str, str | None]:
    manifest = json.loads((run / "runs.json").read_text())
    out = {}
    for dirname in manifest["runs"]:
        found = read_outcome(run / dirname)
        out[dirname.rsplit("-", 1)[0]] = found.status if found else None
    return out


LAUNCH = ["-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork"]


def test_rerun_with_continue_runs_only_new_jobs(app, tmp_path: Path) -> None:
    app.run(*LAUNCH, "+x=1,2")
    assert sorted(app.calls()) == ["1", "2"]
    (run,) = _runs(tmp_path)
    assert _statuses(run) == {"+x=1": "ok", "+x=2": "ok"}
    assert "job x=1" in (run / next(d for d in json.loads((run / "runs.json").read_text())["runs"]
                                    if d.startswith("+x=1")) / "log.out").read_text()

    app.run(*LAUNCH, "+x=1,2,3", f"+pyexp.continue={run.name}")
    assert sorted(app.calls()) == ["1", "2", "3"]  # 1 and 2 came from the cache
    assert _runs(tmp_path) == [run]
    assert _statuses(run) == {"+x=1": "ok", "+x=2": "ok", "+x=3": "ok"}
    assert set(app.pyexp_flags()) == {"False"}  # the pyexp node never reaches the app's config

    # Without continue a sweep is a fresh run: everything runs again.
    app.run(*LAUNCH, "+x=1")
    assert sorted(app.calls()) == ["1", "1", "2", "3"]
    assert len(_runs(tmp_path)) == 2


def test_segfault_fails_alone_and_continue_reruns_it(app, tmp_path: Path) -> None:
    proc = app.run(*LAUNCH, "+x=1,2,3", "+crash_at=2", check=False)
    assert proc.returncode == 1, proc.stderr  # Hydra reports the failed job; nothing was killed
    assert "SIGSEGV" in proc.stderr + proc.stdout
    assert sorted(app.calls()) == ["1", "2", "3"]
    (run,) = _runs(tmp_path)
    assert _statuses(run) == {"+x=1,+crash_at=2": "ok", "+x=2,+crash_at=2": "error", "+x=3,+crash_at=2": "ok"}

    # The crashing job is not cached: after a fix, continuing runs only that one.
    app.run(*LAUNCH, "+x=1,2,3", "+crash_at=2", "+pyexp.continue=latest", "+pyexp.crash_guard=1",
            check=False)  # an unknown pyexp key is refused before anything runs
    assert sorted(app.calls()) == ["1", "2", "3"]
    app.run(*LAUNCH, "+x=1,2,3", "+crash_at=0", "+pyexp.continue=latest")
    assert sorted(app.calls()) == ["1", "1", "2", "2", "3", "3"]  # new overrides: new jobs


def test_basic_launcher_dies_with_the_segfault(app) -> None:
    proc = app.run("-m", "+x=1,2,3", "+crash_at=2", check=False)
    assert proc.returncode in (-11, 139)
    assert app.calls() == ["1", "2"]  # job 3 never ran


def test_unknown_pyexp_key_lists_valid_ones(app) -> None:
    proc = app.run(*LAUNCH, "+x=1", "+pyexp.bogus=1", check=False)
    assert proc.returncode == 1
    assert "pyexp.bogus" in proc.stderr and "continue" in proc.stderr
    assert app.calls() == []


@pytest.mark.slow
def test_subprocess_executor_in_parallel(app, tmp_path: Path) -> None:
    app.run("-m", "hydra/launcher=pyexp", "hydra.launcher.executor=subprocess", "hydra.launcher.jobs=2",
            "+x=range(1,5)")
    assert sorted(app.calls()) == ["1", "2", "3", "4"]
    (run,) = _runs(tmp_path)
    assert set(_statuses(run).values()) == {"ok"}


HANGING_APP = """
import os, time
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    with open({pid_file!r}, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    main()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _poll(check, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_running_jobs_and_leaves_them_pending(script, tmp_path: Path) -> None:
    pid_file = tmp_path / "job.pid"
    s = script(HANGING_APP.format(pid_file=str(pid_file)), name="app.py")
    proc = subprocess.Popen(
        [sys.executable, str(s.path), "-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork", "+x=1"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert _poll(lambda: pid_file.exists() and pid_file.read_text().strip() != ""), "job never started"
        job_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert _poll(lambda: not _alive(job_pid)), "the job outlived Ctrl-C"
    (run,) = _runs(tmp_path)
    assert _statuses(run) == {"+x=1": None}  # no result: a continued run runs it again


VALUE_APP = """
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    with open({calls!r}, "a") as f:
        f.write(f"{{cfg.x}}\\n")
    if cfg.x == 3:
        raise ValueError("x=3 is refused")
    return dict(x=cfg.x, squares=[cfg.x ** 2])

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("executor", ["fork", "subprocess"])
def test_result_pkl_is_the_apps_return_value(script, tmp_path: Path, executor: str) -> None:
    import pickle

    calls = tmp_path / "calls.txt"
    app = script(VALUE_APP.format(calls=str(calls)), name="app.py")
    launch = ["-m", "hydra/launcher=pyexp", f"hydra.launcher.executor={executor}"]
    proc = app.run(*launch, "+x=1,2,3", check=False)
    assert proc.returncode == 1 and "x=3 is refused" in proc.stderr  # Hydra re-raises the app's error
    (run,) = _runs(tmp_path)
    folders = {d.rsplit("-", 1)[0]: run / d for d in json.loads((run / "runs.json").read_text())["runs"]}
    for x in (1, 2):
        with open(folders[f"+x={x}"] / "result.pkl", "rb") as f:
            assert pickle.load(f) == {"x": x, "squares": [x * x]}
    assert read_outcome(folders["+x=3"]).error_type == "ValueError"

    # Continuing hands Hydra the cached jobs as JobReturns again: nothing reruns.
    app.run(*launch, "+x=1,2", "+pyexp.continue=latest")
    assert sorted(calls.read_text().split()) == ["1", "2", "3"]


def test_runs_whose_result_pkl_holds_a_jobreturn_still_continue(script, tmp_path: Path) -> None:
    """Launchers before result.pkl held the plain value stored Hydra's whole JobReturn there."""
    import pickle

    from pyexp.outcome import Outcome
    from pyexp.store import hydra_job_path, publish_outcome

    calls = tmp_path / "calls.txt"
    app = script(VALUE_APP.format(calls=str(calls)), name="app.py")
    launch = ["-m", "hydra/launcher=pyexp", "hydra.launcher.executor=fork"]
    app.run(*launch, "+x=1,2")
    (run,) = _runs(tmp_path)
    for dirname in json.loads((run / "runs.json").read_text())["runs"]:
        folder = run / dirname
        with open(hydra_job_path(folder), "rb") as f:
            ret = pickle.load(f)
        with open(folder / "result.pkl", "rb") as f:
            ret._return_value = pickle.load(f)
        (folder / "result.pkl").write_bytes(pickle.dumps(ret))
        hydra_job_path(folder).unlink()
        publish_outcome(folder, Outcome("ok"), result_written=True)
    app.run(*launch, "+x=1,2,4", "+pyexp.continue=latest")
    assert sorted(calls.read_text().split()) == ["1", "2", "4"]  # only the new job ran
