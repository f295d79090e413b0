"""``--retry`` on Slurm: a failed config's next attempt is a new job array; ``--detach`` never retries."""

from __future__ import annotations

import pytest

from slurm_helpers import config_dirs, job_id, poll, results

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

FLAKY = """
import pathlib
import pyexp

HERE = pathlib.Path(__file__).parent


@pyexp.experiment(name="flaky", executor="slurm")
def flaky(config):
    tries = HERE / f"tries-{config['name']}"
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    print(f"attempt {n} of {config['name']}")
    if n <= config["failures"]:
        raise RuntimeError(f"flaky failure {n}")
    return n


@flaky.configs
def configs():
    return [{"name": "once", "failures": 1}, {"name": "thrice", "failures": 3}, {"name": "never", "failures": 0}]


@flaky.report
def report(results, out):
    for r in results:
        print("RESULT", r.name, r.result, r.error)


if __name__ == "__main__":
    flaky.run()
"""


def _tries(folder, name: str) -> str:
    return (folder / f"tries-{name}").read_text()


def test_retry_resubmits_failed_configs_as_new_arrays_and_keeps_every_attempt(script) -> None:
    s = script(FLAKY)
    proc = s.run("--retry", "2", "--no-stash", timeout=240)
    found = results(proc.stdout)
    assert found["once"] == ("2", "None") and found["never"] == ("1", "None"), proc.stdout
    assert found["thrice"][0] == "None" and "flaky failure 3" in found["thrice"][1]
    assert [_tries(s.dir, n) for n in ("once", "thrice", "never")] == ["2", "3", "1"]
    (run,) = s.runs("flaky")
    dirs = config_dirs(run)
    log = (dirs["thrice"] / "log.out").read_text()
    for n in (1, 2, 3):
        assert f"attempt {n} of thrice" in log and f"RuntimeError: flaky failure {n}" in log
    # The first attempts were one array of three; each retry went to sbatch again (the configs
    # that failed at the same watcher poll share an array): 2 retry rounds of at most 2 configs.
    scripts = sorted((run / ".slurm").glob(".submission_file_*.sh"))
    assert 3 <= len(scripts) <= 5, scripts
    assert "--array=0-2" in "".join(p.read_text() for p in scripts)
    assert job_id(dirs["once"]).split("_")[0] != job_id(dirs["never"]).split("_")[0]


def test_detach_submits_once_and_continue_retries(script) -> None:
    s = script(FLAKY)
    s.run("--retry", "2", "--detach", "--no-stash", timeout=60)
    (run,) = s.runs("flaky")
    dirs = config_dirs(run)
    poll(lambda: all((d / "outcome.json").exists() for d in dirs.values()), 120, "the detached configs to end")
    # Nobody waited for the detached jobs, so nobody ran a failed one again.
    assert [_tries(s.dir, n) for n in ("once", "thrice", "never")] == ["1", "1", "1"]
    assert "flaky failure 1" in (dirs["once"] / "log.out").read_text()
    assert not list(dirs["once"].glob("log.attempt-*.out"))

    again = s.run("--continue", "--retry", "1", timeout=240)
    found = results(again.stdout)
    assert found["once"] == ("2", "None") and found["never"] == ("1", "None"), again.stdout
    assert "flaky failure 3" in found["thrice"][1] and _tries(s.dir, "thrice") == "3"
