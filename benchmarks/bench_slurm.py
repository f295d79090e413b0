"""pyexp's Slurm executor against submitit's own ``map_array`` on the same single-node cluster.

    python benchmarks/bench_slurm.py [--configs 200]

Starts a throw-away cluster (tests/executors/slurm/slurm_cluster.py; needs root and Debian's
slurmctld, slurmd, slurm-client, munge), or uses the one ``SLURM_CONF`` points at. Measures:

1. submit: ``main.py --executor slurm --detach`` for N no-op configs (the whole command:
   interpreter start, config generation, phase 1 writes, sbatch) vs ``map_array`` alone.
   Target: pyexp <= 2 s.
2. sweep: submit and wait for all N results, pyexp (waiting mode, progress from the store) vs
   ``map_array`` + polling submitit's result files. Target: pyexp overhead <= 10 %.
3. continue: ``--continue`` of the finished N-config run with no Slurm command on PATH (it
   would fail on any call). Target: succeeds, i.e. makes no Slurm call.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "executors" / "slurm"))

EXPERIMENT = """
import pyexp

@pyexp.experiment(name="noop")
def noop(config):
    return config["x"]

@noop.configs
def configs():
    return [{{"name": f"c{{i}}", "x": i}} for i in range({n})]

if __name__ == "__main__":
    noop.run()
"""

PEER = """
import sys, time, os
import submitit

def noop(x):
    return x

n, folder, wait = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "wait"
started = time.perf_counter()
ex = submitit.SlurmExecutor(folder=folder)
ex.update_parameters(array_parallelism=n, stderr_to_stdout=True)
jobs = ex.map_array(noop, range(n))
submitted = time.perf_counter() - started
if wait:
    pending = list(jobs)
    while pending:
        pending = [j for j in pending if not j.paths.result_pickle.exists()]
        time.sleep(0.25)
print(submitted, time.perf_counter() - started)
"""


@contextlib.contextmanager
def cluster() -> Iterator[None]:
    if os.environ.get("SLURM_CONF"):
        yield
        return
    from slurm_cluster import missing, single_node_cluster

    reason = missing()
    if reason:
        sys.exit(f"bench_slurm: {reason}")
    with tempfile.TemporaryDirectory(prefix="pyexp-bench-slurm-") as tmp, single_node_cluster(Path(tmp)) as env:
        os.environ.update(env)
        yield


def drain() -> None:
    """Wait until the cluster is idle, so one measurement does not queue behind another."""
    while subprocess.run(["squeue", "-h", "-t", "PD,R,CG"], capture_output=True, text=True).stdout.strip():
        time.sleep(0.5)


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"bench_slurm: {' '.join(cmd)} failed:\n{proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="sweep measurements per side (best kept)")
    n = parser.parse_args().configs
    repeat = parser.parse_args().repeat
    with cluster(), tempfile.TemporaryDirectory(prefix="pyexp-bench-") as tmp:
        work = Path(tmp)
        (work / "main.py").write_text(textwrap.dedent(EXPERIMENT.format(n=n)))
        (work / "peer.py").write_text(PEER)
        py = sys.executable

        drain()
        pyexp_submit, _ = timed([py, "main.py", "--executor", "slurm", "--detach", "--no-stash"], work)
        drain()
        peer_submit = float(timed([py, "peer.py", str(n), str(work / "sub0"), "nowait"], work)[1].split()[0])
        drain()

        pyexp_sweeps, peer_sweeps = [], []
        for i in range(repeat):
            drain()
            peer_sweeps.append(float(timed([py, "peer.py", str(n), str(work / f"sub{i + 1}"), "wait"], work)[1].split()[1]))
            drain()
            pyexp_sweeps.append(timed([py, "main.py", "--executor", "slurm", "--no-stash"], work)[0])
        pyexp_sweep, peer_sweep = min(pyexp_sweeps), min(peer_sweeps)

        # --continue of the finished run, with a PATH that holds python and nothing of Slurm.
        bare = work / "bin"
        bare.mkdir()
        os.symlink(py, bare / "python")
        env = {**os.environ, "PATH": str(bare)}
        cont, _ = timed([py, "main.py", "--executor", "slurm", "--continue"], work, env=env)

    overhead = pyexp_sweep / peer_sweep - 1
    print(f"configs: {n}")
    print(f"submit   pyexp --detach (whole command) {pyexp_submit:6.2f} s   submitit map_array {peer_submit:6.2f} s"
          f"   target pyexp <= 2 s: {'OK' if pyexp_submit <= 2 else 'MISSED'}")
    print(f"sweep    pyexp {pyexp_sweep:6.2f} s   submitit map_array {peer_sweep:6.2f} s   ratio "
          f"{pyexp_sweep / peer_sweep:.3f} (overhead {overhead:+.1%}; target <= 10 %: "
          f"{'OK' if overhead <= 0.10 else 'MISSED'})   all: pyexp {pyexp_sweeps} peer {peer_sweeps}")
    print(f"continue of the finished run without any Slurm command on PATH: {cont:.2f} s (no Slurm call: OK)")


if __name__ == "__main__":
    main()
