"""What the Slurm tests share: experiment scripts that wait on files, and polling helpers."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

from pyexp_testing import wait_until

#: A sweep whose configs mark their start, then wait for a "go-<name>" (or "go") file.
WAITING = '''
import os, pathlib, time
import pyexp

HERE = pathlib.Path(__file__).parent


def mark(what):
    with open(HERE / "calls.txt", "a") as f:
        f.write(what + "\\n")


@pyexp.experiment(name="exp")
def exp(config):
    mark("start " + config["name"])
    print("running", config["name"], "job", os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID"))
    if config["x"] == 3:
        import ctypes

        ctypes.string_at(0)  # a segfault: this config alone fails
    while config.get("wait") and not (HERE / "go").exists() and not (HERE / ("go-" + config["name"])).exists():
        time.sleep(0.2)
    mark("end " + config["name"])
    return config["x"] * 10


@exp.configs
def configs():
    return [{"name": f"c{i}", "x": i, "wait": WAIT} for i in range(N)]


@exp.report
def report(results, out):
    for r in results:
        print("RESULT", r.name, r.result if r.error is None else None, r.error)


if __name__ == "__main__":
    exp.run()
'''


def waiting_script(n: int, wait: bool) -> str:
    return WAITING.replace("range(N)", f"range({n})").replace('"wait": WAIT', f'"wait": {wait}')


#: Wait for something on the cluster, asking it (squeue, files) five times a second.
poll = partial(wait_until, interval=0.2)


def calls(folder: Path) -> list[str]:
    path = folder / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def results(stdout: str) -> dict[str, tuple[str, str]]:
    """name -> (result, error) from the report's RESULT lines."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, result, error = line.split(" ", 3)
            found[name] = (result, error)
    return found


def config_dirs(run: Path) -> dict[str, Path]:
    names = json.loads((run / "runs.json").read_text())["names"]
    dirs = json.loads((run / "runs.json").read_text())["runs"]
    return {name: run / d for name, d in zip(names, dirs)}


def job_id(folder: Path) -> str:
    return (folder / ".slurm_job").read_text().strip()


def squeue(array: str) -> dict[str, str]:
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", array, "-o", "%i %T"],
                         capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())
