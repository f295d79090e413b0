"""A throw-away single-node Slurm cluster on 127.0.0.1 (Debian's slurmctld, slurmd, munge).

Used by the Slurm tests' session fixture and by ``benchmarks/bench_slurm.py``. Everything lives
in one temp folder (config, state, spool, logs, pid files); the daemons listen on free ports, and
every process that talks to the cluster gets ``SLURM_CONF`` pointing at our ``slurm.conf``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

DAEMONS = ("slurmctld", "slurmd", "munged")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
MUNGE_PIDFILE = Path("/run/munge/munged.pid")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")


def missing() -> str | None:
    """Why no cluster can be started here (a skip reason), or None if it can."""
    absent = [name for name in (*DAEMONS, *CLIENTS)
              if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} missing): apt-get install -y "
                "--no-install-recommends slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        return "starting slurmd/munged needs root (run the Slurm tests as root, e.g. in CI's container)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _write_conf(root: Path, host: str) -> Path:
    ctld_port, d_port = _free_port(), _free_port()
    conf = f"""\
ClusterName=pyexptest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CryptoType=crypto/munge
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SchedulerParameters=sched_interval=2,bf_interval=2
KillWait=5
MinJobAge=30
MaxArraySize=10001
MaxJobCount=20000
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = root / "slurm.conf"
    path.write_text(conf)
    return path


def _munge_ok() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=5)
        return cred.returncode == 0 and subprocess.run(
            ["unmunge"], input=cred.stdout, capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_munge() -> bool:
    """Start munged unless one answers already; True if we started it (so we stop it later)."""
    if _munge_ok():
        return False
    run_dir = MUNGE_SOCKET.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "-c"], check=True)
    # A munged stopped moments ago (by the cluster before this one) may still hold its
    # socket's lock, and a new one would refuse to start: let it finish going.
    _wait_gone(MUNGE_PIDFILE, 10)
    # munged refuses to run as root (its log folder belongs to munge).
    started = subprocess.run(["runuser", "-u", "munge", "--", _sbin("munged")],
                             capture_output=True, text=True)
    if started.returncode != 0:
        # Another test process may have started one meanwhile: use it if it answers.
        _poll(_munge_ok, 10, f"munged did not start: {started.stderr.strip()}")
        return False
    _poll(_munge_ok, 10, "munged did not answer")
    return True


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pidfile: Path, seconds: float) -> bool:
    """Wait for the process named in ``pidfile`` to exit; True if it is gone."""
    pid = _pid(pidfile)
    deadline = time.monotonic() + seconds
    while pid is not None and Path(f"/proc/{pid}").exists():  # daemons: init reaps them
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _poll(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.1)


def _kill_pidfile(path: Path) -> None:
    pid = _pid(path)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(path, 10):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def single_node_cluster(root: Path) -> Iterator[dict[str, str]]:
    """Start munge (if needed), slurmctld and slurmd under ``root``; yield the env vars to use.

    The yielded mapping holds ``SLURM_CONF``; put it in the environment of every process that
    talks to this cluster. On exit all jobs are cancelled and the daemons we started stopped.
    """
    root = Path(root)
    host = socket.gethostname().split(".")[0]
    conf = _write_conf(root, host)
    env = {"SLURM_CONF": str(conf)}
    full_env = {**os.environ, **env}
    started_munge = _start_munge()
    try:
        subprocess.run([_sbin("slurmctld")], env=full_env, check=True)
        subprocess.run([_sbin("slurmd")], env=full_env, check=True)

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=full_env, capture_output=True, text=True)
            return out.stdout.strip() == "idle"

        _poll(idle, 30, f"the Slurm node did not become idle; see {root}/slurmctld.log and slurmd.log")
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], env=full_env, capture_output=True)
        _kill_pidfile(root / "slurmd.pid")
        _kill_pidfile(root / "slurmctld.pid")
        if started_munge:
            _kill_pidfile(MUNGE_PIDFILE)


if __name__ == "__main__":  # a cluster for trying things by hand: prints SLURM_CONF, Ctrl-C stops it
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pyexp-slurm-") as tmp, single_node_cluster(Path(tmp)) as env:
        print(f"export SLURM_CONF={env['SLURM_CONF']}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
