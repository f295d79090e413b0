"""``--executor slurm`` against a real single-node Slurm, run as a user runs it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyexp_testing import clean_env
from slurm_helpers import calls, config_dirs, job_id, poll, results, squeue, waiting_script

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def _start(script, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script.path), *args], cwd=script.dir, env=clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sweep_runs_as_one_job_array_and_a_segfault_fails_alone(script) -> None:
    s = script(waiting_script(5, wait=False))
    proc = s.run("--executor", "slurm", "-j", "2", "--no-stash", check=False, timeout=180)
    assert proc.returncode == 0, proc.stderr
    found = results(proc.stdout)
    assert {k: v[0] for k, v in found.items() if k != "c3"} == {"c0": "0", "c1": "10", "c2": "20", "c4": "40"}
    assert "SIGSEGV" in found["c3"][1]
    (run,) = s.runs("exp")
    dirs = config_dirs(run)
    ids = {name: job_id(folder) for name, folder in dirs.items()}
    arrays = {i.split("_")[0] for i in ids.values()}
    assert len(arrays) == 1, ids  # one array for the whole run
    assert sorted(i.split("_")[1] for i in ids.values()) == ["0", "1", "2", "3", "4"]
    # Each config's own output lands in its log.out; -j 2 became the array's %2.
    (array,) = arrays
    for name, folder in dirs.items():
        assert f"running {name} job {array} {ids[name].split('_')[1]}" in (folder / "log.out").read_text()
    scripts = [p.read_text() for p in (run / ".slurm").glob(".submission_file_*.sh")]
    assert len(scripts) == 1 and "--array=0-4%2" in scripts[0]

    # --continue of a finished run needs no Slurm at all: no sbatch/squeue on PATH.
    bare = s.dir / "bin"
    bare.mkdir()
    os.symlink(sys.executable, bare / "python")
    again = subprocess.run([sys.executable, str(s.path), "--executor", "slurm", "--continue", "--skip-failed"],
                           cwd=s.dir, env=clean_env(PATH=str(bare)), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert results(again.stdout)["c4"] == ("40", "None")


def test_detach_then_continue_waits_for_running_jobs_without_resubmitting(script) -> None:
    s = script(waiting_script(3, wait=True))
    proc = s.run("--executor", "slurm", "--detach", "--no-stash", timeout=60)
    assert "RESULT" not in proc.stdout  # no report while the configs run on
    command = re.search(r"come back with:\n\s+(.*)", proc.stderr).group(1)
    assert "--continue=" in command and "--detach" not in command and "--executor slurm" in command
    (run,) = s.runs("exp")
    array = job_id(config_dirs(run)["c0"]).split("_")[0]
    assert array in proc.stderr
    poll(lambda: sum(line.startswith("start") for line in calls(s.dir)) >= 2, 60, "two configs to start")
    listing = s.run("--list").stdout
    assert re.search(r"queued\s+running", listing), listing
    row = next(line for line in listing.splitlines() if line.startswith(run.name))
    assert row.split()[-5:] == ["0", "0", "1", "2", "0"], listing  # done failed queued running pending

    (s.dir / "go").touch()
    args = command.split()[2:]  # "python main.py ..." as printed
    done = s.run(*args, timeout=120)
    assert {k: v[0] for k, v in results(done.stdout).items()} == {"c0": "0", "c1": "10", "c2": "20"}
    assert sorted(calls(s.dir)).count("start c0") == 1  # waited for, never submitted again
    assert sorted(line for line in calls(s.dir) if line.startswith("start")) == ["start c0", "start c1", "start c2"]


def test_a_job_cancelled_mid_run_is_the_only_one_continue_runs_again(script) -> None:
    s = script(waiting_script(3, wait=True))
    s.run("--executor", "slurm", "--detach", "--no-stash", "-j", "3", timeout=60)
    (run,) = s.runs("exp")
    dirs = config_dirs(run)
    poll(lambda: "start c1" in calls(s.dir), 60, "c1 to start")
    subprocess.run(["scancel", job_id(dirs["c1"])], check=True)
    poll(lambda: squeue(job_id(dirs["c1"])).get(job_id(dirs["c1"])) == "CANCELLED", 30, "c1 to be cancelled")
    (s.dir / "go").touch()
    done = s.run("--executor", "slurm", "--continue", timeout=120)
    assert {k: v[0] for k, v in results(done.stdout).items()} == {"c0": "0", "c1": "10", "c2": "20"}
    starts = [line for line in calls(s.dir) if line.startswith("start")]
    assert sorted(starts) == ["start c0", "start c1", "start c1", "start c2"]


def test_a_time_limit_kill_is_the_configs_error_named_timeout(script) -> None:
    s = script(waiting_script(2, wait=True))
    (s.dir / "go-c1").touch()
    proc = _start(s, "--executor", "slurm", "--no-stash", "pyexp.slurm.time=5")
    try:
        poll(lambda: "start c0" in calls(s.dir), 60, "c0 to start")
        (run,) = s.runs("exp")
        job = job_id(config_dirs(run)["c0"])
        subprocess.run(["scontrol", "update", f"JobId={job}", "EndTime=now"], check=True)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    found = results(out)
    assert found["c1"][0] == "10"
    assert found["c0"][1].startswith("TIMEOUT"), found  # Slurm's verdict, never a success
    assert "FAILED c0: TIMEOUT" in err


REQUEUE = '''
import pathlib, time
from pyexp import Experiment, chkpt

HERE = pathlib.Path(__file__).parent


def mark(what):
    with open(HERE / "calls.txt", "a") as f:
        f.write(what + "\\n")


class Long(Experiment, name="long"):
    @chkpt
    def prepare(self):
        mark("prepare")
        self.data = 41

    @chkpt
    def train(self):
        mark("train")
        while not (HERE / "go").exists():
            time.sleep(0.2)
        self.answer = self.data + 1

    def experiment(self):
        self.prepare()
        self.train()
        return self.answer

    @staticmethod
    def configs():
        return [{"name": "only"}]

    @staticmethod
    def report(results, out):
        for e in results:
            print("RESULT", e.name, e.result, e.error)


if __name__ == "__main__":
    Long.run()
'''


def test_requeue_restarts_the_config_from_its_checkpoints(script) -> None:
    s = script(REQUEUE)
    s.run("--executor", "slurm", "--detach", "--no-stash", "pyexp.slurm.requeue=true", timeout=60)
    (run,) = s.runs("long")
    folder = config_dirs(run)["only"]
    poll(lambda: "train" in calls(s.dir), 60, "the train step to start")
    job = job_id(folder)
    subprocess.run(["scontrol", "requeue", job], check=True)
    poll(lambda: calls(s.dir).count("train") == 2, 120, "the requeued job to run train again")
    (s.dir / "go").touch()
    done = s.run("--continue", "--executor", "slurm", timeout=120)
    assert results(done.stdout)["only"] == ("42", "None")
    assert calls(s.dir) == ["prepare", "train", "train"]  # prepare came from its checkpoint
    assert job_id(folder) == job  # the same job, requeued: not a new submission
    assert "restarted" in (folder / "log.out").read_text()


def test_requeue_before_the_time_limit_resumes_from_the_checkpoints(script) -> None:
    s = script(REQUEUE)
    s.run("--executor", "slurm", "--detach", "--no-stash", "pyexp.slurm.requeue=true", "pyexp.slurm.time=5",
          timeout=60)
    (run,) = s.runs("long")
    folder = config_dirs(run)["only"]
    poll(lambda: "train" in calls(s.dir), 60, "the train step to start")
    # Less than submitit's 90 s warning left: Slurm sends USR2, submitit requeues the job.
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 80))
    subprocess.run(["scontrol", "update", f"JobId={job_id(folder)}", f"EndTime={end}"], check=True)
    poll(lambda: calls(s.dir).count("train") == 2, 120, "the job to be requeued before its time limit")
    (s.dir / "go").touch()
    done = s.run("--continue", "--executor", "slurm", timeout=120)
    assert results(done.stdout)["only"] == ("42", "None")
    assert calls(s.dir) == ["prepare", "train", "train"]


def test_ctrl_c_cancels_the_array_and_prints_the_continue_command(script) -> None:
    s = script(waiting_script(4, wait=True))
    proc = _start(s, "--executor", "slurm", "--no-stash")
    try:
        poll(lambda: "start c0" in calls(s.dir), 60, "c0 to start")
        (run,) = s.runs("exp")
        ids = [job_id(folder) for folder in config_dirs(run).values()]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"--continue={run.name}" in err
    states = poll(lambda: (lambda st: st if st and all(st.get(i, "CANCELLED") == "CANCELLED" for i in ids)
                           else None)(squeue(ids[0].split("_")[0])), 30, "every job to be cancelled")
    assert states
    assert not list(run.glob("*/result.pkl"))  # cancelled configs stay pending for --continue


HYDRA_APP = '''
import os
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None)
def main(cfg: DictConfig) -> int:
    print("job", cfg.x, "on slurm", os.environ.get("SLURM_ARRAY_JOB_ID"))
    return cfg.x * 10


if __name__ == "__main__":
    main()
'''


def test_the_hydra_launcher_runs_a_plain_app_on_slurm(script) -> None:
    s = script(HYDRA_APP, name="app.py")
    s.run("-m", "hydra/launcher=pyexp", "hydra.launcher.executor=slurm", "hydra.launcher.slurm.time=5",
          "+x=1,2,3", timeout=180)
    (run,) = s.runs("app")
    folders = [p for p in run.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 3
    arrays = {job_id(p).split("_")[0] for p in folders}
    assert len(arrays) == 1
    from pyexp.store import read_outcome

    for folder in folders:
        assert read_outcome(folder).ok
        assert re.search(r"job \d on slurm \d+", (folder / "log.out").read_text())

    # A partition Slurm does not know: the sweep fails before it creates a run folder.
    bad = s.run("-m", "hydra/launcher=pyexp", "hydra.launcher.executor=slurm", "hydra.launcher.slurm.partition=nope",
                "+x=1,2", "hydra.launcher.name=bad", check=False, timeout=60)
    assert bad.returncode != 0 and "partition" in bad.stderr and "nope" in bad.stderr
    assert not (s.dir / "out" / "bad").exists()


def test_an_unknown_partition_is_one_error_line_and_writes_no_run(script) -> None:
    s = script(waiting_script(2, wait=False))
    proc = s.run("--executor", "slurm", "pyexp.slurm.partition=nope", check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("pyexp: error:") and "partition" in line and "nope" in line
    assert not (s.dir / "out").exists()
