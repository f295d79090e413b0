"""A private Ray head on 127.0.0.1 for the Ray executor tests, and how to stop only it.

Everything the head writes (sessions, sockets, ``ray_current_cluster``) lives in its own temp
folder, so a plain ``ray.init()`` elsewhere on the machine never finds it, and every port is
chosen free. ``ray stop`` would kill every Ray on the machine, so :meth:`RayHead.stop` kills
only the processes of the session that ``ray start`` began (Ray's daemons and workers stay in
it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ray_env(**extra: str) -> dict[str, str]:
    """This environment without PYEXP_*/RAY_*, with token auth off (``~/.ray/auth_token`` may exist)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYEXP_", "RAY_"))}
    env.pop("PYTHONPATH", None)
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.update(extra)
    return env


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class RayHead:
    """``ray start --head`` with 2 CPUs on 127.0.0.1; ``address`` (GCS) and ``client`` (ray://)."""

    def __init__(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                self._start()
                return
            except RuntimeError:  # most likely a port taken between choosing it and binding it
                if attempt == attempts - 1:
                    raise

    def _start(self) -> None:
        # Short path: Ray's unix socket paths must stay under ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="pxr-", dir="/tmp"))
        gcs, client, dashboard, agent, agent_grpc, runtime_env, metrics = free_ports(7)
        self.address = f"127.0.0.1:{gcs}"
        self.client = f"ray://127.0.0.1:{client}"
        self.env = ray_env(RAY_TMPDIR=str(self.temp_dir))
        cmd = [
            "ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
            f"--ray-client-server-port={client}", "--include-dashboard=false",
            f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}", "--num-cpus=2", "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        # A new session: Ray's daemons and workers inherit it, which is how stop() finds them all.
        self._starter = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True, text=True)
        self.sid = self._starter.pid
        try:
            output, _ = self._starter.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        if self._starter.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed:\n{output}")
        self._warm_up()

    def _warm_up(self) -> None:
        """One Ray Client session with an uploaded working dir, before any test times its own.

        On a fresh machine (no bytecode for Ray yet) under load, the client server's first
        per-session server starts slowly enough that a test's first connection can fail with
        "Initialization failure from server". Paying that start here keeps it out of the tests.
        """
        work = Path(tempfile.mkdtemp(prefix="warm-", dir=self.temp_dir))
        (work / "warm.py").write_text("x = 1\n")
        code = ("import ray, sys\n"
                "ray.init(sys.argv[1], runtime_env={'working_dir': sys.argv[2]})\n"
                "assert ray.get(ray.remote(lambda: 1).remote()) == 1\n")
        deadline = time.monotonic() + 180
        while True:
            proc = subprocess.run([sys.executable, "-c", code, self.client, str(work)], env=self.env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Ray head never accepted a client session:\n{proc.stderr[-3000:]}")
            time.sleep(1)

    def stop(self) -> None:
        for signum, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            for pid in session_pids(self.sid):
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while session_pids(self.sid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not session_pids(self.sid):
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)
